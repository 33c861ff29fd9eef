"""What the DP attack files share: a lab per test module and a fresh attacker per attack.

The attacker is an external developer (an enterprise) with its own project, so every attack
starts with a full privacy budget, an empty daily query count and its own rate limit; what an
attack spends never leaks into the next one.  Everything the attacker does goes through
``POST /api/query`` of the real app; the helpers here only set the stage as a steward would
(datasets, grades, bounds, grants) and read the truth straight from the Parquet files, so a
test can compare what was released with what is really there.

``outcome`` is the visible outcome of a response with the noise taken out: two questions whose
outcomes differ have told the attacker something the data decided.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from countylab.catalog import service as catalog
from countylab.config import Settings
from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.web.app import create_app
from tests.privacy_gateway.conftest import ask, fast_gateway
from tests.support import build_lab, create_user, token_for

#: settings of a lab whose attacks are not about rate limits (hundreds of queries a minute)
NO_RATE_LIMIT: dict[str, Any] = {"dp_rate_per_minute": 100_000, "dp_project_concurrency": 256}
#: response fields that legitimately differ between two answers (ids, noise, balances)
_PER_REQUEST = {"query_id", "rows", "intervals", "budget", "budget_remaining", "request_id", "retry_after"}
_counter = itertools.count(1)


@dataclass
class Attacker:
    """One developer and the project it owns; ``ask`` is ``POST /api/query`` as that developer."""

    lab: Lab
    client: TestClient
    project_id: int
    user_id: int
    username: str

    def ask(self, sql: str, epsilon: float | None = 0.05, **extra: Any) -> Any:
        return ask(self.client, sql, self.project_id, epsilon, **extra)

    def post(self, body: Mapping[str, Any]) -> Any:
        return self.client.post("/api/query", json={"project_id": self.project_id, **body})

    def budgets(self) -> list[dict[str, Any]]:
        resp = self.client.get(f"/api/projects/{self.project_id}/budget")
        assert resp.status_code == 200, resp.text
        return list(resp.json()["budgets"])

    def spent(self) -> float:
        """ε charged to the project's ledgers (all datasets), as the budget page shows it."""
        return sum(float(b["epsilon_spent"]) for b in self.budgets() if b.get("scope") == "project")


