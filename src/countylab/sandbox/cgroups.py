"""Per-job control groups: memory, pids and CPU limits, usage, and killing the whole job.

rlimits are per process and root's RLIMIT_NPROC is ignored, so only a cgroup bounds a fork bomb
or a job that spreads its memory over many processes.  Hosts differ: some offer cgroup v2 with
every controller, some (like the lab's build machine) keep memory/pids/cpu on v1 hierarchies and
an almost empty v2 at ``/sys/fs/cgroup/unified``.  :func:`detect_cgroups` looks at what this host
mounts and offers, and returns one :class:`CgroupHost` behind the same small interface; when
nothing is writable it logs a warning and returns ``None`` (the caller records the missing
protection — it is never dropped silently).

A long-lived parent group (``countylab`` by default) is created once; each job gets a child that
is created and removed in well under a millisecond per hierarchy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

WANTED = ("memory", "pids", "cpu")
#: I/O limits where the host offers them: ``io`` on v2 (``io.max``), ``blkio`` throttling on v1.
IO_CONTROLLERS = ("io", "blkio")


def block_devices(paths: list[Path]) -> list[tuple[int, int]]:
    """The whole-disk block devices (major, minor) holding ``paths`` (tmpfs and overlays skipped).

    io.max and blkio throttling take a disk, not a partition: a partition is resolved to its disk
    through ``/sys/dev/block``.
    """
    found: list[tuple[int, int]] = []
    for path in paths:
        try:
            dev = os.stat(path).st_dev
        except OSError:
            continue
        node = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
        if not node.exists():
            continue
        if (node / "partition").exists():
            with contextlib.suppress(OSError, ValueError):
                major, minor = (node.resolve().parent / "dev").read_text().strip().split(":")
                dev = os.makedev(int(major), int(minor))
        pair = (os.major(dev), os.minor(dev))
        if pair not in found:
            found.append(pair)
    return found


@dataclass(frozen=True)
class CgroupUsage:
    """What a job used, read from its cgroup (``None`` where the controller is missing)."""

    memory_peak_bytes: int | None
    cpu_seconds: float | None
    pids_peak: int | None
    oom_kills: int
    pids_limit_hits: int


class JobCgroup(Protocol):
    """One job's cgroup, whatever the version underneath."""

    @property
    def controllers(self) -> frozenset[str]: ...

    def procs_files(self) -> list[str]:
        """Files a new process writes its pid into to join the group (used before exec)."""
        ...

    def add(self, pid: int) -> None: ...

    def set_io(self, devices: list[tuple[int, int]], bps: int, iops: int) -> bool:
        """Cap reads and writes on ``devices``; False where the host has no I/O controller."""
        ...

    def usage(self) -> CgroupUsage: ...

    def kill_all(self) -> None: ...

    def remove(self) -> None: ...


class CgroupHost(Protocol):
    version: str

    @property
    def controllers(self) -> frozenset[str]: ...

    def create_job(self, name: str, memory_mb: int, pids: int, cpu_cores: float) -> JobCgroup: ...


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return None if text in ("", "max") else int(text)


def _read_keyed(path: Path, key: str) -> int:
    """Read ``key N`` from a flat-keyed file such as memory.events or pids.events."""
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    except OSError:
        pass
    return 0


def _procs(dirs: list[Path]) -> set[int]:
    pids: set[int] = set()
    for d in dirs:
        with contextlib.suppress(OSError):
            pids.update(int(x) for x in (d / "cgroup.procs").read_text().split())
    return pids


