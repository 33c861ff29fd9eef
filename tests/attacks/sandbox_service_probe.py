"""Run one sandboxed job as an unprivileged service user (``subuid`` mode) and report it as JSON.

Started by ``test_sandbox_identity.py`` through ``setpriv`` as the test service user, with the
system Python and ``PYTHONPATH`` pointing at the lab's sources: the county-server set-up, where
the lab is ``User=countylab`` with a subordinate uid range.  While the job sleeps, the host's
``/proc/<pid>/status`` of its process is read, as in the root tests.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from countylab.sandbox import SandboxResult, SandboxSpec, run_sandboxed, sandbox_available
from countylab.sandbox.identity import job_identity, launch_mode

JOB = """
import json, os, time
os.makedirs("/outbox/d")
open("/outbox/d/x.txt", "w").write("hi")
os.chmod("/outbox/d/x.txt", 0o600)
print(json.dumps([os.getuid(), os.getgid(), os.getgroups()]))
time.sleep(1.5)
"""


def _status_of(marker: bytes) -> list[str]:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if marker in cmd and b"bwrap" not in cmd and b"unshare" not in cmd:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
                return [x for x in lines if x.startswith(("Uid", "Gid", "CapEff", "NoNewPrivs"))]
        except OSError:
            continue
    return []


def main() -> None:
    root = Path(sys.argv[1])
    code = root / "code"
    code.mkdir()
    (code / "job.py").write_text(JOB)
    spec = SandboxSpec(
        command=["python3", "job.py", "SUBUIDMARK"],
        code_dir=code,
        outbox_dir=root / "outbox",
        datasets={},
        cpu_seconds=10,
        memory_mb=256,
        wall_seconds=20,
        python_prefix=Path(sys.base_prefix),
    )
    box: dict[str, SandboxResult] = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", run_sandboxed(spec)))
    thread.start()
    host: list[str] = []
    deadline = time.monotonic() + 10
    while not host and time.monotonic() < deadline:
        host = _status_of(b"SUBUIDMARK")
        time.sleep(0.05)
    thread.join()
    result = box["r"]
    outbox = result.stdout_path.parent.parent
    who = job_identity()
    print(
        json.dumps(
            {
                "mode": launch_mode(),
                "available": sandbox_available(),
                "host_uid": who.uid if who is not None else None,
                "service_uid": os.getuid(),
                "state": result.state.value,
                "stdout": result.stdout_path.read_text(),
                "stderr": result.stderr_path.read_text()[-2000:],
                "host": host,
                "security": result.security,
                "outbox": sorted(
                    [str(p.relative_to(outbox)), p.lstat().st_uid, p.read_text() if p.is_file() else None]
                    for p in outbox.rglob("*")
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
