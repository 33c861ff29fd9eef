"""Namespaces: a job cannot build a new namespace or join one, by any of the system calls.

In the root lab there is no user namespace at all; a job that could make one would get
capabilities inside it (and the kernel surface that comes with them).  Every route is killed
by the seccomp filter and recorded; ordinary threads and processes still work.
"""

from __future__ import annotations

import pytest

from countylab.sandbox import RunState
from tests.attacks.sandbox_support import PROBE, probe_json, sandbox_job, sandbox_ready

__all__ = ["sandbox_job", "sandbox_ready"]  # fixtures

CLONE_FLAGS = {
    "user": 0x10000000,
    "mount": 0x00020000,
    "net": 0x40000000,
    "pid": 0x20000000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "cgroup": 0x02000000,
    "time": 0x00000080,
}

ROUTES = {
    **{f"unshare_{name}": f"libc.unshare({flag})" for name, flag in CLONE_FLAGS.items()},
    # raw clone(2) (x86-64 number 56) with a namespace flag plus SIGCHLD
    "clone_newuser": "libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)",
    "clone_newns_vfork": "libc.syscall(56, 0x00020000 | 0x4000 | 17, 0, 0, 0, 0)",
    "setns_self": "libc.setns(0, 0x10000000)",
}


@pytest.fixture(scope="module")
def routes(tmp_path_factory, sandbox_ready):
    from countylab.sandbox import SandboxSpec, run_sandboxed

    root = tmp_path_factory.mktemp("ns")
    (root / "code").mkdir()
    lines = [PROBE, "pre = 'import ctypes; libc = ctypes.CDLL(None, use_errno=True); print('"]
    for name, call in ROUTES.items():
        lines.append(f"res[{name!r}] = killed_by(pre + {call!r} + ')')")
    lines.append(
        "res['cli_unshare'] = subprocess.run(['unshare', '-Ur', 'true'], capture_output=True).returncode"
    )
    lines.append(
        "res['cli_bwrap'] = subprocess.run(['bwrap', '--ro-bind', '/', '/', 'true'],"
        " capture_output=True).returncode"
    )
    lines.append("print(json.dumps(res))")
    (root / "code" / "job.py").write_text("\n".join(lines) + "\n")
    spec = SandboxSpec(
        command=["python", "job.py"], code_dir=root / "code", outbox_dir=root / "outbox", datasets={},
        cpu_seconds=30, memory_mb=512, wall_seconds=60, pids=64,
    )  # fmt: skip
    result = run_sandboxed(spec)
    assert result.state is RunState.SUCCEEDED
    return probe_json(result)


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_namespace_route_is_killed(routes, route):
    assert routes[route] == -31, routes  # SIGSYS from the seccomp filter


def test_unshare_and_bwrap_tools_fail(routes):
    assert routes["cli_unshare"] != 0 and routes["cli_bwrap"] != 0


def test_threads_and_processes_still_work(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
import threading, multiprocessing as mp
t = threading.Thread(target=lambda: res.setdefault("thread", "ok")); t.start(); t.join()
pid = os.fork()
if pid == 0:
    os._exit(7)
res["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
with mp.Pool(2) as pool:
    res["pool"] = pool.map(abs, [-1, -2])
res["clone3"] = killed_by("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
                          "r = libc.syscall(435, 0, 0); "
                          "raise SystemExit(0 if r == -1 and ctypes.get_errno() == 38 else 5)")
print(json.dumps(res))
"""
    )
    res = probe_json(result)
    assert res == {"thread": "ok", "fork": 7, "pool": [1, 2], "clone3": 0}  # clone3: ENOSYS, not a kill
