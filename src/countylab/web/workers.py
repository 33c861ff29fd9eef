"""``countylab serve --workers N``: the app factory each worker process calls.

Uvicorn's supervisor binds the socket once and spawns N worker processes; each imports this
module and calls :func:`app_from_environment`, which builds its own :class:`~countylab.lab.Lab`
(own engine, own DP and model worker pools) from the same command-line settings.  Nothing is
shared in memory: every worker meets the others only in the metadata database, where the lab's
leader election keeps the singleton services (job dispatcher, scheduler, compaction…) to one
process, and cross-process locks guard datasets.

The settings travel as the command's own arguments (JSON in ``COUNTYLAB_SERVE_ARGS``), so each
worker parses them exactly as the parent did; this module is an entry point, the one place
below ``cli.py`` that reads the environment.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI

from countylab.config import Settings
from countylab.lab import Lab
from countylab.web.app import create_app

ARGS_VARIABLE = "COUNTYLAB_SERVE_ARGS"


def encode_args(kwargs: dict[str, Any]) -> str:
    """The settings arguments of ``serve`` (paths as strings) for the worker processes."""
    return json.dumps({k: str(v) if hasattr(v, "__fspath__") else v for k, v in kwargs.items()})


def app_from_environment() -> FastAPI:
    """One worker's app: its own lab, its background services (singletons only if elected)."""
    kwargs: dict[str, Any] = json.loads(os.environ[ARGS_VARIABLE])
    lab = Lab(Settings(**kwargs))
    return create_app(lab, background=True)
