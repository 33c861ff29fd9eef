"""Identity: a job is never host root and never the lab's own user, also when the lab is root.

A user namespace maps the job's uid to the uid that made it, so under a root lab "nobody"
inside was root outside.  These attacks check the uid from the host's side, the capabilities
and privileges inside, and the classic ways back to root (setuid binaries, setuid()).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from countylab.sandbox import RunState
from countylab.sandbox.identity import SandboxIdentity
from countylab.serving.worker import SandboxedWorker, WorkerLimits
from tests.attacks.sandbox_support import (
    PROBE,
    host_status,
    out,
    outbox_of,
    probe_json,
    sandbox_job,
    sandbox_ready,
    service_user,
    while_running,
)

__all__ = ["sandbox_job", "sandbox_ready", "service_user"]  # fixtures

REPO = Path(__file__).resolve().parents[2]


def test_host_sees_the_job_run_as_the_dedicated_uid(sandbox_job, sandbox_ready: SandboxIdentity):
    marker = "identity-" + os.urandom(4).hex()
    steps = while_running(lambda: sandbox_job("import time\ntime.sleep(3)\n", argv=(marker,)), marker)
    seen = next(steps)
    result = next(steps)
    assert seen, "the job's process was not found on the host"
    for status in seen:
        uids = status["Uid"].split()
        gids = status["Gid"].split()
        assert uids == [str(sandbox_ready.uid)] * 4, status  # real, effective, saved, filesystem
        assert gids == [str(sandbox_ready.gid)] * 4, status
        assert "0" not in uids and str(os.getuid()) not in uids  # never root, never the lab
        assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == "0000000000000000"
        assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
        assert status["Groups"] == ""
    assert result is not None and result.state is RunState.SUCCEEDED
    assert result.security["host_uid"] == sandbox_ready.uid and result.protections["dedicated_uid"]


def test_inside_the_job_has_no_privilege(sandbox_job, sandbox_ready: SandboxIdentity):
    result = sandbox_job(
        PROBE
        + """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
res["ids"] = [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]
res["bounding"] = [libc.prctl(23, cap, 0, 0, 0) for cap in range(41)]  # PR_CAPBSET_READ
res["no_new_privs"] = libc.prctl(39, 0, 0, 0, 0)
attempt("setuid0", lambda: os.setuid(0))
attempt("setgid0", lambda: os.setgid(0))
attempt("setgroups", lambda: os.setgroups([0]))
attempt("setresuid", lambda: os.setresuid(0, 0, 0))
print(json.dumps(res))
"""
    )
    res = probe_json(result)
    who = sandbox_ready
    assert res["ids"] == [who.uid, who.uid, who.gid, who.gid, []]
    assert all(v != 1 for v in res["bounding"]), res["bounding"]  # no capability can ever come back
    assert res["no_new_privs"] == 1
    assert {res[k] for k in ("setuid0", "setgid0", "setgroups", "setresuid")} == {"EPERM"}


def test_setuid_root_binaries_do_not_elevate(sandbox_job):
    result = sandbox_job(
        PROBE
        + """
os.makedirs("/tmp/m", exist_ok=True)
for tool in ("/usr/bin/mount", "/usr/bin/su", "/usr/bin/passwd", "/usr/bin/newgrp"):
    if os.path.exists(tool):
        st = os.stat(tool)
        res[tool] = [bool(st.st_mode & 0o4000), st.st_uid]
