"""Load benchmark (issue 11): 1, 10 and 50 logged-in users on a real ``countylab serve``.

Each backend (SQLite, then PostgreSQL) gets a fresh demo lab (``setup_demo``, size tiny) plus
load accounts (developer and provider) spread over ``PROJECTS`` projects with the grants of the
demo project ``elderly-care-demand``, and one dataset they push to.  The server is the real
command, ``countylab serve`` on 127.0.0.1 (``--workers N`` when asked), started as a child process; the
users log in through ``POST /api/login`` (session cookie and CSRF token, as the browser does).

Every user then loops: think for a random 0.5–1.0 s (seeded), then one request drawn from MIX:
the main pages and API routes (catalog list and detail, dataset page, projects, jobs, budgets, DP
console, airlock), now and then a DP query (``POST /api/query``, cycling through a few query
texts: after the first of each the answer cache answers, as for any repeated query, and every
query is still audited) and now and then a push of 20 rows.  One request of each kind warms the
server first; each level runs for ``--seconds`` after a 2 s ramp; latency is measured from just
before the request is written to the last byte of the answer.  Any status >= 400, broken
connection or timeout is an error.

The load generator is one asyncio process with a minimal HTTP/1.1 client (one keep-alive
connection per user): httpx spent about as much CPU per request as the server does, and on two
cores the generator's CPU is the server's loss.  Its CPU time is reported next to the server's.

Output: a table on stderr, then one JSON line: per backend and level p50/p95/p99 (ms), requests,
errors, throughput and CPU, and ``p95_ms_50_users`` (the worst backend), ``sqlite_p95_ms_50_users``,
``postgresql_p95_ms_50_users`` and ``errors`` (total).  ``--profile DIR`` runs the server under
``bench/sampler.py`` and writes where its busy samples went (one file per backend).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_lab import free_port  # noqa: E402

PASSWORD = "load-password-1"
PROJECT = "elderly-care-demand"
PROJECTS = 10
THINK = (0.5, 1.0)
WARMUP_S = 2.0
TIMEOUT_S = 30.0
IDLE_S = 4.0
DP_QUERIES = [
    "SELECT town_code, COUNT(*) FROM residents GROUP BY town_code",
    "SELECT town_code, COUNT(*) FROM residents WHERE age >= 60 GROUP BY town_code",
    "SELECT town_code, COUNT(*) FROM residents WHERE age >= 80 GROUP BY town_code",
    "SELECT COUNT(*) FROM residents WHERE lives_alone",
]

# (name, weight): what a user does next
MIX: list[tuple[str, int]] = [
    ("home_page", 4),
    ("catalog_page", 10),
    ("catalog_api", 8),
    ("dataset_api", 8),
    ("dataset_page", 10),
    ("projects_page", 5),
    ("projects_api", 5),
    ("jobs_page", 6),
    ("jobs_api", 6),
    ("budget_api", 6),
    ("query_page", 4),
    ("airlock_page", 5),
    ("airlock_api", 5),
    ("dp_query", 2),
    ("push", 2),
]


# -- a small HTTP/1.1 client ------------------------------------------------------------------
class Conn:
    """One keep-alive connection to the server (reconnects when the server closes it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], list[str], bytes]:
        if self.writer is not None and time.monotonic() - self.used > IDLE_S:
            await self.close()  # uvicorn drops keep-alive connections idle for 5 s
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        got: dict[str, str] = {}
        cookies: list[str] = []
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            got[name] = value
        if "content-length" in got:
            data = await self.reader.readexactly(int(got["content-length"]))
        elif got.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(parts)
        else:
            data = b""
        self.used = time.monotonic()
        if got.get("connection", "").lower() == "close":
            await self.close()
        return status, got, cookies, data


@dataclass
class User:
    name: str
    conn: Conn
    project_id: int = 0
    cookie: str = ""
    csrf: str = ""


@dataclass
class World:
    project_ids: list[int]
    dataset_ids: list[int]
    push_dataset_id: int


@dataclass
class LevelResult:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)  # a few error descriptions


