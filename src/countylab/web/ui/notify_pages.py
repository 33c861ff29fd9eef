"""Pages of notifications (通知) and the values the header badge and the home to-do panel read.

``notify_context`` gives every template two lazy callables: ``unread_count()`` (one indexed
count, computed at most once per request and only by a template that shows it) and
``todo_items()`` (the home page's to-do panel).  Both read in ``lab.read()`` and never write.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from countylab.notify import inbox
from countylab.notify.messages import age, beijing
from countylab.notify.todos import todos
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id, Page
from countylab.web.ui.common import form_action, lang_of, render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 30


def notify_context(request: Request) -> dict[str, Any]:
    """Lazy values for base.html (badge) and home.html (to-do panel); see the module docstring."""
    cache: dict[str, Any] = {}

    def unread_count() -> int:
        if "unread" not in cache:
            principal = getattr(request.state, "principal", None)
            cache["unread"] = 0
            if principal is not None and principal.user_id is not None:
                with request.app.state.lab.read() as s:
                    cache["unread"] = inbox.unread_count(s, principal.user_id)
        return int(cache["unread"])

    def todo_items() -> list[dict[str, Any]]:
        if "todos" not in cache:
            principal = getattr(request.state, "principal", None)
            cache["todos"] = []
            if principal is not None:
                lab = request.app.state.lab
                with lab.read() as s:
                    found = todos(s, principal, uploads_dir=lab.ingestion.uploads_dir)
                cache["todos"] = [t.to_json(lang_of(request)) for t in found]
        items: list[dict[str, Any]] = cache["todos"]
        return items

    return {"unread_count": unread_count, "todo_items": todo_items}


@router.get("/notifications")
def notifications_page(
    request: Request, actor: Actor, lab: LabDep, unread: bool = False, page: Page = 1
) -> Response:
    lang = lang_of(request)
    rows: list[dict[str, Any]] = []
    contact = None
    if actor.user_id is not None:
        with lab.read() as s:
            found = inbox.items(
                s, actor.user_id, unread_only=unread, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
            )
            contact = inbox.contact(s, actor.user_id)
        rows = [
            {
                "id": n.id,
                "text": n.text(lang),
                "link": n.link,
                "read": n.read_at is not None,
                "at": beijing(n.created_at),
                "age": age(n.created_at, lang),
            }
            for n in found
        ]
    return render(
        request,
        "notifications.html",
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        unread_only=unread,
        email=contact.email if contact else "",
        email_enabled=contact.email_enabled if contact else True,
        email_on=bool(lab.settings.notify_smtp_host),
    )


@router.post("/notifications/{notification_id}/read")
def read_one(
    request: Request, notification_id: Id, actor: Actor, lab: LabDep, go: Annotated[str, Form()] = ""
) -> Response:
    """Mark read; with ``go=1`` continue to the notification's page (a click on its link)."""
    link = ""

    def run() -> None:
        nonlocal link
        with lab.tx() as s:
            changed = inbox.mark_read(s, actor, notification_id)
            item = inbox.get(s, actor.user_id or 0, notification_id)
            link = item.link if item is not None else ""
        if not changed:
            state["unchanged"] = True

    state: dict[str, bool] = {}
    response = form_action(request, "/notifications", run, "notify.flash.read")
    if response.headers.get("X-Countylab-Outcome") == "refused":
        return response
    if go and link.startswith("/") and not link.startswith("//"):
        response = RedirectResponse(link, status_code=303)
    if state.get("unchanged"):
        response.headers["X-Countylab-Outcome"] = "unchanged"
    return response


@router.post("/notifications/read-all")
def read_all(request: Request, actor: Actor, lab: LabDep) -> Response:
    def run() -> None:
        with lab.tx() as s:
            inbox.mark_all_read(s, actor)

    return form_action(request, "/notifications", run, "notify.flash.all_read_done")


@router.post("/notifications/contact")
def save_contact(
    request: Request,
    actor: Actor,
    lab: LabDep,
    email: Annotated[str, Form()] = "",
    email_enabled: Annotated[str, Form()] = "",
) -> Response:
    def run() -> None:
        with lab.tx() as s:
            inbox.set_contact(s, actor, email, enabled=bool(email_enabled))

    return form_action(request, "/notifications", run, "notify.flash.contact")
