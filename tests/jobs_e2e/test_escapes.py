"""Escape attempts, each submitted as a real job to a demo lab: each ends in the expected state,
is recorded in the audit log, and leaves the lab unharmed.

The sandbox's own tests (tests/sandbox) pin each protection on a bare ``run_sandboxed``; these
check the same through the whole path a developer uses — upload, queue, dispatcher, sandbox,
outbox.  Probes that the sandbox should block print ``blocked …`` and exit 0; had they got
through they would print ``ESCAPED``.  Probes the sandbox must stop end ``killed``/``failed``.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.audit.log import verify
from countylab.lab import Lab
from countylab.sandbox.identity import job_passwd
from countylab.storage.jobs_models import JobAttempt
from countylab.storage.models import AuditEvent
from countylab_client._jobs import pack_folder
from tests.jobs_e2e.e2e_helpers import center, demo_lab_from, job_folder, project_id, user_id, wait_state
from tests.support import api_client, audit_actions

pytestmark = pytest.mark.usefixtures("bwrap")

TRY = """
import os, sys
def attempt(label, fn):
    try:
        fn()
    except Exception as exc:
        print('blocked', label, type(exc).__name__)
    else:
        print('ESCAPED', label)
"""


def probes(lab: Lab) -> dict[str, tuple[str, dict[str, str]]]:
    """name → (script, job_folder options)."""
    warehouse = lab.settings.warehouse_dir
    other = next((warehouse / "farmland_plots").rglob("*.parquet"))  # granted to crop-yield only
    return {
        "network": (
            TRY
            + textwrap.dedent("""
            import socket
            attempt('tcp', lambda: socket.create_connection(('127.0.0.1', 22), timeout=2))
            udp = lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('1.1.1.1', 53))
            attempt('udp', udp)
            attempt('dns', lambda: socket.getaddrinfo('example.com', 80))
            attempt('inet6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
            """),
            {},
        ),
        "passwd": ("print(open('/etc/passwd').read(), end='')\n", {}),
        "other_project": (
            TRY
            + textwrap.dedent(f"""
            attempt('mount', lambda: os.listdir('/data/farmland_plots'))
            attempt('host_path', lambda: open({str(other)!r}, 'rb').read(1))
            print(sorted(os.listdir('/data')))
            """),
            {"datasets": "[residents]"},
        ),
        "lab_data_dir": (
            TRY
            + textwrap.dedent(f"""
            attempt('db', lambda: open({str(lab.settings.data_dir / "countylab.db")!r}, 'rb').read(1))
            attempt('dir', lambda: os.listdir({str(lab.settings.data_dir)!r}))
            attempt('secret', lambda: open({str(lab.settings.data_dir / "secret.key")!r}).read())
            """),
            {},
        ),
        "host_proc": (
            "import os\nprint('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n",
            {},
        ),
        "write_outside": (
            TRY
            + textwrap.dedent("""
            for path in ('/work/planted.py', '/data/residents/planted.parquet', '/etc/planted', '/planted',
                         '/usr/planted', '/proc/sysrq-trigger'):
                attempt(path, lambda p=path: open(p, 'w').write('x'))
            """),
            {"datasets": "[residents]"},
        ),
        "fork_bomb": (
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            {"resources": "{cpu: 1, memory_mb: 256, time_s: 3}"},
        ),
        "memory_bomb": (
            "chunks = []\nwhile True:\n    chunks.append(b'x' * 10_000_000)\n",
            {"resources": "{cpu: 1, memory_mb: 128, time_s: 20}"},
        ),
        "never_exits": (
            "import time\nprint('started', flush=True)\ntime.sleep(1000)\n",
            {"resources": "{cpu: 1, memory_mb: 128, time_s: 2}"},
        ),
        "environment": ("import os\nfor k, v in sorted(os.environ.items()):\n    print(k, v)\n", {}),
    }


EXPECTED = {"fork_bomb": {"killed", "failed"}, "memory_bomb": {"killed"}, "never_exits": {"killed"}}


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.parquet")):
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def world(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    os.environ["COUNTYLAB_ESCAPE_PROBE"] = "probe-s3cr3t"  # must never reach a job
    root = tmp_path_factory.mktemp("escapes")
    lab = demo_lab_from(demo_template, root)
    before = _digest(lab.settings.warehouse_dir)
    center(lab).start()
    dev = api_client(lab, user_id(lab, "developer"))
    pid = project_id(lab, "elderly-care-demand")
    jobs = {}
    for name, (script, opts) in probes(lab).items():
        folder = job_folder(root / "code", name, script, **opts)
        resp = dev.post(
            f"/api/projects/{pid}/jobs",
            files={"file": ("c.tar.gz", pack_folder(folder))},
            data={"name": name},
        )
        assert resp.status_code == 201, resp.text
        jobs[name] = resp.json()["id"]
    states = {
        name: wait_state(lab, jid, {"succeeded", "failed", "killed"}, 120) for name, jid in jobs.items()
    }
    yield {"lab": lab, "dev": dev, "pid": pid, "jobs": jobs, "states": states, "before": before}
    del os.environ["COUNTYLAB_ESCAPE_PROBE"]
    lab.close()


def stdout(world: dict[str, object], name: str) -> str:
    jid = world["jobs"][name]  # type: ignore[index]
    files = world["lab"].jobs.outbox_files(jid)  # type: ignore[arg-type]
    return next(p for p in files if p.name == "stdout.txt").read_text()


@pytest.mark.parametrize("name", ["network", "other_project", "lab_data_dir", "write_outside"])
def test_blocked_probes(world, name):
    assert world["states"][name] == "succeeded", (name, stdout(world, name))
    text = stdout(world, name)
    assert "ESCAPED" not in text and text.count("blocked") >= 2, text


def test_passwd_is_the_sandbox_own(world):
    assert stdout(world, "passwd") == job_passwd().decode()  # the dedicated sandbox user, named nobody
    assert "root:" not in stdout(world, "passwd")


def test_other_projects_data_is_not_mounted(world):
    text = stdout(world, "other_project")
    assert "['residents']" in text and "farmland_plots" not in text.replace("blocked mount", "")


def test_host_processes_are_invisible(world):
    line = next(x for x in stdout(world, "host_proc").splitlines() if x.startswith("pids"))
    pids = eval(line[5:])  # noqa: S307 - a list of ints printed by our own probe
    assert len(pids) <= 4, pids  # bwrap's init, python; never the host's hundreds
    assert os.getpid() not in pids or len(pids) <= 4


def test_environment_does_not_leak(world):
    text = stdout(world, "environment")
    assert "probe-s3cr3t" not in text and "COUNTYLAB_ESCAPE_PROBE" not in text
    keys = {line.split(" ", 1)[0] for line in text.splitlines()}
    assert keys <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "PWD",
        "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "COUNTYLAB_DATA",
        "COUNTYLAB_OUTBOX",
        "COUNTYLAB_WORK",
        "PYTHONPATH",  # the output library's read-only folder (countylab.output)
    }, keys


@pytest.mark.parametrize("name", ["fork_bomb", "memory_bomb", "never_exits"])
def test_bombs_and_hangs_are_stopped(world, name):
    assert world["states"][name] in EXPECTED[name], world["states"]
    detail = world["dev"].get(f"/api/jobs/{world['jobs'][name]}").json()
    assert "usage" not in detail and detail["stopped_by"] is not None  # the lab's classification only
    with world["lab"].tx() as s:
        [attempt] = s.execute(select(JobAttempt).where(JobAttempt.job_id == world["jobs"][name])).scalars()
        assert sum(float(a.get("wall_s") or 0) for a in attempt.actions) < 25


def test_every_probe_is_in_the_audit_log(world):
    lab = world["lab"]
    with lab.tx() as s:
        events = s.execute(select(AuditEvent.action, AuditEvent.target)).all()
    for jid in world["jobs"].values():
        acts = {a for a, t in events if t == f"job:{jid}"}
        assert {"job.submit", "job.start", "job.finish"} <= acts, (jid, acts)


def _tar_with_symlink(target: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (
            (
                "countylab.yaml",
                b"version: 1\nactions:\n  main:\n    run: python main.py\n"
                b"    outputs: [{path: a.txt, kind: text}]\n",
            ),
            ("main.py", b"print(open('data.txt').read())\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("data.txt")
        link.type, link.linkname = tarfile.SYMTYPE, target
        tar.addfile(link)
    return buf.getvalue()


def test_symlink_in_submitted_folder_is_refused(world, tmp_path):
    lab, dev, pid = world["lab"], world["dev"], world["pid"]
    before = len(audit_actions(lab))
    secret = str(lab.settings.data_dir / "secret.key")
    resp = dev.post(f"/api/projects/{pid}/jobs", files={"file": ("c.tar.gz", _tar_with_symlink(secret))})
    assert resp.status_code == 403 and resp.json()["error"]["details"]["reason"] == "symlink", resp.text
    assert ("permission.denied", "developer", "denied") in audit_actions(lab)[before:]
    folder = job_folder(tmp_path, "linked", "print(1)\n")
    (folder / "data.txt").symlink_to(secret)
    with pytest.raises(Exception, match="symlink"):
        pack_folder(folder)  # the client refuses before sending
    assert not any((lab.settings.data_dir / "jobs" / "code" / str(pid)).glob("*/data.txt"))


def test_lab_is_unharmed(world, tmp_path):
    lab: Lab = world["lab"]  # type: ignore[assignment]
    assert _digest(lab.settings.warehouse_dir) == world["before"]
    with lab.tx() as s:
        assert verify(s).ok
    dev: TestClient = world["dev"]  # type: ignore[assignment]
    folder = job_folder(tmp_path, "after", "print('still fine')\n")
    job = dev.post(
        f"/api/projects/{world['pid']}/jobs", files={"file": ("c.tar.gz", pack_folder(folder))}
    ).json()
    assert wait_state(lab, job["id"], {"succeeded", "failed", "killed"}) == "succeeded"