# -- the lab ------------------------------------------------------------------------------------
def prepare_lab(data_dir: Path, database_url: str, users: int) -> World:
    """A demo lab (tiny) with load accounts and a dataset to push to; the lab is closed after."""
    from sqlalchemy import select

    from countylab.bootstrap import setup_demo
    from countylab.catalog import service as catalog
    from countylab.config import Settings
    from countylab.identity import projects as prj
    from countylab.identity import service as ids
    from countylab.identity.access import SYSTEM
    from countylab.lab import Lab
    from countylab.storage.models import Dataset, Org, Project
    from countylab.storage.models import User as UserRow

    lab = Lab(Settings(data_dir=data_dir, database_url=database_url))
    try:
        setup_demo(lab, size="tiny")
        with lab.tx() as s:
            org = s.execute(select(Org).where(Org.name == "县民政局")).scalar_one()
            project = s.execute(select(Project).where(Project.slug == PROJECT)).scalar_one()
            owner = ids.principal_for(s, s.get(UserRow, project.created_by), "system")
            for n in range(users):
                ids.create_user(
                    s,
                    SYSTEM,
                    username=f"load{n:03d}",
                    password=PASSWORD,
                    display_name=f"压测用户{n}",
                    roles=["developer", "provider"],
                    org_id=org.id,
                )
            # users spread over PROJECTS projects with the demo project's grants (a county has
            # several; the DP gateway limits concurrent queries per project)
            project_ids = [project.id]
            for k in range(1, PROJECTS):
                extra = prj.create_project(s, owner, slug=f"load-{k}", title=f"压测项目{k}")
                for g in prj.project_grants(s, project.id):
                    prj.grant_dataset(s, SYSTEM, extra.id, g.dataset_id)
                project_ids.append(extra.id)
            for n in range(users):
                prj.add_member(s, owner, project_ids[n % PROJECTS], username=f"load{n:03d}")
            pushed = catalog.create_dataset(
                s, SYSTEM, name="load_events", title="压测推送", org_id=org.id, privacy_unit="none"
            )
            push_id = pushed.id
        first = data_dir / "load_events.csv"
        first.write_text("event_id,town_code,value\n0,T01,1\n")
        lab.ingestion.ingest_file(SYSTEM, push_id, first)
        with lab.read() as s:
            all_ids = list(s.execute(select(Dataset.id)).scalars())
        return World(project_ids, all_ids, push_id)
    finally:
        lab.close()


