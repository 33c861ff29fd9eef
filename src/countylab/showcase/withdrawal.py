"""Taking a released result off display (撤展): released → retracted, with a reason, audited.

A steward or output checker (``release.review``) may retract a release they find should not be
shown after all (a differencing risk seen later, a mistake in a label).  The state change is the
whole mechanism: downloads check ``state == "released"`` (:meth:`AirlockService.content`), and so
does everything the showcase, the map, dashboards and briefs build on a release, so nothing
built on it stays public.  The reason is kept in ``showcase_retractions`` for the record.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from countylab import audit
from countylab.airlock.states import ReleaseEvent, transition
from countylab.errors import NotFound, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.storage.airlock_models import ReleaseRequest
from countylab.storage.models import utcnow
from countylab.storage.showcase_models import Retraction


def retract(s: Session, actor: Principal, request_id: int, reason: str) -> ReleaseRequest:
    authorize(actor, Permission.release_review, target=f"release:{request_id}")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("撤展须写明理由", "say why the result is taken off display", reason="reason")
    if len(reason) > 2000:
        raise ValidationFailed("理由过长（最多 2000 字）", "reason too long (2000 characters at most)")
    req = s.get(ReleaseRequest, request_id, with_for_update=True)
    if req is None:
        raise NotFound(f"出域申请 {request_id} 不存在", f"release request {request_id} not found")
    before = req.state
    req.state = transition(req.state, ReleaseEvent.retract).value
    if before == req.state:  # a repeated click: already retracted
        return req
    s.add(Retraction(request_id=req.id, reason=reason, retracted_by=actor.user_id, retracted_at=utcnow()))
    audit.record(s, actor, "release.retract", f"release:{req.id}", reason=reason, project_id=req.project_id)
    return req


def retraction_of(s: Session, request_id: int) -> Retraction | None:
    from sqlalchemy import select

    return s.execute(select(Retraction).where(Retraction.request_id == request_id)).scalar_one_or_none()