def _kill_loop(dirs: list[Path], timeout_s: float = 2.0) -> None:
    """SIGKILL every member until the groups are empty (new forks are caught on the next pass)."""
    deadline = time.monotonic() + timeout_s
    while (pids := _procs(dirs)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def _rmdir_all(dirs: list[Path], timeout_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    for d in dirs:
        while True:
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:  # EBUSY while the last members are being reaped
                if time.monotonic() > deadline:
                    log.warning("cgroup %s not removed: %s", d, exc)
                    break
                time.sleep(0.005)


class V1Job:
    def __init__(self, dirs: dict[str, Path]) -> None:
        self._dirs = dirs  # controller -> job directory (cpu and cpuacct may share one)

    @property
    def controllers(self) -> frozenset[str]:
        found = {c for c in self._dirs if c in WANTED}
        return frozenset(found | ({"io"} if "blkio" in self._dirs else set()))

    def set_io(self, devices: list[tuple[int, int]], bps: int, iops: int) -> bool:
        blkio = self._dirs.get("blkio")
        if blkio is None or not devices:
            return False
        for major, minor in devices:
            for name, value in (("bps", bps), ("iops", iops)):
                for way in ("read", "write"):
                    _write(blkio / f"blkio.throttle.{way}_{name}_device", f"{major}:{minor} {value}")
        return True

    def _unique_dirs(self) -> list[Path]:
        return list(dict.fromkeys(self._dirs.values()))

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self._unique_dirs()]

    def add(self, pid: int) -> None:
        for f in self.procs_files():
            _write(Path(f), str(pid))

    def usage(self) -> CgroupUsage:
        mem = self._dirs.get("memory")
        acct = self._dirs.get("cpuacct")
        pids = self._dirs.get("pids")
        cpu_ns = _read_int(acct / "cpuacct.usage") if acct else None
        return CgroupUsage(
            memory_peak_bytes=_read_int(mem / "memory.max_usage_in_bytes") if mem else None,
            cpu_seconds=cpu_ns / 1e9 if cpu_ns is not None else None,
            pids_peak=_read_int(pids / "pids.peak") if pids else None,
            oom_kills=_read_keyed(mem / "memory.oom_control", "oom_kill") if mem else 0,
            pids_limit_hits=_read_keyed(pids / "pids.events", "max") if pids else 0,
        )

    def kill_all(self) -> None:
        _kill_loop(self._unique_dirs())

    def remove(self) -> None:
        _rmdir_all(self._unique_dirs())


class V1Host:
    """cgroup v1: one hierarchy per controller (cpu and cpuacct possibly co-mounted)."""

    version = "v1"

    def __init__(self, parents: dict[str, Path]) -> None:
        self._parents = parents

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset(c for c in self._parents if c in WANTED)

    def create_job(self, name: str, memory_mb: int, pids: int, cpu_cores: float) -> V1Job:
        dirs = {c: p / name for c, p in self._parents.items()}
        for d in dict.fromkeys(dirs.values()):
            d.mkdir()
        job = V1Job(dirs)
        try:
            if "memory" in dirs:
                limit = str(memory_mb * 1024 * 1024)
                _write(dirs["memory"] / "memory.limit_in_bytes", limit)
                memsw = dirs["memory"] / "memory.memsw.limit_in_bytes"
                if memsw.exists():  # no escape into swap
                    _write(memsw, limit)
            if "pids" in dirs:
                _write(dirs["pids"] / "pids.max", str(pids))
            if "cpu" in dirs:
                _write(dirs["cpu"] / "cpu.cfs_period_us", "100000")
                _write(dirs["cpu"] / "cpu.cfs_quota_us", str(max(1000, int(cpu_cores * 100000))))
        except OSError:
            job.remove()
            raise
        return job


class V2Job:
    def __init__(self, path: Path, io: bool = False) -> None:
        self._path = path
        self._io = io

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset(WANTED) | ({"io"} if self._io else frozenset())

    def set_io(self, devices: list[tuple[int, int]], bps: int, iops: int) -> bool:
        if not self._io or not devices:
            return False
        for major, minor in devices:
            _write(self._path / "io.max", f"{major}:{minor} rbps={bps} wbps={bps} riops={iops} wiops={iops}")
        return True

    def procs_files(self) -> list[str]:
        return [str(self._path / "cgroup.procs")]

    def add(self, pid: int) -> None:
        _write(self._path / "cgroup.procs", str(pid))

    def usage(self) -> CgroupUsage:
        usec = _read_keyed(self._path / "cpu.stat", "usage_usec")
        return CgroupUsage(
            memory_peak_bytes=_read_int(self._path / "memory.peak"),
            cpu_seconds=usec / 1e6,
            pids_peak=_read_int(self._path / "pids.peak"),
            oom_kills=_read_keyed(self._path / "memory.events", "oom_kill"),
            pids_limit_hits=_read_keyed(self._path / "pids.events", "max"),
        )

    def kill_all(self) -> None:
        kill_file = self._path / "cgroup.kill"
        if kill_file.exists():  # Linux 5.14+: atomic, races no fork bomb
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
        _kill_loop([self._path])

    def remove(self) -> None:
        _rmdir_all([self._path])


class V2Host:
    """cgroup v2: one unified tree; the parent delegates memory, pids and cpu to its children."""

    version = "v2"

    def __init__(self, parent: Path, io: bool = False) -> None:
        self._parent = parent
        self._io = io

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset(WANTED) | ({"io"} if self._io else frozenset())

    def create_job(self, name: str, memory_mb: int, pids: int, cpu_cores: float) -> V2Job:
        path = self._parent / name
        path.mkdir()
        job = V2Job(path, self._io)
        try:
            _write(path / "memory.max", str(memory_mb * 1024 * 1024))
            if (path / "memory.swap.max").exists():
                _write(path / "memory.swap.max", "0")
            _write(path / "memory.oom.group", "1")  # an OOM kills the whole job, not one process
            _write(path / "pids.max", str(pids))
            _write(path / "cpu.max", f"{max(1000, int(cpu_cores * 100000))} 100000")
        except OSError:
            job.remove()
            raise
        return job


def _mounts(mounts_file: Path) -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of every cgroup mount."""
    out = []
    for line in mounts_file.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
            out.append((fields[1], fields[2], set(fields[3].split(","))))
    return out


def _own_cgroup(proc_cgroup: Path) -> str | None:
    """This process's v2 cgroup path (``0::/…`` in /proc/self/cgroup)."""
    with contextlib.suppress(OSError):
        for line in proc_cgroup.read_text().splitlines():
            if line.startswith("0::"):
                return line[3:]
    return None


def _enable_v2(base: Path, parent_name: str) -> V2Host:
    available = set((base / "cgroup.controllers").read_text().split())
    if not set(WANTED) <= available:
        raise OSError(f"controllers {sorted(set(WANTED) - available)} are not delegated to {base}")
    io = "io" in available
    enable = " ".join(f"+{c}" for c in (*WANTED, *(("io",) if io else ())))
    _write(base / "cgroup.subtree_control", enable)
    parent = base / parent_name
    parent.mkdir(exist_ok=True)
    _write(parent / "cgroup.subtree_control", enable)
    return V2Host(parent, io=io)


def _try_v2(mount: Path, parent_name: str, proc_cgroup: Path = Path("/proc/self/cgroup")) -> V2Host | None:
    """The root of the v2 tree (a root lab), else the subtree systemd delegated to the service.

    With ``Delegate=yes`` and ``DelegateSubgroup=main`` the server runs in ``<service>/main``
    and owns ``<service>``: the lab's group is created beside ``main``.
    """
    try:
        return _enable_v2(mount, parent_name)
    except OSError as exc:
        log.info("cgroup v2 root at %s not usable: %s", mount, exc)
    own = _own_cgroup(proc_cgroup)
    if own is None or own in ("", "/"):
        return None
    delegated = mount / own.strip("/")
    for base in (delegated.parent, delegated):
        try:
            return _enable_v2(base, parent_name)
        except OSError as exc:
            log.info("delegated cgroup %s not usable: %s", base, exc)
    return None


def _try_v1(mounts: list[tuple[str, str, set[str]]], parent_name: str) -> V1Host | None:
    parents: dict[str, Path] = {}
    for point, fstype, opts in mounts:
        if fstype != "cgroup":
            continue
        for controller in (*WANTED, "cpuacct", "blkio"):
            if controller in opts and controller not in parents:
                parent = Path(point) / parent_name
                try:
                    parent.mkdir(exist_ok=True)
                    if not os.access(parent / "cgroup.procs", os.W_OK):
                        continue
                except OSError as exc:
                    log.info("cgroup v1 %s at %s not usable: %s", controller, point, exc)
                    continue
                parents[controller] = parent
    if not any(c in parents for c in WANTED):
        return None
    missing = [c for c in WANTED if c not in parents]
    if missing:
        log.warning("cgroup v1: controllers %s are not available; those limits are off", missing)
    return V1Host(parents)


def detect_cgroups(
    parent_name: str = "countylab", mounts_file: Path = Path("/proc/self/mounts")
) -> V1Host | V2Host | None:
    """Pick what the host offers: a complete v2 tree first, else the v1 hierarchies, else None."""
    try:
        mounts = _mounts(mounts_file)
    except OSError:
        mounts = []
    for point, fstype, _ in mounts:
        if fstype == "cgroup2" and (host := _try_v2(Path(point), parent_name)) is not None:
            return host
    v1 = _try_v1(mounts, parent_name)
    if v1 is None:
        log.warning(
            "no writable cgroup (v1 or v2) on this host: sandboxed jobs run without memory, "
            "pids and CPU cgroup limits; rlimits and the wall-clock watchdog still apply"
        )
    return v1
