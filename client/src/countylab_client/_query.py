"""Client methods of the data black box (DP queries, budgets).

A mixin of :class:`countylab_client.Client`: methods reach the server through ``self._send``.
``Client.query``/``query_result`` (DP mode) live in ``_client.py``; this adds SDC mode, AS OF
versions, budgets and query history.  No method here retries a query: each answered query may
spend privacy budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._models import QueryResult


def _pid(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"project_id must be an int, got {type(value).__name__}")
    return value


class QueryAPI:
    _send: Callable[..., Any]  # provided by Client

    def query_raw(
        self,
        sql: str,
        *,
        project_id: int,
        epsilon: float | None = None,
        delta: float | None = None,
        mode: str = "dp",
        versions: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        """Any gateway query; returns the server's JSON (``budget`` ledgers, ``suppressed`` cells…)."""
        body: dict[str, Any] = {
            "sql": sql,
            "project_id": _pid(project_id),
            "mode": mode,
            "versions": dict(versions or {}),
        }
        if epsilon is not None:
            body["epsilon"] = float(epsilon)
        if delta is not None:
            body["delta"] = float(delta)
        result: dict[str, Any] = self._send("POST", "/api/query", body=body)
        return result

    def query_sdc(self, sql: str, *, project_id: int) -> QueryResult:
        """Exact aggregates on 一般1–2级 data; cells failing the SDC rules come back as None."""
        return QueryResult.from_json(self.query_raw(sql, project_id=project_id, mode="sdc"))

    def budget(self, project_id: int) -> dict[str, Any]:
        """The project's privacy budgets: ``budgets`` (per dataset, project and analysts) and ``entries``."""
        result: dict[str, Any] = self._send("GET", f"/api/projects/{_pid(project_id)}/budget")
        return result

    def set_budget(
        self,
        project_id: int,
        dataset_id: int,
        *,
        epsilon: float | None,
        delta: float | None = None,
        user_id: int | None = None,
    ) -> dict[str, Any]:
        """Security officer: cap a project's (or one analyst's) budget, within the grade's limits."""
        result: dict[str, Any] = self._send(
            "PUT",
            f"/api/projects/{_pid(project_id)}/budgets/{int(dataset_id)}",
            body={"epsilon": epsilon, "delta": delta, "user_id": user_id},
        )
        return result

    def query_history(self, project_id: int | None = None, *, mine: bool = False) -> list[dict[str, Any]]:
        """Queries of a project (members) or, without ``project_id``, of every project (steward)."""
        if project_id is None:
            data = self._send("GET", "/api/queries")
        else:
            data = self._send(
                "GET",
                f"/api/projects/{_pid(project_id)}/queries",
                params={"mine": "true" if mine else "false"},
            )
        return list(data["items"])

    def query_tables(self, project_id: int) -> list[dict[str, Any]]:
        """Granted datasets as SQL tables with columns, bounds and public key sets."""
        return list(self._send("GET", f"/api/projects/{_pid(project_id)}/query-tables")["items"])
