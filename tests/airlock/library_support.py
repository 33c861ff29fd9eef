"""Helpers for tests of library-made outputs: frames with chosen cell counts, and the check
context the airlock builds for files written by :class:`countylab.output.Outputs`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from countylab.airlock.checks import CheckContext, OutputFile, TableSpec
from countylab.output.sidecar import SUFFIX
from countylab.privacy.sdc import SdcRules


def frame(counts: Mapping[tuple[Any, ...], int], columns: Sequence[str], **extra: Any) -> pd.DataFrame:
    """One row per unit: ``counts[(a, b)] = n`` gives n rows with those values; ``extra``
    columns are functions of the row number (e.g. ``visits=lambda i: i % 5``)."""
    rows = [key for key, n in counts.items() for _ in range(n)]
    df = pd.DataFrame(rows, columns=list(columns))
    for name, fn in extra.items():
        df[name] = [fn(i) for i in range(len(df))]
    return df


def context_for(
    outbox: Path, names: Sequence[str], sdc: SdcRules | None = None
) -> tuple[list[OutputFile], CheckContext]:
    """The files and the context as the airlock sees them (sidecar read beside each file)."""
    files = [OutputFile(n, outbox / n) for n in names]
    tables: dict[str, TableSpec] = {}
    for n in names:
        side = outbox / (n + SUFFIX)
        tables[n] = TableSpec(sidecar=json.loads(side.read_text()) if side.exists() else None)
    ctx = CheckContext(sdc=sdc or SdcRules(), tables=tables, paths={f.name: f.path for f in files})
    return files, ctx


def rewrite_sidecar(outbox: Path, name: str, change: Any) -> None:
    """Apply ``change(sidecar)`` to a written sidecar (a lying job)."""
    side = outbox / (name + SUFFIX)
    meta = json.loads(side.read_text())
    change(meta)
    side.write_text(json.dumps(meta, ensure_ascii=False))
