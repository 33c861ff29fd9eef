"""The demo county's agreements: the application B's step left ``approved`` gets its agreement
drafted by the operator (from the approved terms) and signed by the applicant, so the platform's
signature waits: the operator has a signature to give, the developer sees an agreement in
progress, the steward and the leader see it on the authorisations and disclosure pages once
signed.  Written through the services as the demo users (permission-checked and audited)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select

from countylab.identity import service as ids
from countylab.identity.access import Principal
from countylab.operations import agreements
from countylab.storage.models import User
from countylab.storage.operations_models import Application

if TYPE_CHECKING:
    from countylab.demo_steps import DemoContext
    from countylab.lab import Lab


def _principal(lab: Lab, user_id: int) -> Principal:
    with lab.read() as s:
        user = s.execute(select(User).where(User.id == user_id)).scalar_one()
        return ids.principal_for(s, user, "session")


def seed_agreements(lab: Lab, context: DemoContext, progress: Callable[[str], None]) -> None:
    app_id = context.facts.get("application:approved")
    if app_id is None or "operator" not in context.users:
        return
    progress("the agreement of the approved application / 授权协议（待平台签署）")
    operator = _principal(lab, context.users["operator"])
    with lab.tx() as s:
        agreement = agreements.draft(s, operator, app_id, now=lab.clock())
        agreement_id, digest = agreement.id, agreement.sha256
        app = s.get(Application, app_id)
        assert app is not None
        applicant_id = app.applicant_id
    applicant = _principal(lab, applicant_id)
    with lab.tx() as s:  # the applicant has read and signed; the platform's signature waits
        agreements.sign(
            s,
            applicant,
            agreement_id,
            sha256=digest,
            confirmed=agreements.PasswordConfirmed(applicant_id),
            now=lab.clock(),
        )
    context.facts["agreement:signing"] = agreement_id
