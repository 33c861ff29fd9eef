"""Filesystem writes: a job writes nothing outside its outbox, its /tmp and /dev/shm.

The job walks the whole filesystem it can see and tries to create a file in every folder and
to open every file for writing; it tries the granted data, its own code, hard links, and
planted links and special files that the lab's collection might follow afterwards.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from countylab.sandbox import RunState
from countylab.sandbox.identity import SandboxIdentity, protect_data_dir
from tests.attacks.sandbox_support import PROBE, err, outbox_of, probe_json, sandbox_job, sandbox_ready

__all__ = ["sandbox_job", "sandbox_ready"]  # fixtures

WRITABLE = ("/outbox", "/tmp", "/dev/shm")

WALK = """
import json, os
writable = ("/outbox", "/tmp", "/dev/shm")
created, opened, tried = [], [], 0
for root, dirs, files in os.walk("/", followlinks=False):
    if root == "/proc" or root.startswith("/proc/"):
        dirs[:] = []
    try:
        fd = os.open(os.path.join(root, ".planted"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        created.append(root)
    except OSError:
        pass
    for name in files:
        path = os.path.join(root, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        tried += 1
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))
            opened.append(path)
        except OSError:
            pass
print(json.dumps({"created": created, "opened": opened, "tried": tried}))
"""


def test_walk_the_whole_filesystem_and_write_nowhere_else(sandbox_job, tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "part.parquet").write_bytes(b"PAR1 data")
    result = sandbox_job(WALK, datasets={"people": ds}, wall_seconds=120, cpu_seconds=100)
    res = probe_json(result)
    outside = [p for p in res["created"] + res["opened"] if not p.startswith(WRITABLE)]
    assert outside == [], outside
    assert res["tried"] > 1000  # it did see the runtime's files
    assert sorted(res["created"]) == sorted(WRITABLE), res["created"]
    assert sorted(os.listdir(ds)) == ["part.parquet"] and (ds / "part.parquet").read_bytes() == b"PAR1 data"


def test_granted_data_and_code_are_read_only(sandbox_job, tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "part.parquet").write_bytes(b"PAR1")
    result = sandbox_job(
        PROBE
        + """
attempt("data_write", lambda: open("/data/people/part.parquet", "r+b").write(b"X"))
attempt("data_new", lambda: open("/data/people/new", "w"))
attempt("data_rename", lambda: os.rename("/data/people/part.parquet", "/data/people/x"))
attempt("data_unlink", lambda: os.unlink("/data/people/part.parquet"))
attempt("data_chmod", lambda: os.chmod("/data/people/part.parquet", 0o777))
attempt("data_utime", lambda: os.utime("/data/people/part.parquet", (0, 0)))
attempt("code_write", lambda: open("/work/job.py", "a").write("#"))
attempt("code_new", lambda: open("/work/x.py", "w"))
attempt("data_root", lambda: os.mkdir("/data/other"))
attempt("etc", lambda: open("/etc/passwd", "a").write("root2::0:0::/:/bin/sh"))
attempt("etc_new", lambda: open("/etc/ld.so.preload", "w"))
print(json.dumps(res))
""",
        datasets={"people": ds},
    )
    res = probe_json(result)
    assert "ok" not in res.values(), res
    assert (ds / "part.parquet").read_bytes() == b"PAR1" and sorted(os.listdir(ds)) == ["part.parquet"]
    assert stat.S_IMODE((ds / "part.parquet").stat().st_mode) != 0o777


def test_hard_link_of_granted_data_into_the_outbox_fails(sandbox_job, tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "part.parquet").write_bytes(b"PAR1")
    result = sandbox_job(
        PROBE
        + """
attempt("link", lambda: os.link("/data/people/part.parquet", "/outbox/copy.parquet"))
attempt("link_tmp", lambda: os.link("/data/people/part.parquet", "/tmp/copy.parquet"))
print(json.dumps(res))
""",
        datasets={"people": ds},
    )
    res = probe_json(result)
    assert res["link"] in ("EXDEV", "EPERM") and res["link_tmp"] in ("EXDEV", "EPERM")
    assert (ds / "part.parquet").stat().st_nlink == 1


def test_planted_links_are_copied_as_links_never_followed(sandbox_job, tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host secret")
    result = sandbox_job(
        f"""
import os
os.symlink({str(secret)!r}, "/outbox/leak.txt")
os.symlink("/etc/shadow", "/outbox/shadow")
os.makedirs("/outbox/logs")
os.symlink({str(secret)!r}, "/outbox/logs/stdout.txt")
"""
    )
    assert result.state is RunState.SUCCEEDED, err(result)
    box = outbox_of(result)
    assert (box / "leak.txt").is_symlink() and os.readlink(box / "leak.txt") == str(secret)
    assert (box / "shadow").is_symlink()
    assert not result.stdout_path.is_symlink()  # the lab's own log replaced the planted link
    assert secret.read_text() == "host secret"


def test_special_files_in_the_outbox_are_dropped(sandbox_job):
    result = sandbox_job(
        """
import os, socket
os.mkfifo("/outbox/fifo")
s = socket.socket(socket.AF_UNIX)
s.bind("/outbox/sock")
open("/outbox/real.txt", "w").write("x")
""",
        wall_seconds=20,
    )
    assert result.state is RunState.SUCCEEDED, err(result)
    names = sorted(p.name for p in outbox_of(result).iterdir())
    assert names == ["logs", "real.txt"]


def test_setuid_bits_do_not_survive_collection(sandbox_job):
    result = sandbox_job(
        "import os\nopen('/outbox/tool', 'w').write('#!/bin/sh\\nid\\n')\nos.chmod('/outbox/tool', 0o6755)\n"
        "os.mkdir('/outbox/d')\nos.chmod('/outbox/d', 0o3777)\n"
    )
    box = outbox_of(result)
    assert stat.S_IMODE((box / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((box / "d").stat().st_mode) == 0o755


def test_the_lab_data_dir_is_unreachable_by_the_sandbox_user(tmp_path, sandbox_ready: SandboxIdentity):
    """Seen from the host: the sandbox uid cannot list or read anything below the data dir."""
    data_dir = tmp_path / "lab-data"
    (data_dir / "warehouse").mkdir(parents=True)
    (data_dir / "warehouse" / "people.parquet").write_bytes(b"PAR1")
    data_dir.chmod(0o755)
    protect_data_dir(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for cmd in (["ls", str(data_dir)], ["cat", str(data_dir / "warehouse" / "people.parquet")]):
        as_sandbox = subprocess.run(
            [
                "setpriv",
                f"--reuid={sandbox_ready.uid}",
                f"--regid={sandbox_ready.gid}",
                "--clear-groups",
                *cmd,
            ],
            capture_output=True,
            text=True,
        )
        assert as_sandbox.returncode != 0 and "Permission denied" in as_sandbox.stderr, as_sandbox


def test_sandbox_user_owns_nothing_it_could_reach(sandbox_job, sandbox_ready: SandboxIdentity, tmp_path):
    """After a run, no file the job wrote is left owned by the sandbox uid on the host."""
    result = sandbox_job("import os\nfor i in range(20):\n    open(f'/outbox/f{i}', 'w').write('x')\n")
    owned = [
        p for p in [outbox_of(result), *outbox_of(result).rglob("*")] if p.lstat().st_uid == sandbox_ready.uid
    ]
    assert owned == []
    assert Path(tmp_path).stat().st_uid != sandbox_ready.uid
