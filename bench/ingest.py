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
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import httpx
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as ipc
from bench_lab import bench_lab, free_port  # noqa: E402
from ingest_file import DUCKDB, generate, run_child  # bench/ is sys.path[0] when run as a script

BATCH = 1000
PUSH_ID_BASE = 100_000_000
PUSH_TARGET = 100_000  # rows/s, issue 11

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

DUCKDB_TIMED = DUCKDB  # ingest_file's DuckDB child times the COPY statement itself


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


def _http_exchange(sock: socket.socket, request: bytes, buf: bytearray) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 round trip on a raw socket: (status, body).

    A lean client on purpose: httpx spent about as much CPU per request as the server's push
    path, and on 2 cores the clients' CPU is the server's loss (issue 11).
    """
    sock.sendall(request)
    while (end := buf.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    length = next((int(h.split(":", 1)[1]) for h in head[1:] if h.lower().startswith("content-length:")), 0)
    while len(buf) < end + 4 + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    body = bytes(buf[end + 4 : end + 4 + length])
    del buf[: end + 4 + length]
    return status, body


def _connection(
    host: str,
    port: int,
    path: str,
    token: str,
    fmt: str,
    table: pa.Table,
    json_parts: list[bytes],
    first_id: Any,
    tag: str,
    deadline: float,
    markers: Any,
    sample_every: int,
    result: dict[str, Any],
) -> None:
    """One keep-alive connection pushing 1,000-row batches with fresh ids until ``deadline``."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {'application/json' if fmt == 'json' else 'application/vnd.apache.arrow.stream'}\r\n"
    ).encode()
    ok = b'"accepted":%d' % BATCH
    latencies: list[float] = result["latencies"]
    buf = bytearray()
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        batch_no = 0
        while time.monotonic() < deadline:
            first = first_id(batch_no)
            key = f"{tag}-b{batch_no}"
            if fmt == "json":
                ids = [b"%d" % i for i in range(first, first + BATCH)]
                body = b"".join(
                    [b'{"idempotency_key":"', key.encode(), b'","rows":', *_interleave(json_parts, ids), b"}"]
                )
                extra = b""
            else:
                batch = table.set_column(0, "resident_id", pa.array(range(first, first + BATCH), pa.int64()))
                sink = pa.BufferOutputStream()
                with ipc.new_stream(sink, batch.schema) as writer:
                    writer.write_table(batch)
                body = sink.getvalue().to_pybytes()
                extra = f"Idempotency-Key: {key}\r\n".encode()
            request = b"".join([head, extra, b"Content-Length: %d\r\n\r\n" % len(body), body])
            t = time.monotonic()
            status, answer = _http_exchange(sock, request, buf)
            done = time.monotonic()
            if status != 200 or ok not in answer:
                result["errors"] += 1
                if result["errors"] <= 3:
                    print(f"{tag}: {status} {answer[:300]!r}", file=sys.stderr)
            else:
                latencies.append(done - t)
                if batch_no % sample_every == 0:
                    markers.put((first, done))
            batch_no += 1


def _interleave(parts: list[bytes], ids: list[bytes]) -> list[bytes]:
    out = [parts[0]]
    for value, part in zip(ids, parts[1:], strict=True):
        out += (value, part)
    return out


def _client(
    url: str,
    token: str,
    fmt: str,
    template_path: str,
    client_no: int,
    conns: int,
    deadline: float,
    out: Any,
    markers: Any,
    sample_every: int,
    id_base: int,
) -> None:
    """One client process with ``conns`` keep-alive connections (threads: they wait in recv)."""
    table = pa_csv.read_csv(template_path).slice(0, BATCH)
    rows = table.to_pylist()
    for r in rows:
        r["birth_date"] = str(r["birth_date"])
        r["resident_id"] = "\x00ID\x00"
    # the rows' JSON is encoded once; each batch only splices in its fresh ids
    json_parts = json.dumps(rows, ensure_ascii=False).encode().split(b'"\\u0000ID\\u0000"')
    assert len(json_parts) == BATCH + 1
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    result: dict[str, Any] = {"latencies": [], "errors": 0}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    threads = []
    for c in range(conns):
        slot = client_no * conns + c

        def first_id(batch_no: int, slot: int = slot) -> int:
            return id_base + (slot * 1_000_000 + batch_no) * BATCH

        threads.append(
            threading.Thread(
                target=_connection,
                args=(
                    host,
                    port,
                    parsed.path + "/rows",
                    token,
                    fmt,
                    table,
                    json_parts,
                    first_id,
                    f"c{slot}-{fmt}-{id_base}",
                    deadline,
                    markers,
                    sample_every,
                    result,
                ),
            )
        )
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    result["batches"] = len(result["latencies"])
    out.put(result)


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


