"""Client methods for agreements (授权协议), authorisations (授权备案), emergency grants and the
disclosure report (授权信息披露).

A mixin of :class:`countylab_client.Client`.  Results are plain dicts as the API sends them.
Signing downloads the current PDF first and sends its SHA-256 with the password: what you sign
is exactly the bytes you (can) read, and the server refuses any other document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

_VERBS = ("suspend", "resume", "revoke")


def _id(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    return value


class AgreementsAPI:
    _send: Callable[..., Any]  # provided by Client

    def agreement_of(self, application_id: int, /) -> dict[str, Any]:
        """The application's newest agreement: ``number``, ``version``, ``status``, ``sha256``,
        ``signatures``, ``waiting_for``, ``versions``, ``attachments`` and ``authorisation``."""
        aid = _id(application_id, "application_id")
        result: dict[str, Any] = self._send("GET", f"/api/applications/{aid}/agreement")
        return result

    def agreement(self, agreement_id: int, /) -> dict[str, Any]:
        result: dict[str, Any] = self._send("GET", f"/api/agreements/{_id(agreement_id, 'agreement_id')}")
        return result

    def draft_agreement(
        self, application_id: int, /, *, extra_clauses: str = "", replace_signed: bool = False
    ) -> dict[str, Any]:
        """Operator: draft (or redraft: version n+1) the agreement of an approved application.
        ``replace_signed`` makes a new version even though a party has signed (both sign again)."""
        aid = _id(application_id, "application_id")
        body = {"extra_clauses": extra_clauses, "replace_signed": replace_signed}
        result: dict[str, Any] = self._send("POST", f"/api/applications/{aid}/agreement", body=body)
        return result

    def agreement_pdf(self, agreement_id: int, /) -> bytes:
        """The exact PDF bytes that are signed."""
        content: bytes = self._send(
            "GET", f"/api/agreements/{_id(agreement_id, 'agreement_id')}/pdf", raw=True
        )
        return content

    def download_agreement(self, agreement_id: int, /, path: str | Path) -> str:
        """Save the PDF at ``path``; returns its SHA-256."""
        content = self.agreement_pdf(agreement_id)
        Path(path).write_bytes(content)
        return hashlib.sha256(content).hexdigest()

    def sign_agreement(
        self, agreement_id: int, /, password: str, *, sha256: str | None = None
    ) -> dict[str, Any]:
        """Sign as your party, with your password asked again.  ``sha256``: of the PDF you read
        (default: the PDF downloaded now).  Returns ``party``, ``complete`` and, when this was
        the second signature, the ``authorisation_id`` that took effect."""
        gid = _id(agreement_id, "agreement_id")
        digest = sha256 or hashlib.sha256(self.agreement_pdf(gid)).hexdigest()
        result: dict[str, Any] = self._send(
            "POST", f"/api/agreements/{gid}/sign", body={"sha256": digest, "password": password}
        )
        return result

    def attach_agreement_scan(self, agreement_id: int, /, path: str | Path) -> dict[str, Any]:
        """Keep a scanned, stamped copy (PDF, PNG or JPEG); returns its ``sha256``."""
        p = Path(path)
        gid = _id(agreement_id, "agreement_id")
        result: dict[str, Any] = self._send(
            "POST", f"/api/agreements/{gid}/attachments", files={"file": (p.name, p.read_bytes())}
        )
        return result

    def authorisations(self, status: str | None = None) -> list[dict[str, Any]]:
        """Authorisations (active, suspended, revoked, expired) with organisation, scenario,
        datasets, channels and term."""
        params = {"status": status} if status else None
        items: list[dict[str, Any]] = self._send("GET", "/api/authorisations", params=params)["items"]
        return items

    def authorisation(self, authorisation_id: int, /) -> dict[str, Any]:
        aid = _id(authorisation_id, "authorisation_id")
        result: dict[str, Any] = self._send("GET", f"/api/authorisations/{aid}")
        return result

    def change_authorisation(self, authorisation_id: int, /, action: str, reason: str) -> dict[str, Any]:
        """Steward: ``suspend`` (reversible), ``resume`` or ``revoke`` (final), with a reason."""
        if action not in _VERBS:
            raise ValueError(f"action must be one of {', '.join(_VERBS)}, got {action!r}")
        aid = _id(authorisation_id, "authorisation_id")
        result: dict[str, Any] = self._send(
            "POST", f"/api/authorisations/{aid}/{action}", body={"reason": reason}
        )
        return result

    def emergency_grant(
        self, project_id: int, /, dataset_id: int, *, reason: str, ends_on: date
    ) -> dict[str, Any]:
        """Admin: grant a dataset without an application, with a written reason and an end date
        (audited as ``grant.emergency`` and listed in the disclosure report)."""
        pid = _id(project_id, "project_id")
        body = {"dataset_id": _id(dataset_id, "dataset_id"), "reason": reason, "ends_on": ends_on.isoformat()}
        result: dict[str, Any] = self._send("POST", f"/api/projects/{pid}/grants", body=body)
        return result

    def disclosure(self, start: date | None = None, end: date | None = None) -> dict[str, Any]:
        """The disclosure report of a period (default: this year so far)."""
        params = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
        result: dict[str, Any] = self._send("GET", "/api/disclosure", params=params or None)
        return result

    def disclosure_xlsx(self, start: date | None = None, end: date | None = None) -> bytes:
        params = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
        content: bytes = self._send("GET", "/api/disclosure", params={**params, "format": "xlsx"}, raw=True)
        return content
