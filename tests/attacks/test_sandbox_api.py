"""Sandbox attacks submitted as real jobs through the lab's job API (upload, queue, dispatcher,
sandbox, outbox, audit), on a demo lab running as root as CI does.

Each attack's outcome is read the way the lab records it: the job's state and ``stopped_by``
as the developer sees them, the ``job.finish`` audit event with the sandbox's security record,
and the host itself (sysctls, the data directory's mode, files the attack meant to create).
"""

from __future__ import annotations

import json
import os
import stat
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from countylab.sandbox.identity import SandboxIdentity
from countylab.storage.models import AuditEvent
from countylab_client._jobs import pack_folder
from tests.attacks.sandbox_support import sandbox_ready
from tests.attacks.test_sandbox_filesystem import WALK
from tests.jobs_e2e.e2e_helpers import center, demo_lab_from, job_folder, project_id, user_id, wait_state
from tests.support import api_client

__all__ = ["sandbox_ready"]  # fixtures

MARKER = "/tmp/countylab-core-pattern-" + os.urandom(4).hex()

ATTACKS: dict[str, tuple[str, dict[str, str]]] = {
    "whoami": ("import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n", {}),
    "core_pattern": (
        textwrap.dedent(f"""
        import os, subprocess, sys
        open("/outbox/pwn.sh", "w").write("#!/bin/sh\\ntouch {MARKER}\\n")
        os.chmod("/outbox/pwn.sh", 0o755)
        for path in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe"):
            try:
                open(path, "w").write("|/outbox/pwn.sh")
                print("ESCAPED", path)
            except OSError as exc:
                print("blocked", path, exc.errno)
        print("crash", subprocess.run([sys.executable, "-c", "import os; os.abort()"]).returncode)
        """),
        {},
    ),
    "seccomp": ("import ctypes\nctypes.CDLL(None).syscall(321, 0, 0, 0)  # bpf\n", {}),
    "outbox_files": ("for i in range(20000):\n    open(f'/outbox/f{i}', 'w').close()\n", {}),
    "write_everywhere": (
        WALK,
        {"datasets": "[residents]", "resources": "{cpu: 1, memory_mb: 512, time_s: 120}"},
    ),
}


@pytest.fixture(scope="module")
def world(
    demo_template: Path, tmp_path_factory: pytest.TempPathFactory, sandbox_ready: SandboxIdentity
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("sandbox-api")
    lab = demo_lab_from(demo_template, root)
    lab.settings.data_dir.chmod(0o755)  # the center must tighten it when it starts
    core_before = Path("/proc/sys/kernel/core_pattern").read_text()
    center(lab).start()
    dev = api_client(lab, user_id(lab, "developer"))
    pid = project_id(lab, "elderly-care-demand")
    jobs = {}
    for name, (script, opts) in ATTACKS.items():
        folder = job_folder(root / "code", name, script, **opts)
        resp = dev.post(
            f"/api/projects/{pid}/jobs",
            files={"file": ("c.tar.gz", pack_folder(folder))},
            data={"name": name},
        )
        assert resp.status_code == 201, resp.text
        jobs[name] = resp.json()["id"]
    states = {
        name: wait_state(lab, jid, {"succeeded", "failed", "killed"}, 180) for name, jid in jobs.items()
    }
    yield {"lab": lab, "dev": dev, "jobs": jobs, "states": states, "core_before": core_before}
    lab.close()


def _stdout(world: dict[str, Any], name: str) -> str:
    files = world["lab"].jobs.outbox_files(world["jobs"][name])
    return next(p for p in files if p.name == "stdout.txt").read_text()


def _finish(world: dict[str, Any], name: str) -> dict[str, Any]:
    with world["lab"].tx() as s:
        rows = s.execute(
            select(AuditEvent.details).where(
                AuditEvent.action == "job.finish", AuditEvent.target == f"job:{world['jobs'][name]}"
            )
        ).all()
    assert len(rows) == 1, rows
    details = rows[0][0]
    return json.loads(details) if isinstance(details, str) else dict(details)


def test_job_runs_as_the_sandbox_user_and_the_audit_says_so(world, sandbox_ready: SandboxIdentity):
    assert world["states"]["whoami"] == "succeeded"
    assert _stdout(world, "whoami").split("\n")[0] == f"{sandbox_ready.uid} {sandbox_ready.gid} []"
    security = _finish(world, "whoami")["security"]
    assert security["mode"] == "drop" and security["host_uids"] == [sandbox_ready.uid]
    assert security["seccomp_denied"] is False and security["limit"] is None


def test_core_pattern_attack_through_the_api_changes_nothing(world):
    text = _stdout(world, "core_pattern")
    assert "ESCAPED" not in text and text.count("blocked") == 2 and "crash -6" in text
    assert Path("/proc/sys/kernel/core_pattern").read_text() == world["core_before"]
    assert not Path(MARKER).exists()


def test_seccomp_denial_is_the_stop_reason_and_is_audited(world):
    assert world["states"]["seccomp"] == "killed"
    detail = world["dev"].get(f"/api/jobs/{world['jobs']['seccomp']}").json()
    assert detail["stopped_by"] == "seccomp"
    assert _finish(world, "seccomp")["security"]["seccomp_denied"] is True


def test_outbox_file_bomb_fails_with_the_quota_named(world):
    assert world["states"]["outbox_files"] == "failed"
    detail = world["dev"].get(f"/api/jobs/{world['jobs']['outbox_files']}").json()
    assert detail["stopped_by"] == "outbox_quota"
    assert _finish(world, "outbox_files")["security"]["limit"] == "outbox_files"
    assert len(world["lab"].jobs.outbox_files(world["jobs"]["outbox_files"])) <= 2002


def test_a_job_writes_nowhere_but_its_outbox_tmp_and_shm(world):
    assert world["states"]["write_everywhere"] == "succeeded", _stdout(world, "write_everywhere")
    res = json.loads(_stdout(world, "write_everywhere").strip().splitlines()[-1])
    assert sorted(res["created"]) == ["/dev/shm", "/outbox", "/tmp"]
    assert [p for p in res["opened"] if not p.startswith(("/outbox", "/tmp", "/dev/shm"))] == []


def test_the_lab_data_dir_is_0700_once_jobs_run(world):
    data_dir = world["lab"].settings.data_dir
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700 and data_dir.stat().st_uid == os.getuid()
