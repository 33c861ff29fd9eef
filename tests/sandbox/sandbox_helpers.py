"""Helpers shared by the sandbox tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

import pytest

from countylab.sandbox import SandboxResult

# skips with plain pytest when bubblewrap cannot run here; fails under make test (tests.capabilities)
needs_bwrap = pytest.mark.needs("sandbox")


def out(result: SandboxResult) -> str:
    return result.stdout_path.read_text()


def err(result: SandboxResult) -> str:
    return result.stderr_path.read_text()