mount = subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "none", "/tmp/m"], capture_output=True)
res["mount_rc"] = mount.returncode
res["mounted"] = os.path.ismount("/tmp/m")
su = subprocess.run(["/usr/bin/su", "-c", "id -u"], input=b"", capture_output=True)
res["su_rc"] = su.returncode
res["su_out"] = su.stdout.decode()
print(json.dumps(res))
"""
    )
    res = probe_json(result)
    assert res["/usr/bin/mount"] == [True, 0]  # really setuid root on the host...
    assert res["mount_rc"] != 0 and res["mounted"] is False  # ...and still no root: no_new_privs
    assert res["su_rc"] != 0 and res["su_out"].strip() != "0"


def test_the_sandbox_user_is_neither_root_nor_the_lab(sandbox_ready: SandboxIdentity):
    assert sandbox_ready.uid not in (0, os.getuid(), os.geteuid())
    assert sandbox_ready.gid not in (0, os.getgid())
    import pwd

    entry = pwd.getpwuid(sandbox_ready.uid)
    assert entry.pw_shell in ("/usr/sbin/nologin", "/bin/false", "/usr/bin/false")
    assert not Path(entry.pw_dir).exists() or entry.pw_dir == "/nonexistent"


def test_passwd_inside_names_only_the_sandbox_user(sandbox_job, sandbox_ready: SandboxIdentity):
    result = sandbox_job(
        "import pwd, os\nprint(open('/etc/passwd').read(), end='')\n"
        "print(pwd.getpwuid(os.getuid()).pw_name)\n"
    )
    lines = out(result).splitlines()
    assert lines[0] == sandbox_ready.passwd().decode().strip() and lines[1] == "nobody"
    assert not any(line.startswith("root:") for line in lines)


def test_outbox_files_belong_to_the_lab_after_the_run(sandbox_job, sandbox_ready: SandboxIdentity):
    result = sandbox_job(
        "import os\nos.makedirs('/outbox/d/e')\nopen('/outbox/d/e/f.txt', 'w').write('x')\n"
        "open('/outbox/g.sh', 'w').write('#!/bin/sh')\nos.chmod('/outbox/g.sh', 0o6777)\n"
    )
    assert result.state is RunState.SUCCEEDED
    for path in [outbox_of(result), *outbox_of(result).rglob("*")]:
        st = os.lstat(path)
        assert st.st_uid == os.getuid() and st.st_uid != sandbox_ready.uid, path  # the job owns nothing now
        assert not st.st_mode & 0o7000, (path, oct(st.st_mode))  # no setuid/setgid/sticky survives


class _Probe:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        code = (
            "import os\nclass M:\n    def predict(self, rows):\n"
            "        return [[os.getuid(), os.getgid(), os.getgroups()]] * len(rows)\nmodel = M()\n"
        )
        return (eval, (f"(lambda g: (exec({code!r}, g), g['model'])[1])({{}})",))


def test_model_worker_runs_as_the_sandbox_user_too(tmp_path, sandbox_ready: SandboxIdentity):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(_Probe()))
    worker = SandboxedWorker(folder / "model.pkl", limits=WorkerLimits(memory_mb=256))
    try:
        worker.start()
        reply = worker.call([[1]])
        workers = [s for s in host_status("worker_main.py") if s.get("Name") != "bwrap"]
    finally:
        worker.stop()
    assert reply["ok"], reply
    assert reply["predictions"][0] == [sandbox_ready.uid, sandbox_ready.gid, []]
    assert workers and all(s["Uid"].split() == [str(sandbox_ready.uid)] * 4 for s in workers), workers


def _python_for(user: str) -> str:
    """An interpreter the service user can execute (the system's, when it is the same version)."""
    system = Path("/usr/bin/python3")
    if system.exists():
        version = subprocess.run(
            [str(system), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True
        )
        if version.stdout.decode().strip() == str(tuple(sys.version_info[:2])):
            return str(system)
    return os.path.realpath(sys.executable)


def test_service_user_lab_runs_jobs_as_a_subordinate_uid(service_user: str):
    """The county-server set-up: the lab is an unprivileged service user with a subordinate
    range; the job's host uid is the range's first id: not root, not the service user."""
    import pwd

    import pyseccomp

    import countylab

    svc = pwd.getpwnam(service_user)
    work = Path(tempfile.mkdtemp(prefix="countylab-svc-"))
    try:
        os.chown(work, svc.pw_uid, svc.pw_gid)
        pythonpath = os.pathsep.join(
            [str(Path(countylab.__file__).parents[1]), str(Path(pyseccomp.__file__).parent), str(REPO)]
        )
        script = REPO / "tests" / "attacks" / "sandbox_service_probe.py"
        probe = subprocess.run(
            ["setpriv", f"--reuid={svc.pw_uid}", f"--regid={svc.pw_gid}", "--init-groups", "--",
             _python_for(service_user), str(script), str(work)],
            capture_output=True, text=True, timeout=120, cwd=work,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath},
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr
        res = json.loads(probe.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = int(next(line for line in Path("/etc/subuid").read_text().splitlines()
                     if line.startswith(service_user + ":")).split(":")[1])  # fmt: skip
    assert res["mode"] == "subuid" and res["available"] is True, res
    assert res["state"] == "succeeded", res["stderr"]
    assert res["stdout"].strip() == "[1000, 1000, []]"  # inside: the namespace's uid 1000
    host_uids = res["host"][0].split()[1:]
    assert host_uids == [str(first)] * 4, res["host"]  # outside: the first subordinate id
    assert first not in (0, svc.pw_uid) and res["security"]["host_uid"] == first
    assert "CapEff:\t0000000000000000" in res["host"]
    # the outbox came back to the service user, readable even where the job made it 0600
    assert ["d/x.txt", svc.pw_uid, "hi"] in res["outbox"]
    assert all(uid == svc.pw_uid for _, uid, _ in res["outbox"])


def test_loader_variables_never_reach_the_privileged_step(sandbox_job):
    """setpriv runs as uid 0 with CAP_SETUID until it drops: the environment (LD_PRELOAD,
    LD_DEBUG…) reaches only the job, after the drop."""
    result = sandbox_job("import os\nprint(os.environ.get('LD_DEBUG'))\n", env={"LD_DEBUG": "libs"})
    assert out(result).strip() == "libs"
    loader_log = result.stderr_path.read_text()
    assert "find library=" in loader_log  # the job's own processes did get it...
    assert "setpriv" not in loader_log and "libcap-ng" not in loader_log  # ...setpriv never did