def _query_load(data_dir: str, ds_id: int, deadline: float, out: Any) -> None:
    """The "under load" part: an analyst-style scan of the pushed dataset, back to back.

    One DuckDB thread over the dataset's current files (version + stream), as queries read
    it: it competes with the server for the 2 cores the way a busy lab does.
    """
    from countylab.catalog import service as catalog
    from countylab.config import Settings
    from countylab.lab import Lab

    lab = Lab(Settings(data_dir=Path(data_dir)))
    con = duckdb.connect(config={"threads": 1})
    done = 0
    while time.monotonic() < deadline:
        with lab.tx() as s:
            paths = [str(p) for p in lab.ingestion.read_paths(catalog.get_dataset(s, ds_id))]
        try:
            con.execute(
                "SELECT town, count(*), avg(income), max(resident_id) FROM read_parquet(?) GROUP BY town",
                [paths],
            ).fetchall()
            done += 1
        except duckdb.Error:  # a stream file folded away mid-scan: take the next listing
            pass
    con.close()
    lab.close()
    out.put(done)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def push_run(
    url: str,
    token: str,
    ds_id: int,
    lab: Any,
    seed_csv: Path,
    fmt: str,
    seconds: float,
    clients: int,
    conns: int,
    label: str,
    server_pid: int,
    data_dir: Path,
    with_load: bool,
) -> dict[str, Any]:
    # unique resident ids across all runs
    id_base = PUSH_ID_BASE * {"json": 1, "load": 100, "arrow": 10_000}.get(label, 1_000_000)
    ctx = mp.get_context("fork")
    out, markers, load_out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    lags: list[float] = []
    polls: list[tuple[float, float, int]] = []
    stop, give_up_at = threading.Event(), [float("inf")]
    reader = threading.Thread(
        target=_reader, args=(lab, ds_id, markers, lags, stop, give_up_at, polls), daemon=True
    )
    reader.start()
    server_cpu0 = _cpu_s(server_pid)
    start = time.monotonic()
    deadline = start + seconds
    procs = [
        ctx.Process(
            target=_client,
            args=(f"{url}/api/datasets/{ds_id}", token, fmt, str(seed_csv), n, conns, deadline, out, markers)
            + (5 * conns, id_base),
        )
        for n in range(clients)
    ]
    loader = None
    if with_load:
        loader = ctx.Process(target=_query_load, args=(str(data_dir), ds_id, deadline, load_out))
        loader.start()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    elapsed = time.monotonic() - start
    server_cpu = _cpu_s(server_pid) - server_cpu0
    for p in procs:
        p.join()
    queries = load_out.get() if loader is not None else 0
    if loader is not None:
        loader.join()
    give_up_at[0] = time.monotonic() + 10
    stop.set()
    reader.join(timeout=15)
    batches = sum(r["batches"] for r in results)
    latencies = [x for r in results for x in r["latencies"]]
    client_cpu = sum(r["cpu_s"] for r in results)
    p = f"push_{label}"
    return {
        f"{p}_rows_per_s": round(batches * BATCH / elapsed),
        f"{p}_connections": clients * conns,
        f"{p}_concurrent_queries": queries,
        f"{p}_batches": batches,
        f"{p}_errors": sum(r["errors"] for r in results),
        f"{p}_seconds": round(elapsed, 2),
        # CPU seconds spent per 1,000 pushed rows: the clients must stay well below the server
        f"{p}_server_cpu_s": round(server_cpu, 2),
        f"{p}_client_cpu_s": round(client_cpu, 2),
        f"{p}_client_vs_server_cpu": round(client_cpu / server_cpu, 3) if server_cpu else None,
        f"{p}_post_p50_ms": round(1000 * (_pct(latencies, 0.5) or 0), 1),
        f"{p}_post_p99_ms": round(1000 * (_pct(latencies, 0.99) or 0), 1),
        f"{p}_visibility_samples": len(lags),
        f"{p}_visibility_p50_s": round(_pct(lags, 0.5) or -1, 3),
        f"{p}_visibility_p99_s": round(_pct(lags, 0.99) or -1, 3),
        # where a reader's poll spends its time: catalog transaction vs DuckDB scan, and files scanned
        f"{p}_reader_polls": len(polls),
        f"{p}_reader_errors": sum(1 for p in polls if p[0] < 0),
        f"{p}_reader_catalog_p50_s": round(_pct([p[0] for p in polls if p[0] >= 0], 0.5) or 0, 3),
        f"{p}_reader_scan_p50_s": round(_pct([p[1] for p in polls if p[0] >= 0], 0.5) or 0, 3),
        f"{p}_reader_files_max": max((p[2] for p in polls if p[0] >= 0), default=0),
    }


