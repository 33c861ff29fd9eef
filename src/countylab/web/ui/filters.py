"""Jinja filters every template has: ``|bjtime``, ``|label(kind)``, ``|person``, ``|action_label``.

They exist so a template never shows a stored code or a UTC time: ``{{ job.state|label('job_state') }}``
says 运行中 on a Chinese page and ``running`` on an English one, ``{{ job.created_at|bjtime }}``
says ``2026-12-05 20:14`` (Beijing time), and ``{{ e.actor|person }}`` says ``张三 (zhangsan)``.
The words come from :mod:`countylab.labels`, the one table shared with the CLI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlalchemy import select

from countylab import labels
from countylab.lab import Lab
from countylab.storage.models import User


class People:
    """Display names by username and by id, cached for the whole app (a page names many people).

    Names change rarely (an admin edits a user), so a copy up to ``max_age`` seconds old is fine;
    an unknown name triggers a reload at most every ``miss_every`` seconds, so a page that names
    a deleted or system actor does not reload the table on every row.
    """

    def __init__(self, lab: Lab, max_age: float = 30.0, miss_every: float = 5.0) -> None:
        self.lab, self.max_age, self.miss_every = lab, max_age, miss_every
        self._by_name: dict[str, str] = {}
        self._by_id: dict[int, tuple[str, str]] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self.lab.read() as s:
            rows = s.execute(select(User.id, User.username, User.display_name)).all()
        self._by_name = {r.username: r.display_name for r in rows}
        self._by_id = {r.id: (r.username, r.display_name) for r in rows}
        self._loaded = time.monotonic()

    def _fresh(self, missing: bool) -> None:
        age = time.monotonic() - self._loaded
        if age > self.max_age or (missing and age > self.miss_every):
            with self._lock:
                self._load()

    def by_username(self, username: str) -> str | None:
        self._fresh(username not in self._by_name)
        shown = self._by_name.get(username)
        return None if shown is None else labels.person(shown, username)

    def by_id(self, user_id: int) -> str | None:
        self._fresh(user_id not in self._by_id)
        found = self._by_id.get(user_id)
        return None if found is None else labels.person(found[1], found[0])

    def forget(self) -> None:
        """Drop the copy (after a user's name changes in this process)."""
        self._loaded = 0.0


def _lang(ctx: Context) -> str:
    return str(ctx.get("lang") or "zh-CN")


def _people(ctx: Context) -> People | None:
    request = ctx.get("request")
    return getattr(getattr(getattr(request, "app", None), "state", None), "people", None)


def bjtime(value: datetime | date | str | None, format: str = "minute") -> str:
    return labels.bjtime(value, format)


@pass_context
def label(ctx: Context, code: object, kind: str) -> str:
    return labels.label(kind, code, _lang(ctx))


@pass_context
def action_label(ctx: Context, action: str) -> str:
    return labels.action_label(action, _lang(ctx))


@pass_context
def details(ctx: Context, value: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    return labels.details_pairs(value, _lang(ctx))


@pass_context
def target_label(ctx: Context, target: str, titles: Mapping[str, str] | None = None) -> str:
    return labels.target_label(target, _lang(ctx), titles)


@pass_context
def job_error(ctx: Context, text: str | None) -> str:
    return labels.job_error(text, _lang(ctx))


@pass_context
def person(ctx: Context, value: Any) -> str:
    """One display name per person, whatever the template holds: a user row, a dict, a name, an id."""
    if value is None or value == "":
        return "—"
    if isinstance(value, Mapping):
        return labels.person(value.get("display_name"), value.get("username"))
    if hasattr(value, "username"):
        shown = getattr(value, "display_name", None)
        if shown is not None:
            return labels.person(shown, value.username)
        value = value.username
    people = _people(ctx)
    if isinstance(value, int) and not isinstance(value, bool):
        found = people.by_id(value) if people else None
        return found or f"#{value}"
    text = str(value)
    if people is not None:
        found = people.by_username(text)
        if found is not None:
            return found
    return labels.system_name(text, _lang(ctx)) or text


def install(templates: Jinja2Templates, lab: Lab) -> People:
    """Register the filters on the app's Jinja environment; returns the name cache for app.state."""
    env = templates.env
    env.filters["bjtime"] = bjtime
    env.filters["label"] = label
    env.filters["action_label"] = action_label
    env.filters["details"] = details
    env.filters["person"] = person
    env.filters["target_label"] = target_label
    env.filters["job_error"] = job_error
    return People(lab)
