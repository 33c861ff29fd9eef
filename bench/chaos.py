"""Chaos: SIGKILL the server at random moments while 4 clients work; check the invariants each time.

A small demo lab (``countylab demo --size tiny``) is served by ``countylab serve`` on 127.0.0.1.
Four client threads, each with its own API token, work through the SDK all the time:

* **pusher** (provider): 5-row batches with an idempotency key, retried with the same key until
  acknowledged;
* **uploader** (provider): small CSV files appended as new versions of another dataset;
* **developer**: submits short sandboxed jobs and, once one succeeded, a release request for it;
* **reviewer**: the checker votes on the review queue; the developer runs DP queries.

Every ``--min-up``..``--max-up`` seconds the whole server process group gets SIGKILL; it is
started again at once.  After each restart (server answering) the invariants are checked on the
data folder itself:

1. every acknowledged push is present exactly once, and no push twice;
2. no version is half-written: each version row's files exist, read, and hold its row count;
   each acknowledged upload is a version;
3. no job ran twice (at most one finished attempt; one ``job.start`` per attempt) and none is
   lost (every acknowledged job exists; at the end every one is finished);
4. no budget is overspent, every ledger equals the sum of its charges, and no charge lacks a
   recorded outcome (a ``query_runs`` row still ``running`` after the wall clock plus grace);
5. no release request holds two votes of one checker in one round;
6. ``countylab audit verify`` passes.

Ends with one JSON line: ``kills``, ``invariant_violations`` (0 expected), each violation found,
counts of acknowledged operations and timings.  Run: ``.venv/bin/python bench/chaos.py``;
``--workers 2`` serves with two processes, ``--postgres`` keeps the metadata in a throw-away
PostgreSQL cluster (started and stopped here, as ``scripts/test.sh`` does).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
JOB_SCRIPT = "import time\ntime.sleep(0.5)\nopen('/outbox/out.txt', 'w').write('chaos ok\\n')\n"
JOB_SPEC = (
    "version: 1\nactions:\n  main:\n    run: python main.py\n    datasets: []\n"
    "    outputs: [{path: out.txt, kind: text}]\n    resources: {cpu: 1, memory_mb: 256, time_s: 30}\n"
)
#: a query_runs row may stay "running" this long after its start (the DP wall clock is set to 10 s)
DP_WALL_CLOCK_S = 10.0
DP_GRACE_S = DP_WALL_CLOCK_S * 2 + 30 + 15  # the orphan horizon (privacy/stale_runs.py) + its period


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Server:
    """``countylab serve`` in its own process group: SIGKILL reaches every worker of it."""

    def __init__(self, data_dir: Path, env: dict[str, str], workers: int, logfile: Path) -> None:
        self.data_dir, self.env, self.workers, self.logfile = data_dir, env, workers, logfile
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> float:
        t0 = time.monotonic()
        argv = [
            PY,
            "-m",
            "countylab.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
        ]
        argv += ["--workers", str(self.workers)]
        with self.logfile.open("ab") as out:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=out, start_new_session=True)
        import httpx

        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() - t0 > timeout_s:
                raise SystemExit(f"server did not start; see {self.logfile}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Ledger:
    """What the clients were told (acknowledged), the only truth the invariants may rely on."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    pushes: set[tuple[int, int]] = field(default_factory=set)  # (client, seq) acknowledged
    sent_pushes: int = 0
    uploads: set[int] = field(default_factory=set)  # version numbers acknowledged
    jobs: set[int] = field(default_factory=set)
    releases: int = 0
    votes: int = 0
    queries: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    refusal_examples: dict[str, str] = field(default_factory=dict)

    def refuse(self, what: str, exc: Exception) -> None:
        with self.lock:
            self.refused[what] += 1
            self.refusal_examples.setdefault(what, str(exc)[:300])

    transport_errors: int = 0


