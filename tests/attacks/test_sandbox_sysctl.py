"""sysctl, /proc/sys, /sys and mountinfo: a job can neither change nor read the kernel's settings,
and sees no host path.

The attack that won: a job wrote ``|/outbox/pwn.sh`` into ``kernel.core_pattern``, crashed a
child, and the kernel ran the script as root on the host.  CPU jobs now have no procfs at all
(``/proc`` is an empty read-only folder), no ``/sys``, and run as an unprivileged uid; every
sysctl is checked on the host before and after.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from countylab.sandbox import RunState
from tests.attacks.sandbox_support import PROBE, err, out, probe_json, sandbox_job, sandbox_ready

__all__ = ["sandbox_job", "sandbox_ready"]  # fixtures

SYSCTLS = [
    "kernel/core_pattern",
    "kernel/modprobe",
    "kernel/hostname",
    "kernel/randomize_va_space",
    "net/ipv4/ip_forward",
    "net/core/somaxconn",
    "vm/overcommit_memory",
    "vm/drop_caches",
    "fs/protected_symlinks",
    "fs/suid_dumpable",
]


def _host(name: str) -> str | None:
    try:
        return Path("/proc/sys", name).read_text()
    except OSError:
        return None


@pytest.mark.parametrize("name", SYSCTLS)
def test_no_sysctl_can_be_written(sandbox_job, name):
    before = _host(name)
    result = sandbox_job(
        PROBE
        + f"""
path = "/proc/sys/{name}"
attempt("write", lambda: open(path, "w").write("1"))
attempt("read", lambda: open(path).read())
attempt("makedirs", lambda: os.makedirs(os.path.dirname(path)))
attempt("dotted", lambda: open("/proc/sys/" + "{name}".replace("/", "."), "w").write("1"))
print(json.dumps(res))
"""
    )
    res = probe_json(result)
    assert "ok" not in res.values(), res
    assert _host(name) == before  # the host's value is untouched


def test_proc_is_an_empty_read_only_folder(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
res["listing"] = os.listdir("/proc")
for path in ("/proc/self/status", "/proc/1/environ", "/proc/sysrq-trigger", "/proc/kcore",
             "/proc/self/mem", "/proc/self/fd", "/proc/cpuinfo"):
    res["exists " + path] = os.path.exists(path)
attempt("create", lambda: open("/proc/planted", "w"))
attempt("mkdir", lambda: os.mkdir("/proc/sys"))
res["mount_proc"] = killed_by("import ctypes; ctypes.CDLL(None).mount(b'proc', b'/tmp', b'proc', 0, None)")
print(json.dumps(res))
"""
    )
    res = probe_json(result)
    assert res.pop("listing") == []
    assert res.pop("mount_proc") == -31  # a fresh procfs would need mount(): the filter kills it
    assert res.pop("create") in ("EROFS", "EACCES") and res.pop("mkdir") in ("EROFS", "EACCES")
    assert not any(res.values()), res


def test_sys_is_absent(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
res["sys"] = os.path.exists("/sys")
attempt("mkdir", lambda: os.mkdir("/sys"))
res["cpus"] = os.cpu_count() is not None
print(json.dumps(res))
"""
    )
    res = probe_json(result)
    assert res["sys"] is False and res["mkdir"] in ("EROFS", "EACCES") and res["cpus"] is True


def test_core_pattern_crash_attack_has_no_host_effect(sandbox_job, tmp_path):
    marker = tmp_path / "pwned"
    before = _host("kernel/core_pattern")
    result = sandbox_job(
        PROBE
        + f"""
import signal
script = "/outbox/pwn.sh"
open(script, "w").write("#!/bin/sh\\ntouch {marker}\\nid > {marker}\\n")
os.chmod(script, 0o755)
attempt("core_pattern", lambda: open("/proc/sys/kernel/core_pattern", "w").write("|" + script))
attempt("sysctl_cli", lambda: subprocess.run(["sysctl", "-w", "kernel.core_pattern=|" + script], check=True))
res["mount"] = killed_by("import ctypes; ctypes.CDLL(None).mount(b'proc', b'/tmp', b'proc', 0, None)")
import resource
res["core_limit"] = list(resource.getrlimit(resource.RLIMIT_CORE))
attempt("raise_core_limit", lambda: resource.setrlimit(resource.RLIMIT_CORE, (1 << 30, 1 << 30)))
crash = subprocess.run([sys.executable, "-c", "import ctypes; ctypes.string_at(0)"])
res["crash"] = crash.returncode
res["abort"] = subprocess.run([sys.executable, "-c", "import os; os.abort()"]).returncode
print(json.dumps(res))
"""
    )
    res = probe_json(result)
    assert res["core_pattern"] == "ENOENT" and res["sysctl_cli"] != "ok" and res["mount"] == -31
    assert res["core_limit"] == [0, 0] and res["raise_core_limit"] != "ok"
    assert res["crash"] == -11 and res["abort"] == -6  # the children did crash...
    assert _host("kernel/core_pattern") == before  # ...and nothing on the host changed
    assert not marker.exists()
    assert result.state is RunState.SUCCEEDED, err(result)


def test_no_mountinfo_anywhere(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
for path in ("/proc/self/mountinfo", "/proc/self/mounts", "/proc/mounts", "/proc/1/mountinfo",
             "/etc/mtab", "/proc/self/mountstats", "/proc/thread-self"):
    res[path] = os.path.exists(path)
print(json.dumps(res))
"""
    )
    assert not any(probe_json(result).values())


def test_no_host_path_is_visible(sandbox_job, tmp_path):
    """Walk everything the job can see (names, link targets, environment, cwd): no lab path."""
    ds = tmp_path / "granted-dataset"
    ds.mkdir()
    (ds / "part.parquet").write_bytes(b"PAR1")
    result = sandbox_job(
        """
import json, os
seen = [os.getcwd(), *os.environ.values()]
for root, dirs, files in os.walk("/", followlinks=False):
    if root.startswith(("/usr", "/opt/venv/lib", "/root/.pyenv/versions")):
        dirs[:] = []  # the read-only runtime (its paths are the runtime's own)
    for name in dirs + files:
        path = os.path.join(root, name)
        seen.append(path)
        if os.path.islink(path):
            seen.append(os.readlink(path))
print(json.dumps(seen))
""",
        datasets={"people": ds},
    )
    text = out(result)
    for host_path in (str(tmp_path), "pytest-of", str(ds), "outbox0", "code0", os.getcwd()):
        assert host_path not in text, host_path


def test_root_has_only_the_sandbox_folders(sandbox_job):
    result = sandbox_job("import os, json\nprint(json.dumps(sorted(os.listdir('/'))))\n")
    listing = set(probe_json_list(out(result)))
    assert listing <= {"bin", "lib", "lib64", "sbin", "usr", "etc", "proc", "dev", "tmp", "data", "work",
                       "outbox", "opt", "root"}, listing  # fmt: skip
    assert {"sys", "home", "var", "srv", "mnt", "boot", "run"}.isdisjoint(listing)


def probe_json_list(text: str) -> list[str]:
    import json

    return list(json.loads(text.strip().splitlines()[-1]))
