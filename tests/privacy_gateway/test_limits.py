"""One analyst cannot stall the lab: rate and concurrency limits, the worker pool with one wall
clock per request, and the cost estimate from metadata before any charge."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from countylab.errors import QuotaExceeded, TooLarge
from countylab.privacy.cost import TableSize, check_cost, estimate_rows
from countylab.privacy.limits import Admission, GatewayConfig
from countylab.privacy.pool import DeadlineExceeded, WorkerPool
from countylab.storage.privacy_models import BudgetEntry
from tests.privacy_gateway.conftest import ELDERLY_SQL, ask, client_for, fast_gateway, project_id
from tests.privacy_gateway.fakes import SlowRunner


class _Gate(SlowRunner):
    """Runs wait until the test opens the gate: a query holds its slot for as long as the test
    needs, with no sleep to race against on a busy machine."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.gate = threading.Event()

    def run(self, specs, sqls, *, bounded=True):
        assert self.gate.wait(60), "the test never opened the gate"
        return super().run(specs, sqls, bounded=bounded)


class _Meeting(SlowRunner):
    """Each run waits for the other worker's run to start: two runs meet only if they overlap."""

    def __init__(self, meeting: threading.Barrier) -> None:
        super().__init__(0.0)
        self.meeting = meeting

    def run(self, specs, sqls, *, bounded=True):
        self.meeting.wait(timeout=60)  # BrokenBarrierError if the runs came one after the other
        return super().run(specs, sqls, bounded=bounded)


