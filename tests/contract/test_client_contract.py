"""Contract test: one scenario through the SDK against the client's FakeServer and a real server.

The SDK's unit tests (and users' tests of their own code) run against
``countylab_client.testing.FakeServer``; this proves that the fake says what a real lab says.
One scenario (who am I, my projects, the catalog with its grades, a row push applied once, DP
queries with budget, cache and refusal, and the errors) runs against both:

* the values are compared where the fake was arranged with the same facts as the real lab
  (names, titles, grade codes, members, budgets, what a repeated query costs, error codes);
* the JSON shapes are compared on the wire: every field the fake sends, the server sends too,
  with the same JSON type (the server may send more).

Query answers are noisy on the server and canned in the fake: they are compared by shape
(columns, number of rows, which columns have intervals), not by value.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import countylab_client as cl
from countylab.catalog import service as catalog
from countylab.identity import projects as prj
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.privacy import budget
from countylab_client.testing import FakeServer
from tests.browser import live_server
from tests.support import PASSWORD, build_lab, token_for

DEPARTMENT = "县民政局"
TOWNS = ["东镇", "西镇", "南镇"]
SQL = "SELECT town, COUNT(*) AS n FROM residents GROUP BY town"
OTHER_SQL = "SELECT town, COUNT(*) AS n FROM residents WHERE age > 60 GROUP BY town"
BUDGET = 0.5  # the project's ε on residents: two queries of 0.2 fit, a third of 0.4 does not
ROWS = [{"firm_id": "F9", "employees": 12}, {"firm_id": "F10", "employees": 3}]


@dataclass
class Arranged:
    """What both servers hold: ids are the real lab's, every other fact is the scenario's."""

    user_id: int
    org_id: int
    project_id: int
    foreign_project_id: int
    residents_id: int
    firms_id: int


@dataclass
class Backend:
    name: str
    client: Callable[..., cl.Client]  # (token=None) -> a client; a bad token with token="..."
    wire: list[tuple[str, str, int, Any]]  # (method, path, status, JSON) of every response


class Recording(httpx.BaseTransport):
    """Passes requests to ``inner`` and keeps each response's JSON for the shape comparison."""

    def __init__(self, inner: httpx.BaseTransport, wire: list[tuple[str, str, int, Any]]) -> None:
        self.inner = inner
        self.wire = wire

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        body = response.read()
        self.wire.append((request.method, request.url.path, response.status_code, json.loads(body)))
        return response

    def close(self) -> None:
        self.inner.close()


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _real_lab(root: Path) -> tuple[Lab, Arranged]:
    """The scenario's facts as a steward, a provider and a developer would set them up."""
    lab = build_lab(root)
    with lab.tx() as s:
        org = ids.create_org(s, SYSTEM, name=DEPARTMENT, kind="department")
        org_id = org.id
        user = ids.create_user(
            s,
            SYSTEM,
            username="analyst",
            password=PASSWORD,
            display_name="测试分析员",
            roles=["developer", "provider"],
            org_id=org_id,
        )
        user_id = user.id
        residents = catalog.create_dataset(
            s,
            SYSTEM,
            name="residents",
            title="户籍人口",
            org_id=org_id,
            privacy_unit="person",
            privacy_unit_column="resident_id",
            tags=["人口"],
        )
        firms = catalog.create_dataset(
            s, SYSTEM, name="firms", title="企业名录", org_id=org_id, tags=["经济"]
        )
        residents_id, firms_id = residents.id, firms.id
    people = [{"resident_id": f"R{i}", "town": TOWNS[i % 3], "age": 20 + (7 * i) % 70} for i in range(60)]
    lab.ingestion.ingest_file(SYSTEM, residents_id, _csv(root / "residents.csv", people))
    firms_rows = [{"firm_id": "F1", "employees": 40}, {"firm_id": "F2", "employees": 7}]
    lab.ingestion.ingest_file(SYSTEM, firms_id, _csv(root / "firms.csv", firms_rows))
    with lab.tx() as s:
        catalog.set_column(s, SYSTEM, residents_id, "age", lower=0, upper=110)
        catalog.upsert_key_set(s, SYSTEM, name="contract.towns", title="乡镇", values=TOWNS)
        catalog.set_column(s, SYSTEM, residents_id, "town", key_set="contract.towns")
        catalog.set_grade(s, SYSTEM, residents_id, "general_2", "契约测试：与假服务器对照")
        catalog.set_grade(s, SYSTEM, firms_id, "general_1", "契约测试：与假服务器对照")
        analyst = ids.principal_for(s, ids.get_user(s, user_id), "system")
        project = prj.create_project(s, analyst, slug="care", title="养老需求")
        prj.grant_dataset(s, SYSTEM, project.id, residents_id)
        budget.set_limit(s, SYSTEM, project.id, residents_id, epsilon=BUDGET, delta=None)
        foreign = prj.create_project(s, SYSTEM, slug="crops", title="农作物")
        arranged = Arranged(user_id, org_id, project.id, foreign.id, residents_id, firms_id)
    return lab, arranged


