"""A tiny demo lab with every demo step (shared by the portal, stories and scan tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from countylab.bootstrap import setup_demo
from countylab.identity import service as ids
from countylab.lab import Lab
from countylab.storage.models import User
from tests.support import build_lab

DEMO_PASSWORD = "Demo@2026"


def demo_lab(home: Path) -> Lab:
    lab = build_lab(home)
    setup_demo(lab, size="tiny")
    return lab


def principal(lab: Lab, username: str) -> Any:
    """A demo user's principal, checked like a logged-in user (not the system)."""
    with lab.tx() as s:
        user = s.execute(select(User).where(User.username == username)).scalar_one()
        return ids.principal_for(s, user, "session")
