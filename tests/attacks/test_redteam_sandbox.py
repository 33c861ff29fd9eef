"""Red team against the sandbox: variants the sandbox suites did not cover.

Every attack is hostile job code run through ``run_sandboxed`` (what the job runner and the
model workers use), as root as CI runs it.

Found and fixed: **sparse files dodge the outbox byte quota at collection.**  A sparse file
occupies no tmpfs pages, so the tmpfs ``size=`` quota never sees it; a job could leave up to
``outbox_files`` files of ``file_size_mb`` apparent size each (2,000 × 256 MB by default), and
collection copied every zero onto the lab's disk before noticing.  Collection now copies a
regular file only if its apparent size fits what is left of the byte quota
(:func:`countylab.sandbox.outbox.collect`); the run ends ``outbox_bytes``.

Pinned (blocked already): extended attributes never leave the tmpfs; the job cannot signal or
kill the sandbox's init or anything outside its own processes; ``/dev/shm`` and ``/tmp`` are
never collected.
"""

from __future__ import annotations

import os

import pytest

from countylab.sandbox import RunState
from tests.attacks.sandbox_support import PROBE, outbox_of, probe_json, sandbox_job, sandbox_ready

__all__ = ["sandbox_job", "sandbox_ready"]  # fixtures


def _disk_bytes(path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of the regular files under ``path``."""
    apparent = allocated = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


# -- sparse files against the byte quota -------------------------------------------------------
@pytest.mark.parametrize("how", ["truncate", "seek_write", "many_small_holes"])
def test_sparse_files_cannot_pass_the_byte_quota_at_collection(sandbox_job, how: str) -> None:
    make = {
        "truncate": "f.truncate(48 << 20)",
        "seek_write": "f.seek((48 << 20) - 1); f.write(b'x')",
        "many_small_holes": "[(f.seek(i << 20), f.write(b'y')) for i in range(48)]",
    }[how]
    result = sandbox_job(
        PROBE
        + f"""
def sparse():
    for i in range(6):
        with open(f"/outbox/hole{{i}}.bin", "wb") as f:
            {make}
attempt("sparse", sparse)
print(json.dumps(res))
""",
        outbox_mb=4,
        file_size_mb=64,
    )
    assert probe_json(result)["sparse"] == "ok"  # the tmpfs quota did not see them
    apparent, allocated = _disk_bytes(outbox_of(result))
    assert apparent <= 4 * 1024 * 1024 + 64 * 1024, apparent  # not 288 MB of zeros on the lab's disk
    assert allocated <= 4 * 1024 * 1024 + 64 * 1024
    assert result.state is RunState.OUTBOX_QUOTA and result.limit == "outbox_bytes"


def test_files_within_the_quota_are_all_collected(sandbox_job) -> None:
    result = sandbox_job(
        "for i in range(4):\n    open(f'/outbox/t{i}.csv', 'wb').write(b'a,b\\n' * 100_000)\n",
        outbox_mb=4,
    )
    assert result.state is RunState.SUCCEEDED and result.limit is None
    box = outbox_of(result)
    assert sorted(p.name for p in box.glob("t*.csv")) == [f"t{i}.csv" for i in range(4)]
    assert all(p.stat().st_size == 400_000 for p in box.glob("t*.csv"))


# -- extended attributes -----------------------------------------------------------------------
def test_extended_attributes_never_leave_the_outbox(sandbox_job) -> None:
    result = sandbox_job(
        PROBE
        + """
open("/outbox/t.csv", "w").write("a,b\\n1,2\\n")
attempt("setxattr", lambda: os.setxattr("/outbox/t.csv", "user.note", b"330102195001011234"))
os.mkdir("/outbox/d")
attempt("dir_xattr", lambda: os.setxattr("/outbox/d", "user.note", b"x" * 1000))
print(json.dumps(res))
"""
    )
    res = probe_json(result)
    assert res["setxattr"] in ("ok", "EOPNOTSUPP", "EPERM")
    box = outbox_of(result)
    for path in (box / "t.csv", box / "d"):
        assert os.listxattr(path, follow_symlinks=False) == []


# -- signals to the supervisor -----------------------------------------------------------------
def test_the_job_cannot_signal_the_sandbox_init_or_the_lab(sandbox_job) -> None:
    result = sandbox_job(
        PROBE
        + f"""
import signal
attempt("kill_init", lambda: os.kill(1, signal.SIGKILL))
attempt("term_init", lambda: os.kill(1, signal.SIGTERM))
attempt("kill_lab", lambda: os.kill({os.getpid()}, 0))  # the lab's pid on the host
attempt("kill_pgrp0", lambda: os.killpg(1, signal.SIGTERM))
res["ppid"] = os.getppid()
print(json.dumps(res), flush=True)
"""
    )
    res = probe_json(result)
    assert res["kill_init"] in ("EPERM", "ESRCH") and res["term_init"] in ("EPERM", "ESRCH")
    assert res["kill_lab"] in ("EPERM", "ESRCH")  # the host pid is not in the job's namespace
    assert result.state is RunState.SUCCEEDED  # the supervisor saw an ordinary end


def test_kill_everything_kills_only_the_job(sandbox_job) -> None:
    result = sandbox_job(
        """
import os, signal, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
print("before", flush=True)
os.kill(-1, signal.SIGKILL)  # every process this uid may signal
"""
    )
    assert result.stdout_path.read_text().startswith("before")
    assert result.wall_s < 30  # the sleeping child died too; nothing outside was reachable
    assert os.getpid() > 0  # and the lab (this test process) is alive


# -- scratch space is never collected ----------------------------------------------------------
def test_dev_shm_and_tmp_are_never_collected(sandbox_job) -> None:
    result = sandbox_job(
        """
import os
open("/dev/shm/leak.csv", "w").write("330102195001011234\\n")
open("/tmp/leak.csv", "w").write("330102195001011234\\n")
os.symlink("/dev/shm/leak.csv", "/outbox/shm.csv")
os.symlink("/tmp/leak.csv", "/outbox/tmp.csv")
"""
    )
    box = outbox_of(result)
    found = [p for p in box.rglob("*") if p.is_file() and not p.is_symlink()]
    assert all(b"330102195001011234" not in p.read_bytes() for p in found)
    assert (box / "shm.csv").is_symlink() and not (box / "shm.csv").exists()  # dangling on the host
