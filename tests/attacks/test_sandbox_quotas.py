"""Quotas: outbox bytes and files, /dev/shm and /tmp sizes, enforced while the job runs.

The attacks that won: 1 GB written to the outbox in half a second, and 20,000 files.  The
outbox is now a tmpfs capped in bytes and inodes; the write past the quota fails at once, the
run ends ``outbox_quota`` with the limit named, and the host keeps at most the quota.
"""

from __future__ import annotations

import os
import shutil

import pytest

from countylab.sandbox import RunState
from tests.attacks.sandbox_support import PROBE, err, out, outbox_of, probe_json, sandbox_job, sandbox_ready

__all__ = ["sandbox_job", "sandbox_ready"]  # fixtures


def _size(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def test_outbox_byte_bomb_stops_at_the_quota(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
def fill():
    with open("/outbox/big.bin", "wb") as f:
        for _ in range(1024):
            f.write(b"\\0" * (1 << 20))
attempt("fill", fill)
print(json.dumps(res))
""",
        outbox_mb=8,
        file_size_mb=2048,
        memory_mb=512,
    )
    assert probe_json(result)["fill"] == "ENOSPC"
    assert result.state is RunState.OUTBOX_QUOTA and result.limit == "outbox_bytes"
    assert result.security["limit"] == "outbox_bytes"
    assert _size(outbox_of(result)) <= 8 * 1024 * 1024 + 64 * 1024  # the quota (plus the lab's logs)


def test_outbox_file_bomb_stops_at_the_quota(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
def many():
    for i in range(20000):
        open(f"/outbox/f{i}", "w").close()
attempt("many", many)
res["count"] = len(os.listdir("/outbox"))
print(json.dumps(res))
""",
        outbox_files=100,
    )
    res = probe_json(result)
    assert res["many"] == "ENOSPC" and res["count"] == 100
    assert result.state is RunState.OUTBOX_QUOTA and result.limit == "outbox_files"
    assert len(list(outbox_of(result).iterdir())) <= 101  # the files plus the lab's logs folder


def test_folders_count_against_the_file_quota(sandbox_job):
    result = sandbox_job(
        PROBE
        + "attempt('dirs', lambda: [os.makedirs(f'/outbox/d{i}/e') for i in range(1000)])\n"
        + "print(json.dumps(res))\n",
        outbox_files=50,
    )
    assert probe_json(result)["dirs"] == "ENOSPC" and result.limit == "outbox_files"


def test_parallel_writers_share_one_quota(sandbox_job):
    result = sandbox_job(
        """
import multiprocessing as mp, errno
def fill(i):
    try:
        with open(f"/outbox/w{i}.bin", "wb") as f:
            for _ in range(64):
                f.write(b"\\1" * (1 << 20))
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]
if __name__ == "__main__":
    with mp.Pool(4) as pool:
        print(sorted(set(pool.map(fill, range(4)))))
""",
        outbox_mb=16,
        file_size_mb=1024,
        memory_mb=1024,
    )
    assert "ENOSPC" in err(result) + result.stdout_path.read_text()
    assert result.limit == "outbox_bytes"
    assert _size(outbox_of(result)) <= 16 * 1024 * 1024 + 64 * 1024


def test_a_job_within_its_quota_is_untouched(sandbox_job):
    result = sandbox_job(
        "for i in range(50):\n    open(f'/outbox/f{i}.txt', 'w').write('x' * 1000)\n", outbox_files=100
    )
    assert result.state is RunState.SUCCEEDED and result.limit is None
    assert len(list(outbox_of(result).glob("f*.txt"))) == 50


@pytest.mark.parametrize("where,mb", [("/dev/shm", 4), ("/tmp", 4)])
def test_dev_shm_and_tmp_are_size_capped(sandbox_job, where, mb):
    result = sandbox_job(
        PROBE
        + f"""
def fill():
    for i in range(64):
        with open("{where}/f%d" % i, "wb") as f:
            f.write(b"\\0" * (1 << 20))
attempt("fill", fill)
print(json.dumps(res))
""",
        dev_shm_mb=mb,
        tmpfs_mb=mb,
        file_size_mb=64,
    )
    assert probe_json(result)["fill"] == "ENOSPC"


def test_dev_itself_takes_no_writes(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
attempt("dev_file", lambda: open("/dev/planted", "w"))
attempt("dev_dir", lambda: os.mkdir("/dev/x"))
attempt("pts", lambda: open("/dev/pts/planted", "w"))
print(json.dumps(res))
"""
    )
    assert "ok" not in probe_json(result).values()


def test_disk_reads_are_throttled_where_the_cgroup_allows(sandbox_job, tmp_path):
    """O_DIRECT reads bypass the page cache, so only the cgroup's I/O limit can slow them."""
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    result = sandbox_job(
        """
import mmap, os, time
fd = os.open("/data/big/big.bin", os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 1 << 20)
start, total = time.monotonic(), 0
while n := os.readv(fd, [buf]):
    total += n
print(total, round(time.monotonic() - start, 2))
""",
        datasets={"big": ds},
        io_mbps=2,
    )
    assert result.protections["cgroup_io"], "this host offers an I/O controller (blkio or io)"
    total, seconds = out(result).split()
    assert int(total) == 6 * 1024 * 1024 and float(seconds) >= 1.5, (total, seconds)


def test_deep_and_long_outbox_trees_cannot_break_collection(sandbox_job):
    """200 nested folders with 200-character names: paths far past PATH_MAX on the host.  The
    lab collects 32 levels through directory descriptors, names the limit, and never fails."""
    result = sandbox_job(
        """
import os
os.chdir("/outbox")
for i in range(200):
    name = f"{i:03d}" + "x" * 197
    os.mkdir(name)
    os.chdir(name)
open("leaf.txt", "w").write("deep")
os.chdir("/outbox")
open("top.txt", "w").write("top")
"""
    )
    assert result.state is RunState.OUTBOX_QUOTA and result.limit == "outbox_depth", err(result)
    box = outbox_of(result)
    assert (box / "top.txt").read_text() == "top"
    depth, fd = 0, os.open(box, os.O_RDONLY | os.O_DIRECTORY)
    try:  # walk down by descriptors: the host path is far too long to name
        while dirs := [
            e.name for e in os.scandir(fd) if e.is_dir(follow_symlinks=False) and e.name != "logs"
        ]:
            child = os.open(dirs[0], os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, depth = child, depth + 1
    finally:
        os.close(fd)
    assert depth == 32
    # a next action that ``needs`` this outbox gets it mounted read-only: the lab's preparation
    # (making it readable for the sandbox user) walks it by descriptors too
    again = sandbox_job("import os\nprint(sorted(os.listdir('/data/prev'))[-1])\n", datasets={"prev": box})
    assert again.state is RunState.SUCCEEDED and out(again).strip() == "top.txt", err(again)
    shutil.rmtree(box, ignore_errors=True)  # fd-based on Linux: copes with the long paths
