"""The empirical DP audit (bench/dp_audit.py) in its quick mode: no mechanism leaks beyond its claim.

Neighbouring datasets (with and without one extreme person) go through ``POST /api/query``
many times for COUNT, SUM, AVG, a quantile, partition selection and a join with public tables;
the lower bound on ε that the released numbers prove must not exceed the ε each query claims.
The quick mode has too few trials to prove much below the claim, but a broken mechanism (a
join that multiplies a person's rows, a sensitivity off by k) separates the two datasets so
clearly that even these trials show a bound above it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MECHANISMS = {"count", "sum", "avg", "quantile", "partition_selection", "join_public"}


def test_quick_audit_finds_no_mechanism_leaking_more_than_it_claims(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dp_audit.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["mechanisms"]) == MECHANISMS
    for name, m in result["mechanisms"].items():
        assert m["trials"] >= 30 and m["confidence"] == 0.95, name
        assert 0.0 <= m["eps_lower_bound"] <= m["eps_claimed"], (name, m)
        assert m["audit_ok"] is True, (name, m)
        # the audit had the power to catch a gross leak: a perfect test would prove more than ε
        assert m["eps_max_certifiable"] > m["eps_claimed"], (name, m)
    # the neighbours really differ by one extreme person (k = 2 rows at the bound): the means move
    means = result["mechanisms"]
    assert means["count"]["mean_D"] > means["count"]["mean_D_prime"]
    assert means["partition_selection"]["released_D"] >= means["partition_selection"]["released_D_prime"]
    assert result["audit_ok"] is True
