"""Shared set-up of the benchmarks: a fresh lab with one user, its API token and one dataset."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BenchLab:
    lab: Any  # countylab.lab.Lab
    org_id: int
    token: str
    dataset_id: int


def bench_lab(
    data_dir: Path,
    *,
    org: str,
    username: str,
    role: str,
    dataset: str,
    title: str,
    unit_column: str,
    first_version: Path,
) -> BenchLab:
    """A migrated lab under ``data_dir`` whose dataset's first version is ``first_version``."""
    from countylab.catalog import service as catalog
    from countylab.config import Settings
    from countylab.identity import service as ids
    from countylab.identity.access import SYSTEM
    from countylab.lab import Lab

    lab = Lab(Settings(data_dir=data_dir))
    lab.migrate()
    with lab.tx() as s:
        org_id = ids.create_org(s, SYSTEM, name=org, kind="department").id
        user = ids.create_user(
            s,
            SYSTEM,
            username=username,
            password="bench-password-1",
            display_name=username,
            roles=[role],
            org_id=org_id,
        )
        token = ids.create_token(s, SYSTEM, user_id=user.id, name="bench", days=1).token
        ds_id = catalog.create_dataset(
            s,
            SYSTEM,
            name=dataset,
            title=title,
            org_id=org_id,
            privacy_unit="person",
            privacy_unit_column=unit_column,
        ).id
    lab.ingestion.ingest_file(SYSTEM, ds_id, first_version)
    return BenchLab(lab, org_id, token, ds_id)