# (label, format, connections per client process, concurrent query load): the two JSON
# figures (peak: 4 connections; under load: 4x the connections while analyst queries scan the
# same dataset) and the Arrow IPC push beside them
PHASES = (("json", "json", 1, False), ("load", "json", 4, True), ("arrow", "arrow", 1, False))


def push_ingest(
    work: Path, seconds: float, clients: int, profile: Path | None, phases: tuple[str, ...]
) -> dict[str, Any]:
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
        started = time.monotonic() + 120  # a busy 2-core machine can take half a minute and more
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > started or server.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.1)
        result: dict[str, Any] = {"push_clients": clients, "push_batch_rows": BATCH}
        from countylab.config import Settings
        from countylab.lab import Lab

        reader_lab = Lab(Settings(data_dir=data_dir))  # once, before clients fork
        chosen = [phase for phase in PHASES if phase[0] in phases]
        for label, fmt, conns, with_load in chosen:
            if profile is not None:
                spy = subprocess.Popen(
                    [
                        shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--pid",
                        str(server.pid),
                        "-o",
                        str(profile.with_suffix(f".{label}.txt")),
                        "-f",
                        "raw",
                        "-r",
                        "50",
                        "-d",
                        str(int(seconds)),
                    ]
                )
            result.update(
                push_run(
                    url,
                    token,
                    ds_id,
                    reader_lab,
                    seed_csv,
                    fmt,
                    seconds,
                    clients,
                    conns,
                    label,
                    server.pid,
                    data_dir,
                    with_load,
                )
            )
            if spy is not None:
                spy.wait(timeout=60)
        # the names: JSON at its peak and under load (4x the connections), Arrow alongside
        for label, name in (("json", ""), ("load", "_under_load"), ("arrow", "_arrow")):
            if f"push_{label}_rows_per_s" in result:
                result[f"push_rows_per_s{name}"] = result[f"push_{label}_rows_per_s"]
        for label in ("json", "load"):
            if f"push_{label}_rows_per_s" in result:
                result[f"push_{label}_vs_target"] = round(result[f"push_{label}_rows_per_s"] / PUSH_TARGET, 3)
        if "push_json_rows_per_s" in result and "push_arrow_rows_per_s" in result:
            result["push_json_vs_arrow"] = round(
                result["push_json_rows_per_s"] / result["push_arrow_rows_per_s"], 3
            )
        result["push_visibility_p50_s"] = max(result[f"push_{p[0]}_visibility_p50_s"] for p in chosen)
        result["push_visibility_p99_s"] = max(result[f"push_{p[0]}_visibility_p99_s"] for p in chosen)
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
    ap.add_argument(
        "--phases", default="json,load,arrow", help="push phases to run: json (peak), load, arrow"
    )
    args = ap.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        if not args.skip_file:
            (work / "file").mkdir()
            result.update(file_ingest(work / "file", args.rows))
        if not args.skip_push:
            (work / "push").mkdir()
            result.update(
                push_ingest(
                    work / "push", args.push_seconds, args.clients, args.py_spy, tuple(args.phases.split(","))
                )
            )
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
