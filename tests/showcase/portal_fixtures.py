"""A tiny demo lab with every demo step (shared by the portal, stories and scan tests)."""

from __future__ import annotations

from pathlib import Path

from countylab.bootstrap import setup_demo
from countylab.lab import Lab
from tests.support import build_lab

DEMO_PASSWORD = "Demo@2026"


def demo_lab(home: Path) -> Lab:
    lab = build_lab(home)
    setup_demo(lab, size="tiny")
    return lab
