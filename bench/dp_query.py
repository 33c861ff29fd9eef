"""Benchmark (issues 4 and 9): DP queries through countylab, measured against like work.

    .venv/bin/python bench/dp_query.py                          # make bench: 1M rows, API at 1M
    .venv/bin/python bench/dp_query.py --rows 10000000          # full size: 1M and 10M, baselines at 10M
    .venv/bin/python bench/dp_query.py --rows 10000000 --with-100m   # + 100M-row hourly traffic table
    .venv/bin/python bench/dp_query.py --quick                  # smoke run (tests): 20k rows, seconds

Prints one JSON line.  Per size (``sizes``): DuckDB's own table copy vs countylab's preparation of
the version (``prepare_vs_duckdb_copy``), the warm DP query with time-bucket padding off
(``dp_ms``) and on (``dp_padded_ms``) vs raw DuckDB over the **same prepared table**
(``raw_same_layout_ms``; ``dp_vs_raw_duckdb``) and over the Parquet file (``raw_parquet_ms``),
the cost of appending a pushed batch, and the worker's peak RSS under the lab's default memory
limit.  See ``dp_layout.py`` for how each figure is taken and bench/README.md for the figures.

Baselines run in their own virtualenvs (``bench/.venv-smartnoise``, ``bench/.venv-opendp-polars``,
created here on first use) as child processes printing JSON: the same file, query, total ε and
clamping bounds.  ``speedup_vs_*`` = baseline median ÷ our median *with* padding (as shipped);
``mre_ratio_vs_smartnoise`` = our mean relative error ÷ SmartNoise's (over every cell, averaged
over the runs).  With the API part the same query goes end to end through ``POST /api/query`` of
a real server on a 1M-row dataset (a WHERE constant varies per run: identical queries are cached).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from countylab.privacy.spec import ColumnKind, ColumnPolicy, TableSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dp_layout import DEFAULT_MEMORY, measure  # noqa: E402
from dp_traffic import RAW_SQL as TRAFFIC_RAW_SQL  # noqa: E402
from dp_traffic import SQL as TRAFFIC_SQL  # noqa: E402
from dp_traffic import generate_traffic, traffic_spec  # noqa: E402

TOWNS = tuple(f"镇{i:02d}" for i in range(12))
EPSILON, INCOME_MAX, AGE_MAX = 1.0, 500_000.0, 110.0
SQL = "SELECT town, COUNT(*), SUM(income), AVG(age) FROM residents GROUP BY town"


def generate(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    chunk = 2_000_000
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        table = pa.table(
            {
                "pid": np.arange(start, start + n, dtype=np.int64),
                "town": pa.array(np.array(TOWNS)[rng.integers(0, len(TOWNS), n)]),
                "income": rng.lognormal(10.0, 0.8, n),
                "age": rng.integers(0, 100, n, dtype=np.int32),
            }
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def spec(path: Path) -> TableSpec:
    return TableSpec(
        "residents",
        (str(path),),
        "pid",
        1,
        {
            "pid": ColumnPolicy(ColumnKind.IDENTIFIER),
            "town": ColumnPolicy(ColumnKind.CATEGORY, public_keys=TOWNS),
            "income": ColumnPolicy(ColumnKind.NUMERIC, 0.0, INCOME_MAX),
            "age": ColumnPolicy(ColumnKind.NUMERIC, 0.0, AGE_MAX),
        },
        "bench",
    )


HERE = Path(__file__).resolve().parent
BASELINES = {
    "smartnoise": (["smartnoise-sql", "duckdb", "pyarrow"], "import snsql, duckdb", "smartnoise_query.py"),
    "opendp-polars": (
        ["opendp[polars]", "pyarrow"],
        "import opendp.prelude, polars",
        "opendp_polars_query.py",
    ),
}


def baseline_python(name: str) -> tuple[Path | None, str]:
    """The baseline's interpreter, creating its venv on first use; (None, why) if that fails."""
    packages, check, _ = BASELINES[name]
    venv = HERE / f".venv-{name}"
    python = venv / "bin" / "python"
    try:
        check_cmd = [str(python), "-c", check]
        if python.exists() and subprocess.run(check_cmd, capture_output=True).returncode == 0:
            return python, ""
        print(f"[dp_query] installing {' '.join(packages)} into {venv} …", file=sys.stderr)
        if not python.exists():
            subprocess.run(["python3", "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages],
            check=True,
            capture_output=True,
            timeout=900,
        )
        subprocess.run([str(python), "-c", check], check=True, capture_output=True)
        return python, ""
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{name} baseline skipped: could not install {packages} ({type(exc).__name__})"


def run_baseline(name: str, path: Path, rows: int, runs: int) -> tuple[dict[str, Any] | None, str]:
    python, why = baseline_python(name)
    if python is None:
        return None, why
    script = HERE / "baselines" / BASELINES[name][2]
    extra = ["--groups", str(len(TOWNS))] if "opendp" in name else []
    proc = subprocess.run(
        [
            str(python),
            str(script),
            "--parquet",
            str(path),
            "--rows",
            str(rows),
            "--runs",
            str(runs),
            "--epsilon",
            str(EPSILON),
            "--income-max",
            str(INCOME_MAX),
            "--age-max",
            str(AGE_MAX),
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        return None, f"{name} baseline failed: {proc.stderr.strip().splitlines()[-1:]}"
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out, ""


def exact_answer(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[float, float, float]]:
    clamped = (
        f"SELECT town, COUNT(*), SUM(LEAST(GREATEST(income, 0), {INCOME_MAX})), "
        f"AVG(LEAST(GREATEST(age, 0), {AGE_MAX})) FROM residents GROUP BY town"
    )
    return {r[0]: (float(r[1]), float(r[2]), float(r[3])) for r in con.execute(clamped).fetchall()}


def mean_relative_error(
    answers: list[list[list[Any]]], exact: dict[str, tuple[float, float, float]]
) -> float:
    """Mean over runs and cells (town × COUNT/SUM/AVG) of |noisy − exact| / |exact|; missing cells count 1."""
    errors = []
    for answer in answers:
        got = {str(r[0]): r[1:] for r in answer}
        for town, truth in exact.items():
            for i, true_value in enumerate(truth):
                if town not in got or got[town][i] is None:
                    errors.append(1.0)
                else:
                    errors.append(abs(float(got[town][i]) - true_value) / abs(true_value))
    return statistics.fmean(errors)


def api_latency(work: Path, path: Path, runs: int) -> tuple[float | None, str]:
    """p50 of ``POST /api/query`` on a real server over a 1M-row dataset; (None, why) if unavailable."""
    import httpx

    from countylab.catalog import service as catalog
    from countylab.identity import projects as prj
    from countylab.identity.access import SYSTEM
    from countylab.privacy import budget

    sys.path.insert(0, str(HERE))
    from bench_lab import bench_lab, free_port

    data_dir = work / "api-lab"
    made = bench_lab(
        data_dir,
        org="县统计局",
        username="analyst",
        role="developer",
        dataset="residents",
        title="常住人口",
        unit_column="pid",
        first_version=path,
    )
    lab, token, ds_id, org_id = made.lab, made.token, made.dataset_id, made.org_id
    with lab.tx() as s:
        catalog.upsert_key_set(s, SYSTEM, name="towns", title="乡镇", values=list(TOWNS))
        catalog.set_column(s, SYSTEM, ds_id, "town", key_set="towns")
        catalog.set_column(s, SYSTEM, ds_id, "income", lower=0.0, upper=INCOME_MAX)
        catalog.set_column(s, SYSTEM, ds_id, "age", lower=0.0, upper=AGE_MAX)
        project = prj.create_project(s, SYSTEM, slug="bench", title="基准测试", org_id=org_id)
        project_id = project.id
        prj.add_member(s, SYSTEM, project_id, username="analyst")
        prj.grant_dataset(s, SYSTEM, project_id, ds_id)
    epsilon = EPSILON
    try:
        with lab.tx() as s:
            budget.set_limit(s, SYSTEM, project_id, ds_id, epsilon=EPSILON * (runs + 2), delta=None)
    except Exception:  # noqa: BLE001 - the grade caps the budget: spend less per query (time is the same)
        from countylab.catalog.grading import Grade
        from countylab.policy import POLICY
        from countylab.storage.models import Dataset

        with lab.tx() as s:
            rules = POLICY[Grade(s.get(Dataset, ds_id).grade)].budget  # type: ignore[union-attr]
        epsilon = max(rules.min_epsilon, min(0.05, rules.epsilon_per_project / (runs + 2)))
        runs = max(3, min(runs, int(rules.epsilon_per_project / epsilon) - 2))  # within the budget
    lab.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    countylab = Path(sys.executable).parent / "countylab"
    server = subprocess.Popen(
        [str(countylab), "serve", "--data-dir", str(data_dir), "--port", str(port)], stdout=subprocess.DEVNULL
    )
    try:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=120) as http:
            for _ in range(300):
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)

            def ask(k: int) -> httpx.Response:
                sql = SQL.replace(" GROUP BY", f" WHERE age >= {k} GROUP BY")
                body = {"sql": sql, "epsilon": epsilon, "project_id": project_id}
                return http.post("/api/query", json=body)

            first = ask(99)  # warm-up: worker start, materialisation
            if first.status_code in (404, 405):
                return None, "POST /api/query does not exist yet"
            if first.status_code != 200:
                return None, f"POST /api/query answered {first.status_code}: {first.text[:200]}"
            times = []
            for k in range(runs):
                t = time.perf_counter()
                resp = ask(k)
                times.append(time.perf_counter() - t)
                if resp.status_code != 200:
                    return None, f"POST /api/query answered {resp.status_code}: {resp.text[:200]}"
            return statistics.median(times), f"ε={epsilon} per query, {runs} distinct queries"
    finally:
        server.terminate()
        server.wait(timeout=30)


def residents_figures(work: Path, rows: int, args: argparse.Namespace, keep: bool) -> dict[str, Any]:
    path = work / f"residents-{rows}.parquet"
    generate(path, rows)
    figures = measure(
        work=work,
        parquet=path,
        spec=spec(path),
        sql=SQL,
        raw_sql=SQL,
        epsilon=EPSILON,
        runs=args.runs,
        bucket=args.bucket,
        batch_rows=args.batch,
        keep_answers=keep,
    )
    figures["parquet"] = path
    return figures


def traffic_figures(work: Path, rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """The 100M-row GROUP BY under the lab's memory limit; any failure is reported, not raised."""
    path = work / "traffic.parquet"
    t = time.perf_counter()
    generate_traffic(path, rows)
    out: dict[str, Any] = {"generate_s": round(time.perf_counter() - t, 1)}
    try:
        measure(
            into=out,
            work=work,
            parquet=path,
            spec=traffic_spec(path),
            sql=TRAFFIC_SQL,
            raw_sql=TRAFFIC_RAW_SQL,
            epsilon=EPSILON,
            runs=max(1, min(args.runs, 3)),
            bucket=args.bucket,
            batch_rows=args.batch,
            reps=1,
        )
    except Exception as exc:  # noqa: BLE001 - the figure is whether it works
        out["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    outside = Path(".tmp").exists() or (work / ".tmp").exists()
    out["ok"] = "dp_ms" in out and "raw_same_layout_ms" in out and not outside
    path.unlink(missing_ok=True)
    return out


def _public(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k not in ("answers", "parquet", "exact")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--rows", type=int, default=1_000_000, help="largest residents table (1M is also measured)"
    )
    ap.add_argument("--runs", type=int, default=5, help="timed runs per contender (median; MRE over all)")
    ap.add_argument("--bucket", type=float, default=0.05, help="timing-defence bucket in seconds")
    ap.add_argument("--batch", type=int, default=1000, help="rows of the appended (pushed) batch")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--no-api", action="store_true")
    ap.add_argument("--api-runs", type=int, default=20)
    ap.add_argument("--with-100m", action="store_true", help="also the 100M-row traffic table (~15 min)")
    ap.add_argument("--big-rows", type=int, default=100_000_000, help="rows of the traffic table")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20k rows, no baselines, no API")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.runs, args.batch, args.no_baselines, args.no_api = 20_000, 3, 100, True, True
    notes: list[str] = []
    out: dict[str, Any] = {
        "rows": args.rows,
        "epsilon_total": EPSILON,
        "bounds": {"income": [0, INCOME_MAX], "age": [0, AGE_MAX]},
        "memory_limit": DEFAULT_MEMORY,
        "time_bucket_ms": args.bucket * 1000,
    }
    sizes = sorted({min(args.rows, 1_000_000), args.rows})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        per_size = {n: residents_figures(work, n, args, keep=n == args.rows) for n in sizes}
        top = per_size[args.rows]
        out["sizes"] = {_label(n): _public(f) for n, f in per_size.items()}
        for key in ("dp_vs_raw_duckdb", "dp_vs_raw_duckdb_padded", "dp_vs_raw_parquet"):
            out[key] = top[key]
            out[f"{key}_by_size"] = {_label(n): f[key] for n, f in per_size.items()}
        out["prepare_vs_duckdb_copy"] = top["prepare_vs_duckdb_copy"]
        out["worker_peak_mb"] = top["worker_peak_mb"]
        if args.rows >= 10_000_000:
            out["worker_peak_mb_10m"] = (
                per_size[10_000_000]["worker_peak_mb"] if 10_000_000 in per_size else None
            )
        out["append"] = {
            _label(n): {
                "batch_rows": f.get("append_rows"),
                "append_ms": f.get("append_ms"),
                "prepare_s": f["prepare_s"],
            }
            for n, f in per_size.items()
        }
        big: dict[str, Any] | None = None
        if args.with_100m:
            big = traffic_figures(work, args.big_rows, args)
            out["traffic_100m"] = big
            out["rows_100m_ok"] = bool(big.get("ok"))
        else:
            out["rows_100m_ok"] = None
            notes.append("100M part not run (pass --with-100m)")
        out["growth"] = _growth(per_size, big)
        exact = _exact(top["parquet"])
        our_mre = mean_relative_error(top["answers"], exact)
        out["mre"] = round(our_mre, 6)
        for name, key in (("smartnoise", "smartnoise"), ("opendp-polars", "opendp_polars")):
            if args.no_baselines:
                out[f"speedup_vs_{key}"] = None
                continue
            result, why = run_baseline(name, top["parquet"], args.rows, args.runs)
            if result is None:
                notes.append(why)
                out[f"speedup_vs_{key}"] = None
                continue
            mre = mean_relative_error(result["answers"], exact)
            out.update(
                {
                    f"{key}_ms": round(result["median_s"] * 1000, 1),
                    f"speedup_vs_{key}": round(result["median_s"] * 1000 / top["dp_padded_ms"], 2),
                    f"speedup_vs_{key}_unpadded": round(result["median_s"] * 1000 / top["dp_ms"], 2),
                    f"{key}_mre": round(mre, 6),
                    f"{key}_peak_rss_mb": result.get("peak_rss_mb"),
                    f"{key}_epsilon_total": result.get("epsilon_total"),
                }
            )
            if name == "smartnoise":
                out["mre_ratio_vs_smartnoise"] = round(our_mre / mre, 3)
        out.setdefault("mre_ratio_vs_smartnoise", None)
        out["api_p50_ms_1m"] = None
        if not args.no_api:
            path = per_size[min(sizes)]["parquet"] if min(sizes) == 1_000_000 else work / "api.parquet"
            if not path.exists():
                generate(path, 1_000_000)
            try:
                p50, note = api_latency(work, path, args.api_runs)
            except Exception as exc:  # noqa: BLE001 - report, do not lose the other figures
                p50, note = None, f"API benchmark failed: {type(exc).__name__}: {str(exc)[:200]}"
            out["api_p50_ms_1m"] = round(p50 * 1000, 1) if p50 is not None else None
            notes.append(f"api: {note}")
    out["peak_rss_mb_parent"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["notes"] = notes
    print(json.dumps(out, ensure_ascii=False))


def _label(n: int) -> str:
    return f"{n // 1_000_000}m" if n >= 1_000_000 and n % 1_000_000 == 0 else str(n)


def _growth(per_size: dict[int, dict[str, Any]], big: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("dp_ms", "raw_same_layout_ms", "prepare_s", "duckdb_copy_s", "append_ms", "worker_peak_mb")
    rows = {_label(n): f for n, f in per_size.items()}
    if big is not None and big.get("ok"):
        rows[_label(big["rows"]) + "_traffic"] = big
    return {k: {label: f.get(k) for label, f in rows.items()} for k in keys}


def _exact(path: Path) -> dict[str, tuple[float, float, float]]:
    raw = duckdb.connect()
    raw.execute(f"SET threads=2; CREATE VIEW residents AS SELECT * FROM read_parquet('{path}')")
    try:
        return exact_answer(raw)
    finally:
        raw.close()


if __name__ == "__main__":
    main()
