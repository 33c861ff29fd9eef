"""Client methods of the data black box (DP queries, budgets).

A mixin of :class:`countylab_client.Client`: methods reach the server through ``self._send``.
``Client.query``/``query_result`` live in ``_client.py``; this adds δ, AS OF versions, budgets
(with their renewal period), top-up requests and query history.  There is no exact (SDC) mode:
exact tables come from sandbox jobs through the airlock.  No method here retries a query: each
answered query may spend privacy budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


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
        versions: Mapping[str, int] | None = None,
        confirm_delta: bool = True,
    ) -> dict[str, Any]:
        """Any gateway query; returns the server's JSON (``budget`` ledgers with their period…).

        ``delta`` defaults to a small fraction of the grade's δ cap; with ``confirm_delta=False``
        a query that would spend δ is not run (409, ``reason: confirm_delta``) so you can ask first.
        """
        body: dict[str, Any] = {
            "sql": sql,
            "project_id": _pid(project_id),
            "versions": dict(versions or {}),
            "confirm_delta": bool(confirm_delta),
        }
        if epsilon is not None:
            body["epsilon"] = float(epsilon)
        if delta is not None:
            body["delta"] = float(delta)
        result: dict[str, Any] = self._send("POST", "/api/query", body=body)
        return result

    def _answer_bytes(self, query_id: int, fmt: str) -> bytes:
        data: bytes = self._send("GET", f"/api/queries/{_pid(query_id)}/answer.{fmt}", raw=True)
        return data

    def download_answer(self, query_id: int, to: str | Path | None = None, *, format: str = "xlsx") -> bytes:
        """A stored answer as the lab exports it (``format`` ``"xlsx"`` or ``"csv"``): readable
        headers, names beside codes, rounded values with interval bounds, the DP note in XLSX.
        Costs no privacy budget; ``to`` also writes the file."""
        if format not in ("xlsx", "csv"):
            raise ValueError("format must be 'xlsx' or 'csv'")
        data = self._answer_bytes(query_id, format)
        if to is not None:
            Path(to).write_bytes(data)
        return data

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

    def request_topup(
        self, project_id: int, dataset_id: int, *, epsilon: float, reason: str, delta: float = 0.0
    ) -> dict[str, Any]:
        """Ask the security officer for more budget on a dataset, for the current period only."""
        result: dict[str, Any] = self._send(
            "POST",
            f"/api/projects/{_pid(project_id)}/budget-topups",
            body={
                "dataset_id": int(dataset_id),
                "epsilon": float(epsilon),
                "delta": float(delta),
                "reason": reason,
            },
        )
        return result

    def topups(self, project_id: int | None = None, *, status: str | None = None) -> list[dict[str, Any]]:
        """Top-up requests of a project, or (security officer) of every project."""
        if project_id is None:
            params = {"status": status} if status else None
            data = self._send("GET", "/api/budget-topups", params=params)
        else:
            data = self._send("GET", f"/api/projects/{_pid(project_id)}/budget-topups")
        return list(data["items"])

    def decide_topup(self, topup_id: int, *, approve: bool, note: str = "") -> dict[str, Any]:
        """Security officer: approve (the project's budget grows this period) or refuse a request."""
        result: dict[str, Any] = self._send(
            "POST",
            f"/api/budget-topups/{int(topup_id)}/decision",
            body={"approve": bool(approve), "note": note},
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
