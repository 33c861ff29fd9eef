"""Client methods of the data operations platform, applicant's side: the scenario list (场景清单),
the capability list (能力清单), subscriptions, data-use applications (用数申请) with their PDF
attachments, and accreditation records (培训合格).

A mixin of :class:`countylab_client.Client`.  Results are plain dicts, as the API sends them
(dates ISO ``YYYY-MM-DD``; ``status_name`` in the client's language).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any


def _id(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    return value


def _day(value: date | str | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def _offers(datasets: Sequence[int | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[3, {"dataset_id": 4, "columns": ["town", "age"]}]`` → the API's list of offers."""
    out: list[dict[str, Any]] = []
    for d in datasets:
        out.append({"dataset_id": _id(d, "dataset id")} if isinstance(d, int) else dict(d))
    return out


class OperationsAPI:
    _send: Callable[..., Any]  # provided by Client

    # -- scenarios ------------------------------------------------------------------------------
    def scenario_fields(self) -> list[dict[str, Any]]:
        """The fixed list of fields (领域): ``code`` and ``name``."""
        items: list[dict[str, Any]] = self._send("GET", "/api/scenario-fields")["items"]
        return items

    def scenarios(
        self, *, field: str = "", status: str = "", q: str = "", dataset_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The scenarios you may see, newest first."""
        params = {"field": field, "status": status, "q": q}
        if dataset_id is not None:
            params["dataset"] = str(_id(dataset_id, "dataset_id"))
        items: list[dict[str, Any]] = self._send("GET", "/api/scenarios", params=params)["items"]
        return items

    def scenario(self, scenario_id: int, /) -> dict[str, Any]:
        result: dict[str, Any] = self._send("GET", f"/api/scenarios/{_id(scenario_id, 'scenario_id')}")
        return result

    def publish_scenario(
        self,
        *,
        title: str,
        problem: str,
        field: str,
        datasets: Sequence[int | Mapping[str, Any]],
        org_id: int | None = None,
        expected_outcome: str = "",
        apply_from: date | str | None = None,
        apply_until: date | str | None = None,
        visibility: str = "public",
        propose: bool = False,
    ) -> dict[str, Any]:
        """Publish a scenario (征集中), or with ``propose=True`` propose your own (待受理)."""
        body = {
            "title": title,
            "problem": problem,
            "field": field,
            "datasets": _offers(datasets),
            "org_id": org_id,
            "expected_outcome": expected_outcome,
            "apply_from": _day(apply_from),
            "apply_until": _day(apply_until),
            "visibility": visibility,
        }
        path = "/api/scenarios/propose" if propose else "/api/scenarios"
        result: dict[str, Any] = self._send("POST", path, body=body)
        return result

    def edit_scenario(
        self,
        scenario_id: int,
        /,
        *,
        reason: str,
        title: str,
        problem: str,
        field: str,
        datasets: Sequence[int | Mapping[str, Any]],
        expected_outcome: str = "",
        apply_from: date | str | None = None,
        apply_until: date | str | None = None,
        visibility: str = "public",
    ) -> dict[str, Any]:
        """Edit a published scenario's text and offer (a new version; ``reason`` is required).
        Applications already submitted keep the offer they were submitted under."""
        body = {
            "title": title,
            "problem": problem,
            "field": field,
            "datasets": _offers(datasets),
            "expected_outcome": expected_outcome,
            "apply_from": _day(apply_from),
            "apply_until": _day(apply_until),
            "visibility": visibility,
            "reason": reason,
        }
        sid = _id(scenario_id, "scenario_id")
        result: dict[str, Any] = self._send("PUT", f"/api/scenarios/{sid}", body=body)
        return result

    def scenario_versions(self, scenario_id: int, /) -> list[dict[str, Any]]:
        """A scenario's versions, newest first: who changed it, when and why."""
        sid = _id(scenario_id, "scenario_id")
        result: dict[str, Any] = self._send("GET", f"/api/scenarios/{sid}/versions")
        return list(result["items"])

    def accept_scenario(self, scenario_id: int, /, reason: str = "") -> dict[str, Any]:
        """The operator accepts a proposed scenario."""
        sid = _id(scenario_id, "scenario_id")
        result: dict[str, Any] = self._send("POST", f"/api/scenarios/{sid}/accept", body={"reason": reason})
        return result

    def decline_scenario(self, scenario_id: int, /, reason: str) -> dict[str, Any]:
        sid = _id(scenario_id, "scenario_id")
        result: dict[str, Any] = self._send("POST", f"/api/scenarios/{sid}/decline", body={"reason": reason})
        return result

    def set_scenario_status(self, scenario_id: int, /, status: str, reason: str) -> dict[str, Any]:
        """征集中 → 已对接 → 实施中 → 已完成 / 已关闭 (``matched``, ``in_progress`` …), with a reason."""
        sid = _id(scenario_id, "scenario_id")
        body = {"status": status, "reason": reason}
        result: dict[str, Any] = self._send("POST", f"/api/scenarios/{sid}/status", body=body)
        return result

    def subscribe_scenarios(self, fields: Sequence[str]) -> list[str]:
        """Hear of new scenarios in exactly these fields (``""``: every field; ``[]``: none)."""
        result: list[str] = self._send(
            "PUT", "/api/me/scenario-subscriptions", body={"fields": list(fields)}
        )["fields"]
        return result

    def capabilities(self, *, field: str = "") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._send("GET", "/api/capabilities", params={"field": field})["items"]
        return items

    def publish_capability(
        self, *, title: str, field: str, description: str = "", org_id: int | None = None
    ) -> dict[str, Any]:
        body = {"title": title, "field": field, "description": description, "org_id": org_id}
        result: dict[str, Any] = self._send("POST", "/api/capabilities", body=body)
        return result

    # -- applications ---------------------------------------------------------------------------
    def applications(self, *, status: str = "", mine: bool = False) -> list[dict[str, Any]]:
        params = {"status": status, "mine": "true" if mine else "false"}
        items: list[dict[str, Any]] = self._send("GET", "/api/applications", params=params)["items"]
        return items

    def application(self, application_id: int, /) -> dict[str, Any]:
        result: dict[str, Any] = self._send(
            "GET", f"/api/applications/{_id(application_id, 'application_id')}"
        )
        return result

    @staticmethod
    def _application_body(
        scenario_id: int,
        title: str,
        purpose: str,
        datasets: Sequence[int | Mapping[str, Any]],
        channels: Sequence[str],
        member_ids: Sequence[int],
        starts_on: date | str | None,
        ends_on: date | str | None,
        expected_outputs: str,
        commitments: Sequence[str],
    ) -> dict[str, Any]:
        return {
            "scenario_id": _id(scenario_id, "scenario_id"),
            "title": title,
            "purpose": purpose,
            "datasets": _offers(datasets),
            "channels": list(channels),
            "member_ids": [_id(m, "member id") for m in member_ids],
            "starts_on": _day(starts_on),
            "ends_on": _day(ends_on),
            "expected_outputs": expected_outputs,
            "commitments": list(commitments),
        }

    def create_application(
        self,
        *,
        scenario_id: int,
        title: str,
        purpose: str = "",
        datasets: Sequence[int | Mapping[str, Any]] = (),
        channels: Sequence[str] = (),
        member_ids: Sequence[int] = (),
        starts_on: date | str | None = None,
        ends_on: date | str | None = None,
        expected_outputs: str = "",
        commitments: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A new draft application (用数申请), numbered ``SQ-YYYY-NNNN``."""
        body = self._application_body(
            scenario_id, title, purpose, datasets, channels, member_ids, starts_on, ends_on,
            expected_outputs, commitments,
        )  # fmt: skip
        result: dict[str, Any] = self._send("POST", "/api/applications", body=body)
        return result

    def update_application(
        self,
        application_id: int,
        /,
        *,
        scenario_id: int,
        title: str,
        purpose: str = "",
        datasets: Sequence[int | Mapping[str, Any]] = (),
        channels: Sequence[str] = (),
        member_ids: Sequence[int] = (),
        starts_on: date | str | None = None,
        ends_on: date | str | None = None,
        expected_outputs: str = "",
        commitments: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Replace a draft's (or returned application's) fields."""
        body = self._application_body(
            scenario_id, title, purpose, datasets, channels, member_ids, starts_on, ends_on,
            expected_outputs, commitments,
        )  # fmt: skip
        aid = _id(application_id, "application_id")
        result: dict[str, Any] = self._send("PUT", f"/api/applications/{aid}", body=body)
        return result

    def submit_application(self, application_id: int, /) -> dict[str, Any]:
        """draft → submitted, or returned → submitted (resubmission)."""
        aid = _id(application_id, "application_id")
        result: dict[str, Any] = self._send("POST", f"/api/applications/{aid}/submit")
        return result

    def withdraw_application(self, application_id: int, /, reason: str = "") -> dict[str, Any]:
        aid = _id(application_id, "application_id")
        result: dict[str, Any] = self._send(
            "POST", f"/api/applications/{aid}/withdraw", body={"reason": reason}
        )
        return result

    def renew_application(self, application_id: int, /) -> dict[str, Any]:
        """A new draft renewing an authorised application, prefilled."""
        aid = _id(application_id, "application_id")
        result: dict[str, Any] = self._send("POST", f"/api/applications/{aid}/renew")
        return result

    def attach_to_application(self, application_id: int, /, path: str | Path) -> dict[str, Any]:
        """Upload a PDF attachment (the server refuses anything that is not a real PDF)."""
        aid = _id(application_id, "application_id")
        p = Path(path)
        files = {"file": (p.name, p.read_bytes())}
        result: dict[str, Any] = self._send("POST", f"/api/applications/{aid}/attachments", files=files)
        return result

    def application_terms(self) -> dict[str, Any]:
        """The commitments (承诺书) to tick, the purpose types and channels, with their names."""
        result: dict[str, Any] = self._send("GET", "/api/application-terms")
        return result

    # -- accreditation --------------------------------------------------------------------------
    def accreditations(self) -> list[dict[str, Any]]:
        """Every training record with its state (current, expiring, expired); the operator's."""
        items: list[dict[str, Any]] = self._send("GET", "/api/accreditations")["items"]
        return items

    def record_accreditation(
        self,
        *,
        user_id: int,
        course: str,
        passed_on: date | str,
        expires_on: date | str,
        certificate_no: str = "",
    ) -> dict[str, Any]:
        body = {
            "user_id": _id(user_id, "user_id"),
            "course": course,
            "certificate_no": certificate_no,
            "passed_on": _day(passed_on),
            "expires_on": _day(expires_on),
        }
        result: dict[str, Any] = self._send("POST", "/api/accreditations", body=body)
        return result
