"""``countylab run``: a job folder run on this machine, on dummy data, the way the server runs it.

The developer's loop before any real data is touched: the same ``countylab.yaml`` checks, the
same code copy (links refused), the same sandbox (bubblewrap, seccomp, limits), the same paths
inside — ``/work`` for the code, ``/data/<dataset>/`` for a folder of Parquet files and
``/outbox`` for outputs — so a job that runs here runs unchanged on the lab's real data.

The dummy data (模拟数据) comes from the lab's catalog (``GET /api/datasets/{id}/dummy``) or from
a local folder and is kept in ``<folder>/.countylab/dummy/<dataset>/``; outputs go to
``<folder>/.countylab/outbox/<action>/`` (logs in ``logs/``), the server's outbox layout.
Without bubblewrap (a laptop) the actions run as plain subprocesses, with a warning: acceptable
for dummy data only, which is all this module ever binds.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from countylab.errors import NotFound
from countylab.jobs.attempt import (
    AttemptOutcome,
    AttemptTicket,
    SandboxedRunner,
    UnsandboxedRunner,
    run_attempt,
)
from countylab.jobs.codestore import store_code
from countylab.jobs.service import SPEC_FILE
from countylab.jobs.spec import JobSpec, parse_spec
from countylab.jobs.validate import Quota, validate_spec

log = logging.getLogger(__name__)

LOCAL_DIR = ".countylab"
UNLIMITED = Quota(max_cpu=64, max_memory_mb=1 << 20, max_time_s=7 * 86400, max_gpu=64,
                  cpu_seconds=None, gpu_seconds=None)  # fmt: skip


@dataclass(frozen=True)
class LocalRun:
    outcome: AttemptOutcome
    sandboxed: bool
    outbox: Path


def read_spec(folder: Path) -> JobSpec:
    path = folder / SPEC_FILE
    if not path.is_file():
        raise NotFound(
            f"目录中没有 {SPEC_FILE}：{folder}", f"no {SPEC_FILE} in {folder}", reason="missing_spec"
        )
    return parse_spec(path.read_bytes())


def spec_datasets(spec: JobSpec) -> list[str]:
    return sorted({d for a in spec.actions for d in a.datasets})


def dummy_root(folder: Path) -> Path:
    return folder / LOCAL_DIR / "dummy"


def stage_from_dir(source: Path, folder: Path, names: Iterable[str]) -> dict[str, Path]:
    """Copy ``source/<name>.parquet`` or ``source/<name>/*.parquet`` into ``.countylab/dummy/<name>/``."""
    staged: dict[str, Path] = {}
    for name in names:
        files = sorted((source / name).glob("*.parquet")) if (source / name).is_dir() else []
        if not files and (source / f"{name}.parquet").is_file():
            files = [source / f"{name}.parquet"]
        if not files:
            raise NotFound(
                f"模拟数据目录中没有数据集 {name}（需要 {name}.parquet 或 {name}/*.parquet）",
                f"no dummy data for {name} in {source} (expected {name}.parquet or {name}/*.parquet)",
                dataset=name,
            )
        dest = dummy_root(folder) / name
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, dest / f.name)
        staged[name] = dest
    return staged


def staged_dummy(folder: Path, names: Iterable[str]) -> dict[str, Path]:
    """Dummy data already in ``.countylab/dummy``; refuse a dataset that has none."""
    found: dict[str, Path] = {}
    for name in names:
        dest = dummy_root(folder) / name
        if not any(dest.glob("*.parquet")):
            raise NotFound(
                f"没有数据集 {name} 的模拟数据：请用 --url/--token 从实验室获取，或用 --dummy-dir 指定目录",
                f"no dummy data for {name}: fetch it from the lab (--url/--token) or give --dummy-dir",
                dataset=name,
            )
        found[name] = dest
    return found


def run_local(folder: Path, datasets: dict[str, Path], *, sandboxed: bool | None = None) -> LocalRun:
    """Run every action of ``folder``'s spec on ``datasets`` (dummy folders) in dependency order."""
    from countylab.sandbox import sandbox_available

    folder = folder.resolve()
    spec = read_spec(folder)
    order = validate_spec(spec, known_datasets=set(datasets), quota=UNLIMITED, folder=folder)
    use_sandbox = sandbox_available() if sandboxed is None else sandboxed
    if not use_sandbox:
        log.warning(
            "bubblewrap is not available: running WITHOUT the sandbox, on dummy data only / "
            "本机无 bubblewrap：不经沙箱运行，仅限模拟数据"
        )
    outbox = folder / LOCAL_DIR / "outbox"
    shutil.rmtree(outbox, ignore_errors=True)
    outbox.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="countylab-run-") as tmp:
        code = store_code(folder, Path(tmp), skip=frozenset({LOCAL_DIR}))  # as the server stores it
        ticket = AttemptTicket(
            job_id=0,
            attempt=1,
            project_id=0,
            actions=tuple(order),
            code_dir=code.path,
            outbox_dir=outbox,
            datasets=dict(datasets),
        )
        runner = SandboxedRunner() if use_sandbox else UnsandboxedRunner()
        outcome = run_attempt(ticket, runner, threading.Event())
    return LocalRun(outcome, use_sandbox, outbox)
