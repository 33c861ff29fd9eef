"""Client methods for the approval workflow (审批): the review queue, decisions on each step,
expert assignment, public notices (公示) and objections, the operator's view and the workflow
configuration.

A mixin of :class:`countylab_client.Client`.  Results are plain dicts as the API sends them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

_STEPS = ("precheck", "consent", "security", "expert", "final")
_TABLES = ("applications", "stage_times", "overdue", "datasets")


def _id(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    return value


class ApprovalsAPI:
    _send: Callable[..., Any]  # provided by Client

    def reviews(self) -> list[dict[str, Any]]:
        """What waits for you (待我审批), overdue first: ``application_id``, ``step``, ``due_at`` …"""
        items: list[dict[str, Any]] = self._send("GET", "/api/reviews")["items"]
        return items

    def application_workflow(self, application_id: int, /) -> dict[str, Any]:
        """The application's review rounds, steps, deadlines, experts, notice and objections."""
        aid = _id(application_id, "application_id")
        result: dict[str, Any] = self._send("GET", f"/api/applications/{aid}/workflow")
        return result

    def decide(
        self,
        application_id: int,
        /,
        step: str,
        decision: str,
        reason: str = "",
        *,
        channels: Sequence[str] | None = None,
        columns: Mapping[int, Sequence[str] | None] | None = None,
        budgets: Mapping[int, tuple[float | None, float | None]] | None = None,
        quota: Mapping[str, float | int | None] | None = None,
        conditions: str = "",
    ) -> dict[str, Any]:
        """Decide the open ``step`` (precheck: pass/return/reject; consent: approve/refuse;
        security and final: approve/return/refuse; expert: agree/disagree).  The security officer
        may narrow ``channels`` and ``columns`` (dataset id → columns), set ``budgets`` (dataset
        id → (ε, δ)) and ``quota``, and write ``conditions``.  Returns the new status."""
        aid = _id(application_id, "application_id")
        if step not in _STEPS:
            raise ValueError(f"step must be one of {', '.join(_STEPS)}, got {step!r}")
        body: dict[str, Any] = {"step": step, "decision": decision, "reason": reason}
        if channels is not None:
            body["channels"] = list(channels)
        if columns is not None:
            body["columns"] = {str(k): (list(v) if v is not None else None) for k, v in columns.items()}
        if budgets is not None:
            body["budgets"] = {str(k): list(v) for k, v in budgets.items()}
        if quota is not None:
            body["quota"] = dict(quota)
        if conditions:
            body["conditions"] = conditions
        result: dict[str, Any] = self._send("POST", f"/api/applications/{aid}/decisions", body=body)
        return result

    def assign_experts(self, application_id: int, /, user_ids: Sequence[int]) -> list[int]:
        """The operator assigns expert reviewers; returns every expert assigned so far."""
        aid = _id(application_id, "application_id")
        ids = [_id(u, "user_id") for u in user_ids]
        experts: list[int] = self._send("POST", f"/api/applications/{aid}/experts", body={"user_ids": ids})[
            "experts"
        ]
        return experts

    def notices(self) -> list[dict[str, Any]]:
        """The public notices (公示) running now."""
        items: list[dict[str, Any]] = self._send("GET", "/api/notices")["items"]
        return items

    def file_objection(self, notice_id: int, /, reason: str) -> dict[str, Any]:
        """Object to an application on public notice, with your reason."""
        nid = _id(notice_id, "notice_id")
        result: dict[str, Any] = self._send("POST", f"/api/notices/{nid}/objections", body={"reason": reason})
        return result

    def answer_objection(self, objection_id: int, /, outcome: str, answer: str) -> dict[str, Any]:
        """The operator answers: ``continue`` (dismissed), ``in_review`` or ``rejected`` (upheld)."""
        oid = _id(objection_id, "objection_id")
        result: dict[str, Any] = self._send(
            "POST", f"/api/objections/{oid}/answer", body={"outcome": outcome, "answer": answer}
        )
        return result

    def conclude_notice(self, notice_id: int, /) -> dict[str, Any]:
        """End a notice whose period is over with no open objection: the application is approved."""
        nid = _id(notice_id, "notice_id")
        result: dict[str, Any] = self._send("POST", f"/api/notices/{nid}/conclude")
        return result

    def ops_overview(self) -> dict[str, Any]:
        """The operator's view: ``stages``, ``stage_times``, ``overdue``, ``most_requested``."""
        result: dict[str, Any] = self._send("GET", "/api/ops/overview")
        return result

    def ops_export(self, table: str = "applications") -> bytes:
        """One table of the operator's view as an Excel file (XLSX bytes)."""
        if table not in _TABLES:
            raise ValueError(f"table must be one of {', '.join(_TABLES)}, got {table!r}")
        content: bytes = self._send("GET", "/api/ops/export", params={"table": table}, raw=True)
        return content

    def workflow_config(self, version: int | None = None) -> dict[str, Any]:
        """The workflow configuration in force (or ``version``): TOML ``source`` and ``versions``."""
        params = {"version": str(version)} if version is not None else None
        result: dict[str, Any] = self._send("GET", "/api/workflow/config", params=params)
        return result

    def set_workflow_config(self, source: str, *, note: str = "") -> int:
        """Validate and save a new version of the configuration (admin); returns its number."""
        return int(
            self._send("PUT", "/api/workflow/config", body={"source": source, "note": note})["version"]
        )
