"""Catalog facts for a model's input schema: types, titles, steward bounds, public categories.

Only what is public or steward-set is read: a column's type and title, the steward's clamping
bounds (``lower``/``upper``), its public key set (codes and display names) and, failing that, the
category set of a dummy profile the steward approved.  The column's ``profile`` (observed
minimum, maximum, distinct values) is never read: it describes the real rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.serving.schema import MAX_LISTED, ColumnFacts
from countylab.storage.catalog_models import DatasetColumn, KeySet
from countylab.storage.models import Dataset

SIDECAR = ".countylab.json"


def column_facts(s: Session, dataset_names: Sequence[str]) -> dict[str, ColumnFacts]:
    """Facts per column name over the training datasets (the first dataset naming a column wins)."""
    facts: dict[str, ColumnFacts] = {}
    key_sets = {k.name: k for k in s.execute(select(KeySet)).scalars()}
    for name in dataset_names:
        ds = s.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
        if ds is None:
            continue
        approved = _approved_categories(ds)
        cols = s.execute(
            select(DatasetColumn).where(DatasetColumn.dataset_id == ds.id).order_by(DatasetColumn.position)
        ).scalars()
        for col in cols:
            if col.name in facts:
                continue
            categories: tuple[tuple[str, str], ...] = ()
            source = ""
            ks = key_sets.get(col.key_set or "")
            if ks is not None and 0 < len(ks.values or []) <= MAX_LISTED:
                labels = dict(ks.labels or {})
                categories = tuple((str(v), str(labels.get(str(v), ""))) for v in ks.values)
                source = f"key_set:{ks.name}"
            elif col.name in approved:
                categories = tuple((str(v), "") for v in approved[col.name])
                source = "approved_profile"
            kind = "flag" if col.semantic == "flag" else col.type
            facts[col.name] = ColumnFacts(
                name=col.name,
                type=kind,
                title=col.title or "",
                lower=col.lower,
                upper=col.upper,
                key_set=col.key_set,
                categories=categories,
                category_source=source,
            )
    return facts


def _approved_categories(ds: Dataset) -> dict[str, list[Any]]:
    if not ds.dummy_profile_approved or not isinstance(ds.dummy_profile, dict):
        return {}
    out: dict[str, list[Any]] = {}
    for c in ds.dummy_profile.get("columns") or []:
        if isinstance(c, dict) and c.get("categories") and len(c["categories"]) <= MAX_LISTED:
            out[str(c.get("name"))] = list(c["categories"])
    return out


def declared_inputs(model_path: Path) -> list[dict[str, Any]] | None:
    """The fields the training job declared beside its model (``<model>.countylab.json``), if any.

    Written by the job, so it is read defensively: a small JSON object whose ``inputs`` is a list
    of mappings; anything else is ignored (the schema then comes from the catalog alone)."""
    sidecar = model_path.with_name(model_path.name + SIDECAR)
    try:
        if sidecar.stat().st_size > 256 * 1024:
            return None
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    inputs = data.get("inputs") if isinstance(data, dict) else None
    if not isinstance(inputs, list) or not inputs or len(inputs) > 200:
        return None
    return [dict(i) for i in inputs if isinstance(i, dict)] or None
