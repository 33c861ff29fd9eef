"""Benchmark (issue 3): file ingest through the catalog service vs DuckDB's COPY, and HTTP push.

    .venv/bin/python bench/ingest.py --rows 10000000 --push-seconds 20

File part: the same residents CSV (``ingest_file.generate``) is ingested by
``lab.ingestion.ingest_file`` on a fresh Lab (parse, validate, Parquet version, PII analysis,
catalog commit) and converted by DuckDB's ``COPY (SELECT * FROM read_csv(..)) TO '..parquet'``,
each in its own child process, so each peak RSS is the child's own (``os.wait4`` rusage).
The ratio uses the timed operation inside each child (imports and lab set-up excluded);
the child wall times are reported too.

Push part: a real server (``countylab serve``: uvicorn, one worker, background compaction on)
on 127.0.0.1; 4 client processes POST 1,000-row batches to ``/api/datasets/{id}/rows`` with a
provider's API token, first as JSON, then as Arrow IPC.  Every batch carries unique resident ids;
a reader thread here polls the dataset the way queries read it (``lab.ingestion.read_paths`` +
DuckDB) for sampled batches' first id and records response→visible lag (end of the poll that
first saw it: conservative).  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as ipc
from bench_lab import bench_lab, free_port  # noqa: E402
from ingest_file import DUCKDB, generate, run_child  # bench/ is sys.path[0] when run as a script

BATCH = 1000
PUSH_ID_BASE = 100_000_000

COUNTYLAB = """
import sys, time
from pathlib import Path
from countylab.catalog import service as catalog
from countylab.config import Settings
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
src, root = Path(sys.argv[1]), Path(sys.argv[2])
lab = Lab(Settings(data_dir=root))
lab.migrate()
with lab.tx() as s:
    org = ids.create_org(s, SYSTEM, name="县公安局", kind="department")
    ds_id = catalog.create_dataset(s, SYSTEM, name="residents", title="常住人口", org_id=org.id,
                                   privacy_unit="person", privacy_unit_column="resident_id").id
