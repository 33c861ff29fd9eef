"""Argument building, code copying, cgroup detection and the fallbacks (mostly without bwrap)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

import countylab.sandbox as sandbox_pkg
from countylab.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from countylab.sandbox import (
    CgroupUsage,
    RunState,
    SandboxSpec,
    copy_code_tree,
    detect_cgroups,
    gpu_bind_args,
    run_sandboxed,
    run_unsandboxed,
)
from countylab.sandbox.bwrap import PASSWD, build_argv, check_dataset_names, python_runtime
from countylab.sandbox.identity import SandboxIdentity
from countylab.sandbox.runner import launch_identity
from countylab.sandbox.seccomp import allowed_syscalls, seccomp_bpf
from countylab.sandbox.syscalls import NEVER
from tests.sandbox.sandbox_helpers import needs_bwrap, out


def _spec(tmp_path: Path, **kw: object) -> SandboxSpec:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    args: dict[str, object] = dict(
        command=["python", "-c", "pass"],
        code_dir=code,
        outbox_dir=tmp_path / "outbox",
        datasets={},
        cpu_seconds=5,
        memory_mb=128,
        wall_seconds=10,
    )
    args.update(kw)
    return SandboxSpec(**args)  # type: ignore[arg-type]


def test_public_names_are_pinned():
    assert sorted(sandbox_pkg.__all__) == [
        "CgroupHost", "CgroupUsage", "JobCgroup", "RunState", "SandboxResult", "SandboxSpec",
        "copy_code_tree", "detect_cgroups", "gpu_bind_args", "run_sandboxed", "run_unsandboxed",
        "sandbox_available",
    ]  # fmt: skip


def test_gpu_arguments(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (dev / name).touch()
    args = gpu_bind_args(["1", str(dev / "nvidia0")], dev)
    pairs = [tuple(args[i : i + 3]) for i in range(0, len(args), 3)]
    assert pairs == [
        ("--dev-bind", str(dev / "nvidia1"), "/dev/nvidia1"),
        ("--dev-bind", str(dev / "nvidia0"), "/dev/nvidia0"),
        ("--dev-bind", str(dev / "nvidiactl"), "/dev/nvidiactl"),
        ("--dev-bind", str(dev / "nvidia-uvm"), "/dev/nvidia-uvm"),
    ]
    assert gpu_bind_args([], dev) == []
    with pytest.raises(NotFound):
        gpu_bind_args(["7"], dev)
    with pytest.raises(NotFound):
        gpu_bind_args(["/dev/sda"], dev)


def test_argv_has_every_protection_and_only_granted_binds(tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "nvidia0").touch()
    spec = _spec(tmp_path, datasets={"people": ds}, gpu_devices=["0"], env={"SEED": "1"})
    argv = build_argv(
        spec, bwrap="/usr/bin/bwrap", version=(0, 8, 0), seccomp_fd=9, etc_fds={"passwd": 10},
        runtime=python_runtime(None), pyvenv_fd=11, dev_dir=dev,
    )  # fmt: skip
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--uid") + 1] == "65534" and argv[argv.index("--gid") + 1] == "65534"
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--seccomp") + 1] == "9"
    assert ["--ro-bind", str(ds), "/data/people"] == argv[
        argv.index("/data/people") - 2 : argv.index("/data/people") + 1
    ]
    assert ["--dev-bind", str(dev / "nvidia0"), "/dev/nvidia0"] == argv[
        argv.index("/dev/nvidia0") - 2 : argv.index("/dev/nvidia0") + 1
    ]
    tmp_at = next(i for i, a in enumerate(argv) if a == "--tmpfs" and argv[i + 1] == "/tmp")
    assert argv[tmp_at - 2 : tmp_at] == ["--size", str(256 * 1024 * 1024)]
    shm_at = argv.index("/dev/shm")
    assert argv[shm_at - 3 : shm_at] == ["--size", str(64 * 1024 * 1024), "--tmpfs"]
    assert argv[argv.index("/proc/sys") - 1 : argv.index("/proc/sys") + 3] == [
        "--tmpfs",
        "/proc/sys",
        "--remount-ro",
        "/proc/sys",
    ]  # GPU jobs get procfs, never its sysctls
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert not any(b.startswith(("/home", "/etc/passwd", "/var", "/srv")) or b == "/" for b in binds)
    assert argv[argv.index("--bind") + 2] == "/outbox"
    setenvs = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert setenvs["SEED"] == "1" and setenvs["HOME"] == "/tmp" and setenvs["OMP_NUM_THREADS"] == "1"
    assert argv.index("--clearenv") < argv.index("--setenv")
    root_ro = next(i for i, a in enumerate(argv) if a == "--remount-ro" and argv[i + 1] == "/")
    assert root_ro > argv.index("/outbox")
    assert argv[-4:] == ["--", "python", "-c", "pass"]
    old = build_argv(
        spec,
        bwrap="bwrap",
        version=(0, 6, 0),
        seccomp_fd=9,
        etc_fds={},
        runtime=python_runtime(None),
        dev_dir=dev,
    )
    assert "--disable-userns" not in old and "--size" not in old  # seccomp still denies user namespaces


def test_argv_as_root_drops_to_the_dedicated_user_without_a_user_namespace(tmp_path):
    who = SandboxIdentity(user="countylab-sandbox", uid=4321, gid=4322)
    spec = _spec(tmp_path)
    argv = build_argv(
        spec, bwrap="bwrap", version=(0, 8, 0), seccomp_fd=9, etc_fds={}, runtime=python_runtime(None),
        identity=who,
    )  # fmt: skip
    assert "--unshare-user" not in argv and "--unshare-all" not in argv and "--uid" not in argv
    for flag in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--new-session"):
        assert flag in argv
    caps = [argv[i + 1] for i, a in enumerate(argv) if a == "--cap-add"]
    assert sorted(caps) == ["CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID"]
    tail = argv[argv.index("--") + 1 :]
    assert tail[0] == "/usr/bin/setpriv" and tail[-3:] == ["python", "-c", "pass"]
    # nothing reaches setpriv (still uid 0 with CAP_SETUID) through the environment
    assert "--setenv" not in argv and "--clearenv" in argv
    env_at = tail.index("/usr/bin/env")
    assert tail[env_at : env_at + 3] == ["/usr/bin/env", "-i", "--"] and tail[env_at - 1] == "--"
    assert "HOME=/tmp" in tail[env_at:] and tail.index("--no-new-privs") < env_at
    for opt in ("--reuid=4321", "--regid=4322", "--clear-groups", "--bounding-set=-all", "--no-new-privs"):
        assert opt in tail
    # no procfs for CPU jobs: /proc is an empty read-only folder (no mountinfo, no /proc/sys)
    assert "--proc" not in argv and argv[argv.index("/proc") - 1] == "--tmpfs"
    # every parent folder bubblewrap would create 0700 is made 0755 first
    dirs = [argv[i + 1] for i, a in enumerate(argv) if a == "--dir"]
    assert "/usr" in dirs and "/etc" in dirs


@pytest.mark.needs("virtualenv")
def test_runtime_of_a_virtualenv_moves_it_to_opt_venv():
    rt = python_runtime(Path(sys.prefix))
    assert (Path(sys.prefix).resolve(), Path("/opt/venv")) in rt.binds
    assert (
        rt.pyvenv_cfg is not None
        and f"home = {Path(sys.base_prefix).resolve()}/bin".encode() in rt.pyvenv_cfg
    )


def test_bad_dataset_names_and_env_are_refused(tmp_path):
    for name in ("../x", "a/b", "..", ""):
        with pytest.raises(ValidationFailed):
            check_dataset_names({name: tmp_path})
    with pytest.raises(NotFound):
        check_dataset_names({"gone": tmp_path / "missing"})
    spec = _spec(tmp_path, env={"BAD=NAME": "x"})
    with pytest.raises(ValidationFailed):
        build_argv(
            spec, bwrap="bwrap", version=(0, 8, 0), seccomp_fd=3, etc_fds={}, runtime=python_runtime(None)
        )


def test_seccomp_filter_compiles_to_bpf():
    bpf = seccomp_bpf()
    assert len(bpf) > 100 and len(bpf) % 8 == 0
    escapes = {"ptrace", "mount", "unshare", "setns", "bpf", "keyctl", "perf_event_open", "userfaultfd"}
    assert escapes <= NEVER and not (escapes & allowed_syscalls())
    assert {"read", "openat", "mmap", "futex", "clone", "execve", "exit_group"} <= allowed_syscalls()


def test_copy_code_tree_keeps_inner_links_and_refuses_escapes(tmp_path):
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "main.py").write_text("print(1)")
    (src / "pkg" / "util.py").write_text("x = 1")
    (src / "pkg" / "alias.py").symlink_to("util.py")
    copy_code_tree(src, tmp_path / "dst")
    assert (tmp_path / "dst" / "main.py").read_text() == "print(1)"
    assert os.readlink(tmp_path / "dst" / "pkg" / "alias.py") == "util.py"

    secret = tmp_path / "secret.txt"
    secret.write_text("lab secret")
    for i, target in enumerate([str(secret), "../../secret.txt", "pkg/../../secret.txt"]):
        bad = tmp_path / f"bad{i}"
        bad.mkdir()
        (bad / "leak.txt").symlink_to(target)
        with pytest.raises(PermissionDenied) as info:
            copy_code_tree(bad, tmp_path / f"badcopy{i}")
        assert info.value.details["reason"] == "symlink_escape"
        assert not (tmp_path / f"badcopy{i}").exists()
    fifo_dir = tmp_path / "fifo"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "pipe")
    with pytest.raises(PermissionDenied):
        copy_code_tree(fifo_dir, tmp_path / "fifocopy")


def test_no_cgroups_logs_a_warning(tmp_path, caplog):
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\n")
    with caplog.at_level(logging.WARNING, logger="countylab.sandbox.cgroups"):
        assert detect_cgroups(mounts_file=mounts) is None
    assert "no writable cgroup" in caplog.text


@pytest.mark.needs("cgroups")
def test_real_cgroup_job_lifecycle():
    host = detect_cgroups()
    assert host is not None
    job = host.create_job(f"test-{os.getpid()}", memory_mb=64, pids=8, cpu_cores=0.5)
    try:
        assert {"memory", "pids"} <= job.controllers
        usage = job.usage()
        assert usage.oom_kills == 0 and usage.pids_limit_hits == 0
    finally:
        job.kill_all()
        job.remove()
    assert all(not Path(f).parent.exists() for f in job.procs_files())


def test_outbox_must_be_fresh(tmp_path):
    spec = _spec(tmp_path)
    spec.outbox_dir.mkdir()
    (spec.outbox_dir / "old.txt").write_text("previous run")
    with pytest.raises(Conflict):
        run_unsandboxed(spec)


def test_unsandboxed_fallback_runs_with_a_clean_env(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("COUNTYLAB_TEST_SECRET", "s3cr3t")
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "a.txt").write_text("dummy")
    code = (
        "import os; print(open(os.environ['COUNTYLAB_DATA'] + '/ds/a.txt').read(),"
        " 'COUNTYLAB_TEST_SECRET' in os.environ)"
    )
    spec = _spec(tmp_path, command=["python", "-c", code], datasets={"ds": ds})
    with caplog.at_level(logging.WARNING):
        result = run_unsandboxed(spec)
    assert "WITHOUT the sandbox" in caplog.text
    assert result.state is RunState.SUCCEEDED and out(result).strip() == "dummy False"
    assert result.protections["seccomp"] is False and result.protections["wall_watchdog"] is True


@pytest.mark.sandbox
@needs_bwrap
def test_sandbox_without_cgroups_reports_it(tmp_path):
    code = "import pwd, os; print(open('/etc/passwd').read() == PASSWD, pwd.getpwuid(os.getuid()).pw_name)"
    who = launch_identity(_spec(tmp_path))
    passwd = who.passwd() if who is not None else PASSWD
    spec = _spec(tmp_path, command=["python", "-c", code.replace("PASSWD", repr(passwd.decode()))])
    result = run_sandboxed(spec, cgroups=None)
    assert result.state is RunState.SUCCEEDED
    assert out(result).strip() == "True nobody"
    assert not any(result.protections[k] for k in ("cgroup_memory", "cgroup_pids", "cgroup_cpu"))
    assert result.protections["seccomp"] and result.protections["namespaces"]


def test_gpu_driver_library_dirs_from_ldconfig():
    from countylab.sandbox.bwrap import gpu_library_dirs

    text = (
        "3 libs found in cache `/etc/ld.so.cache'\n"
        "\tlibcuda.so.1 (libc6,x86-64) => /usr/local/nvidia/lib64/libcuda.so.1\n"
        "\tlibnvidia-ml.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1\n"
        "\tlibcuda.so.1 (libc6,x86-64) => /lib/libcuda.so.1\n"
        "\tlibc.so.6 (libc6,x86-64) => /opt/odd/libc.so.6\n"
    )
    links = {"/lib": "/usr/lib"}
    assert gpu_library_dirs(text, lambda p: links.get(p, p)) == ["/usr/local/nvidia/lib64"]


class _RefusingCgroup:
    """A job cgroup that cannot take members (as when cgroup.procs is not writable)."""

    controllers = frozenset({"memory", "pids", "cpu"})

    def __init__(self) -> None:
        self.killed = False

    def procs_files(self) -> list[str]:
        return []

    def add(self, pid: int) -> None:
        raise PermissionError(13, "cgroup.procs not writable")

    def set_io(self, devices: list[tuple[int, int]], bps: int, iops: int) -> bool:
        return False

    def usage(self) -> CgroupUsage:
        return CgroupUsage(None, None, None, 0, 0)

    def kill_all(self) -> None:
        self.killed = True

    def remove(self) -> None:
        pass


class _RefusingHost:
    version = "fake"
    controllers = frozenset({"memory", "pids", "cpu"})

    def __init__(self) -> None:
        self.job = _RefusingCgroup()

    def create_job(self, name: str, memory_mb: int, pids: int, cpu_cores: float) -> _RefusingCgroup:
        return self.job


@pytest.mark.sandbox
@needs_bwrap
def test_job_never_runs_unconfined(tmp_path):
    marker = tmp_path / "outbox" / "ran.txt"
    spec = _spec(tmp_path, command=["python", "-c", "open('/outbox/ran.txt', 'w').write('ran')"])
    host = _RefusingHost()
    with pytest.raises(PermissionError):
        run_sandboxed(spec, cgroups=host)
    assert host.job.killed and not marker.exists()


@pytest.mark.sandbox
@needs_bwrap
def test_rlimits_reach_the_job(tmp_path):
    code = (
        "import resource as r; print([r.getrlimit(x) for x in"
        " (r.RLIMIT_CPU, r.RLIMIT_FSIZE, r.RLIMIT_CORE, r.RLIMIT_NOFILE, r.RLIMIT_AS)])"
    )
    spec = _spec(
        tmp_path, command=["python", "-c", code], cpu_seconds=7, tmpfs_mb=8, open_files=100, memory_mb=64
    )
    result = run_sandboxed(spec)
    mb = 1024 * 1024
    expected = [(7, 8), (8 * mb, 8 * mb), (0, 0), (100, 100), (1280 * mb, 1280 * mb)]
    assert out(result).strip() == str(expected)


def test_argv_for_a_service_user_goes_through_unshare_with_a_subordinate_uid(tmp_path):
    from countylab.sandbox.identity import subuid_identity

    who = subuid_identity((300000, 300100))
    argv = build_argv(
        _spec(tmp_path), bwrap="/usr/bin/bwrap", version=(0, 8, 0), seccomp_fd=9, etc_fds={},
        runtime=python_runtime(None), identity=who,
    )  # fmt: skip
    assert argv[: argv.index("/usr/bin/bwrap")] == [
        "/usr/bin/unshare", "--map-user=0", "--map-group=0", "--map-users=300000,1000,1",
        "--map-groups=300100,1000,1", "--",
    ]  # fmt: skip
    tail = argv[argv.index("--", argv.index("/usr/bin/bwrap")) + 1 :]
    assert "--reuid=1000" in tail and "--regid=1000" in tail
    assert who.passwd() == b"nobody:x:1000:1000:nobody:/tmp:/usr/sbin/nologin\n"


def test_subordinate_ids_are_read_for_this_user_only(tmp_path, monkeypatch):
    import pwd

    from countylab.sandbox import identity

    me = pwd.getpwuid(os.getuid()).pw_name
    (tmp_path / "subuid").write_text(f"someone:100000:65536\n{me}:200000:65536\n")
    (tmp_path / "subgid").write_text(f"{me}:210000:65536\n")
    monkeypatch.setattr(identity.os, "access", lambda path, mode: True)
    identity.subordinate_ids.cache_clear()
    try:
        assert identity.subordinate_ids(tmp_path) == (200000, 210000)
        (tmp_path / "subgid").write_text("someone:210000:65536\n")
        identity.subordinate_ids.cache_clear()
        assert identity.subordinate_ids(tmp_path) is None  # both ranges are needed
    finally:
        identity.subordinate_ids.cache_clear()


def test_cgroup_v2_falls_back_to_the_subtree_systemd_delegated(tmp_path):
    """A service user cannot write the v2 root; with Delegate=yes it owns its service's group."""
    from countylab.sandbox.cgroups import _try_v2

    mount = tmp_path / "cgroup"
    service = mount / "system.slice" / "countylab.service"
    (service / "main").mkdir(parents=True)
    (mount / "cgroup.controllers").write_text("cpu io memory pids\n")
    (mount / "cgroup.subtree_control").mkdir()  # the root refuses writes (EISDIR here, EACCES live)
    (service / "cgroup.controllers").write_text("cpu io memory pids\n")
    (service / "cgroup.subtree_control").write_text("")
    (service / "countylab").mkdir()
    (service / "countylab" / "cgroup.subtree_control").write_text("")
    proc_cgroup = tmp_path / "self-cgroup"
    proc_cgroup.write_text("0::/system.slice/countylab.service/main\n")
    host = _try_v2(mount, "countylab", proc_cgroup)
    assert host is not None and "io" in host.controllers
    assert (service / "cgroup.subtree_control").read_text() == "+memory +pids +cpu +io"
    job_dir = service / "countylab" / "job-1"
    job_dir.mkdir()
    (job_dir / "io.max").write_text("")
    from countylab.sandbox.cgroups import V2Job

    job = V2Job(job_dir, io=True)
    assert job.set_io([(254, 0)], 2 * 1024 * 1024, 100)
    assert (job_dir / "io.max").read_text() == "254:0 rbps=2097152 wbps=2097152 riops=100 wiops=100"


@pytest.mark.sandbox
@needs_bwrap
def test_stale_outbox_mounts_are_detached(tmp_path):
    """A lab that died mid-job leaves the outbox tmpfs mounted; the next start detaches it."""
    from countylab.sandbox.identity import launch_mode, sandbox_identity
    from countylab.sandbox.outbox import mount_outbox, unmount_stale

    if launch_mode() != "drop":
        pytest.fail("CI runs the sandbox tests as root")
    point = tmp_path / "outbox" / "7" / "attempt-1" / "main"
    point.mkdir(parents=True)
    mount_outbox(point, sandbox_identity(), 1024 * 1024, 10)
    assert os.path.ismount(point)
    assert unmount_stale(tmp_path / "outbox") == [point]
    assert not os.path.ismount(point)
    assert unmount_stale(tmp_path / "outbox") == []