@dataclass
class AttackLab:
    """A lab with the demo county (and whatever a test module adds), shared by one module."""

    lab: Lab
    _app: Any = None
    _user: tuple[int, str] | None = None

    @property
    def app(self) -> Any:
        if self._app is None:  # one app per module: building it costs seconds
            self._app = create_app(self.lab)
        return self._app

    def attacker(
        self, datasets: Sequence[str], *, fresh_user: bool = False, like: Attacker | None = None
    ) -> Attacker:
        """A new project with ``datasets`` granted, owned by the module's attacker (or a new one).

        A new project starts with full budgets; a new user also with an empty daily query
        count and its own rate limit (creating one hashes a password: use it where it matters);
        ``like`` gives another project to the same user.
        """
        n = next(_counter)
        if like is not None:
            user = (like.user_id, like.username)
        elif fresh_user or self._user is None:
            username = f"attacker{n}"
            user = (
                create_user(self.lab, username, ["developer"], org=f"攻击方{n}", kind="enterprise"),
                username,
            )
            if not fresh_user:
                self._user = user
        else:
            user = self._user
        user_id, username = user
        with self.lab.tx() as s:
            project = prj.create_project(
                s, SYSTEM, slug=f"attack-{n}", title=f"攻击 {n}", org_id=_org_of(s, user_id)
            )
            prj.add_member(s, SYSTEM, project.id, username=username)
            for name in datasets:
                prj.grant_dataset(s, SYSTEM, project.id, catalog.get_by_name(s, name).id)
            project_id = project.id
        client = TestClient(
            self.app,
            headers={"Authorization": f"Bearer {token_for(self.lab, user_id)}"},
            raise_server_exceptions=False,
        )
        return Attacker(self.lab, client, project_id, user_id, username)

    def paths(self, name: str) -> list[str]:
        with self.lab.tx() as s:
            return [str(p) for p in self.lab.ingestion.read_paths(catalog.get_by_name(s, name))]

    def exact(self, sql: str, **tables: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` with ``{name}`` placeholders over the real files (the truth, not an answer)."""
        scans = {alias: f"read_parquet({self.paths(name)!r})" for alias, name in tables.items()}
        return duckdb.connect().execute(sql.format(**scans)).fetchall()

    def add_dataset(
        self,
        name: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        unit: str | None,
        grade: str,
        k: int = 1,
        entity: str = "person",
        bounds: Mapping[str, tuple[float, float]] | None = None,
        joins: Mapping[str, str] | None = None,
        key_sets: Mapping[str, Sequence[Any]] | None = None,
        key: Sequence[str] = (),
    ) -> int:
        """Register and upload a dataset as its department and steward would."""
        folder = self.lab.settings.data_dir.parent / "attack-files"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}-{next(_counter)}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with self.lab.tx() as s:
            org = s.execute(_org_query()).scalars().first()
            ds = catalog.create_dataset(
                s,
                SYSTEM,
                name=name,
                title=name,
                org_id=org,
                privacy_unit=entity if unit else "none",
                privacy_unit_column=unit,
                key_columns=list(key),
            )
            ds.dp_max_rows_per_unit = k
            dataset_id = ds.id
        self.lab.ingestion.ingest_file(SYSTEM, dataset_id, path)
        with self.lab.tx() as s:
            for col, (lo, hi) in (bounds or {}).items():
                catalog.set_column(s, SYSTEM, dataset_id, col, lower=lo, upper=hi)
            for col, target in (joins or {}).items():
                catalog.set_column(s, SYSTEM, dataset_id, col, joinable_to=[target])
            for col, values in (key_sets or {}).items():
                ks = f"{name}.{col}"
                catalog.upsert_key_set(s, SYSTEM, name=ks, title=ks, values=list(values))
                catalog.set_column(s, SYSTEM, dataset_id, col, key_set=ks)
            catalog.set_grade(s, SYSTEM, dataset_id, grade, "攻击测试 / attack suite")
        return dataset_id


def _org_of(s: Any, user_id: int) -> int | None:
    from countylab.storage.models import User

    user = s.get(User, user_id)
    return None if user is None else user.org_id


def _org_query() -> Any:
    from sqlalchemy import select

    from countylab.storage.models import Org

    return select(Org.id).where(Org.kind == "department").order_by(Org.id)


def module_lab(
    tmp_path_factory: pytest.TempPathFactory, template: Path, **settings: Any
) -> Iterator[AttackLab]:
    """Body of a module-scoped fixture: a copy of the demo county, fast gateway (no time padding)."""
    root = tmp_path_factory.mktemp("attack-lab")
    shutil.copytree(template, root / "lab-data")
    # ``limits``, ``runner`` and ``config`` (a ``GatewayConfig``) go to the test gateway
    gateway = {k: settings.pop(k) for k in ("limits", "runner", "config") if k in settings}
    known = Settings.model_fields  # a setting another part of the lab has not added yet is left out
    lab = build_lab(root, **{k: v for k, v in {**NO_RATE_LIMIT, **settings}.items() if k in known})
    fast_gateway(lab, **gateway)
    try:
        yield AttackLab(lab)
    finally:
        lab.close()


# -- reading responses --------------------------------------------------------------------------


def body_of(resp: Any) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {"__text__": resp.text[:200]}
    return data if isinstance(data, dict) else {"__json__": data}


def _shape(value: Any) -> Any:
    """The type skeleton of a JSON value (numbers' values removed, strings kept)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items()) if k not in _PER_REQUEST}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return type(value).__name__


def _types(value: Any) -> Any:
    """Like :func:`_shape` but strings too are reduced to their type (rendered noisy numbers)."""
    if isinstance(value, dict):
        return {k: _types(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return None if value is None else type(value).__name__


def outcome(resp: Any) -> dict[str, Any]:
    """What an attacker sees of a response, minus the noise and per-request ids.

    Status code, error code, message and details (without ids), the columns, how many rows and
    which cells are present, the types of the values, what was charged: everything a yes/no
    oracle could be built on.  Noisy numbers themselves are compared by the DP audit, not here.
    """
    body = body_of(resp)
    seen: dict[str, Any] = {"status": resp.status_code}
    if "error" in body and isinstance(body["error"], dict):
        err = body["error"]
        seen["code"] = err.get("code")
        seen["message"] = err.get("message")
        seen["details"] = _shape(err.get("details") or {})
        return seen
    display = body.pop("display", None) if isinstance(body, dict) else None
    seen["shape"] = _shape(body)
    if isinstance(display, dict):
        # the display block renders the noisy numbers as text (rounded, with intervals): those
        # strings are noise like the numbers, so only their types count; headers, names and which
        # cells are missing must be the same whatever the rows are
        seen["display"] = {
            k: (_shape(v) if k in ("headers", "roles", "names", "missing", "interval_level") else _types(v))
            for k, v in sorted(display.items())
        }
    rows = body.get("rows") or []
    seen["rows"] = len(rows)
    seen["cells"] = [[_shape(v) for v in r] for r in rows[:3]]
    seen["intervals"] = sorted((body.get("intervals") or {}).keys())
    return seen


def is_refusal(resp: Any) -> bool:
    return 400 <= resp.status_code < 500


def value(resp: Any, row: int = 0, col: int = -1) -> float:
    body = resp.json()
    return float(body["rows"][row][col])


def interval_width(resp: Any, column: str | None = None) -> float:
    intervals = resp.json()["intervals"]
    key = column or next(iter(intervals))
    lo, hi = intervals[key][0]
    return float(hi) - float(lo)


def no_server_error(resp: Any) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.text[:500])
    body = body_of(resp)
    assert "__text__" not in body, resp.text[:200]
    if resp.status_code >= 400:
        assert isinstance(body.get("error"), dict) and body["error"].get("message"), body


def finite_json(resp: Any) -> None:
    """Strict JSON: no NaN or Infinity tokens (a client in another language would choke)."""
    json.loads(resp.text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def laplace_margin(width_95: float, factor: float = 3.0) -> float:
    """A generous margin around a noisy value from its reported 95% interval width."""
    return factor * max(width_95, 1.0) + 1.0


def is_close_to(x: float, target: float, margin: float) -> bool:
    return math.isfinite(x) and abs(x - target) <= margin
