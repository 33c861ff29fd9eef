"""Start-up cost of the sandbox: median of 50 ``python -c pass``, bare versus fully sandboxed.

Fully sandboxed means what every job gets: namespaces, seccomp, a per-job cgroup (created and
removed each run), rlimits, the watchdog and log capture.  A third variant without cgroups shows
what joining the cgroup costs: on cgroup v1 every migration into a cgroup waits for an RCU grace
period once the kernel's writer fast path has gone idle (~5-15 ms).  Bare and sandboxed runs
alternate so background load hits all variants alike.  Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from countylab.sandbox import SandboxSpec, run_sandboxed, sandbox_available
from countylab.sandbox.runner import default_cgroup_host

RUNS = 50


def _ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def measure(runs: int = RUNS) -> dict[str, object]:
    """The figures :func:`main` prints (also imported by ``bench/sandbox.py``)."""
    if not sandbox_available():
        return {"error": "bubblewrap not available"}
    python = str(Path(sys.prefix) / "bin" / "python")
    host = default_cgroup_host()
    times: dict[str, list[float]] = {"bare": [], "full": [], "no_cgroups": []}
    protections: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "code"
        code.mkdir()
        for i in range(runs):
            t0 = time.perf_counter()
            subprocess.run([python, "-c", "pass"], check=True, env={})
            times["bare"].append(time.perf_counter() - t0)
            for variant, cgroups in (("full", host), ("no_cgroups", None)):
                spec = SandboxSpec(
                    command=["python", "-c", "pass"], code_dir=code, outbox_dir=Path(tmp) / f"{variant}{i}",
                    datasets={}, cpu_seconds=10, memory_mb=512, wall_seconds=30,
                )  # fmt: skip
                t0 = time.perf_counter()
                result = run_sandboxed(spec, cgroups=cgroups)
                times[variant].append(time.perf_counter() - t0)
                assert result.exit_code == 0, result.stderr_path.read_text()
                if variant == "full":
                    protections = result.protections
    bare = _ms(times["bare"])
    return {
        "bare_ms": bare,
        "sandboxed_ms": _ms(times["full"]),
        "sandbox_overhead_ms": round(_ms(times["full"]) - bare, 2),
        "overhead_without_cgroups_ms": round(_ms(times["no_cgroups"]) - bare, 2),
        "runs": runs,
        "cgroups": host.version if host is not None else None,
        "protections": protections,
    }  # fmt: skip


def main() -> None:
    print(json.dumps(measure()))


if __name__ == "__main__":
    main()