class _UntilKilled(SlowRunner):
    """A run that only ends when the pool kills it (a query busy at its deadline)."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.stopped = threading.Event()

    def run(self, specs, sqls, *, bounded=True):
        self.runs += 1
        assert self.stopped.wait(60), "the pool never stopped the runner"
        raise RuntimeError("killed")

    def kill(self) -> None:
        super().kill()
        self.stopped.set()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_refills_over_time():
    clock = Clock()
    adm = Admission(GatewayConfig(rate_per_minute=3, project_concurrency=10), clock)
    for _ in range(3):
        with adm.admit(1, 1):
            pass
    with pytest.raises(QuotaExceeded) as over, adm.admit(1, 1):
        pass
    assert over.value.details["reason"] == "rate_limited" and over.value.details["retry_after_s"] == 20
    with adm.admit(2, 1):  # another analyst has a bucket of their own
        pass
    clock.now += 20.0
    with adm.admit(1, 1):
        pass


def test_project_concurrency_is_released_on_errors():
    adm = Admission(GatewayConfig(rate_per_minute=1000, project_concurrency=1))
    with adm.admit(1, 7):
        with pytest.raises(QuotaExceeded) as busy, adm.admit(2, 7):
            pass
        assert busy.value.details["reason"] == "project_busy"
        with adm.admit(2, 8):  # another project is not affected
            pass
    with pytest.raises(RuntimeError), adm.admit(1, 7):
        raise RuntimeError
    with adm.admit(1, 7):
        pass


def test_rate_limit_through_the_api_is_a_bilingual_429_with_retry_after(demo_lab):
    fast_gateway(demo_lab, config=GatewayConfig(rate_per_minute=2, project_concurrency=4))
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    assert ask(client, ELDERLY_SQL, pid, 0.1).status_code == 200
    assert ask(client, ELDERLY_SQL, pid, 0.1).status_code == 200  # cached, still a request
    over = ask(client, ELDERLY_SQL, pid, 0.1)
    assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
    assert "每分钟" in over.json()["error"]["message"]
    en = client.post(
        "/api/query",
        json={"sql": ELDERLY_SQL, "project_id": pid, "epsilon": 0.1},
        headers={"Accept-Language": "en"},
    )
    assert en.status_code == 429 and "a minute" in en.json()["error"]["message"]


def test_a_busy_project_gets_429_and_other_projects_keep_working(demo_lab):
    runner = _Gate()  # the admitted query holds the project's one slot until both others are refused
    fast_gateway(demo_lab, runner=runner, config=GatewayConfig(rate_per_minute=1000, project_concurrency=1))
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(ask, client, f"SELECT COUNT(*) FROM residents WHERE age > {i}", pid, 0.1)
            for i in range(3)
        ]
        deadline = time.monotonic() + 60  # only a guard against hanging; nothing is timed
        while sum(f.done() for f in futures) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        runner.gate.set()
        codes = sorted(f.result().status_code for f in futures)
    assert codes == [200, 429, 429]
    busy = [f.result() for f in futures if f.result().status_code == 429][0]
    assert busy.json()["error"]["details"]["reason"] == "project_busy" and busy.headers["Retry-After"]
    with demo_lab.tx() as s:
        assert len(s.execute(select(BudgetEntry)).scalars().all()) == 2  # only the admitted query paid


def test_pool_runs_queries_in_parallel_and_the_wall_clock_covers_the_whole_request():
    meeting = threading.Barrier(2)
    runners = iter([_Meeting(meeting), _Meeting(meeting)])
    pool = WorkerPool(2, lambda: next(runners))
    answers: list[object] = []

    def one() -> None:
        try:
            answers.append(pool.run([], ["SELECT 1"], bounded=True))
        except Exception as exc:  # recorded: a thread's exception would vanish
            answers.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # two workers: side by side (each run waited for the other to start), not one after the other
    assert not meeting.broken and [type(a) for a in answers] == [list, list], answers
    pool.close()

    # one deadline for every call of a request: the runner busy at the deadline is stopped, and
    # the request's next statement finds the deadline spent without reaching a runner
    runner = _UntilKilled()
    pool = WorkerPool(1, lambda: runner)
    with pool.deadline(time.monotonic() + 0.3):
        with pytest.raises(DeadlineExceeded):
            pool.run([], ["SELECT 1"], bounded=True)
        with pytest.raises(DeadlineExceeded):
            pool.run([], ["SELECT 1"], bounded=True)
    assert runner.killed == 1 and runner.runs == 1
    pool.close()


def test_the_wall_clock_stops_a_slow_query_through_the_gateway(demo_lab):
    runner = SlowRunner(3.0)
    pool = WorkerPool(1, lambda: runner)
    fast_gateway(demo_lab, runner=pool, config=GatewayConfig(wall_clock_s=0.5, rate_per_minute=100))
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    resp = ask(client, ELDERLY_SQL, pid, 0.1)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "query_failed"
    assert runner.killed == 1  # stopped by the wall clock (not how long the request took)


def test_cost_estimate_uses_row_counts_and_distinct_keys():
    sizes = {
        "residents": TableSize(10_000, {"town_code": 10, "household_id": 4_000}),
        "households": TableSize(4_000, {"town_code": 10, "household_id": 4_000}),
        "towns": TableSize(10, {"town_code": 10}),
    }
    by_household = "residents AS r JOIN households AS h ON r.household_id = h.household_id"
    assert estimate_rows(by_household, sizes) == pytest.approx(10_000)
    chain = (
        "residents AS r JOIN towns AS t ON r.town_code = t.town_code "
        "JOIN households AS h ON t.town_code = h.town_code"
    )
    assert estimate_rows(chain, sizes) == pytest.approx(10_000 * 4_000 / 10)
    assert estimate_rows("residents CROSS JOIN households", sizes) == pytest.approx(4e7)
    with pytest.raises(TooLarge) as refused:
        check_cost(chain, sizes, 1_000_000)
    assert refused.value.details["reason"] == "too_expensive"


def test_an_expensive_query_is_refused_before_any_charge(demo_lab):
    fast_gateway(demo_lab, config=GatewayConfig(max_estimated_rows=1_000, rate_per_minute=100))
    client, pid = client_for(demo_lab, "developer"), project_id(demo_lab)
    resp = ask(client, "SELECT COUNT(*) FROM residents", pid, 0.1)
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"]["details"]["reason"] == "too_expensive"
    with demo_lab.tx() as s:
        assert s.execute(select(BudgetEntry)).scalars().all() == []
