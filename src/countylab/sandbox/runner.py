"""Run one job inside the sandbox (or, on a laptop without bubblewrap, plainly with a warning).

Layers, outermost first: a per-job cgroup (memory, pids, CPU) joined before the job starts; rlimits
(address space, CPU, file size, no core dumps, open files); bubblewrap with every namespace, no
capabilities and an empty environment, the job running as the dedicated sandbox user
(:mod:`countylab.sandbox.identity`: never host root, never the lab's own user); the seccomp
allow-list of :mod:`countylab.sandbox.seccomp`; the outbox quota (:mod:`countylab.sandbox.outbox`);
and the parent's watchdog.  Each run reports in ``SandboxResult.protections`` which of these were
really active on this host, and in ``SandboxResult.security`` who the job ran as and what stopped it.
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

from countylab.errors import CountylabError
from countylab.sandbox import bwrap as bw
from countylab.sandbox import identity as ident
from countylab.sandbox import outbox as ob
from countylab.sandbox.cgroups import CgroupHost, JobCgroup, block_devices, detect_cgroups
from countylab.sandbox.confine import Handshake, release
from countylab.sandbox.seccomp import data_fd, seccomp_bpf
from countylab.sandbox.spec import RunState, SandboxResult, SandboxSpec
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
    """True when bubblewrap works here in the mode the lab would use.

    ``drop`` (root): bwrap builds the namespaces and ``setpriv`` drops to the sandbox user, which
    must exist (``scripts/system-deps.sh`` creates it).  ``subuid`` (a service user with a
    subordinate range): the same behind ``unshare``.  ``userns``: bwrap can create unprivileged
    user namespaces.
    """
    binary = bw.find_bwrap()
    if binary is None:
        return False
    mode = ident.launch_mode()
    if mode in ("drop", "subuid"):
        try:
            who = ident.job_identity()
        except CountylabError as exc:
            log.error("%s", exc.message_en)
            return False
        if who is None or not ident.setpriv_available():
            log.error("setpriv (util-linux) is missing: cannot drop jobs to the sandbox user")
            return False
        probe = [*who.launcher, binary, "--unshare-pid", "--unshare-net", "--cap-drop", "ALL"]
        probe += [arg for cap in ident.DROP_CAPS for arg in ("--cap-add", cap)]
        probe += ["--ro-bind", "/", "/", "--", *who.setpriv_argv(), "/bin/true"]
    else:
        probe = [binary, "--unshare-all", "--unshare-user", "--ro-bind", "/", "/", "--", "/bin/true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10, env={}, check=False).returncode == 0
    except OSError:
        return False


def launch_identity(spec: SandboxSpec) -> ident.SandboxIdentity | None:
    """The host identity the job switches to (``drop``/``subuid`` mode), or None (``userns``)."""
    return ident.job_identity(spec.sandbox_user)


def _give_back(who: ident.SandboxIdentity, outbox: Path) -> None:
    """``subuid`` mode: hand what the job wrote back to the service user before collecting it.

    Runs ``chown -R -P`` as root of a namespace mapping both ids (never following links), so the
    lab can read and remove every file, whatever modes the job set.
    """
    argv = [*who.launcher, "/usr/bin/chown", "-R", "-P", "-h", "0:0", str(outbox)]
    done = subprocess.run(argv, capture_output=True, timeout=60, env={}, check=False)  # noqa: S603
    if done.returncode != 0:
        log.warning("could not take back the outbox %s: %s", outbox, done.stderr.decode(errors="replace"))


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


def _limit_io(cgroup: JobCgroup | None, spec: SandboxSpec) -> bool:
    """Cap I/O on the disks the job reads from (its data and code), where the host allows."""
    if cgroup is None:
        return False
    devices = block_devices([spec.code_dir, *spec.datasets.values()])
    try:
        return cgroup.set_io(devices, spec.io_mbps * 1024 * 1024, spec.io_iops)
    except OSError as exc:
        log.warning("could not set the job's I/O limits (%s): running without them", exc)
        return False


def _result(
    spec: SandboxSpec,
    outcome: Outcome,
    protections: dict[str, bool],
    security: dict[str, object] | None = None,
    limit: str | None = None,
) -> SandboxResult:
    usage = outcome.usage
    cpu_s = usage.cpu_seconds if usage is not None and usage.cpu_seconds is not None else outcome.rusage_cpu_s
    stdout_path, stderr_path = write_logs(spec.outbox_dir, outcome.stdout.final(), outcome.stderr.final())
    peak = usage.memory_peak_bytes if usage is not None else None
    state = classify(outcome, spec, cpu_s)
    if limit is not None and state in (RunState.SUCCEEDED, RunState.FAILED):
        state = RunState.OUTBOX_QUOTA
    record = dict(security or {})
    record.update(seccomp_denied=state is RunState.SECCOMP_DENIED, limit=limit)
    return SandboxResult(
        exit_code=outcome.exit_code,
        state=state,
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
        limit=limit,
        security=record,
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
    (the caller closes them once the child has started).  Shared by jobs and model workers:
    both run as the dedicated sandbox user when the lab is root."""
    who = launch_identity(spec)
    seccomp_fd = data_fd(seccomp_bpf(), "seccomp")
    fds.append(seccomp_fd)
    passwd, group = (who.passwd(), who.group()) if who is not None else (bw.PASSWD, bw.GROUP)
    etc_fds = {
        name: data_fd(content, name)
        for name, content in (("passwd", passwd), ("group", group), ("hosts", bw.HOSTS))
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
        identity=who,
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
    who = launch_identity(spec)
    prepare_outbox(spec.outbox_dir)
    mounted = False
    if who is not None:  # the code and the granted datasets must be readable where they are mounted
        for path in (spec.code_dir, *spec.datasets.values()):
            ident.ensure_readable(path)
        if who.launcher:  # subuid: an unprivileged lab cannot mount; the quota is checked at the end
            spec.outbox_dir.chmod(0o777)  # below the 0700 data dir: only the job's uid gains by it
        else:
            ob.mount_outbox(spec.outbox_dir, who, spec.outbox_mb * 1024 * 1024, spec.outbox_files)
            mounted = True
    host = default_cgroup_host() if cgroups == "auto" else cgroups
    cgroup = None
    fds: list[int] = []
    try:
        handshake = Handshake.open()
    except BaseException:
        if mounted:
            ob.unmount(spec.outbox_dir)  # never leave the tmpfs behind
        raise
    try:
        cgroup = _job_cgroup(host, spec)
        io_limited = _limit_io(cgroup, spec)
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
        # every process of the job is dead: the outbox can be collected (and unmounted)
        if who is not None and who.launcher:
            _give_back(who, spec.outbox_dir)
        usage = ob.collect(
            spec.outbox_dir,
            mounted=mounted,
            max_bytes=spec.outbox_mb * 1024 * 1024,
            max_files=spec.outbox_files,
        )
    security: dict[str, object] = {
        "mode": ident.launch_mode() if who is not None else "userns",
        "host_uid": who.uid if who is not None else os.getuid(),
        "host_gid": who.gid if who is not None else os.getgid(),
        "seccomp": "allow-list",
    }
    protections = {
        "namespaces": True,
        "no_network": True,
        "uid_nobody": True,
        "dedicated_uid": who is not None,
        "outbox_quota": mounted,
        "cap_drop": True,
        # drop mode has no user namespace at all, and the seccomp filter kills any attempt to make one
        "disable_userns": who is not None or bw.supports_disable_userns(version),
        "seccomp": True,
        "empty_env": True,
        "rlimits": True,
        "wall_watchdog": True,
        "tmpfs_size_cap": bw.supports_tmpfs_size(version),
        "cgroup_memory": "memory" in controllers,
        "cgroup_pids": "pids" in controllers,
        "cgroup_cpu": "cpu" in controllers,
        "cgroup_io": io_limited,
    }
    return _result(spec, outcome, protections, security, usage.limit)


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
            "cgroup_io",
            "dedicated_uid",
            "outbox_quota",
        ),
        False,
    )
    protections.update(empty_env=True, rlimits=True, wall_watchdog=True)
    return _result(spec, outcome, protections)
