"""A demo lab (setup_demo, size tiny) prepared once per session; each test module copies it."""

from __future__ import annotations

from pathlib import Path

import pytest

from countylab.bootstrap import setup_demo
from tests.capabilities import need
from tests.support import build_lab


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo-template")
    lab = build_lab(root)
    setup_demo(lab, size="tiny", steps=False)
    lab.close()
    return root / "lab-data"


@pytest.fixture(scope="session")
def bwrap() -> None:
    need("sandbox")  # skips with plain pytest; fails under make test