@contextmanager
def postgres() -> Iterator[str]:
    """``COUNTYLAB_TEST_PG_URL`` when set, else a throw-away server like scripts/test.sh starts;
    either way a fresh database for this run, dropped at the end."""
    import psycopg

    given = os.environ.get("COUNTYLAB_TEST_PG_URL")
    pgdir = None
    if given:
        base = given
    else:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: float(p.parent.name))
        if not bins:
            raise SystemExit("PostgreSQL server binaries not found (scripts/system-deps.sh test)")
        pgbin = bins[-1]
        pgdir = Path(tempfile.mkdtemp(prefix="countylab-loadpg."))
        port = free_port()
        as_pg: list[str] = []
        if os.getuid() == 0:
            shutil.chown(pgdir, "postgres")
            as_pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *as_pg,
                str(pgbin / "initdb"),
                "-D",
                f"{pgdir}/data",
                "-U",
                "countylab",
                "--auth=trust",
                "-E",
                "UTF8",
            ]
            + ["--locale=C.UTF-8"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {pgdir} -c max_connections=300"
        subprocess.run(
            [
                *as_pg,
                str(pgbin / "pg_ctl"),
                "-D",
                f"{pgdir}/data",
                "-l",
                f"{pgdir}/log",
                "-w",
                "-o",
                opts,
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        base = f"postgresql://countylab@127.0.0.1:{port}/postgres"
    name = f"countylab_load_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if pgdir is not None:
            subprocess.run(
                [*as_pg, str(pgbin / "pg_ctl"), "-D", f"{pgdir}/data", "-m", "immediate", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            shutil.rmtree(pgdir, ignore_errors=True)


# -- the server ---------------------------------------------------------------------------------
def start_server(
    data_dir: Path, database_url: str, port: int, workers: int, profile: Path | None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "COUNTYLAB_DATABASE_URL": database_url}
    args = ["countylab.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    if profile is not None:
        cmd = [sys.executable, str(HERE / "sampler.py"), str(profile), "--", *args]
    else:
        cmd = [sys.executable, "-m", *args]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
        if server.poll() is not None:
            break
    server.terminate()
    raise SystemExit("server did not start")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def process_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its children that still run (``--workers``), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


# -- the users ----------------------------------------------------------------------------------
async def login(user: User) -> None:
    body = json.dumps({"username": user.name, "password": PASSWORD}).encode()
    status, _h, cookies, data = await user.conn.request(
        "POST", "/api/login", {"Content-Type": "application/json"}, body
    )
    if status != 200:
        raise SystemExit(f"login of {user.name} failed: {status} {data[:200]!r}")
    user.csrf = json.loads(data)["csrf_token"]
    user.cookie = "; ".join(c.split(";", 1)[0] for c in cookies)


def plan(name: str, pid: int, world: World, rng: random.Random, counter: list[int]) -> tuple[str, str, bytes]:
    did = rng.choice(world.dataset_ids)
    if name == "home_page":
        return "GET", "/", b""
    if name == "catalog_page":
        return "GET", "/datasets", b""
    if name == "catalog_api":
        return "GET", "/api/datasets", b""
    if name == "dataset_api":
        return "GET", f"/api/datasets/{did}", b""
    if name == "dataset_page":
        return "GET", f"/datasets/{did}", b""
    if name == "projects_page":
        return "GET", "/projects", b""
    if name == "projects_api":
        return "GET", "/api/projects", b""
    if name == "jobs_page":
        return "GET", f"/jobs?project={pid}", b""
    if name == "jobs_api":
        return "GET", "/api/jobs", b""
    if name == "budget_api":
        return "GET", f"/api/projects/{pid}/budget", b""
    if name == "query_page":
        return "GET", f"/query?project_id={pid}", b""
    if name == "airlock_page":
        return "GET", "/airlock", b""
    if name == "airlock_api":
        return "GET", "/api/airlock/requests", b""
    if name == "dp_query":
        sql = rng.choice(DP_QUERIES)
        return "POST", "/api/query", json.dumps({"project_id": pid, "sql": sql, "epsilon": 0.05}).encode()
    if name == "push":
        counter[0] += 1
        base = counter[0] * 100
        rows = [{"event_id": base + i, "town_code": f"T{i % 9:02d}", "value": i} for i in range(20)]
        return "POST", f"/api/datasets/{world.push_dataset_id}/rows", json.dumps({"rows": rows}).encode()
    raise ValueError(name)


async def run_level(
    users: list[User], world: World, seconds: float, seed: int, think: tuple[float, float]
) -> tuple[LevelResult, float]:
    result = LevelResult()
    names = [n for n, _w in MIX]
    weights = [w for _n, w in MIX]
    counter = [seed * 1_000_000]
    start = time.monotonic()
    measure_from = start + WARMUP_S
    stop_at = measure_from + seconds

    async def one(user: User, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, think[1]))  # users arrive spread over one think time
        while time.monotonic() < stop_at:
            await asyncio.sleep(rng.uniform(*think))
            name = rng.choices(names, weights)[0]
            method, path, body = plan(name, user.project_id, world, rng, counter)
            headers = {"Cookie": user.cookie}
            if method != "GET":
                headers |= {"Content-Type": "application/json", "X-CSRF-Token": user.csrf}
            t0 = time.monotonic()
            try:
                status, _h, _c, data = await asyncio.wait_for(
                    user.conn.request(method, path, headers, body), TIMEOUT_S
                )
                error = f"{name}: {status} {data[:160]!r}" if status >= 400 else ""
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                await user.conn.close()
                error = f"{name}: {type(exc).__name__} {exc}"
            took = time.monotonic() - t0
            if t0 < measure_from:
                continue
            if error:
                result.errors[name] = result.errors.get(name, 0) + 1
                if len(result.samples) < 5:
                    result.samples.append(error)
            else:
                result.latencies.setdefault(name, []).append(took)

    rngs = [random.Random(f"{seed}:{u.name}") for u in users]
    await asyncio.gather(*(one(u, r) for u, r in zip(users, rngs, strict=True)))
    return result, time.monotonic() - measure_from


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summarise(result: LevelResult, took_s: float, server_cpu: float, client_cpu: float) -> dict[str, Any]:
    every = [v for vs in result.latencies.values() for v in vs]
    errors = sum(result.errors.values())
    return {
        "requests": len(every) + errors,
        "errors": errors,
        "rps": round((len(every) + errors) / took_s, 1),
        "p50_ms": round(pct(every, 50) * 1000, 1),
        "p95_ms": round(pct(every, 95) * 1000, 1),
        "p99_ms": round(pct(every, 99) * 1000, 1),
        "server_cpu_pct": round(100 * server_cpu / took_s, 1),
        "client_cpu_pct": round(100 * client_cpu / took_s, 1),
        "per_route_p95_ms": {
            k: round(pct(v, 95) * 1000, 1) for k, v in sorted(result.latencies.items()) if v
        },
        "error_samples": result.samples,
    }


def client_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def drive(
    port: int, world: World, levels: list[int], seconds: float, seed: int, server_pid: int
) -> dict[str, Any]:
    users = [User(f"load{n:03d}", Conn(port), world.project_ids[n % PROJECTS]) for n in range(max(levels))]
    for user in users:
        await login(user)
    out: dict[str, Any] = {}
    # pages that fail for every user whatever the load (a product bug, not a load effect) are
    # left out of the mix and named in the report
    broken = []
    for did in list(world.dataset_ids):
        status, _h, _c, data = await users[0].conn.request(
            "GET", f"/datasets/{did}", {"Cookie": users[0].cookie}
        )
        if status != 200:
            broken.append({"path": f"/datasets/{did}", "status": status})
            world.dataset_ids.remove(did)
    out["left_out"] = broken
    # one request of each kind first: first-use costs (the DP gateway's worker and OpenDP
    # import, a dataset's prepared version, template compilation) belong to a server's start
    warm = random.Random(seed)
    for name, _w in MIX:
        method, path, body = plan(name, users[0].project_id, world, warm, [seed * 1_000_000 - 1_000])
        headers = {
            "Cookie": users[0].cookie,
            "Content-Type": "application/json",
            "X-CSRF-Token": users[0].csrf,
        }
        await users[0].conn.request(method, path, headers, body)
    for level in levels:
        active = users[:level]
        s0, c0 = process_cpu_s(server_pid), client_cpu_s()
        t0 = time.monotonic()
        result, took = await run_level(active, world, seconds, seed + level, THINK)
        # CPU over the whole level (warm-up included), divided by its whole wall time
        wall = time.monotonic() - t0
        figures = summarise(result, took, 0, 0)
        figures["server_cpu_pct"] = round(100 * (process_cpu_s(server_pid) - s0) / wall, 1)
        figures["client_cpu_pct"] = round(100 * (client_cpu_s() - c0) / wall, 1)
        out[str(level)] = figures
        print(
            f"  {level:>3} users: {figures['requests']:>5} req {figures['rps']:>6}/s  "
            f"p50 {figures['p50_ms']:>7} ms  p95 {figures['p95_ms']:>7} ms  p99 {figures['p99_ms']:>7} ms  "
            f"errors {figures['errors']}  server CPU {figures['server_cpu_pct']}%  "
            f"client CPU {figures['client_cpu_pct']}%",
            file=sys.stderr,
        )
        for sample in figures["error_samples"]:
            print(f"      error: {sample}", file=sys.stderr)
    for user in users:
        await user.conn.close()
    return out


def run_backend(
    backend: str, database_url: str, args: argparse.Namespace, levels: list[int]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"countylab-load-{backend}.") as tmp:
        data_dir = Path(tmp) / "lab"
        url = database_url or f"sqlite:///{data_dir / 'countylab.db'}"
        t0 = time.monotonic()
        world = prepare_lab(data_dir, url, max(levels))
        print(f"{backend}: lab ready in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        port = free_port()
        profile = (Path(args.profile) / f"{backend}-w{args.workers}.json") if args.profile else None
        if profile is not None:
            profile.parent.mkdir(parents=True, exist_ok=True)
        server = start_server(data_dir, url, port, args.workers, profile)
        try:
            return asyncio.run(drive(port, world, levels, args.seconds, args.seed, server.pid))
        finally:
            stop_server(server)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per level")
    p.add_argument("--levels", default="1,10,50")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--workers", type=int, default=1, help="countylab serve --workers")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--profile", default="", help="folder for the server's sampling profiles")
    args = p.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    report: dict[str, Any] = {
        "bench": "load",
        "think_s": list(THINK),
        "seconds_per_level": args.seconds,
        "warmup_s": WARMUP_S,
        "workers": args.workers,
        "mix": dict(MIX),
    }
    errors = 0
    worst: float | None = None
    for backend in args.backends.split(","):
        if backend == "sqlite":
            figures = run_backend(backend, "", args, levels)
        elif backend == "postgresql":
            with postgres() as url:
                figures = run_backend(backend, url, args, levels)
        else:
            raise SystemExit(f"unknown backend {backend}")
        report[backend] = figures
        errors += sum(f["errors"] for k, f in figures.items() if k.isdigit())
        top = str(max(levels))
        report[f"{backend}_p95_ms_{top}_users"] = figures[top]["p95_ms"]
        worst = max(worst or 0.0, figures[top]["p95_ms"])
    if "50" in {str(x) for x in levels}:
        report["p95_ms_50_users"] = worst
    report["errors"] = errors
    report["note"] = "each user thinks 0.5-1.0 s (seeded) between requests; one run per level"
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
