"""What a sandboxed job asks for (:class:`SandboxSpec`) and what came of it (:class:`SandboxResult`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class RunState(enum.StrEnum):
    """How a sandbox run ended.  Terminal states only; the job queue owns the job's lifecycle."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # non-zero exit (includes EFBIG/ENOSPC, fork refused by the pids limit)
    KILLED_TIMEOUT = "killed_timeout"  # wall-clock watchdog
    KILLED_CPU = "killed_cpu"  # RLIMIT_CPU or the cgroup CPU-time budget
    KILLED_MEMORY = "killed_memory"  # OOM killer inside the job's memory cgroup
    CANCELLED = "cancelled"  # the caller's cancel event: the whole tree was killed
    SECCOMP_DENIED = "seccomp_denied"  # killed by SIGSYS: a system call outside the allow-list
    OUTBOX_QUOTA = "outbox_quota"  # the outbox's byte or file quota was reached (``limit`` names it)


@dataclass
class SandboxSpec:
    """One job run.  Paths are host paths; the job sees them at fixed places.

    - ``code_dir`` → ``/work`` (read-only, the working directory)
    - ``outbox_dir`` → ``/outbox`` (writable; must be absent or empty: a fresh outbox per run)
    - ``datasets[name]`` → ``/data/<name>`` (read-only Parquet files or folders)
    - ``python_prefix``: a virtualenv or installation prefix whose interpreter runs the job
      (default: the lab's own ``sys.prefix``); its ``bin`` comes first on ``PATH``.
    - ``env``: extra variables; nothing else of the parent's environment reaches the job.
    - ``gpu_devices``: indexes ("0") or device paths ("/dev/nvidia0") to pass through.
    """

    command: list[str]
    code_dir: Path
    outbox_dir: Path
    datasets: dict[str, Path]
    cpu_seconds: int
    memory_mb: int
    wall_seconds: float
    pids: int = 256
    tmpfs_mb: int = 256
    gpu_devices: list[str] = field(default_factory=list)
    python_prefix: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    cpu_cores: float = 1.0
    threads: int = 1
    file_size_mb: int | None = None  # RLIMIT_FSIZE; default: tmpfs_mb
    open_files: int = 256
    address_space_mb: int | None = None  # RLIMIT_AS; default: 4 × memory_mb + 1 GiB, off with GPUs
    log_limit_bytes: int = 1024 * 1024  # per stream; the rest is dropped with a marker
    dev_shm_mb: int = 64  # /dev/shm (POSIX shared memory, multiprocessing semaphores) size cap
    outbox_mb: int = 512  # outbox quota: total bytes (a size-capped tmpfs while running)
    outbox_files: int = 2000  # outbox quota: files and folders (the tmpfs's inode cap)
    sandbox_user: str = "countylab-sandbox"  # host user jobs run as when the lab is root
    io_mbps: int = 256  # read and write bandwidth on the disks holding the data (cgroup io/blkio)
    io_iops: int = 8192  # read and write operations per second on those disks


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int  # the job's exit status; 128 + N when killed by signal N
    state: RunState
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    stdout_path: Path
    stderr_path: Path
    protections: dict[str, bool]  # what was actually active for this run
    memory_peak_mb: float | None = None  # cgroup peak (includes tmpfs and page cache)
    pids_peak: int | None = None
    pids_limit_hits: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    limit: str | None = None  # the quota that stopped the run: outbox_bytes | outbox_files | outbox_depth
    #: what the sandbox saw of the job's security: host uid/gid it ran as, launch mode, seccomp
    #: denial, quota hits.  Carried into the job's record and the audit event (no job content).
    security: dict[str, object] = field(default_factory=dict)
