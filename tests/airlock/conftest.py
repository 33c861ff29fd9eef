"""Helpers shared by the airlock tests: real files written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from countylab.airlock.checks import OutputFile


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[[str, bytes | str], OutputFile]:
    def make(name: str, content: bytes | str) -> OutputFile:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return OutputFile(name, path)

    return make
