"""CLI commands of this capability (registered by countylab.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the main app (none yet)."""
