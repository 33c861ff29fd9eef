"""The approval workflow's to-do items (待办): each reviewer's queue, overdue ones marked."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from countylab.identity.access import Principal
from countylab.notify.todos import Todo
from countylab.operations.overview import queue
from countylab.operations.workflow import STEP_ZH

_KIND_ZH = {**STEP_ZH, "objection": "异议答复", "notice": "公示期满确认"}
_KIND_EN = {
    "precheck": "pre-check",
    "consent": "department consent",
    "security": "security review",
    "expert": "expert review",
    "final": "final approval",
    "objection": "answer an objection",
    "notice": "close the public notice",
}


def workflow_todos(session: Session, principal: Principal, *, now: datetime | None = None) -> list[Todo]:
    at = now or datetime.now(UTC)
    return [
        Todo(
            kind="todo.workflow_overdue" if w.overdue else "todo.workflow_step",
            link=f"/applications/{w.application_id}",
            since=w.since or at,
            facts={
                "number": w.number,
                "title": w.title,
                "step": {"zh-CN": _KIND_ZH[w.kind], "en": _KIND_EN[w.kind]},
            },
        )
        for w in queue(session, principal, now=at)
    ]
