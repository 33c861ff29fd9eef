"""Devices: a job sees a handful of harmless character devices and can make no other.

No disk, no kernel log, no memory device, no terminal to inject keystrokes into; ``mknod`` of
a device fails (no CAP_MKNOD); GPU jobs get exactly the devices they were assigned (see
tests/sandbox/test_building.py for the arguments).
"""

from __future__ import annotations

import pytest

from tests.attacks.sandbox_support import PROBE, probe_json, sandbox_job, sandbox_ready

__all__ = ["sandbox_job", "sandbox_ready"]  # fixtures

HARMLESS = {"null", "zero", "full", "random", "urandom", "tty"}


def test_only_harmless_devices_exist(sandbox_job):
    result = sandbox_job(
        """
import json, os, stat
devs = {}
for root, dirs, files in os.walk("/dev"):
    for name in files:
        path = os.path.join(root, name)
        st = os.lstat(path)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            devs[path] = "blk" if stat.S_ISBLK(st.st_mode) else "chr"
print(json.dumps(devs))
"""
    )
    devs = probe_json(result)
    assert "blk" not in devs.values(), devs
    names = {p.rsplit("/", 1)[-1] for p in devs}
    assert names - {"ptmx"} <= HARMLESS, names
    for bad in (
        "/dev/kmsg",
        "/dev/mem",
        "/dev/kmem",
        "/dev/port",
        "/dev/vda",
        "/dev/sda",
        "/dev/fuse",
        "/dev/net/tun",
        "/dev/kvm",
        "/dev/loop0",
        "/dev/loop-control",
        "/dev/console",
    ):
        assert bad not in devs


@pytest.mark.parametrize(
    "major,minor,name", [(1, 1, "mem"), (8, 0, "sda"), (1, 11, "kmsg"), (10, 229, "fuse")]
)
def test_device_nodes_cannot_be_made(sandbox_job, major, minor, name):
    result = sandbox_job(
        PROBE
        + f"""
import stat
for where in ("/tmp", "/outbox", "/dev/shm"):
    node = os.makedev({major}, {minor})
    attempt(where, lambda w=where: os.mknod(w + "/{name}", 0o666 | stat.S_IFCHR, node))
print(json.dumps(res))
"""
    )
    assert set(probe_json(result).values()) == {"EPERM"}


def test_no_controlling_terminal_for_keystroke_injection(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
import fcntl, termios
attempt("tty", lambda: open("/dev/tty", "w"))
attempt("tiocsti", lambda: fcntl.ioctl(0, termios.TIOCSTI, b"x"))
res["sid_is_self"] = os.getsid(0) == os.getpgrp()
print(json.dumps(res))
"""
    )
    res = probe_json(result)
    assert res["tty"] == "ENXIO" and res["tiocsti"] != "ok"


def test_block_and_raw_disk_reads_are_impossible(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
for path in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem", "/dev/kmsg"):
    attempt(path, lambda p=path: open(p, "rb").read(1))
print(json.dumps(res))
"""
    )
    assert set(probe_json(result).values()) == {"ENOENT"}
