"""The manifest of a generated demo county: what each seed file is, who owns it, how to grade it.

The manifest is what ingest reads to register the demo datasets, so it carries the catalog
metadata a department would enter by hand: titles, owner department, column semantics (which
columns are identifiers or personal information), privacy unit, suggested grade and the public
key sets that let the DP gateway group by town or crop without revealing which keys occur.

Column ``semantic`` vocabulary: ``key``, ``privacy_unit_id``, ``foreign_key:<dataset>.<column>``,
``person_name``, ``id_number``, ``mobile``, ``address``, ``uscc``, ``org_name``, ``birth_date``,
``date``, ``timestamp``, ``category``, ``measure``, ``flag``, ``place_name``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

COLUMN_TYPES = ("int64", "float64", "string", "date", "timestamp", "bool")
GRADES = ("core", "important", "general_1", "general_2", "general_3", "general_4")
PRIVACY_UNITS = ("person", "enterprise", "none")
FREQUENCIES = ("static", "daily", "hourly")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # one of COLUMN_TYPES
    title_zh: str
    semantic: str


@dataclass(frozen=True)
class KeySet:
    """A public key set: the allowed values of ``column``, either listed or taken from ``source``."""

    column: str
    source: str | None = None  # "<dataset>.<column>" whose values are public
    values: list[str] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    file: str
    format: str
    encoding: str
    title_zh: str
    title_en: str
    description_zh: str
    department: str
    department_en: str
    rows: int
    sha256: str
    columns: list[ColumnSpec]
    privacy_unit: str
    privacy_unit_column: str | None
    suggested_grade: str
    update_frequency: str
    primary_key: list[str]
    key_sets: list[KeySet] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class Manifest:
    county_name: str
    county_code: str
    seed: int
    size: str
    scale: float
    as_of: str  # ISO date the ages and time windows refer to
    generator_version: str
    datasets: list[DatasetSpec]

    def dataset(self, name: str) -> DatasetSpec:
        for d in self.datasets:
            if d.name == name:
                return d
        raise KeyError(name)

    def to_json(self) -> str:
        """Stable JSON (sorted keys are not used: field order is the documented order)."""
        return json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        datasets = []
        for d in data["datasets"]:
            d = dict(d)
            d["columns"] = [ColumnSpec(**c) for c in d["columns"]]
            d["key_sets"] = [KeySet(**k) for k in d.get("key_sets", [])]
            datasets.append(DatasetSpec(**d))
        rest = {k: v for k, v in data.items() if k != "datasets"}
        return cls(datasets=datasets, **rest)

    @classmethod
    def from_json(cls, path: Path) -> Manifest:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
