"""Helpers shared by the sandbox tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

import shutil

import pytest

from countylab.sandbox import SandboxResult, sandbox_available

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None or not sandbox_available(),
    reason="bubblewrap (/usr/bin/bwrap) is not installed or cannot create user namespaces here",
)


def out(result: SandboxResult) -> str:
    return result.stdout_path.read_text()


def err(result: SandboxResult) -> str:
    return result.stderr_path.read_text()
