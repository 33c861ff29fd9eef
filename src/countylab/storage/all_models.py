"""Imports every ORM module so that ``Base.metadata`` knows all tables (migrations, tests).

Each capability that adds tables adds its module here, by name.
"""

from __future__ import annotations

from countylab.storage import (  # noqa: F401 - imported for their tables
    airlock_changes_models,
    airlock_models,
    airlock_rounds_models,
    authorisation_models,
    catalog_models,
    dashboard_models,
    jobs_models,
    login_models,
    map_models,
    models,
    notify_models,
    operations_models,
    privacy_models,
    search_models,
    server_models,
    showcase_models,
    workflow_models,
)


def load_all() -> None:
    """Kept for callers that want to say why they import this module: the imports above did it."""
