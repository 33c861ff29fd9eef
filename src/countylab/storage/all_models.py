"""Imports every ORM module so that ``Base.metadata`` knows all tables (migrations, tests).

Each capability that adds tables adds its module here.
"""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "countylab.storage.models",
    "countylab.storage.catalog_models",
    "countylab.storage.jobs_models",
    "countylab.storage.privacy_models",
    "countylab.storage.airlock_models",
    "countylab.storage.airlock_rounds_models",
)


def load_all() -> None:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a capability not built yet
            if exc.name != name:
                raise
