"""Build the bubblewrap command line: what the job can see, and nothing else.

The sandbox's filesystem is assembled from an empty root: read-only binds of the system
libraries and of one Python runtime, the granted datasets under ``/data``, the code at
``/work``, a writable ``/outbox``, a size-capped ``/tmp``, a fresh ``/proc`` (new pid namespace,
so host processes are invisible) and a minimal ``/dev``.  ``/etc`` holds only a synthetic
passwd/group/hosts (so ``getpwuid`` works for ``nobody``) and the loader cache.  No host home,
no lab data directory, no other project's files, no secrets.

GPUs: each requested ``/dev/nvidiaN`` plus the control nodes (``nvidiactl``, ``nvidia-uvm``,
``nvidia-uvm-tools``, ``nvidia-modeset``) are passed with ``--dev-bind``.  The driver's user-space
libraries (``libcuda.so``, ``libnvidia-*.so``) normally live in ``/usr/lib/x86_64-linux-gnu``,
which is bound already; CUDA wheels (PyTorch) bring the rest inside the virtualenv.  RLIMIT_AS is
not set for GPU jobs because the CUDA runtime reserves terabytes of virtual address space; the
memory cgroup still bounds host memory.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from countylab.errors import NotFound, ValidationFailed
from countylab.sandbox.identity import DROP_CAPS, SandboxIdentity
from countylab.sandbox.spec import SandboxSpec

SANDBOX_UID = 65534  # nobody
ENV = "/usr/bin/env"
SANDBOX_TMP = "/tmp"  # noqa: S108 -- the sandbox's own private tmpfs, not the host's /tmp
SYSTEM_DIRS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32", "/usr/bin", "/usr/share/zoneinfo")
TOP_LEVEL_LINKS = ("/lib", "/lib64", "/bin", "/sbin")
GPU_CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
_DATASET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PASSWD = b"nobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n"
GROUP = b"nogroup:x:65534:\n"
HOSTS = b"127.0.0.1 localhost\n::1 localhost\n"


@functools.lru_cache(maxsize=1)
def find_bwrap() -> str | None:
    return shutil.which("bwrap") or (str(Path("/usr/bin/bwrap")) if Path("/usr/bin/bwrap").exists() else None)


@functools.lru_cache(maxsize=4)
def bwrap_version(bwrap: str) -> tuple[int, ...]:
    """``bwrap --version`` as a tuple, e.g. (0, 8, 0); (0,) when unreadable."""
    out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10, check=False)
    match = re.search(r"(\d+(?:\.\d+)+)", out.stdout)
    return tuple(int(x) for x in match.group(1).split(".")) if match else (0,)


def supports_disable_userns(version: tuple[int, ...]) -> bool:
    return version >= (0, 8, 0)


def supports_tmpfs_size(version: tuple[int, ...]) -> bool:
    return version >= (0, 8, 0)


VENV_MOUNT = Path("/opt/venv")
# The output library (countylab.output) is bound read-only here and put on PYTHONPATH, so a
# job imports it whatever the install (an editable install's source tree is not in the sandbox).
OUTPUT_LIB_MOUNT = Path("/opt/countylab-lib")
OUTPUT_LIB_HOST = Path(__file__).resolve().parents[1] / "output"
_RESERVED = (
    Path("/work"),
    Path("/outbox"),
    Path("/data"),
    Path(SANDBOX_TMP),
    Path("/proc"),
    Path("/dev"),
    Path("/etc"),
    VENV_MOUNT,
)


@dataclass(frozen=True)
class Runtime:
    """The Python runtime a job runs with.

    The base installation is bound at its own path (its interpreter finds ``libpython`` through
    an absolute RPATH); a virtualenv is bound at ``/opt/venv`` with a rewritten ``pyvenv.cfg``,
    because the lab's own venv may live under ``/work``, where the job's code goes.  Console
    scripts in the venv keep host shebangs, so jobs call ``python -m tool``.
    """

    bin_dir: Path  # inside the sandbox, first on PATH
    binds: tuple[tuple[Path, Path], ...]  # (host path, sandbox path), read-only
    pyvenv_cfg: bytes | None  # replaces /opt/venv/pyvenv.cfg when a venv is used
    host_bin_dir: Path  # the same bin folder on the host (for the unsandboxed fallback)


def python_runtime(prefix: Path | None) -> Runtime:
    """Resolve ``prefix`` (a venv or an installation; default the lab's own) into binds."""
    if prefix is None:
        venv, base = Path(sys.prefix), Path(sys.base_prefix)
    else:
        venv = base = prefix
        cfg = prefix / "pyvenv.cfg"
        if cfg.exists():
            for line in cfg.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home":
                    base = Path(value.strip()).parent
    if not (venv / "bin").is_dir() or not (base / "bin").is_dir():
        raise NotFound(f"找不到 Python 运行环境：{venv}", f"Python runtime not found: {venv}", path=str(venv))
    base = base.resolve()
    if any(base == r or base.is_relative_to(r) for r in _RESERVED):
        raise ValidationFailed(
            f"Python 安装位置与沙箱保留路径冲突：{base}",
            f"the Python installation lies under a path the sandbox reserves: {base}",
            path=str(base),
            reason="reserved_path",
        )
    binds: list[tuple[Path, Path]] = [(base, base)]
    if venv.resolve() == base:
        return Runtime(bin_dir=base / "bin", binds=tuple(binds), pyvenv_cfg=None, host_bin_dir=base / "bin")
    binds.append((venv.resolve(), VENV_MOUNT))
    cfg_text = f"home = {base / 'bin'}\ninclude-system-site-packages = false\n"
    return Runtime(
        bin_dir=VENV_MOUNT / "bin",
        binds=tuple(binds),
        pyvenv_cfg=cfg_text.encode(),
        host_bin_dir=venv / "bin",
    )


def gpu_bind_args(devices: Sequence[str], dev_dir: Path = Path("/dev")) -> list[str]:
    """``--dev-bind`` arguments for the requested GPUs and the NVIDIA control nodes present."""
    if not devices:
        return []
    args: list[str] = []
    for dev in devices:
        name = Path(dev).name if dev.startswith("/") else f"nvidia{dev}"
        if not re.fullmatch(r"nvidia\d+", name) or not (dev_dir / name).exists():
            raise NotFound(f"找不到 GPU 设备：{dev}", f"GPU device not found: {dev}", device=dev)
        args += ["--dev-bind", str(dev_dir / name), f"/dev/{name}"]
    for name in GPU_CONTROL_NODES:
        if (dev_dir / name).exists():
            args += ["--dev-bind", str(dev_dir / name), f"/dev/{name}"]
    caps = dev_dir / "nvidia-caps"
    if caps.is_dir():
        args += ["--dev-bind", str(caps), "/dev/nvidia-caps"]
    return args


GPU_LIBRARIES = ("libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libnvidia-nvvm.so")


def gpu_library_dirs(ldconfig_p: str, resolve: Callable[[str], str] = os.path.realpath) -> list[str]:
    """Folders holding the NVIDIA driver libraries, from ``ldconfig -p`` output.

    Usually ``/usr/lib/x86_64-linux-gnu`` (bound anyway); container hosts often use
    ``/usr/local/nvidia/lib64``, which must then be bound too (the loader cache points there).
    Folders are resolved (``/lib`` is ``/usr/lib`` on merged-/usr hosts) so none is bound twice.
    """
    dirs: list[str] = []
    for line in ldconfig_p.splitlines():
        name, _, target = line.strip().partition(" => ")
        if target and name.startswith(GPU_LIBRARIES):
            folder = resolve(str(Path(target).parent))
            if folder not in dirs and not any(folder.startswith(d + "/") or folder == d for d in SYSTEM_DIRS):
                dirs.append(folder)
    return dirs


@functools.lru_cache(maxsize=1)
def host_gpu_library_dirs() -> tuple[str, ...]:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        text = subprocess.run(
            [ldconfig, "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return ()
    return tuple(gpu_library_dirs(text))


def job_environment(spec: SandboxSpec, bin_dir: Path) -> dict[str, str]:
    """The whole environment of the job: a few fixed variables plus ``spec.env``."""
    threads = str(spec.threads)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": SANDBOX_TMP,
        "TMPDIR": SANDBOX_TMP,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "COUNTYLAB_DATA": "/data",
        "COUNTYLAB_OUTBOX": "/outbox",
        "COUNTYLAB_WORK": "/work",
        "PYTHONPATH": str(OUTPUT_LIB_MOUNT),
    }
    for key, value in spec.env.items():
        if not _ENV_NAME.match(key) or "\0" in value:
            raise ValidationFailed("环境变量名无效", "invalid environment variable", column=key, reason="env")
        env[key] = value
    return env


def check_dataset_names(datasets: dict[str, Path]) -> None:
    for name, path in datasets.items():
        if not _DATASET_NAME.match(name) or name in (".", ".."):
            raise ValidationFailed(
                f"数据集名称无效：{name}", f"invalid dataset name: {name}", column=name, reason="name"
            )
        if not path.exists():
            raise NotFound(f"找不到数据集文件：{name}", f"dataset files not found: {name}", dataset=name)


def _parent_dirs(argv: Sequence[str]) -> list[str]:
    """Every ancestor of a mount destination in ``argv``, shallowest first.

    bubblewrap creates missing parents itself, but as root it makes them mode 0700, which the
    unprivileged sandbox user could not cross; so they are created here with 0755 first.
    """
    dests: list[str] = []
    two = {"--ro-bind", "--bind", "--dev-bind", "--ro-bind-data", "--symlink"}
    for i, arg in enumerate(argv):
        if arg in two and i + 2 < len(argv):
            dests.append(argv[i + 2])
        elif arg in {"--tmpfs", "--dir", "--proc", "--dev"} and i + 1 < len(argv):
            dests.append(argv[i + 1])
    parents: list[str] = []
    for dest in dests:
        for parent in reversed(Path(dest).parents):
            text = str(parent)
            if text != "/" and text not in parents:
                parents.append(text)
    return sorted(parents, key=lambda p: p.count("/"))


def _proc_args(spec: SandboxSpec) -> list[str]:
    """No procfs for CPU jobs: ``/proc`` is an empty read-only folder.

    procfs is where a job would read mountinfo (the host paths behind every bind), sysctls
    (``/proc/sys``), and a large kernel surface; the Python data stack runs without it.  GPU
    jobs need procfs (the NVIDIA user-space driver reads ``/proc/driver/nvidia``): they get a
    fresh one with ``/proc/sys`` replaced by an empty read-only tmpfs.
    """
    if spec.gpu_devices:
        return ["--proc", "/proc", "--perms", "0555", "--tmpfs", "/proc/sys", "--remount-ro", "/proc/sys"]
    return ["--perms", "0555", "--tmpfs", "/proc", "--remount-ro", "/proc"]


def build_argv(
    spec: SandboxSpec,
    *,
    bwrap: str,
    version: tuple[int, ...],
    seccomp_fd: int,
    etc_fds: dict[str, int],
    runtime: Runtime,
    pyvenv_fd: int | None = None,
    gpu_lib_dirs: Sequence[str] = (),
    block_fd: int | None = None,
    status_fd: int | None = None,
    dev_dir: Path = Path("/dev"),
    exists: Callable[[str], bool] = lambda p: Path(p).exists(),
    identity: SandboxIdentity | None = None,
) -> list[str]:
    """The full ``bwrap ... -- command`` argv.  Pure apart from ``exists`` (injectable for tests).

    ``identity`` (the lab runs as root): no user namespace; bwrap keeps only the capabilities
    ``setpriv`` needs to switch to that host uid/gid, and ``setpriv`` drops them all before the
    job's command runs (see :mod:`countylab.sandbox.identity`).  ``None``: a user namespace
    with uid 65534 inside, mapped to the invoking user (unprivileged labs, dummy data).
    """
    if identity is None:
        argv = [bwrap, "--unshare-all", "--unshare-user"]
        argv += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        if supports_disable_userns(version):
            argv.append("--disable-userns")
        argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    else:  # ``subuid`` mode: the launcher (unshare) makes bwrap root of a mapped user namespace
        argv = [*identity.launcher, bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        argv += ["--unshare-cgroup-try"]
        argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        for cap in DROP_CAPS:
            argv += ["--cap-add", cap]
    argv += ["--hostname", "sandbox", "--seccomp", str(seccomp_fd)]
    if block_fd is not None and status_fd is not None:  # see countylab.sandbox.confine
        argv += ["--block-fd", str(block_fd), "--json-status-fd", str(status_fd)]
    mounts: list[str] = []
    for d in SYSTEM_DIRS:
        if exists(d):
            mounts += ["--ro-bind", d, d]
    for link in TOP_LEVEL_LINKS:
        target = Path(link).resolve()
        if target != Path(link) and exists(str(target)):
            mounts += ["--symlink", str(target), link]  # merged-/usr hosts: /lib -> /usr/lib
        elif exists(link) and target == Path(link):
            mounts += ["--ro-bind", link, link]
    if exists(str(OUTPUT_LIB_HOST)):
        mounts += ["--ro-bind", str(OUTPUT_LIB_HOST), str(OUTPUT_LIB_MOUNT / "countylab" / "output")]
    for src, dst in runtime.binds:
        mounts += ["--ro-bind", str(src), str(dst)]
    if runtime.pyvenv_cfg is not None and pyvenv_fd is not None:
        mounts += ["--perms", "0444", "--ro-bind-data", str(pyvenv_fd), str(VENV_MOUNT / "pyvenv.cfg")]
    if exists("/etc/ld.so.cache"):
        mounts += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for name, fd in sorted(etc_fds.items()):
        mounts += ["--perms", "0444", "--ro-bind-data", str(fd), f"/etc/{name}"]
    mounts += _proc_args(spec)
    mounts += ["--dev", "/dev"]
    if supports_tmpfs_size(version):
        shm = str(spec.dev_shm_mb * 1024 * 1024)
        mounts += ["--perms", "1777", "--size", shm, "--tmpfs", "/dev/shm"]  # noqa: S108 -- the sandbox's own
    mounts += gpu_bind_args(spec.gpu_devices, dev_dir)
    for folder in gpu_lib_dirs if spec.gpu_devices else ():
        if exists(folder):
            mounts += ["--ro-bind", folder, folder]
    if supports_tmpfs_size(version):
        mounts += ["--perms", "1777", "--size", str(spec.tmpfs_mb * 1024 * 1024)]
    mounts += ["--tmpfs", SANDBOX_TMP]
    mounts += ["--perms", "0755", "--dir", "/data"]
    for name, path in sorted(spec.datasets.items()):
        mounts += ["--ro-bind", str(path), f"/data/{name}"]
    mounts += ["--ro-bind", str(spec.code_dir), "/work", "--bind", str(spec.outbox_dir), "/outbox"]
    for parent in _parent_dirs(mounts):
        if parent not in ("/data", "/proc", "/dev"):
            argv += ["--perms", "0755", "--dir", parent]
    argv += mounts
    # The root is bwrap's own tmpfs: make it read-only so only /outbox and /tmp take writes.
    argv += ["--remount-ro", "/", "--chdir", "/work", "--clearenv"]
    env = job_environment(spec, runtime.bin_dir)
    if identity is None:
        for key, value in env.items():
            argv += ["--setenv", key, value]
        return [*argv, "--", *spec.command]
    # setpriv still holds CAP_SETUID/SETGID/SETPCAP as uid 0: it runs with an empty environment
    # (no LD_PRELOAD, GCONV_PATH, GLIBC_TUNABLES… can reach it), and ``env -i`` sets the job's
    # environment only after the drop.
    assignments = [f"{key}={value}" for key, value in env.items()]
    return [*argv, "--", *identity.setpriv_argv(), ENV, "-i", "--", *assignments, *spec.command]
