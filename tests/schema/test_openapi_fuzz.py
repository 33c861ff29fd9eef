"""No 5xx on any input: every API operation, fuzzed from the app's own OpenAPI document.

Schemathesis's engine (what ``st run`` drives) generates requests for every operation of
``/api/openapi.json`` — its coverage phase (boundaries: the largest int64 and one more, empty
and missing fields, wrong types), its fuzzing phase (positive and negative data) and its stateful
phase (calls chained through the ids that answers return) — and sends them to a real
``countylab serve`` (tests/schema/conftest.py) as a developer and as an admin, on SQLite and on
PostgreSQL (the admin).  Each answer is checked:

* **not a server error** — no 5xx, whatever the input (a huge id is a 422, not an overflow);
* **response schema conformance** — the body matches the documented schema of its status;
* **status code conformance** — the status is one the operation documents (the lab's error
  answers are documented for every operation by ``countylab.web.errors.document_errors``);
* **content type conformance** — JSON where JSON is documented, CSV/Parquet for dummy data,
  any type only for airlock files;
* **state changes are audited** — an unsafe call (POST/PUT/PATCH/DELETE) that succeeded without
  saying ``X-Countylab-Outcome: refused|unchanged`` moved the audit head.  The server also runs
  with ``strict_audit``, which turns such a call into a 500 by itself.

The run is reproducible (a fixed seed, deterministic generation) and bounded (``MAX_EXAMPLES``
per operation and phase).  Every operation starts with the caller restored (active, own roles)
and a fresh token, because a fuzzed call may legitimately revoke the token or change the roles.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from tests.schema.conftest import Served

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SEED = 20261205
MAX_EXAMPLES = 5
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "audited",
)


def config() -> SchemathesisConfig:
    checks: dict[str, Any] = {"enabled": False}
    checks.update({name: {"enabled": True} for name in CHECKS})
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "checks": checks,
            # coverage: boundaries and wrong types of every parameter, but not the methods an
            # operation lacks (Starlette's 405s)
            "phases": {"coverage": {"unexpected-methods": []}, "stateful": {"max-steps": 10}},
        }
    )


@dataclass
class Run:
    """One fuzz run as one demo user: the token in use, and what the run saw."""

    served: Served
    username: str
    token: str = ""
    operation: str = ""
    operations: set[str] = field(default_factory=set)
    before: dict[str, int] = field(default_factory=dict)  # case id -> audit head before the call
    statuses: Counter[int] = field(default_factory=Counter)
    audited: int = 0

    def token_for(self, label: str) -> str:
        if label != self.operation or not self.token:
            self.operation = label
            self.operations.add(label)
            self.token = self.served.fresh_token(self.username)
        return self.token


#: the run in progress (the engine calls the auth provider and the checks, not our code)
CURRENT: list[Run] = []


@schemathesis.check
def audited(ctx: Any, response: Any, case: Any) -> bool | None:
    """A successful unsafe call moved the audit head, unless it says it changed nothing."""
    run = CURRENT[-1]
    run.statuses[response.status_code] += 1
    if response.status_code == 401:  # the case revoked our token or changed our password
        run.token = ""
    before = run.before.pop(case.id, None)
    outcome = response.headers.get("x-countylab-outcome", [""])
    outcome = outcome[0] if isinstance(outcome, list) and outcome else outcome
    if before is None or response.status_code >= 400 or outcome in ("refused", "unchanged"):
        return None
    after = run.served.audit_head()
    run.audited += 1
    if after <= before:
        raise AssertionError(
            f"{case.method} {case.formatted_path} answered {response.status_code} "
            f"without an audit event (audit head {before} → {after})"
        )
    return None


class FreshToken:
    """Bearer token of the run's user, renewed at each new operation and after a 401."""

    def get(self, case: Any, ctx: Any) -> str:
        return CURRENT[-1].token_for(case.operation.label)

    def set(self, case: Any, data: str, ctx: Any) -> None:
        run = CURRENT[-1]
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
        if case.method.upper() in UNSAFE:
            run.before[case.id] = run.served.audit_head()


def failures_of(event: Any) -> list[str]:
    found = []
    for case_id, nodes in event.recorder.checks.items():
        for node in nodes:
            if node.status == Status.FAILURE and node.failure_info is not None:
                info = node.failure_info
                found.append(f"{event.label}: {node.name}: {info.failure.title}\n    {info.code_sample}")
    return found


#: both callers on SQLite; on PostgreSQL the admin, who reaches every operation's deepest path
RUNS = [("sqlite", "developer"), ("sqlite", "admin"), ("postgresql", "admin")]


@pytest.mark.parametrize(("db_url", "username"), RUNS, indirect=["db_url"])
def test_no_server_error_and_answers_match_the_schema(served: Served, username: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/api/openapi.json", config=config())
    schema.auth(refresh_interval=None)(FreshToken)
    run = Run(served, username)
    CURRENT.append(run)
    problems: list[str] = []
    scenarios = 0
    try:
        for event in schemathesis.engine.from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                scenarios += 1
                problems.extend(failures_of(event))
            elif isinstance(event, events.FatalError | events.NonFatalError):
                problems.append(f"schemathesis error: {event!r}")
    finally:
        CURRENT.remove(run)
    calls = sum(run.statuses.values())
    print(
        f"\n[schema fuzz] {username}: {len(run.operations)} operations, {scenarios} scenarios, "
        f"{calls} calls, {run.audited} audited state changes, statuses {dict(sorted(run.statuses.items()))}"
    )
    assert not problems, "\n".join(dict.fromkeys(problems)) + "\n--- server log ---\n" + served.log_tail()
    assert len(run.operations) >= 80 and calls > 1000, (len(run.operations), calls)
    assert run.audited > 0  # the admin's and the developer's runs change state, and it is audited
