"""Run one job inside the sandbox (or, on a laptop without bubblewrap, plainly with a warning).

Layers, outermost first: a per-job cgroup (memory, pids, CPU) joined before the job starts; rlimits
(address space, CPU, file size, no core dumps, open files); bubblewrap with every namespace,
uid/gid 65534, no capabilities, no further user namespaces and an empty environment; the
seccomp filter of :mod:`countylab.sandbox.seccomp`; and the parent's watchdog.  Each run reports
in ``SandboxResult.protections`` which of these were really active on this host.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

from countylab.sandbox import bwrap as bw
from countylab.sandbox.cgroups import CgroupHost, JobCgroup, detect_cgroups
from countylab.sandbox.confine import Handshake, release
from countylab.sandbox.seccomp import data_fd, seccomp_bpf
from countylab.sandbox.spec import SandboxResult, SandboxSpec
from countylab.sandbox.supervise import (
    Outcome,
    classify,
    make_preexec,
    prepare_outbox,
    rlimits_for,
    supervise,
    write_logs,
)

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def sandbox_available() -> bool:
    """True when bubblewrap exists and can create unprivileged user namespaces here."""
    binary = bw.find_bwrap()
    if binary is None:
        return False
    probe = [binary, "--unshare-all", "--unshare-user", "--ro-bind", "/", "/", "--", "/bin/true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10, env={}, check=False).returncode == 0
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def default_cgroup_host() -> CgroupHost | None:
    """Detected once per process: the parent cgroup is reused by every job."""
    return detect_cgroups()


def _job_cgroup(host: CgroupHost | None, spec: SandboxSpec) -> JobCgroup | None:
    if host is None:
        return None
    name = f"job-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        return host.create_job(name, spec.memory_mb, spec.pids, spec.cpu_cores)
    except OSError as exc:
        log.warning("could not create the job's cgroup (%s): running without cgroup limits", exc)
        return None


def _result(spec: SandboxSpec, outcome: Outcome, protections: dict[str, bool]) -> SandboxResult:
    usage = outcome.usage
    cpu_s = usage.cpu_seconds if usage is not None and usage.cpu_seconds is not None else outcome.rusage_cpu_s
    stdout_path, stderr_path = write_logs(spec.outbox_dir, outcome.stdout.final(), outcome.stderr.final())
    peak = usage.memory_peak_bytes if usage is not None else None
    return SandboxResult(
        exit_code=outcome.exit_code,
        state=classify(outcome, spec, cpu_s),
        wall_s=outcome.wall_s,
        cpu_s=cpu_s,
        max_rss_mb=outcome.rusage_maxrss_mb,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        protections=protections,
        memory_peak_mb=peak / (1024 * 1024) if peak is not None else None,
        pids_peak=usage.pids_peak if usage is not None else None,
        pids_limit_hits=usage.pids_limit_hits if usage is not None else 0,
        stdout_truncated=outcome.stdout.truncated,
        stderr_truncated=outcome.stderr.truncated,
    )


def sandbox_argv(
    spec: SandboxSpec,
    binary: str,
    version: tuple[int, ...],
    runtime: bw.Runtime,
    handshake: Handshake,
    fds: list[int],
) -> list[str]:
    """The bubblewrap command line for ``spec``; the memfds it passes are appended to ``fds``
    (the caller closes them once the child has started).  Shared by jobs and model workers."""
    seccomp_fd = data_fd(seccomp_bpf(), "seccomp")
    fds.append(seccomp_fd)
    etc_fds = {
        name: data_fd(content, name)
        for name, content in (("passwd", bw.PASSWD), ("group", bw.GROUP), ("hosts", bw.HOSTS))
    }
    fds += etc_fds.values()
    pyvenv_fd = data_fd(runtime.pyvenv_cfg, "pyvenv") if runtime.pyvenv_cfg is not None else None
    if pyvenv_fd is not None:
        fds.append(pyvenv_fd)
    return bw.build_argv(
        spec,
        bwrap=binary,
        version=version,
        seccomp_fd=seccomp_fd,
        etc_fds=etc_fds,
        runtime=runtime,
        pyvenv_fd=pyvenv_fd,
        gpu_lib_dirs=bw.host_gpu_library_dirs() if spec.gpu_devices else (),
        block_fd=handshake.block_r,
        status_fd=handshake.status_w,
    )


def run_sandboxed(
    spec: SandboxSpec,
    *,
    cgroups: CgroupHost | None | Literal["auto"] = "auto",
    cancel: threading.Event | None = None,
) -> SandboxResult:
    """Run ``spec.command`` in the sandbox and wait for it (at most ``spec.wall_seconds``).

    ``cgroups``: "auto" uses the host's detected cgroups; pass a host to choose, or None for none.
    ``cancel``: set it from another thread to kill the run (state ``cancelled``).
    """
    binary = bw.find_bwrap()
    if binary is None:
        from countylab.errors import NotFound

        raise NotFound(
            "本机未安装 bubblewrap，无法隔离运行作业", "bubblewrap is not installed: cannot sandbox jobs"
        )
    version = bw.bwrap_version(binary)
    bw.check_dataset_names(spec.datasets)
    runtime = bw.python_runtime(spec.python_prefix)
    prepare_outbox(spec.outbox_dir)
    host = default_cgroup_host() if cgroups == "auto" else cgroups
    cgroup = _job_cgroup(host, spec)
    fds: list[int] = []
    handshake = Handshake.open()
    try:
        argv = sandbox_argv(spec, binary, version, runtime, handshake, fds)
        controllers = cgroup.controllers if cgroup is not None else frozenset()
        started = time.monotonic()
        proc = subprocess.Popen(  # noqa: S603 -- argv built above, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={},
            pass_fds=[*fds, *handshake.child_fds()],
            start_new_session=True,
            close_fds=True,
        )
        handshake.spawned()
        for fd in fds:
            os.close(fd)
        fds = []
        release(handshake, proc, cgroup, rlimits_for(spec), timeout_s=min(30.0, spec.wall_seconds))
        outcome = supervise(proc, spec, cgroup, started, cancel)
    finally:
        for fd in fds:
            os.close(fd)
        handshake.close()
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
    protections = {
        "namespaces": True,
        "no_network": True,
        "uid_nobody": True,
        "cap_drop": True,
        "disable_userns": bw.supports_disable_userns(version),
        "seccomp": True,
        "empty_env": True,
        "rlimits": True,
        "wall_watchdog": True,
        "tmpfs_size_cap": bw.supports_tmpfs_size(version),
        "cgroup_memory": "memory" in controllers,
        "cgroup_pids": "pids" in controllers,
        "cgroup_cpu": "cpu" in controllers,
    }
    return _result(spec, outcome, protections)


def run_unsandboxed(spec: SandboxSpec, *, cancel: threading.Event | None = None) -> SandboxResult:
    """Laptop fallback for dummy data only: a plain subprocess with rlimits and the watchdog.

    The job sees the host as its user does; ``COUNTYLAB_DATA``/``_OUTBOX``/``_WORK`` point at the
    host folders (inside the sandbox they are /data, /outbox and /work).
    """
    log.warning(
        "running a job WITHOUT the sandbox (no bubblewrap): no isolation, use dummy data only / "
        "未经沙箱隔离运行作业，仅可使用模拟数据"
    )
    bw.check_dataset_names(spec.datasets)
    runtime = bw.python_runtime(spec.python_prefix)
    prepare_outbox(spec.outbox_dir)
    with tempfile.TemporaryDirectory(prefix="countylab-job-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        for name, path in spec.datasets.items():
            (data_dir / name).symlink_to(path.resolve())
        env = bw.job_environment(spec, runtime.host_bin_dir)
        env.update(
            HOME=tmp,
            TMPDIR=tmp,
            COUNTYLAB_DATA=str(data_dir),
            COUNTYLAB_OUTBOX=str(spec.outbox_dir),
            COUNTYLAB_WORK=str(spec.code_dir),
        )
        started = time.monotonic()
        proc = subprocess.Popen(  # noqa: S603 -- the job's own argv, no shell
            spec.command,
            cwd=spec.code_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
            close_fds=True,
            preexec_fn=make_preexec(rlimits_for(spec)),
        )
        outcome = supervise(proc, spec, None, started, cancel)
    protections = dict.fromkeys(
        (
            "namespaces",
            "no_network",
            "uid_nobody",
            "cap_drop",
            "disable_userns",
            "seccomp",
            "tmpfs_size_cap",
            "cgroup_memory",
            "cgroup_pids",
            "cgroup_cpu",
        ),
        False,
    )
    protections.update(empty_env=True, rlimits=True, wall_watchdog=True)
    return _result(spec, outcome, protections)
