"""Showcase benchmark (issue 14): 20 concurrent visitors on the public home page and a published
12-widget dashboard with the county map, on a real ``countylab serve``.

Builds a tiny demo county (``setup_demo``: its stories, map and dashboards; the demo's DP
statistics computed in process), then composes and publishes one more dashboard of 12 widgets —
the demo's elderly-care and traffic widgets together: two DP maps, DP bars with intervals, DP and
open figure cards, the released model table and open-data lines.  The server is the real command,
``countylab serve`` on 127.0.0.1, as a child process.

Each of ``--visitors`` visitors (async httpx, one keep-alive connection each) loops for
``--seconds``: the public home page, the dashboard page, then what the page fetches that is not a
static asset (the dashboard's JSON and the town boundaries GeoJSON the map draws), reading each
page for ``--think`` seconds (seeded, 0.5–1.0 s as in ``bench/load.py``; ``--think 0 0`` sends
back to back).  Then the same
visitors load the plain ``/login`` page for the same time: the baseline of what the server costs for
a page that reads nothing.  Latency is from just before the request to the last byte; a status
>= 400 or a broken connection is an error.  The DP query log is counted before and after: DP
metrics are served from the cache, so no query may run during the load (asserted).

Output: per page p50/p95 on stderr, then ONE JSON line with ``p95_ms_20_visitors`` (the worst
showcase page), ``errors``, per-page figures, the ``/login`` baseline and the ratios to it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_lab import free_port  # noqa: E402

SLUG = "bench-twelve"


def build(data_dir: Path) -> dict[str, int]:
    """The demo county plus the 12-widget dashboard; returns the DP query count afterwards."""
    from sqlalchemy import func, select

    from countylab.bootstrap import setup_demo
    from countylab.config import Settings
    from countylab.identity import service as ids
    from countylab.lab import Lab
    from countylab.privacy.gateway import QueryGateway
    from countylab.privacy.limits import GatewayConfig
    from countylab.privacy.spec import EngineSettings, SandboxLimits
    from countylab.privacy.worker import InProcessRunner
    from countylab.showcase import demo_dashboards as demo
    from countylab.showcase import metrics
    from countylab.storage.models import User
    from countylab.storage.privacy_models import QueryRun

    lab = Lab(Settings(data_dir=data_dir))
    lab.migrate()
    es = EngineSettings(limits=SandboxLimits())
    lab.gateway = QueryGateway(
        lab.tx, lab.ingestion, es, InProcessRunner(es.limits, es.bound_seed), GatewayConfig()
    )
    setup_demo(lab, size="tiny", progress=lambda _m: None)
    with lab.read() as s:
        users = {u.username: u.id for u in s.execute(select(User)).scalars()}
        steward = ids.principal_for(s, ids.get_user(s, users["steward"]), "session")
        operator = ids.principal_for(s, ids.get_user(s, users["operator"]), "session")
        by_name = {m.name: m.id for m in metrics.list_all(s)}
        from countylab.storage.airlock_models import ReleaseFile

        first_csv = s.execute(
            select(ReleaseFile.id).where(ReleaseFile.released_path.is_not(None)).order_by(ReleaseFile.id)
        ).scalar()
    ds = demo._ids(lab)
    specs = demo.elderly_widgets(ds, by_name["alone_by_town"], by_name["alone_80"], first_csv)
    specs += demo.traffic_widgets(ds)
    specs = specs[:12]
    assert len(specs) == 12 and any(w.kind == "map" for w in specs), [w.kind for w in specs]
    board = demo.compose(lab, operator, SLUG, "基准看板（12 个图表）", "性能基准", specs)
    demo.publish(lab, operator, steward, board)
    with lab.read() as s:
        runs = int(s.execute(select(func.count()).select_from(QueryRun)).scalar_one())
    lab.close()
    return {"board": board, "query_runs": runs, "widgets": len(specs)}


def query_runs(data_dir: Path) -> int:
    from sqlalchemy import func, select

    from countylab.config import Settings
    from countylab.lab import Lab
    from countylab.storage.privacy_models import QueryRun

    lab = Lab(Settings(data_dir=data_dir))
    try:
        with lab.read() as s:
            return int(s.execute(select(func.count()).select_from(QueryRun)).scalar_one())
    finally:
        lab.close()


async def visitors(
    base: str, pages: list[str], n: int, seconds: float, think: tuple[float, float]
) -> tuple[dict[str, list[float]], int]:
    import httpx

    times: dict[str, list[float]] = {p: [] for p in pages}
    errors = 0
    stop = time.monotonic() + seconds

    async def one(k: int) -> None:
        nonlocal errors
        rng = random.Random(k)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            while time.monotonic() < stop:
                for p in pages:
                    t = time.perf_counter()
                    try:
                        r = await client.get(p)
                        await r.aread()
                        if r.status_code >= 400:
                            errors += 1
                    except httpx.HTTPError:
                        errors += 1
                        continue
                    times[p].append((time.perf_counter() - t) * 1000)
                    if not p.startswith("/api/") and "/api/" not in p and think[1] > 0:
                        await asyncio.sleep(rng.uniform(*think))  # a visitor reads the page

    await asyncio.gather(*(one(k) for k in range(n)))
    return times, errors


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true", help="keep the lab folder (printed on stderr)")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(0.5, 1.0),
        metavar=("MIN", "MAX"),
        help="seconds a visitor reads a page before the next (0 0: back to back)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-showcase-"))
    data_dir = tmp / "lab"
    try:
        t0 = time.monotonic()
        built = build(data_dir)
        print(f"lab built in {time.monotonic() - t0:.0f} s: {built}", file=sys.stderr)
        port = free_port()
        env = {**os.environ, "COUNTYLAB_LOG_LEVEL": "warning"}
        cmd = [str(ROOT / ".venv/bin/countylab"), "serve", "--data-dir", str(data_dir), "--port", str(port)]
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            import httpx

            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = server.stderr.read().decode()[-2000:] if server.stderr else ""
                    raise SystemExit(f"server did not start: {tail}")
                time.sleep(0.2)
            pages = [
                "/public",
                f"/public/dashboards/{SLUG}",
                f"/api/public/dashboards/{SLUG}",
                "/public/api/map/boundaries/town",
            ]
            for p in pages + ["/login"]:  # warm: templates compiled, caches filled
                httpx.get(base + p, timeout=30)
            before = query_runs(data_dir)
            times, errors = asyncio.run(visitors(base, pages, args.visitors, args.seconds, tuple(args.think)))
            after = query_runs(data_dir)
            base_times, base_errors = asyncio.run(
                visitors(base, ["/login"], args.visitors, args.seconds, tuple(args.think))
            )
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        login = base_times["/login"]
        per_page = {}
        for p, xs in times.items():
            per_page[p] = {
                "requests": len(xs),
                "p50_ms": pct(xs, 0.5),
                "p95_ms": pct(xs, 0.95),
                "p95_vs_login": round(pct(xs, 0.95) / max(pct(login, 0.95), 0.001), 2),
            }
            print(
                f"{p:45s} n={len(xs):6d} p50={pct(xs, 0.5):7.1f} ms p95={pct(xs, 0.95):7.1f} ms",
                file=sys.stderr,
            )
        print(
            f"{'/login (baseline)':45s} n={len(login):6d} p50={pct(login, 0.5):7.1f} ms "
            f"p95={pct(login, 0.95):7.1f} ms",
            file=sys.stderr,
        )
        showcase = [p for p in pages if not p.startswith("/public/api/map")]
        worst = max(pct(times[p], 0.95) for p in showcase)
        all_showcase = [x for p in pages for x in times[p]]
        result = {
            "bench": "showcase",
            "visitors": args.visitors,
            "seconds": args.seconds,
            "think_s": list(args.think),
            "widgets": built["widgets"],
            "p95_ms_20_visitors": worst,
            "p95_ms_all_requests": pct(all_showcase, 0.95),
            "p50_ms_all_requests": pct(all_showcase, 0.5),
            "errors": errors + base_errors,
            "requests": len(all_showcase),
            "requests_per_s": round(len(all_showcase) / args.seconds, 1),
            "pages": per_page,
            "login_baseline": {"requests": len(login), "p50_ms": pct(login, 0.5), "p95_ms": pct(login, 0.95)},
            "p95_ratio_to_login": round(worst / max(pct(login, 0.95), 0.001), 2),
            "dp_queries_during_load": after - before,
            "cpus": os.cpu_count(),
        }
        assert after == before, f"{after - before} DP queries ran while the pages were viewed"
        print(json.dumps(result, ensure_ascii=False))
    finally:
        if args.keep:
            print(f"lab kept in {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