class Clients:
    def __init__(self, url: str, tokens: dict[str, str], ids: dict[str, int], work: Path, seed: int) -> None:
        self.url, self.tokens, self.ids, self.work = url, tokens, ids, work
        self.ledger = Ledger()
        self.stop = threading.Event()
        self.rng = random.Random(seed)
        self.threads = [
            threading.Thread(target=self._guard, args=(fn,), name=fn.__name__, daemon=True)
            for fn in (self.pusher, self.uploader, self.developer, self.reviewer)
        ]
        self.errors: list[str] = []

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)

    def client(self, who: str) -> Any:
        from countylab_client import Client

        return Client(self.url, self.tokens[who], max_retries=0, timeout=30)

    def _guard(self, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - a client bug must show in the report
            self.errors.append(f"{fn.__name__}: {type(exc).__name__}: {exc}")
            log(f"client {fn.__name__} died: {exc!r}")

    def _call(self, fn: Any, *args: Any, retry: bool, **kw: Any) -> Any:
        """Run one call; transport and server errors: retry (same arguments) or give up (None)."""
        from countylab_client import ServerError, TransportError

        while not self.stop.is_set():
            try:
                return fn(*args, **kw)
            except (TransportError, ServerError):
                with self.ledger.lock:
                    self.ledger.transport_errors += 1
                if not retry:
                    return None
                time.sleep(0.1)
        return None

    def pusher(self) -> None:
        with self.client("provider") as c:
            seq = 0
            while not self.stop.is_set():
                seq += 1
                rows = [{"client": 1, "seq": seq, "part": i, "v": float(seq * 10 + i)} for i in range(5)]
                with self.ledger.lock:
                    self.ledger.sent_pushes += 1
                got = self._call(
                    c.push_rows, self.ids["push_ds"], rows, idempotency_key=f"p1-{seq}", retry=True
                )
                if got is not None:
                    with self.ledger.lock:
                        self.ledger.pushes.add((1, seq))

    def uploader(self) -> None:
        from countylab_client import CountylabClientError

        with self.client("provider") as c:
            n = 0
            while not self.stop.is_set():
                n += 1
                path = self.work / f"upload-{n}.csv"
                path.write_text("id,amount\n" + "".join(f"{n * 100 + i},{i * 1.5}\n" for i in range(20)))
                try:
                    got = self._call(c.upload_file, self.ids["file_ds"], path, mode="append", retry=False)
                except CountylabClientError as exc:
                    self.ledger.refuse(f"upload:{exc.code}", exc)
                    got = None
                if got is not None:
                    with self.ledger.lock:
                        self.ledger.uploads.add(int(got["version"]))
                time.sleep(0.3)

    def developer(self) -> None:
        from countylab_client import CountylabClientError

        code = self.work / "job"
        code.mkdir(exist_ok=True)
        (code / "main.py").write_text(JOB_SCRIPT)
        (code / "countylab.yaml").write_text(JOB_SPEC)
        released: set[int] = set()
        with self.client("developer") as c:
            while not self.stop.is_set():
                try:
                    job = self._call(c.submit_job, self.ids["project"], code, retry=False)
                    if job is not None:
                        with self.ledger.lock:
                            self.ledger.jobs.add(job.id)
                    for job_id in sorted(self.ledger.jobs - released)[:3]:
                        got = self._call(c.job, job_id, retry=False)
                        if got is not None and got.state == "succeeded":
                            released.add(job_id)
                            r = self._call(
                                c.create_release, job_id, ["main/out.txt"], submit=True, retry=False
                            )
                            if r is not None:
                                with self.ledger.lock:
                                    self.ledger.releases += 1
                        elif got is not None and got.finished:
                            released.add(job_id)
                except CountylabClientError as exc:
                    self.ledger.refuse(f"job:{exc.code}", exc)
                time.sleep(0.4)

    def reviewer(self) -> None:
        from countylab_client import CountylabClientError

        voted: set[tuple[str, int]] = set()
        with self.client("checker") as c1, self.client("checker2") as c2, self.client("developer") as dev:
            n = 0
            while not self.stop.is_set():
                n += 1
                checker, who = (c1, "checker") if n % 2 else (c2, "checker2")
                try:
                    queue = self._call(checker.releases, "queue", retry=False) or []
                    for r in [r for r in queue if r.state == "under_review" and (who, r.id) not in voted][:3]:
                        voted.add((who, r.id))
                        if self._call(checker.vote_release, r.id, "approve", retry=False):
                            with self.ledger.lock:
                                self.ledger.votes += 1
                except CountylabClientError as exc:
                    self.ledger.refuse(f"vote:{exc.code}", exc)
                try:
                    sql = f"SELECT COUNT(*) AS n FROM residents WHERE age >= {n % 90}"
                    if self._call(
                        dev.query_result, sql, epsilon=0.05, project_id=self.ids["project"], retry=False
                    ):
                        with self.ledger.lock:
                            self.ledger.queries += 1
                except CountylabClientError as exc:
                    self.ledger.refuse(f"query:{exc.code}", exc)
                time.sleep(0.3)


# -- invariants -----------------------------------------------------------------------------------


def check(
    data_dir: Path, env: dict[str, str], ledger: Ledger, ids: dict[str, int], *, final: bool
) -> list[str]:
    """Every invariant on the data folder as it is now; returns the violations found."""
    import duckdb
    import pyarrow.parquet as pq
    from sqlalchemy import func, select

    from countylab.config import Settings
    from countylab.lab import Lab
    from countylab.storage.airlock_models import ReleaseVote
    from countylab.storage.catalog_models import DatasetVersion
    from countylab.storage.jobs_models import Job, JobAttempt
    from countylab.storage.models import AuditEvent, Dataset, utcnow
    from countylab.storage.privacy_models import BudgetEntry, PrivacyBudget, QueryRun

    with ledger.lock:  # what was acknowledged before we look
        acked_pushes, acked_uploads, acked_jobs = set(ledger.pushes), set(ledger.uploads), set(ledger.jobs)
    bad: list[str] = []
    lab = Lab(Settings(data_dir=data_dir, database_url=env.get("COUNTYLAB_DATABASE_URL", "")))
    try:
        with lab.read() as s:
            # 1. pushes: acknowledged exactly once, none twice
            ds = s.get(Dataset, ids["push_ds"])
            assert ds is not None
            paths = [str(p) for p in lab.ingestion.read_paths(ds)]
            counts: dict[tuple[int, int], int] = {}
            if paths:
                rows = duckdb.sql(
                    "SELECT client, seq, count(*) FROM read_parquet($p, union_by_name=true) "
                    "WHERE client IS NOT NULL GROUP BY 1, 2",
                    params={"p": paths},
                ).fetchall()
                counts = {(int(a), int(b)): int(n) for a, b, n in rows}
            for key in acked_pushes:
                if counts.get(key, 0) != 5:
                    bad.append(f"push {key} acknowledged but {counts.get(key, 0)} of 5 rows present")
            for key, n in counts.items():
                if n > 5:
                    bad.append(f"push {key} applied more than once ({n} rows)")
            # 2. versions whole; acknowledged uploads present
            for v, name in s.execute(
                select(DatasetVersion, Dataset.name).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            ).all():
                try:
                    files = lab.warehouse.read_paths(name, v.version, include_stream=False)
                    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
                except Exception as exc:  # noqa: BLE001 - unreadable is the violation
                    bad.append(f"version {name}@{v.version} unreadable: {type(exc).__name__}: {exc}")
                    continue
                if total != v.row_count:
                    bad.append(f"version {name}@{v.version} holds {total} rows, its row says {v.row_count}")
            versions = set(
                s.execute(
                    select(DatasetVersion.version).where(DatasetVersion.dataset_id == ids["file_ds"])
                ).scalars()
            )
            for n in acked_uploads - versions:
                bad.append(f"upload acknowledged as version {n} but no such version")
            # 3. jobs: none lost, none ran twice
            jobs = {j.id: j for j in s.execute(select(Job)).scalars()}
            for job_id in acked_jobs - set(jobs):
                bad.append(f"job {job_id} acknowledged but not in the database")
            attempts: dict[int, list[JobAttempt]] = {}
            for a in s.execute(select(JobAttempt)).scalars():
                attempts.setdefault(a.job_id, []).append(a)
            starts = Counter(
                s.execute(select(AuditEvent.target).where(AuditEvent.action == "job.start")).scalars()
            )
            for job_id, job in jobs.items():
                tries = attempts.get(job_id, [])
                finished = [a for a in tries if a.state in ("succeeded", "failed", "killed")]
                if len(finished) > 1:
                    bad.append(f"job {job_id} ran to an end {len(finished)} times")
                if len([a for a in tries if a.state == "running"]) > 1:
                    bad.append(f"job {job_id} has {len(tries)} attempts running at once")
                if starts[f"job:{job_id}"] != job.attempts or len(tries) != job.attempts:
                    bad.append(
                        f"job {job_id}: {job.attempts} attempts, {len(tries)} rows, "
                        f"{starts[f'job:{job_id}']} job.start events"
                    )
                if final and job_id in acked_jobs and job.state not in ("succeeded", "failed", "cancelled"):
                    bad.append(f"job {job_id} never finished: {job.state}")
            # 4. budgets
            charges: Counter[tuple[int, int, int]] = Counter()
            for e in s.execute(select(BudgetEntry).where(BudgetEntry.kind == "charge")).scalars():
                charges[(e.project_id, e.dataset_id, e.user_id)] += float(e.epsilon or 0.0)
            for b in s.execute(select(PrivacyBudget)).scalars():
                key = (b.project_id, b.dataset_id, b.user_id)
                if abs(charges[key] - b.epsilon_spent) > 1e-6:
                    bad.append(f"budget {key}: spent {b.epsilon_spent} but charges sum to {charges[key]}")
                if b.epsilon_limit is not None and b.epsilon_spent > b.epsilon_limit + b.epsilon_topup + 1e-9:
                    bad.append(f"budget {key} overspent: {b.epsilon_spent} > {b.epsilon_limit}")
            horizon = utcnow().timestamp() - DP_GRACE_S
            for run in s.execute(select(QueryRun).where(QueryRun.status == "running")).scalars():
                created = run.created_at.timestamp() if run.created_at.tzinfo else run.created_at.timestamp()
                if final or created < horizon:
                    charged = s.execute(
                        select(func.count()).select_from(BudgetEntry).where(BudgetEntry.query_id == run.id)
                    ).scalar_one()
                    bad.append(
                        f"query {run.id} still running {utcnow().timestamp() - created:.0f} s on "
                        f"({charged} charges without an outcome)"
                    )
            # 5. votes: one per checker per round
            dup = s.execute(
                select(ReleaseVote.request_id, ReleaseVote.round, ReleaseVote.voter_id, func.count())
                .group_by(ReleaseVote.request_id, ReleaseVote.round, ReleaseVote.voter_id)
                .having(func.count() > 1)
            ).all()
            for r, rnd, voter, n in dup:
                bad.append(f"release {r} round {rnd}: checker {voter} voted {n} times")
    finally:
        lab.engine.dispose()
    # 6. the audit chain: the CLI command itself, in this process (no second interpreter start)
    from countylab.cli import main as cli_main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        rc = cli_main(["audit", "verify", "--data-dir", str(data_dir)])
    if rc != 0:
        bad.append(f"audit verify failed: {err.getvalue().strip()[-500:]}")
    return bad


# -- set-up ---------------------------------------------------------------------------------------


def setup(data_dir: Path, env: dict[str, str], logfile: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The tiny demo lab, one token per client role, a push dataset and an upload dataset."""
    with logfile.open("ab") as out:
        subprocess.run(
            [PY, "-m", "countylab.cli", "demo", "--data-dir", str(data_dir), "--size", "tiny", "--no-serve"],
            env=env,
            stdout=out,
            stderr=out,
            check=True,
        )
    from sqlalchemy import select

    from countylab.config import Settings
    from countylab.identity import service as ids_service
    from countylab.identity.access import cli_principal
    from countylab.lab import Lab
    from countylab.storage.models import Project, User

    lab = Lab(Settings(data_dir=data_dir))
    tokens: dict[str, str] = {}
    with lab.tx() as s:
        for who in ("provider", "developer", "checker", "checker2"):
            user = s.execute(select(User).where(User.username == who)).scalar_one()
            tokens[who] = ids_service.create_token(
                s, cli_principal(), user_id=user.id, name="chaos", days=1
            ).token
        project = s.execute(select(Project).where(Project.slug == "elderly-care-demand")).scalar_one().id
    lab.close()
    return tokens, {"project": project}


def make_datasets(url: str, tokens: dict[str, str], ids: dict[str, int], work: Path) -> None:
    from countylab_client import Client

    with Client(url, tokens["provider"]) as c:
        push = c.create_dataset("chaos_pushes", "混沌测试推送", update_frequency="realtime")
        first = work / "first.csv"
        first.write_text("client,seq,part,v\n0,0,0,0.0\n")
        c.upload_file(push.id, first)
        files = c.create_dataset("chaos_files", "混沌测试上传")
        base = work / "base.csv"
        base.write_text("id,amount\n0,0.0\n")
        c.upload_file(files.id, base)
    ids["push_ds"], ids["file_ds"] = push.id, files.id


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder on 127.0.0.1 (as scripts/test.sh starts one)."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        if not found:
            raise SystemExit("PostgreSQL server binaries not found (scripts/system-deps.sh test)")
        # its own folder straight under /tmp: the postgres user cannot enter the bench's 0700 one
        self.bin, self.dir, self.port = (
            found[-1],
            Path(tempfile.mkdtemp(prefix="countylab-chaos-pg-")),
            free_port(),
        )
        self.as_user: list[str] = []
        if os.getuid() == 0:
            os.chown(self.dir, *_uid_gid("postgres"))
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def start(self) -> str:
        data = str(self.dir / "data")
        run = [
            *self.as_user,
            str(self.bin / "initdb"),
            "-D",
            data,
            "-U",
            "countylab",
            "--auth=trust",
            "-E",
            "UTF8",
        ]
        subprocess.run(run, check=True, capture_output=True)
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=200"
        start = [
            *self.as_user,
            str(self.bin / "pg_ctl"),
            "-D",
            data,
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            opts,
        ]
        subprocess.run([*start, "start"], check=True, capture_output=True)
        subprocess.run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "countylab", "chaos"],
            check=True,
            capture_output=True,
        )
        return f"postgresql://countylab@127.0.0.1:{self.port}/chaos"

    def stop(self) -> None:
        stop = [
            *self.as_user,
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-m",
            "immediate",
            "stop",
        ]
        subprocess.run(stop, check=False, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def _uid_gid(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--min-up", type=float, default=1.0, help="seconds up before a kill, at least")
    ap.add_argument("--max-up", type=float, default=4.0, help="seconds up before a kill, at most")
    ap.add_argument("--workers", type=int, default=1, help="serve --workers")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--postgres", action="store_true", help="metadata in a throw-away PostgreSQL")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary folder")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="countylab-chaos-"))
    data_dir = args.data_dir or work / "lab"
    logfile = work / "server.log"
    env = {
        **os.environ,
        "COUNTYLAB_DP_WALL_CLOCK_S": str(DP_WALL_CLOCK_S),
        "COUNTYLAB_DP_RATE_PER_MINUTE": "600",
        "COUNTYLAB_JOB_WORKERS": "2",
    }
    postgres = ThrowawayPostgres() if args.postgres else None
    if postgres is not None:
        env["COUNTYLAB_DATABASE_URL"] = postgres.start()
        os.environ["COUNTYLAB_DATABASE_URL"] = env["COUNTYLAB_DATABASE_URL"]  # this process's own Lab
    try:
        return _run(args, rng, work, data_dir, logfile, env)
    finally:
        if postgres is not None:
            postgres.stop()


def _run(
    args: argparse.Namespace,
    rng: random.Random,
    work: Path,
    data_dir: Path,
    logfile: Path,
    env: dict[str, str],
) -> int:
    t0 = time.monotonic()
    log(f"setting up the tiny demo lab in {data_dir}")
    tokens, ids = setup(data_dir, env, logfile)
    server = Server(data_dir, env, args.workers, logfile)
    server.start()
    make_datasets(server.url, tokens, ids, work)
    setup_s = time.monotonic() - t0
    clients = Clients(server.url, tokens, ids, work, args.seed)
    clients.start()
    violations: list[str] = []
    restarts: list[float] = []
    checks: list[float] = []
    kills = 0
    try:
        for k in range(args.kills):
            time.sleep(rng.uniform(args.min_up, args.max_up))
            server.kill()
            kills += 1
            restarts.append(server.start())
            t = time.monotonic()
            found = check(data_dir, env, clients.ledger, ids, final=False)
            checks.append(time.monotonic() - t)
            for v in found:
                log(f"kill {k + 1}: VIOLATION {v}")
            violations += [f"after kill {k + 1}: {v}" for v in found]
            log(f"kill {k + 1}/{args.kills}: restarted in {restarts[-1]:.1f} s, {len(found)} violation(s)")
        clients.join()
        deadline = time.monotonic() + DP_GRACE_S + 30  # let every job finish, every query record settle
        while True:
            found = check(data_dir, env, clients.ledger, ids, final=True)
            if not found or time.monotonic() > deadline:
                break
            time.sleep(2)
        violations += [f"final: {v}" for v in found]
    finally:
        clients.stop.set()
        server.stop()
    led = clients.ledger
    result = {
        "bench": "chaos",
        "kills": kills,
        "invariant_violations": len(violations),
        "violations": violations[:50],
        "client_errors": clients.errors,
        "workers": args.workers,
        "database": "postgresql" if env.get("COUNTYLAB_DATABASE_URL") else "sqlite",
        "acknowledged": {
            "pushes": len(led.pushes),
            "uploads": len(led.uploads),
            "jobs": len(led.jobs),
            "releases": led.releases,
            "votes": led.votes,
            "dp_queries": led.queries,
        },
        "refused": dict(led.refused),
        "refusal_examples": led.refusal_examples,
        "transport_errors": led.transport_errors,
        "restart_s_median": sorted(restarts)[len(restarts) // 2] if restarts else None,
        "restart_s_max": max(restarts) if restarts else None,
        "check_s_median": sorted(checks)[len(checks) // 2] if checks else None,
        "setup_s": round(setup_s, 1),
        "total_s": round(time.monotonic() - t0, 1),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0 if not violations and not clients.errors else 1


if __name__ == "__main__":
    sys.exit(main())
