"""The release ledger kept in the metadata database (:class:`LedgerTable`), across projects.

A file the developer declares as a frequency table (its ``count_columns``) is read with the
checks' strict table reader; every column that is not a count or magnitude column is part of
the grouping.  At submission the table is compared, by :func:`countylab.airlock.ledger.differencing_risks`,
with every earlier release from the same dataset, whichever project made it; the risks are
stored on the file with both tables side by side for the checker.  At release the table is
recorded, so later requests are compared with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.airlock.checks.base import OutputFile
from countylab.airlock.checks.tables import read_tables
from countylab.airlock.ledger import ReleasedTable, Risk, differencing_risks
from countylab.storage.airlock_models import LedgerTable, ReleaseFile, ReleaseRequest
from countylab.storage.models import Project


def frequency_table(
    name: str, path: Path, spec: Mapping[str, Any]
) -> tuple[tuple[str, ...], dict[tuple[str, ...], float]] | None:
    """(grouping, cells) of a declared frequency table, or None when it is not one."""
    counts = [str(c) for c in spec.get("count_columns") or []]
    if not counts:
        return None
    try:
        parsed = read_tables(OutputFile(name, path))
    except Exception:  # noqa: BLE001 - the table_format check reports why
        return None
    if parsed is None or not parsed.tables:
        return None
    table = parsed.tables[0]
    if counts[0] not in table.header:
        return None
    skip = set(counts) | {str(c) for c in spec.get("magnitude_columns") or []}
    grouping = tuple(h for h in table.header if h not in skip)
    gi = [table.header.index(g) for g in grouping]
    ci = table.header.index(counts[0])
    cells: dict[tuple[str, ...], float] = {}
    for row in table.rows:
        try:
            n = float(row[ci])
        except ValueError:
            continue
        key = tuple(row[i] for i in gi)
        cells[key] = cells.get(key, 0.0) + n
    return grouping, cells


def _earlier(session: Session, dataset_id: int) -> list[ReleasedTable]:
    rows = session.execute(select(LedgerTable).where(LedgerTable.dataset_id == dataset_id)).scalars().all()
    slugs = {pid: slug for pid, slug in session.execute(select(Project.id, Project.slug))}
    return [
        ReleasedTable(
            release_id=str(r.request_id),
            project_id=slugs.get(r.project_id, str(r.project_id)),
            dataset_id=str(r.dataset_id),
            grouping=tuple(r.grouping),
            filter_description=r.filter_description,
            cells={tuple(str(k) for k in c[:-1]): float(c[-1]) for c in r.cells},
            dataset_version=str(r.dataset_version),
        )
        for r in rows
    ]


def _risk_view(risk: Risk) -> dict[str, Any]:
    return {
        "dataset_id": risk.dataset_id,
        "grouping": list(risk.grouping),
        "earlier_request": int(risk.earlier.release_id),
        "earlier_project": risk.earlier.project_id,
        "earlier_filter": risk.earlier.filter_description,
        "new_filter": risk.new.filter_description,
        "cells": [{"key": list(c.key), "new": c.new_count, "earlier": c.earlier_count} for c in risk.cells],
        "side_by_side": [[list(k), a, b] for k, a, b in risk.side_by_side],
        "message_zh": risk.message_zh,
        "message_en": risk.message_en,
    }


def risks_for(
    session: Session,
    request: ReleaseRequest,
    file: ReleaseFile,
    dataset_ids: Sequence[int],
    project_slug: str,
    threshold: int,
) -> list[dict[str, Any]]:
    found = frequency_table(file.name, Path(file.stored_path), file.spec or {})
    if found is None:
        return []
    grouping, cells = found
    views: list[dict[str, Any]] = []
    for dataset_id in dataset_ids:
        new = ReleasedTable(
            str(request.id),
            project_slug,
            str(dataset_id),
            grouping,
            str((file.spec or {}).get("filter", "")),
            cells,
        )
        views += [
            _risk_view(r) for r in differencing_risks(new, _earlier(session, dataset_id), threshold=threshold)
        ]
    return views


def record(
    session: Session, request: ReleaseRequest, file: ReleaseFile, datasets: Sequence[Mapping[str, Any]]
) -> int:
    """Record a released frequency table against each source dataset; the number of rows added."""
    found = frequency_table(file.name, Path(file.stored_path), file.spec or {})
    if found is None:
        return 0
    grouping, cells = found
    for d in datasets:
        session.add(
            LedgerTable(
                request_id=request.id,
                file_id=file.id,
                project_id=request.project_id,
                dataset_id=int(d["id"]),
                dataset_version=d.get("version"),
                grouping=list(grouping),
                filter_description=str((file.spec or {}).get("filter", "")),
                cells=[[*k, v] for k, v in sorted(cells.items())],
            )
        )
    return len(datasets)
