"""Every integer a client sends is bounded to the range of its column before it reaches the database.

An id like ``2**63`` used to pass FastAPI's ``int`` and fail in the driver (``OverflowError`` on
SQLite, ``NumericValueOutOfRange`` on PostgreSQL): a 500.  Ids are ``INTEGER`` columns, 32-bit on
PostgreSQL, so ``countylab.web.params`` bounds every id to ``ID_MAX = 2**31 - 1`` (audit event
ids, ``BIGINT``, to int64).  These tests walk *every* route of the app (API and pages) with an
integer path parameter and send values just out of range, on SQLite and on PostgreSQL, and
sample the ids and counters of query strings, forms and JSON bodies.  The largest id in range
is an ordinary "not found"; what still reaches the database unstorable is a 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from countylab.lab import Lab
from countylab.web.app import create_app, iter_api_routes
from countylab.web.params import ID_MAX, INT64_MAX
from tests.support import create_user, token_for

OUT_OF_RANGE = [ID_MAX + 1, INT64_MAX + 1, 10**30, -(2**63) - 1, 0, -1]


@pytest.fixture
def admin(any_lab: Lab) -> Iterator[TestClient]:
    uid = create_user(any_lab, "root", ["admin"])
    headers = {"Authorization": f"Bearer {token_for(any_lab, uid)}"}
    with TestClient(create_app(any_lab), headers=headers, raise_server_exceptions=False) as client:
        yield client


def _int_path_params(route: APIRoute) -> list[str]:
    return [p.name for p in route.dependant.path_params if p.field_info.annotation is int]


def _routes_with_ids(lab: Lab) -> list[tuple[str, str, list[str]]]:
    found = []
    for route in iter_api_routes(create_app(lab)):
        names = _int_path_params(route)
        if names:
            found.extend((method, route.path, names) for method in sorted(route.methods))
    return found


def _fill(path: str, value: object) -> str:
    out = path
    while "{" in out:
        start, end = out.index("{"), out.index("}")
        name = out[start + 1 : end]
        out = out[:start] + (str(value) if name.endswith("_id") else "x") + out[end + 1 :]
    return out


def _send(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    return client.request(method, path, follow_redirects=False, **kwargs)


def test_every_integer_path_parameter_is_declared_with_int64_bounds(any_lab: Lab) -> None:
    """The OpenAPI document says so too (clients and the fuzz test generate from it)."""
    doc = create_app(any_lab).openapi()
    seen = 0
    for operations in doc["paths"].values():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                schema = param.get("schema", {})
                if param["in"] == "path" and schema.get("type") == "integer":
                    seen += 1
                    assert (schema.get("minimum"), schema.get("maximum")) == (1, ID_MAX), param
    assert seen > 50


def test_out_of_range_ids_in_paths_are_422_on_every_route(any_lab: Lab, admin: TestClient) -> None:
    routes = _routes_with_ids(any_lab)
    assert len(routes) > 80  # API and pages
    wrong = []
    for method, path, names in routes:
        for value in OUT_OF_RANGE:
            resp = _send(admin, method, _fill(path, value))
            named = all(f"path.{name}" in resp.text for name in names)
            if resp.status_code != 422 or not named:
                wrong.append(f"{method} {path} with {value}: {resp.status_code} {resp.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_the_largest_id_is_an_ordinary_not_found(any_lab: Lab, admin: TestClient) -> None:
    for path in (
        "/api/jobs/{id}",
        "/api/datasets/{id}",
        "/api/datasets/{id}/versions",
        "/api/models/{id}",
        "/api/airlock/requests/{id}",
        "/api/connectors/{id}/runs",
        "/jobs/{id}",
        "/datasets/{id}",
    ):
        resp = _send(admin, "GET", path.format(id=ID_MAX))
        assert resp.status_code == 404, (path, resp.status_code, resp.text[:300])
    resp = _send(admin, "DELETE", f"/api/tokens/{ID_MAX}")
    assert resp.status_code == 404, resp.text


#: (method, path, request arguments, the field the 422 names)
NUMBERS: list[tuple[str, str, dict[str, Any], str]] = [
    ("GET", "/api/audit", {"params": {"before_id": INT64_MAX + 1}}, "query.before_id"),
    ("GET", "/api/datasets", {"params": {"department": ID_MAX + 1}}, "query.department"),
    ("GET", "/api/datasets", {"params": {"department": 10**30}}, "query.department"),
    ("GET", "/api/jobs", {"params": {"limit": 10**30}}, "query.limit"),
    ("GET", "/api/jobs", {"params": {"state": "nonsense"}}, "query.state"),
    ("GET", "/api/projects/1/jobs", {"params": {"offset": -1}}, "query.offset"),
    ("GET", "/api/datasets/1/dummy", {"params": {"seed": -1}}, "query.seed"),
    ("GET", "/api/connectors/1/runs", {"params": {"limit": 2**64}}, "query.limit"),
    ("GET", "/api/airlock/files/1/preview/pages", {"params": {"page": INT64_MAX + 1}}, "query.page"),
    ("POST", "/api/projects/1/grants", {"json": {"dataset_id": ID_MAX + 1}}, "dataset_id"),
    ("POST", "/api/airlock/requests", {"json": {"job_id": 2**64, "files": []}}, "job_id"),
    ("POST", "/api/models/1/decision", {"json": {"approve": True, "daily_quota": ID_MAX + 1}}, "daily_quota"),
    ("POST", "/api/tokens", {"json": {"name": "t", "user_id": -1}}, "user_id"),
    ("POST", "/api/datasets", {"json": {"name": "n", "title": "t", "org_id": 0}}, "org_id"),
    ("POST", "/api/query", {"json": {"sql": "SELECT 1", "project_id": ID_MAX + 1}}, "project_id"),
    ("GET", "/jobs", {"params": {"project": ID_MAX + 1}}, "query.project"),
    ("GET", "/audit", {"params": {"before": 10**30}}, "query.before"),
    ("POST", "/projects/1/grants", {"data": {"dataset_id": str(ID_MAX + 1)}}, "dataset_id"),
    ("POST", "/me/tokens", {"data": {"name": "t", "days": str(10**9)}}, "days"),
]


def test_out_of_range_numbers_in_queries_forms_and_bodies_are_422(admin: TestClient) -> None:
    wrong = []
    for method, path, kwargs, field in NUMBERS:
        resp = _send(admin, method, path, **kwargs)
        if resp.status_code != 422 or field not in resp.text:
            wrong.append(f"{method} {path} {kwargs}: {resp.status_code} {resp.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_the_largest_audit_event_id_is_in_range(admin: TestClient) -> None:
    """Audit event ids are BIGINT: the whole int64 range is a valid cursor."""
    resp = _send(admin, "GET", "/api/audit", params={"before_id": INT64_MAX})
    assert resp.status_code == 200, resp.text[:300]


def test_a_value_no_bound_caught_is_a_422_not_a_500(any_lab: Lab, admin: TestClient) -> None:
    """The last line: a NUL character is valid JSON and valid Python, and PostgreSQL text cannot
    hold it; whatever the database refuses as data is the client's 422, with the bilingual reason."""
    resp = _send(admin, "POST", "/api/orgs", json={"name": "县\x00局", "kind": "department"})
    if any_lab.engine.dialect.name == "postgresql":
        assert resp.status_code == 422, resp.text
        error = resp.json()["error"]
        assert error["details"]["reason"] == "out_of_range" and "无法存储" in error["message"]
    else:  # SQLite stores it
        assert resp.status_code == 201, resp.text
    assert _send(admin, "GET", "/api/orgs").status_code == 200  # the failed transaction left no trace
