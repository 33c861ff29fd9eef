"""Empirical DP audit (issue 9, item 8): measure, through the gateway, how much one person leaks.

    .venv/bin/python bench/dp_audit.py            # default: 300 trials per dataset and mechanism
    .venv/bin/python bench/dp_audit.py --quick    # 30 trials: a smoke test in about a minute

For each mechanism (COUNT, SUM, AVG, a quantile, DP partition selection over keys that are not
public, and a three-table join with two public tables) the audit builds two neighbouring
datasets, D' (everyone but one person) and D (the same plus that person), where the person is
an extreme one: more rows than the steward's k (so bounding must cut them), every value at the
clamping bound, the key of a group that sits right at the partition-selection threshold.  The
same question is then asked many times on each dataset through ``POST /api/query`` of the real
app (the gateway, its engine and OpenDP noise; time-bucket padding off, in-process runner), and
the released numbers are compared.

The bound is the standard one of DP auditing (Jagielski et al. 2020, Nasr et al. 2021): for any
output set S, an (ε, δ)-DP mechanism has P[M(D) ∈ S] ≤ e^ε · P[M(D') ∈ S] + δ, so
ε ≥ ln((TPR − δ) / FPR) for the threshold test "output > t" (or "< t", and with D, D' swapped).
Half of the trials choose the best test; the other half give a one-sided Clopper–Pearson lower
bound on TPR and upper bound on FPR (each at α/2, so the bound holds with the stated
confidence).  ``audit_ok`` = lower bound ≤ claimed ε.  A lower bound near the claim means the
noise is as tight as promised; one above it means a mechanism leaks more than it says.
``eps_max_certifiable`` is the largest bound the trial count could ever show (a perfect test):
with 300 trials a mechanism leaking several times its claim would be caught, a small excess
would need far more trials than a few minutes of the gateway allow (about 70 ms a query).

Honest cache and budget handling: every trial asks a different text (an always-true filter
``v > -1 - i``; every v is ≥ 0 in both datasets), so the answer cache cannot return an earlier
answer and each trial gets fresh noise from an unchanged mechanism.  The audit asks thousands
of ε = 1 questions, far beyond any budget, so between batches it renews the privacy ledgers as
the operator (deleting the spent rows of the project, analyst, dataset-year and daily-count
ledgers); budgets are what the audit is *not* measuring.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import beta

HERE = Path(__file__).resolve().parent
EPSILON = 1.0  # the ε each audited query claims
K = 2  # rows kept per person (steward's bound); the extreme person has more
WHALE_ROWS = 5
LOW, HIGH = 0.0, 100.0  # clamping bounds of v
SENTINEL = -1e18  # "group not released" in partition selection
BATCH = 4  # queries between ledger renewals (a project's budget on 一般2级 is ε = 5)

QUERIES = {
    "count": "SELECT COUNT(*) FROM {t} WHERE v > {noop}",
    "sum": "SELECT SUM(v) FROM {t} WHERE v > {noop}",
    "avg": "SELECT AVG(v) FROM {t} WHERE v > {noop}",
    "quantile": "SELECT MEDIAN(v) FROM {t} WHERE v > {noop}",
    "partition_selection": "SELECT grp, COUNT(*) FROM {t} WHERE v > {noop} GROUP BY grp",
    # public table first, then the private one, then another public one: the order whose
    # sensitivity the old planner got wrong (it bounded at 1 instead of k)
    "join_public": (
        "SELECT COUNT(*) FROM audit_regions g JOIN {t} p ON g.region = p.region "
        "JOIN audit_kinds c ON p.kind = c.kind WHERE p.v > {noop}"
    ),
}


# -- neighbouring datasets ----------------------------------------------------------------------


def people(edge_units: int) -> list[dict[str, Any]]:
    """D': one person more at v = 0 than at v = 100 (so the median flips when the whale's two
    rows arrive), ``edge_units`` of them (1 row each) in group EDGE, the rest in COMMON."""
    rows = []
    n = max(39, edge_units + 5) | 1  # odd: one more person at LOW than at HIGH
    for i in range(n):
        v = LOW if i <= n // 2 else HIGH
        rows.append(
            {
                "pid": f"P{i:03d}",
                "v": v,
                "grp": "EDGE" if i < edge_units else "COMMON",
                "region": f"R{i % 3}",
                "kind": f"K{i % 2}",
            }
        )
    return rows


def whale() -> list[dict[str, Any]]:
    """The extreme person: more rows than k, each at the upper bound, in the EDGE group."""
    return [
        {"pid": "WHALE", "v": HIGH, "grp": "EDGE", "region": "R0", "kind": "K0"} for _ in range(WHALE_ROWS)
    ]


@dataclass
class Audit:
    lab: Any
    client: Any
    project_id: int
    org_id: int
    work: Path
    names: dict[str, str]  # "with"/"without" -> dataset name


def _csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def add_dataset(
    lab: Any, org_id: int, work: Path, name: str, rows: Sequence[dict[str, Any]], *, unit: str | None
) -> int:
    """Register, upload and grade a dataset as its department and the steward would."""
    from countylab.catalog import service as catalog
    from countylab.identity.access import SYSTEM

    with lab.tx() as s:
        ds = catalog.create_dataset(
            s,
            SYSTEM,
            name=name,
            title=name,
            org_id=org_id,
            privacy_unit="person" if unit else "none",
            privacy_unit_column=unit,
            key_columns=[] if unit else [next(iter(rows[0]))],
        )
        ds.dp_max_rows_per_unit = K
        dataset_id = ds.id
    lab.ingestion.ingest_file(SYSTEM, dataset_id, _csv(work / f"{name}.csv", rows))
    with lab.tx() as s:
        if unit:
            catalog.set_column(s, SYSTEM, dataset_id, "v", lower=LOW, upper=HIGH)
            catalog.set_column(s, SYSTEM, dataset_id, "region", joinable_to=["audit_regions.region"])
            catalog.set_column(s, SYSTEM, dataset_id, "kind", joinable_to=["audit_kinds.kind"])
        catalog.set_grade(s, SYSTEM, dataset_id, "general_1" if unit is None else "general_2", "DP audit")
    return dataset_id


def build(work: Path) -> Audit:
    sys.path.insert(0, str(HERE))
    from bench_lab import bench_lab

    from countylab.identity import projects as prj
    from countylab.identity.access import SYSTEM
    from countylab.privacy.gateway import QueryGateway
    from countylab.privacy.limits import GatewayConfig
    from countylab.privacy.spec import EngineSettings, SandboxLimits
    from countylab.privacy.worker import InProcessRunner

    regions = [{"region": f"R{i}", "name": f"区{i}"} for i in range(3)]
    made = bench_lab(
        work / "lab",
        org="县统计局",
        username="auditor",
        role="developer",
        dataset="audit_regions",
        title="区域",
        unit_column="region",
        first_version=_csv(work / "regions.csv", regions),
    )
    lab = made.lab
    from countylab.catalog import service as catalog

    with lab.tx() as s:  # the first dataset of bench_lab is a public lookup table here
        ds = catalog.get_dataset(s, made.dataset_id)
        ds.privacy_unit, ds.privacy_unit_column, ds.key_columns = "none", None, ["region"]
        catalog.set_grade(s, SYSTEM, ds.id, "general_1", "DP audit: public lookup table")
    add_dataset(lab, made.org_id, work, "audit_kinds", [{"kind": "K0"}, {"kind": "K1"}], unit=None)
    settings = EngineSettings(time_bucket_s=0.0, limits=SandboxLimits())
    config = GatewayConfig(project_concurrency=64, rate_per_minute=10**7, wall_clock_s=120.0)
    lab.gateway = QueryGateway(lab.tx, lab.ingestion, settings, InProcessRunner(settings.limits), config)
    with lab.tx() as s:
        project = prj.create_project(s, SYSTEM, slug="dp-audit", title="差分隐私审计", org_id=made.org_id)
        prj.add_member(s, SYSTEM, project.id, username="auditor")
        for name in ("audit_regions", "audit_kinds"):
            prj.grant_dataset(s, SYSTEM, project.id, catalog.get_by_name(s, name).id)
        project_id = project.id
    from fastapi.testclient import TestClient

    from countylab.web.app import create_app

    client = TestClient(
        create_app(lab), headers={"Authorization": f"Bearer {made.token}"}, raise_server_exceptions=False
    )
    return Audit(lab, client, project_id, made.org_id, work, {})


def neighbours(audit: Audit, edge_units: int) -> None:
    from countylab.catalog import service as catalog
    from countylab.identity import projects as prj
    from countylab.identity.access import SYSTEM

    base = people(edge_units)
    for side, rows in (("without", base), ("with", base + whale())):
        name = f"audit_{side}_{edge_units}"
        add_dataset(audit.lab, audit.org_id, audit.work, name, rows, unit="pid")
        with audit.lab.tx() as s:
            prj.grant_dataset(s, SYSTEM, audit.project_id, catalog.get_by_name(s, name).id)
        audit.names[side] = name


def renew_ledgers(audit: Audit) -> None:
    """Operator action between batches: forget what was spent (the audit measures noise, not budgets)."""
    from sqlalchemy import delete

    from countylab.storage import privacy_models as pm

    with audit.lab.tx() as s:
        for model in ("PrivacyBudget", "DatasetBudget", "DailyQueries", "BudgetTopup"):
            table = getattr(pm, model, None)
            if table is not None:
                s.execute(delete(table))


# -- running the trials -------------------------------------------------------------------------

_counter = [0]


def ask(audit: Audit, sql: str) -> dict[str, Any]:
    if _counter[0] % BATCH == 0:
        renew_ledgers(audit)
    _counter[0] += 1
    resp = audit.client.post(
        "/api/query", json={"sql": sql, "project_id": audit.project_id, "epsilon": EPSILON}
    )
    if resp.status_code != 200:
        raise RuntimeError(f"the gateway answered {resp.status_code}: {resp.text[:300]}")
    body: dict[str, Any] = resp.json()
    if body.get("cached"):
        raise RuntimeError("a trial was served from the cache: the audit would count one answer twice")
    return body


def statistic(mechanism: str, body: dict[str, Any]) -> float:
    rows = body["rows"]
    if mechanism == "partition_selection":
        for row in rows:
            if row[0] == "EDGE":
                return float(row[1])
        return SENTINEL
    value = rows[0][-1] if rows else None
    return SENTINEL if value is None else float(value)


def trials(audit: Audit, mechanism: str, side: str, n: int, offset: int) -> tuple[np.ndarray, float]:
    template = QUERIES[mechanism]
    out, delta = [], 0.0
    for i in range(n):
        body = ask(audit, template.format(t=audit.names[side], noop=f"-1 - {offset + i}"))
        out.append(statistic(mechanism, body))
        delta = max(delta, float(body.get("delta_spent") or 0.0))
    return np.asarray(out), delta


def partition_threshold(audit: Audit) -> float:
    """The threshold the engine announces for a grouped count at this ε (from its notes)."""
    body = ask(audit, QUERIES["partition_selection"].format(t=audit.names["without"], noop="-1000000"))
    for note in body.get("notes", []):
        found = re.search(r"threshold\D*([0-9]+(?:\.[0-9]+)?)", note)
        if found:
            return float(found.group(1))
    raise RuntimeError(f"no partition-selection threshold in the notes: {body.get('notes')}")


# -- the bound ----------------------------------------------------------------------------------


def cp_lower(k: int, n: int, alpha: float) -> float:
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def cp_upper(k: int, n: int, alpha: float) -> float:
    return 1.0 if k == n else float(beta.ppf(1 - alpha, k + 1, n - k))


Test = tuple[float, bool, bool]  # threshold, "greater" (else "less"), D is the first (else D')


def _hits(x: np.ndarray, t: float, greater: bool) -> int:
    return int(np.sum(x > t) if greater else np.sum(x < t))


def _bound(p_hits: int, n_p: int, q_hits: int, n_q: int, delta: float, alpha: float) -> float:
    tpr, fpr = cp_lower(p_hits, n_p, alpha), cp_upper(q_hits, n_q, alpha)
    return math.log((tpr - delta) / fpr) if tpr - delta > 0 and fpr > 0 else 0.0


def best_test(x: np.ndarray, y: np.ndarray, delta: float, alpha: float) -> Test:
    """The threshold test whose Clopper–Pearson bound is highest on the selection half.

    Scoring by the bound (not by the raw ratio) avoids tests deep in a tail, where a ratio of
    two tiny counts looks large but certifies nothing on fresh samples.
    """
    values = np.unique(np.concatenate([x, y]))
    if len(values) > 400:
        values = np.unique(np.quantile(values, np.linspace(0, 1, 400)))
    best: tuple[float, Test] = (-math.inf, (float(values[0]), True, True))
    for t in values:
        for greater in (True, False):
            hx, hy = _hits(x, t, greater), _hits(y, t, greater)
            for first, (p, q, n_p, n_q) in (
                (True, (hx, hy, len(x), len(y))),
                (False, (hy, hx, len(y), len(x))),
            ):
                score = _bound(p, n_p, q, n_q, delta, alpha)
                if score > best[0]:
                    best = (score, (float(t), greater, first))
    return best[1]


def lower_bound(x: np.ndarray, y: np.ndarray, delta: float, confidence: float) -> dict[str, Any]:
    """ε lower bound from D-samples ``x`` and D'-samples ``y``: select on halves 1, bound on halves 2."""
    hx, hy = len(x) // 2, len(y) // 2
    alpha = (1 - confidence) / 2
    t, greater, first = best_test(x[:hx], y[:hy], delta, alpha)
    x2, y2 = x[hx:], y[hy:]
    p_sample, q_sample = (x2, y2) if first else (y2, x2)
    tpr = cp_lower(_hits(p_sample, t, greater), len(p_sample), alpha)
    fpr = cp_upper(_hits(q_sample, t, greater), len(q_sample), alpha)
    eps = math.log((tpr - delta) / fpr) if tpr - delta > 0 and fpr > 0 else 0.0
    return {
        "eps_lower_bound": round(max(0.0, eps), 4),
        "test": f"{'D' if first else 'D′'} output {'>' if greater else '<'} {t:.6g}",
        "tpr_lower": round(tpr, 4),
        "fpr_upper": round(fpr, 4),
    }


