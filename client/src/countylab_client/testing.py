"""A fake countylab server for unit tests of code that uses ``countylab_client``.

It speaks the real wire contract through ``httpx.MockTransport``, so the whole SDK stack
(headers, JSON, error mapping, retries) runs as in production, without a network::

    from countylab_client.testing import FakeServer

    fake = FakeServer()
    fake.add_dataset(Dataset(id=1, name="population", title="人口", department="公安局", grade="general_2"))
    with fake.client() as client:
        assert client.datasets()[0].name == "population"

The fake keeps the semantics callers rely on: bearer-token auth, project membership, idempotent
row pushes, a per-project privacy budget spent once per distinct query, and cached answers for
repeated identical queries.  It is a test double, not a reference implementation of privacy.

Grades travel as the server's codes (``general_1`` … ``general_4``, ``important``, ``core``), never
as their Chinese labels (一般数据2级 is what a page shows for ``general_2``); ``add_dataset``
refuses anything else, so a test cannot arrange data the real server would never send.  The
``department`` filter of the dataset list is the owning department's id, as on the server (give it
to ``add_dataset(..., org_id=)``); a name is refused with 422 there and here.
``tests/contract/`` runs one scenario against this fake and a real server and compares them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._client import Client
from ._models import Dataset, Org, Project, QueryResult, User

__all__ = ["DEFAULT_TOKEN", "DEFAULT_URL", "FakeServer", "RecordedPush"]

DEFAULT_TOKEN = "clk_test_token"  # noqa: S105 - a fake credential for the fake server
DEFAULT_URL = "http://countylab.test"
#: the grade codes the server sends and filters on, lowest first (labels are for pages only)
_GRADES = ("general_1", "general_2", "general_3", "general_4", "important", "core")

_MESSAGES: dict[str, tuple[str, str]] = {
    "not_authenticated": ("缺少或无效的 API 令牌", "Missing or invalid API token"),
    "not_found": ("未找到", "Not found"),
    "permission_denied": ("无权访问该项目", "You are not a member of this project"),
    "validation_failed": ("请求内容校验失败", "Request validation failed"),
    "quota_exceeded": ("隐私预算不足", "Privacy budget exceeded"),
}


@dataclass(frozen=True)
class RecordedPush:
    """One batch the fake applied (duplicates are not recorded twice)."""

    dataset_id: int
    rows: list[dict[str, Any]]
    idempotency_key: str


@dataclass
class _Failure:
    exc_type: type[httpx.TransportError]
    after_apply: bool


@dataclass
class FakeServer:
    """In-memory stand-in for the countylab HTTP API; see the module docstring."""

    user: User = field(
        default_factory=lambda: User(
            id=1,
            username="analyst",
            display_name="测试分析员",
            org=Org(id=1, name="县大数据中心", kind="research"),
            roles=("developer",),
            lang="zh-CN",
        )
    )
    token: str = DEFAULT_TOKEN
    default_budget: float = 1.0
    projects: dict[int, Project] = field(default_factory=dict)
    datasets: dict[int, Dataset] = field(default_factory=dict)
    budgets: dict[int, float] = field(default_factory=dict)
    pushes: list[RecordedPush] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    _answers: dict[str, QueryResult] = field(default_factory=dict)
    _cache: dict[tuple[str, float, int], QueryResult] = field(default_factory=dict)
    _keys: dict[str, int] = field(default_factory=dict)
    _orgs: dict[int, int | None] = field(default_factory=dict)  # dataset id -> owning org id
    _failures: list[_Failure] = field(default_factory=list)
    _canned: dict[tuple[str, str], list[httpx.Response]] = field(default_factory=dict)

    # -- arranging ------------------------------------------------------------------------

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def client(self, *, token: str | None = None, lang: str = "zh-CN", url: str = DEFAULT_URL) -> Client:
        """A real ``Client`` wired to this fake (no retry back-off, so tests stay fast)."""
        return Client(
            url,
            self.token if token is None else token,
            lang=lang,
            transport=self.transport,
            retry_backoff=0.0,
        )

    def add_project(self, project: Project, *, budget: float | None = None) -> Project:
        self.projects[project.id] = project
        self.budgets[project.id] = self.default_budget if budget is None else budget
        return project

    def add_dataset(self, dataset: Dataset, *, org_id: int | None = None) -> Dataset:
        """Serve ``dataset``; ``org_id`` is its department's id, what ``department=`` filters on."""
        if dataset.grade not in _GRADES:
            raise ValueError(
                f"grade {dataset.grade!r}: the server sends grade codes, one of {', '.join(_GRADES)} "
                "(e.g. general_2, shown as 一般数据2级)"
            )
        self.datasets[dataset.id] = dataset
        self._orgs[dataset.id] = org_id if org_id is not None else dataset.org_id
        return dataset

    def add_query_answer(self, sql: str, answer: QueryResult) -> None:
        """Answer ``sql`` (exact text) with ``answer``; its epsilon fields are set per request."""
        self._answers[sql] = answer

    def fail_next(
        self,
        times: int = 1,
        *,
        exc_type: type[httpx.TransportError] = httpx.ConnectError,
        after_apply: bool = False,
    ) -> None:
        """Make the next ``times`` requests fail in transport.

        With ``after_apply`` the fake first handles the request (e.g. stores the pushed rows)
        and then drops the response, the case idempotency keys exist for.
        """
        self._failures += [_Failure(exc_type, after_apply) for _ in range(times)]

    def respond(self, method: str, path: str, response: httpx.Response) -> None:
        """Answer the next ``method path`` request with ``response`` (once), e.g. a 503."""
        self._canned.setdefault((method.upper(), path), []).append(response)

    # -- serving --------------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        failure = self._failures.pop(0) if self._failures else None
        if failure is not None and not failure.after_apply:
            raise failure.exc_type("simulated transport failure", request=request)
        canned = self._canned.get((request.method, request.url.path))
        response = canned.pop(0) if canned else self._route(request)
        if failure is not None:
            raise failure.exc_type("simulated lost response", request=request)
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        lang = request.headers.get("Accept-Language", "zh-CN")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "not_authenticated", lang)
        parts = request.url.path.strip("/").split("/")
        routes: dict[tuple[str, ...], Callable[[], httpx.Response]] = {
            ("GET", "api", "whoami"): lambda: httpx.Response(200, json=self.user.to_json()),
            ("GET", "api", "projects"): lambda: httpx.Response(
                200, json={"items": [p.to_json() for p in self.projects.values() if self._member(p)]}
            ),
            ("GET", "api", "datasets"): lambda: self._list_datasets(request, lang),
            ("POST", "api", "query"): lambda: self._query(request, lang),
        }
        key = (request.method, *parts)
        if key in routes:
            return routes[key]()
        if len(parts) >= 3 and parts[:2] in (["api", "projects"], ["api", "datasets"]) and parts[2].isdigit():
            obj_id = int(parts[2])
            if parts[1] == "projects" and len(parts) == 3 and request.method == "GET":
                project = self.projects.get(obj_id)
                if project is None:
                    return _error(404, "not_found", lang)
                if not self._member(project):
                    return _denied(lang, "project.read")
                return httpx.Response(200, json=project.to_json())
            if parts[1] == "datasets" and obj_id not in self.datasets:
                return _error(404, "not_found", lang)
            if parts[1] == "datasets" and len(parts) == 3 and request.method == "GET":
                return httpx.Response(200, json=self.datasets[obj_id].to_json())
            if parts[1] == "datasets" and parts[3:] == ["rows"] and request.method == "POST":
                return self._push(obj_id, request, lang)
        return _error(404, "not_found", lang, path=request.url.path)

    def _member(self, project: Project) -> bool:
        return any(m.user_id == self.user.id for m in project.members)

    def _list_datasets(self, request: httpx.Request, lang: str) -> httpx.Response:
        p = request.url.params
        q = (p.get("q") or "").lower()
        department = p.get("department")
        if department is not None and not department.isdigit():  # the server filters on org ids
            problem = {"field": "query.department", "reason": "int_parsing", "message": "not an integer"}
            return _error(422, "validation_failed", lang, problems=[problem])
        found = [
            d
            for d in self.datasets.values()
            if (not q or q in f"{d.name} {d.title} {d.description}".lower())
            and (department is None or self._orgs.get(d.id) == int(department))
            and p.get("grade") in (None, d.grade)
            and (p.get("tag") is None or p.get("tag") in d.tags)
        ]
        return httpx.Response(200, json={"items": [d.to_json(detail=False) for d in found]})

    def _push(self, dataset_id: int, request: httpx.Request, lang: str) -> httpx.Response:
        body = json.loads(request.content)
        rows, key = body.get("rows"), body.get("idempotency_key")
        if not isinstance(rows, list) or not isinstance(key, str) or not key:
            return _error(422, "validation_failed", lang, reason="rows and idempotency_key are required")
        if key in self._keys:  # like the server: this request added nothing
            return httpx.Response(200, json={"accepted": 0, "duplicate": True})
        known = {c.name for c in self.datasets[dataset_id].columns}
        for i, row in enumerate(rows):
            unknown = sorted(set(row) - known) if known else []
            if unknown:
                return _error(
                    422, "validation_failed", lang, row=i, column=unknown[0], reason="unknown column"
                )
        self._keys[key] = len(rows)
        self.pushes.append(RecordedPush(dataset_id, rows, key))
        return httpx.Response(200, json={"accepted": len(rows), "duplicate": False})

    def _query(self, request: httpx.Request, lang: str) -> httpx.Response:
        body = json.loads(request.content)
        sql, epsilon, project_id = body.get("sql"), body.get("epsilon"), body.get("project_id")
        project = self.projects.get(project_id) if isinstance(project_id, int) else None
        if project is None:
            return _error(404, "not_found", lang)
        if not self._member(project):
            return _denied(lang, "query.run")
        if not isinstance(epsilon, int | float) or epsilon <= 0 or sql not in self._answers:
            return _error(422, "validation_failed", lang, reason="epsilon must be > 0 and the SQL known")
        cache_key = (sql, float(epsilon), project_id)
        if cache_key in self._cache:
            return httpx.Response(
                200, json=_with(self._cache[cache_key], 0.0, True, self.budgets[project_id])
            )
        if epsilon > self.budgets[project_id] + 1e-12:
            left = self.budgets[project_id]
            return _error(
                429,
                "quota_exceeded",
                lang,
                reason="budget_exhausted",
                epsilon_remaining=left,
                project_epsilon_remaining=left,
                epsilon_needed=float(epsilon),
            )
        self.budgets[project_id] -= epsilon
        self._cache[cache_key] = self._answers[sql]
        return httpx.Response(
            200, json=_with(self._answers[sql], float(epsilon), False, self.budgets[project_id])
        )


def _with(answer: QueryResult, spent: float, cached: bool, remaining: float) -> dict[str, Any]:
    data = answer.to_json()
    data.update(epsilon_spent=spent, cached=cached, budget_remaining=remaining)
    return data


def _denied(lang: str, permission: str) -> httpx.Response:
    """The server's refusal of a non-member: the permission it checked and why it failed."""
    return _error(403, "permission_denied", lang, permission=permission, reason="project_member")


def _error(status: int, code: str, lang: str, **details: Any) -> httpx.Response:
    zh, en = _MESSAGES[code]
    message = en if lang.lower().startswith("en") else zh
    return httpx.Response(status, json={"error": {"code": code, "message": message, "details": details}})