def _fake(a: Arranged, real: cl.Client) -> FakeServer:
    """The fake arranged with the same facts (and the real dataset's columns, which the catalog
    derives from the uploaded file)."""
    org = cl.Org(id=a.org_id, name=DEPARTMENT, kind="department")
    fake = FakeServer(
        user=cl.User(a.user_id, "analyst", "测试分析员", org, ("developer", "provider"), "zh-CN"),
        default_budget=BUDGET,
    )
    member = cl.ProjectMember(user_id=a.user_id, username="analyst", role="owner")
    fake.add_project(
        cl.Project(
            id=a.project_id,
            slug="care",
            title="养老需求",
            description="",
            org_id=a.org_id,
            status="active",
            members=(member,),
            datasets=(cl.ProjectDataset(dataset_id=a.residents_id, name="residents"),),
        )
    )
    fake.add_project(
        cl.Project(
            id=a.foreign_project_id,
            slug="crops",
            title="农作物",
            description="",
            org_id=None,
            status="active",
        )
    )
    for ds_id, name, title, grade, tags, rows in (
        (a.firms_id, "firms", "企业名录", "general_1", ("经济",), 2),
        (a.residents_id, "residents", "户籍人口", "general_2", ("人口",), 60),
    ):
        real_ds = real.dataset(ds_id)
        fake.add_dataset(
            cl.Dataset(
                id=ds_id,
                name=name,
                title=title,
                department=DEPARTMENT,
                grade=grade,
                tags=tags,
                row_count=rows,
                current_version=1,
                columns=real_ds.columns,
                versions=real_ds.versions,
            ),
            org_id=a.org_id,
        )
    noisy = cl.QueryResult(
        columns=("town", "n"),
        rows=tuple((town, 20) for town in sorted(TOWNS)),
        epsilon_spent=0.0,
        cached=False,
        budget_remaining=0.0,
        intervals={"n": tuple((15.0, 25.0) for _ in TOWNS)},
    )
    fake.add_query_answer(SQL, noisy)
    fake.add_query_answer(OTHER_SQL, noisy)
    return fake


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Backend, Backend, Arranged]]:
    lab, arranged = _real_lab(tmp_path_factory.mktemp("contract"))
    token = token_for(lab, arranged.user_id)
    real_wire: list[tuple[str, str, int, Any]] = []
    fake_wire: list[tuple[str, str, int, Any]] = []
    try:
        with live_server(lab) as url:

            def real_client(token: str = token) -> cl.Client:
                return cl.Client(url, token, transport=Recording(httpx.HTTPTransport(), real_wire))

            with real_client() as c:
                fake = _fake(arranged, c)
            real_wire.clear()

            def fake_client(token: str = fake.token) -> cl.Client:
                transport = Recording(fake.transport, fake_wire)
                return cl.Client("http://countylab.test", token, transport=transport, retry_backoff=0.0)

            yield Backend("real", real_client, real_wire), Backend("fake", fake_client, fake_wire), arranged
    finally:
        lab.close()


def _error(call: Callable[[], Any]) -> tuple[str, int | None, str]:
    with pytest.raises(cl.CountylabClientError) as info:
        call()
    return type(info.value).__name__, info.value.status_code, info.value.code


