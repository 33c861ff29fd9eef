"""API: the caller's to-do items (待办) and notifications (通知), read state and e-mail address."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from countylab.notify import inbox
from countylab.notify.todos import todos
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id, Limit, Offset

router = APIRouter(prefix="/api", tags=["notifications"])


def _lang(request: Request) -> str:
    return str(getattr(request.state, "lang", "zh-CN"))


@router.get("/todos")
def list_todos(request: Request, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """What waits for the caller, computed from the live state, oldest first, each with its age."""
    lang = _lang(request)
    with lab.read() as s:
        found = todos(s, actor, uploads_dir=lab.ingestion.uploads_dir)
    return {"items": [t.to_json(lang) for t in found], "count": len(found)}


@router.get("/notifications")
def list_notifications(
    request: Request,
    actor: Actor,
    lab: LabDep,
    unread: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    lang = _lang(request)
    if actor.user_id is None:
        return {"items": [], "unread": 0}
    with lab.read() as s:
        found = inbox.items(s, actor.user_id, unread_only=unread, limit=limit, offset=offset)
        count = inbox.unread_count(s, actor.user_id)
    return {"items": [n.to_json(lang) for n in found], "unread": count}


@router.post("/notifications/{notification_id}/read")
def read_one(notification_id: Id, actor: Actor, lab: LabDep, response: Response) -> dict[str, Any]:
    """Mark one of the caller's notifications read (idempotent: a second call changes nothing)."""
    with lab.tx() as s:
        changed = inbox.mark_read(s, actor, notification_id)
        count = inbox.unread_count(s, actor.user_id or 0)
    if not changed:
        response.headers["X-Countylab-Outcome"] = "unchanged"
    return {"id": notification_id, "read": True, "unread": count}


@router.post("/notifications/read-all")
def read_all(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.tx() as s:
        marked = inbox.mark_all_read(s, actor)
    return {"marked": marked, "unread": 0}


class ContactIn(BaseModel):
    email: str = Field(default="", max_length=254)
    email_enabled: bool = True


@router.get("/me/notify-contact")
def get_contact(actor: Actor, lab: LabDep) -> dict[str, Any]:
    with lab.read() as s:
        c = inbox.contact(s, actor.user_id) if actor.user_id is not None else None
        return {"email": c.email if c else "", "email_enabled": c.email_enabled if c else True}


@router.put("/me/notify-contact")
def put_contact(body: ContactIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The caller's own e-mail address for notifications (empty: no e-mails)."""
    with lab.tx() as s:
        c = inbox.set_contact(s, actor, body.email, enabled=body.email_enabled)
        return {"email": c.email, "email_enabled": c.email_enabled}