def audit_mechanism(
    audit: Audit, mechanism: str, n: int, confidence: float, progress: Callable[[str], None]
) -> dict[str, Any]:
    started = time.perf_counter()
    x, d1 = trials(audit, mechanism, "with", n, 0)
    y, d2 = trials(audit, mechanism, "without", n, n)
    delta = max(d1, d2)
    alpha, half = (1 - confidence) / 2, n - n // 2
    result = {
        "eps_claimed": EPSILON,
        "delta_claimed": delta,
        **lower_bound(x, y, delta, confidence),
        "eps_max_certifiable": round(math.log(cp_lower(half, half, alpha) / cp_upper(0, half, alpha)), 3),
        "trials": n,
        "confidence": confidence,
        "mean_D": round(float(np.mean(x[x > SENTINEL])) if np.any(x > SENTINEL) else float("nan"), 3),
        "mean_D_prime": round(float(np.mean(y[y > SENTINEL])) if np.any(y > SENTINEL) else float("nan"), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if mechanism == "partition_selection":
        result["released_D"] = round(float(np.mean(x > SENTINEL)), 4)
        result["released_D_prime"] = round(float(np.mean(y > SENTINEL)), 4)
    result["audit_ok"] = result["eps_lower_bound"] <= EPSILON
    progress(f"{mechanism}: {json.dumps(result, ensure_ascii=False)}")
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=300, help="trials per dataset (D and D') and mechanism")
    ap.add_argument("--quick", action="store_true", help="30 trials: a smoke test in about a minute")
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--mechanisms", default=",".join(QUERIES), help="comma-separated subset")
    args = ap.parse_args(argv)
    n = 30 if args.quick else args.trials
    started = time.perf_counter()

    def progress(msg: str) -> None:
        print(f"[dp_audit {time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    # the lab's files on tmpfs where there is one: fsync speed is not what the audit measures
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="dp-audit-", dir=shm if shm.is_dir() else None) as tmp:
        audit = build(Path(tmp))
        neighbours(audit, 10)
        threshold = partition_threshold(audit)
        edge = max(1, min(200, round(threshold) - K // 2))  # D' just below the threshold, D just above
        neighbours(audit, edge)
        progress(f"partition-selection threshold {threshold:g}: EDGE has {edge} people in D', {edge}+1 in D")
        results = {
            m: audit_mechanism(audit, m, n, args.confidence, progress) for m in args.mechanisms.split(",")
        }
        audit.lab.gateway.close()
        audit.lab.close()
    out = {
        "bench": "dp_audit",
        "mechanisms": results,
        "trials_per_dataset": n,
        "confidence": args.confidence,
        "extreme_unit": f"{WHALE_ROWS} rows (k = {K}) at the upper bound {HIGH:g}, in the EDGE group",
        "seconds": round(time.perf_counter() - started, 1),
        "audit_ok": all(r["audit_ok"] for r in results.values()),
    }
    print(json.dumps(out, ensure_ascii=False))
    return out


if __name__ == "__main__":
    main()