def scenario(backend: Backend, a: Arranged) -> dict[str, Any]:
    """Everything the SDK sees in one session; what should match is kept, the noise left out."""
    seen: dict[str, Any] = {}
    with backend.client() as c:
        me = c.whoami()
        seen["me"] = (me.id, me.username, me.display_name, me.roles, me.org)
        seen["projects"] = [(p.id, p.slug, p.title, p.org_id, p.status) for p in c.projects()]
        one = c.project(a.project_id)
        seen["project"] = (one.members, one.datasets)
        listed = c.datasets()
        seen["datasets"] = [
            (d.id, d.name, d.title, d.department, d.grade, d.tags, d.row_count, d.current_version)
            for d in listed
        ]
        seen["by grade"] = {
            g: [d.name for d in c.datasets(grade=g)] for g in ("general_1", "general_2", "core")
        }
        seen["by department"] = [d.name for d in c.datasets(department=a.org_id)]
        with pytest.raises(TypeError):  # ids only, refused before a request is sent
            c.datasets(department=DEPARTMENT)  # type: ignore[arg-type]
        detail = c.dataset(a.residents_id)
        seen["detail"] = (
            detail.grade,
            [(col.name, col.type) for col in detail.columns],
            len(detail.versions),
        )
        first = c.push_rows(a.firms_id, ROWS, idempotency_key="contract-1")
        again = c.push_rows(a.firms_id, ROWS, idempotency_key="contract-1")
        seen["push"] = [(r.accepted, r.duplicate, r.idempotency_key) for r in (first, again)]
        answers = []
        for sql, eps in ((SQL, 0.2), (SQL, 0.2), (OTHER_SQL, 0.2)):
            r = c.query_result(sql, epsilon=eps, project_id=a.project_id)
            answers.append(
                (r.columns, len(r.rows), sorted(r.intervals), r.epsilon_spent, r.cached, r.budget_remaining)
            )
        seen["queries"] = answers
        seen["over budget"] = _error(lambda: c.query_result(SQL, epsilon=0.4, project_id=a.project_id))
        seen["foreign query"] = _error(
            lambda: c.query_result(SQL, epsilon=0.1, project_id=a.foreign_project_id)
        )
        seen["unknown project"] = _error(lambda: c.project(987654))
        seen["foreign project"] = _error(lambda: c.project(a.foreign_project_id))
        seen["unknown dataset"] = _error(lambda: c.dataset(987654))
    with backend.client(token="clk_not_a_token") as bad:
        seen["bad token"] = _error(bad.whoami)
    return seen


def _shape(value: Any) -> Any:
    """The JSON type tree of ``value``: dicts by key, lists by their items' merged shape."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _fits(fake: Any, real: Any, where: str, problems: list[str]) -> None:
    """Every field of ``fake`` is in ``real`` with the same type (``null`` fits any type)."""
    if isinstance(fake, dict):
        if not isinstance(real, dict):
            problems.append(f"{where}: fake sends an object, the server {real!r}")
            return
        for key, sub in fake.items():
            if key not in real:
                problems.append(f"{where}.{key}: sent by the fake, not by the server")
            else:
                _fits(sub, real[key], f"{where}.{key}", problems)
    elif isinstance(fake, list):
        if not isinstance(real, list):
            problems.append(f"{where}: fake sends a list, the server {real!r}")
        elif len(fake) == len(real):  # rows are positional: item by item
            for i, (f, r) in enumerate(zip(fake, real, strict=True)):
                _fits(f, r, f"{where}[{i}]", problems)
        elif fake and real:
            for item in fake:
                _fits(item, real[0], f"{where}[]", problems)
    elif fake != real and "NoneType" not in (fake, real):
        problems.append(f"{where}: fake sends {fake}, the server {real}")


def test_the_fake_and_a_real_server_agree(backends: tuple[Backend, Backend, Arranged]) -> None:
    real, fake, arranged = backends
    from_real, from_fake = scenario(real, arranged), scenario(fake, arranged)
    assert from_real["datasets"][1][4] == "general_2"  # the server sends codes, not labels
    for key in from_real:
        assert from_fake[key] == from_real[key], key
    # what the scenario means, on the real server (so agreeing is not agreeing on nonsense)
    assert from_real["by grade"] == {"general_1": ["firms"], "general_2": ["residents"], "core": []}
    assert from_real["push"] == [(2, False, "contract-1"), (0, True, "contract-1")]
    first, repeat, other = from_real["queries"]
    assert first == (("town", "n"), 3, ["n"], 0.2, False, pytest.approx(BUDGET - 0.2))
    assert repeat[3:] == (0.0, True, pytest.approx(BUDGET - 0.2))  # an identical query is free
    assert other[3:] == (0.2, False, pytest.approx(BUDGET - 0.4))
    assert from_real["over budget"][1:] == (429, "quota_exceeded")
    assert from_real["bad token"] == ("AuthenticationError", 401, "not_authenticated")

    # the wire: the same requests, the same statuses, and the fake's JSON fits the server's
    assert [w[:3] for w in fake.wire] == [w[:3] for w in real.wire]
    problems: list[str] = []
    for (method, path, status, fake_json), (_, _, _, real_json) in zip(fake.wire, real.wire, strict=True):
        _fits(_shape(fake_json), _shape(real_json), f"{method} {path} {status}", problems)
    assert problems == [], "\n".join(problems)
