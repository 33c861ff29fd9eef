"""The release ledger kept in the metadata database (:class:`LedgerTable`), across projects.

Every CSV or XLSX table of a request is indexed, declared or not: roles come from the output
library's verified sidecar, or, for any other table, from its values (columns of non-negative
integers are counts, columns holding text are the grouping).  At submission the table is
compared, by :func:`countylab.airlock.ledger.differencing_risks`,
with every earlier release from the same dataset, whichever project made it; the risks are
stored on the file with both tables side by side for the checker.  At release the table is
recorded, so later requests are compared with it.  A differencing hit returns the request on
一般3级 and above (:func:`hit_status`); below that the checker sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.airlock.checks.base import CheckContext, CheckStatus, OutputFile, TableSpec
from countylab.airlock.checks.declared import Declared
from countylab.airlock.checks.grid import is_suppressed, is_total_label, parse_number
from countylab.airlock.checks.library import library_table, stored_sidecar
from countylab.airlock.checks.tables import Table, read_tables
from countylab.airlock.ledger import ReleasedTable, Risk, differencing_risks
from countylab.catalog.grading import Grade
from countylab.storage.airlock_models import LedgerTable, ReleaseFile, ReleaseRequest
from countylab.storage.models import Project

Frequency = tuple[tuple[str, ...], dict[tuple[str, ...], float], str]


def frequency_tables(name: str, path: Path, spec: Mapping[str, Any]) -> list[Frequency]:
    """Every frequency table in a CSV or XLSX file: (grouping, cells, count column).

    Roles come from the output library's verified sidecar when there is one.  Any other table
    is indexed too (a table the developer did not declare is compared all the same): columns
    holding a non-number are the grouping, columns of non-negative integers are counts.
    Tables whose grouping does not identify rows are skipped (they are not frequency tables)."""
    file = OutputFile(name, path)
    try:
        parsed = read_tables(file)
    except Exception:  # noqa: BLE001 - the table_format check reports why
        return []
    if parsed is None:
        return []
    sidecar = stored_sidecar(path)
    verdict = (
        library_table(file, CheckContext(tables={name: TableSpec(sidecar=sidecar)})) if sidecar else None
    )
    found: list[Frequency] = []
    for table in parsed.tables:
        if isinstance(verdict, Declared):
            groups = list(verdict.group_columns)
            counts = [c for c in verdict.count_columns if not is_total_label(c)]
        else:
            groups, counts = _inferred_roles(table)
        found += _cells_of(table, groups, counts)
    return found


def _inferred_roles(table: Table) -> tuple[list[str], list[str]]:
    groups: list[str] = []
    counts: list[str] = []
    body = [r for r in table.rows if not any(is_total_label(v) for v in r)]
    for i, col in enumerate(table.header):
        values = [r[i] for r in body if not is_suppressed(r[i])]
        numbers = [parse_number(v) for v in values]
        if not values or any(n is None for n in numbers):
            groups.append(col)
        elif all(n is not None and n >= 0 and float(n).is_integer() for n in numbers) and not is_total_label(
            col
        ):
            counts.append(col)
    return groups, counts


def _cells_of(table: Table, groups: list[str], counts: list[str]) -> list[Frequency]:
    if not groups or not counts:
        return []
    gi = [table.header.index(g) for g in groups]
    body = [r for r in table.rows if not any(is_total_label(r[i]) for i in gi)]
    keys = [tuple(r[i] for i in gi) for r in body]
    if len(set(keys)) != len(keys):
        return []
    out: list[Frequency] = []
    for col in counts:
        ci = table.header.index(col)
        cells = {
            k: float(n) for k, r in zip(keys, body, strict=True) if (n := parse_number(r[ci])) is not None
        }
        if cells:
            out.append((tuple(groups), cells, col))
    return out


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
    views: list[dict[str, Any]] = []
    base_filter = str((file.spec or {}).get("filter", ""))
    for grouping, cells, column in frequency_tables(file.name, Path(file.stored_path), file.spec or {}):
        for dataset_id in dataset_ids:
            new = ReleasedTable(
                str(request.id), project_slug, str(dataset_id), grouping, _filter(base_filter, column), cells
            )
            earlier = _earlier(session, dataset_id)
            views += [_risk_view(r) for r in differencing_risks(new, earlier, threshold=threshold)]
    return views


def record(
    session: Session,
    request: ReleaseRequest,
    file: ReleaseFile,
    datasets: Sequence[Mapping[str, Any]],
    tables: Sequence[Frequency] | None = None,
) -> int:
    """Record a released frequency table against each source dataset; the number of rows added.

    ``tables`` are the file's :func:`frequency_tables` when the caller parsed them before its
    transaction (a release does: the parse must not hold the audit head)."""
    added = 0
    base_filter = str((file.spec or {}).get("filter", ""))
    if tables is None:
        tables = frequency_tables(file.name, Path(file.stored_path), file.spec or {})
    for grouping, cells, column in tables:
        for d in datasets:
            session.add(
                LedgerTable(
                    request_id=request.id,
                    file_id=file.id,
                    project_id=request.project_id,
                    dataset_id=int(d["id"]),
                    dataset_version=d.get("version"),
                    grouping=list(grouping),
                    filter_description=_filter(base_filter, column),
                    cells=[[*k, v] for k, v in sorted(cells.items())],
                )
            )
            added += 1
    return added


def _filter(base: str, column: str) -> str:
    return f"{base} [{column}]" if base else f"[{column}]"


def hit_status(grade: str) -> CheckStatus:
    """A differencing hit returns the request on 一般3级 and above; below that a checker is
    shown both tables side by side and decides."""
    try:
        rank = Grade(grade).rank
    except ValueError:
        return CheckStatus.fail
    return CheckStatus.fail if rank >= Grade.general_3.rank else CheckStatus.warn