t = time.perf_counter()
v = lab.ingestion.ingest_file(SYSTEM, ds_id, src)
print(v.row_count, time.perf_counter() - t)
lab.close()
"""

# ingest_file's DuckDB child, timing the COPY statement itself
DUCKDB_TIMED = (
    DUCKDB.replace('con.execute(f"COPY', 'import time; t = time.perf_counter(); con.execute(f"COPY', 1)
    .replace("print(con.execute(", "elapsed = time.perf_counter() - t\nprint(con.execute(", 1)
    .replace(".fetchone()[0])", ".fetchone()[0], elapsed)", 1)
)


def file_ingest(work: Path, rows: int) -> dict[str, Any]:
    csv_path = work / "residents.csv"
    t = time.perf_counter()
    generate(csv_path, rows)
    gen_s = time.perf_counter() - t
    (work / "duck").mkdir()
    cl_wall, cl_rss, out = run_child(COUNTYLAB, str(csv_path), str(work / "lab"))
    got, cl_s = out.split()
    assert int(got) == rows, out
    shutil.rmtree(work / "lab")
    dk_wall, dk_rss, out = run_child(DUCKDB_TIMED, str(csv_path), str(work / "duck"))
    got, dk_s = out.split()
    assert int(got) == rows, out
    size = csv_path.stat().st_size
    csv_path.unlink()
    shutil.rmtree(work / "duck")
    return {
        "rows": rows,
        "csv_mb": round(size / 1e6, 1),
        "csv_generate_s": round(gen_s, 1),
        "countylab_ingest_s": round(float(cl_s), 2),
        "countylab_child_wall_s": round(cl_wall, 2),
        "duckdb_copy_s": round(float(dk_s), 2),
        "duckdb_child_wall_s": round(dk_wall, 2),
        "countylab_rows_per_s": round(rows / float(cl_s)),
        "duckdb_rows_per_s": round(rows / float(dk_s)),
        "file_ingest_ratio_vs_duckdb": round(float(dk_s) / float(cl_s), 3),
        "file_ingest_ratio_vs_duckdb_wall": round(dk_wall / cl_wall, 3),
        "peak_rss_mb": round(cl_rss, 1),
        "duckdb_peak_rss_mb": round(dk_rss, 1),
    }


# ------------------------------------------------------------------------------------ push ingest


def _setup_lab(data_dir: Path, seed_csv: Path) -> tuple[str, int]:
    """Fresh lab with a provider, its token and a dataset whose first version gives the schema."""
    made = bench_lab(
        data_dir,
        org="县民政局",
        username="pusher",
        role="provider",
        dataset="residents_live",
        title="实时人口",
        unit_column="resident_id",
        first_version=seed_csv,
    )
    made.lab.close()
    token, ds_id = made.token, made.dataset_id
    return token, ds_id


def _template(seed_csv: Path) -> pa.Table:
    return pa_csv.read_csv(seed_csv).slice(0, BATCH)


def _client(
    url: str,
    token: str,
    fmt: str,
    template_path: str,
    client_no: int,
    deadline: float,
    out: Any,
    markers: Any,
    sample_every: int,
    id_base: int,
) -> None:
    """One pushing client: 1,000-row batches with fresh ids until ``deadline`` (monotonic)."""
    table = pa_csv.read_csv(template_path).slice(0, BATCH)
    rows = table.to_pylist()
    for r in rows:
        r["birth_date"] = str(r["birth_date"])
        r["resident_id"] = "\x00ID\x00"
    parts = json.dumps(rows, ensure_ascii=False).split('"\\u0000ID\\u0000"')
    assert len(parts) == BATCH + 1
    headers = {"authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors = 0
    batch_no = 0
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        while time.monotonic() < deadline:
            first = id_base + (client_no * 10_000_000 + batch_no) * BATCH
            key = f"c{client_no}-b{batch_no}-{fmt}"
            if fmt == "json":
                ids = [str(first + i) for i in range(BATCH)]
                body_rows = "".join(p + i for p, i in zip(parts, ids, strict=False)) + parts[-1]
                content = b'{"idempotency_key": "' + key.encode() + b'", "rows": ' + body_rows.encode() + b"}"
                extra = {"content-type": "application/json"}
            else:
                batch = table.set_column(0, "resident_id", pa.array(range(first, first + BATCH), pa.int64()))
                sink = pa.BufferOutputStream()
                with ipc.new_stream(sink, batch.schema) as writer:
                    writer.write_table(batch)
                content = sink.getvalue().to_pybytes()
                extra = {"content-type": "application/vnd.apache.arrow.stream", "idempotency-key": key}
            t = time.monotonic()
            resp = http.post(url + "/rows", content=content, headers=extra)
            done = time.monotonic()
            if resp.status_code != 200 or resp.json().get("accepted") != BATCH:
                errors += 1
                if errors <= 3:
                    print(f"client {client_no}: {resp.status_code} {resp.text[:300]}", file=sys.stderr)
            else:
                latencies.append(done - t)
                if batch_no % sample_every == 0:
                    markers.put((first, done))
            batch_no += 1
    out.put({"batches": len(latencies), "errors": errors, "latencies": latencies})


def _reader(
    lab: Any,
    ds_id: int,
    markers: Any,
    lags: list[float],
    stop: threading.Event,
    give_up_at: list[float],
    polls: list[tuple[float, float, int]],
) -> None:
    """Poll like a query would: current read paths, DuckDB scan, look for pending marker ids."""
    from countylab.catalog import service as catalog

    con = duckdb.connect()
    pending: dict[int, float] = {}
    try:
        while not stop.is_set() or pending:
            while True:
                try:
                    marker, sent = markers.get_nowait()
                except queue.Empty:
                    break
                pending[marker] = sent
            if not pending:
                time.sleep(0.01)
                continue
            t0 = time.monotonic()
            try:
                with lab.tx() as s:
                    paths = [str(p) for p in lab.ingestion.read_paths(catalog.get_dataset(s, ds_id))]
                t1 = time.monotonic()
                wanted = list(pending)
                seen = con.execute(
                    "SELECT resident_id FROM read_parquet(?) WHERE resident_id IN "
                    "(SELECT unnest(?::BIGINT[]))",
                    [paths, wanted],
                ).fetchall()
            except Exception as exc:  # noqa: BLE001 - e.g. a stream file folded away mid-scan: retry
                polls.append((-1.0, -1.0, 0))
                if sum(1 for p in polls if p[0] < 0) <= 3:
                    print(f"reader: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
                continue
            now = time.monotonic()
            polls.append((t1 - t0, now - t1, len(paths)))
            for (marker,) in seen:
                if marker in pending:
                    lags.append(now - pending.pop(marker))
            if stop.is_set() and time.monotonic() > give_up_at[0]:
                break
    finally:
        con.close()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def push_run(
    url: str, token: str, ds_id: int, lab: Any, seed_csv: Path, fmt: str, seconds: float, clients: int
) -> dict[str, Any]:
    id_base = PUSH_ID_BASE * (1 if fmt == "json" else 10_000)  # unique resident ids across both runs
    ctx = mp.get_context("fork")
    out, markers = ctx.Queue(), ctx.Queue()
    lags: list[float] = []
    polls: list[tuple[float, float, int]] = []
    stop, give_up_at = threading.Event(), [float("inf")]
    reader = threading.Thread(
        target=_reader, args=(lab, ds_id, markers, lags, stop, give_up_at, polls), daemon=True
    )
    reader.start()
    start = time.monotonic()
    deadline = start + seconds
    procs = [
        ctx.Process(
            target=_client,
            args=(
                f"{url}/api/datasets/{ds_id}",
                token,
                fmt,
                str(seed_csv),
                n,
                deadline,
                out,
                markers,
                5,
                id_base,
            ),
        )
        for n in range(clients)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    elapsed = time.monotonic() - start
    for p in procs:
        p.join()
    give_up_at[0] = time.monotonic() + 10
    stop.set()
    reader.join(timeout=15)
    batches = sum(r["batches"] for r in results)
    latencies = [x for r in results for x in r["latencies"]]
    return {
        f"push_rows_per_s{'' if fmt == 'json' else '_arrow'}": round(batches * BATCH / elapsed),
        f"push_{fmt}_batches": batches,
        f"push_{fmt}_errors": sum(r["errors"] for r in results),
        f"push_{fmt}_seconds": round(elapsed, 2),
        f"push_{fmt}_post_p50_ms": round(1000 * (_pct(latencies, 0.5) or 0), 1),
        f"push_{fmt}_post_p99_ms": round(1000 * (_pct(latencies, 0.99) or 0), 1),
        f"push_{fmt}_visibility_samples": len(lags),
        f"push_{fmt}_visibility_p50_s": round(_pct(lags, 0.5) or -1, 3),
        f"push_{fmt}_visibility_p99_s": round(_pct(lags, 0.99) or -1, 3),
        # where a reader's poll spends its time: catalog transaction vs DuckDB scan, and files scanned
        f"push_{fmt}_reader_polls": len(polls),
        f"push_{fmt}_reader_errors": sum(1 for p in polls if p[0] < 0),
        f"push_{fmt}_reader_catalog_p50_s": round(_pct([p[0] for p in polls if p[0] >= 0], 0.5) or 0, 3),
        f"push_{fmt}_reader_catalog_max_s": round(max((p[0] for p in polls if p[0] >= 0), default=0), 3),
        f"push_{fmt}_reader_scan_p50_s": round(_pct([p[1] for p in polls if p[0] >= 0], 0.5) or 0, 3),
        f"push_{fmt}_reader_scan_max_s": round(max((p[1] for p in polls if p[0] >= 0), default=0), 3),
        f"push_{fmt}_reader_files_max": max((p[2] for p in polls if p[0] >= 0), default=0),
    }


def push_ingest(work: Path, seconds: float, clients: int, profile: Path | None) -> dict[str, Any]:
    seed_csv = work / "seed.csv"
    generate(seed_csv, 2 * BATCH)
    data_dir = work / "push-lab"
    token, ds_id = _setup_lab(data_dir, seed_csv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    countylab = Path(sys.executable).parent / "countylab"
    server = subprocess.Popen(
        [str(countylab), "serve", "--data-dir", str(data_dir), "--port", str(port)], stdout=subprocess.DEVNULL
    )
    spy: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        result: dict[str, Any] = {"push_clients": clients, "push_batch_rows": BATCH}
        from countylab.config import Settings
        from countylab.lab import Lab

        reader_lab = Lab(Settings(data_dir=data_dir))  # once, before clients fork
        for fmt in ("json", "arrow"):
            if profile is not None:
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--pid",
                        str(server.pid),
                        "-o",
                        str(profile.with_suffix(f".{fmt}.txt")),
                        "-f",
                        "raw",
                        "-r",
                        "50",
                        "-d",
                        str(int(seconds)),
                    ]
                )
            result.update(push_run(url, token, ds_id, reader_lab, seed_csv, fmt, seconds, clients))
            if spy is not None:
                spy.wait(timeout=60)
        result["push_visibility_p50_s"] = max(
            result["push_json_visibility_p50_s"], result["push_arrow_visibility_p50_s"]
        )
        result["push_visibility_p99_s"] = max(
            result["push_json_visibility_p99_s"], result["push_arrow_visibility_p99_s"]
        )
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows of the CSV for file ingest")
    ap.add_argument("--push-seconds", type=float, default=15.0, help="duration of each push run")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--skip-file", action="store_true")
    ap.add_argument("--skip-push", action="store_true")
    ap.add_argument("--py-spy", type=Path, default=None, help="record the server with py-spy (raw stacks)")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        if not args.skip_file:
            (work / "file").mkdir()
            result.update(file_ingest(work / "file", args.rows))
        if not args.skip_push:
            (work / "push").mkdir()
            result.update(push_ingest(work / "push", args.push_seconds, args.clients, args.py_spy))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
