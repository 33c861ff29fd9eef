"""Metadata the steward sets, as the engine consumes it.

Every bound used by the DP engine comes from here and never from the data at query time:
rows kept per privacy unit, clamping bounds of numeric columns, public key sets and which
columns may be joined.  The lead wires these from the catalog; the engine trusts them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from countylab.errors import ValidationFailed


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORY = "category"
    IDENTIFIER = "identifier"
    DATE = "date"
    TEXT = "text"


@dataclass(frozen=True)
class ColumnPolicy:
    """How one column may be used.

    ``lower``/``upper`` are clamping bounds for numeric aggregates; ``public_keys`` is a key
    set the steward declares public (every key is released, even with zero rows, so absence
    reveals nothing); ``joinable_to`` lists ``"table.column"`` targets an equi-join may use;
    ``unique`` marks a key of a table without privacy unit (the engine enforces it when it
    materialises the table, so a join to it never multiplies a unit's rows).
    """

    kind: ColumnKind = ColumnKind.CATEGORY
    lower: float | None = None
    upper: float | None = None
    public_keys: tuple[Any, ...] | None = None
    joinable_to: tuple[str, ...] = ()
    unique: bool = False

    def bounds(self) -> tuple[float, float] | None:
        if self.lower is None or self.upper is None:
            return None
        return (float(self.lower), float(self.upper))


@dataclass(frozen=True)
class TableSpec:
    """A granted dataset version as one SQL table.

    ``privacy_unit`` is the column naming the person or enterprise protected; ``None`` marks a
    public lookup table (no personal rows) that can only be joined on a ``unique`` key.
    """

    name: str
    paths: tuple[str, ...]
    privacy_unit: str | None
    max_rows_per_unit: int
    columns: Mapping[str, ColumnPolicy]
    version: str = ""
    # What kind of entity the privacy unit is (person, household, enterprise …).  Two private
    # tables may be joined only on their units, and only when both units are the same kind of
    # entity; ``None`` means the unit column's own name (the catalog fills it in later).
    unit_entity: str | None = None

    @property
    def entity(self) -> str | None:
        """The entity kind of the privacy unit (``None`` for a public table)."""
        if self.privacy_unit is None:
            return None
        return self.unit_entity or self.privacy_unit

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.lower() != self.name:
            raise ValidationFailed(
                "表名必须是小写标识符", "table name must be a lowercase identifier", table=self.name
            )
        if self.max_rows_per_unit < 1:
            raise ValidationFailed(
                "每主体行数上限必须 ≥ 1", "max_rows_per_unit must be >= 1", table=self.name
            )
        for col, pol in self.columns.items():
            if not col.isidentifier():
                raise ValidationFailed("列名无效", "invalid column name", table=self.name, column=col)
            b = pol.bounds()
            if pol.kind is ColumnKind.NUMERIC and b is not None and not b[0] < b[1]:
                raise ValidationFailed(
                    "截断上下界无效",
                    "clamping bounds must satisfy lower < upper",
                    table=self.name,
                    column=col,
                )
        if self.privacy_unit is not None and self.privacy_unit not in self.columns:
            raise ValidationFailed(
                "隐私主体列不存在",
                "privacy unit column is not declared",
                table=self.name,
                column=self.privacy_unit,
            )

    def digest(self) -> str:
        """Stable hash of everything that changes answers: files, version, bounds, keys."""
        payload = {
            "name": self.name,
            "paths": list(self.paths),
            "unit": self.privacy_unit,
            "k": self.max_rows_per_unit,
            "version": self.version,
            "columns": {c: {**asdict(p), "kind": str(p.kind)} for c, p in sorted(self.columns.items())},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of the analyst-facing DuckDB connection."""

    memory_limit: str = "2GB"
    threads: int = 2
    timeout_s: float = 30.0
    max_result_rows: int = 10_000
    max_internal_groups: int = 1_000_000
    # The lab's data directory: prepared versions live in ``<data_dir>/prepared`` and DuckDB
    # spills only into ``<data_dir>/prepared/tmp``.  ``None`` (tests, embedded use) means a
    # private temporary folder removed when the runner closes.
    data_dir: str | None = None
    prepare_timeout_s: float = 3600.0  # preparing a new version (once per version, before any charge)


@dataclass(frozen=True)
class EngineSettings:
    """Knobs of the DP engine; built once by the caller, never read from the environment."""

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    delta: float = 1e-7
    time_bucket_s: float = 0.05
    quantile_bins: int = 64
    confidence: float = 0.95
    bound_seed: int = 0
    # Prepared tables (format 2 on) carry ``__i_<col>``, the fixed-point row integer of each
    # bounded numeric column (``fixedpoint.row_int_sql`` over ``__c_<col>``), and the planner
    # sums it; False computes the same integers per query (a runner over another layout).
    integer_columns: bool = True


def tables_by_name(specs: Sequence[TableSpec]) -> dict[str, TableSpec]:
    out: dict[str, TableSpec] = {}
    for s in specs:
        if s.name in out:
            raise ValidationFailed("表名重复", "duplicate table name", table=s.name)
        out[s.name] = s
    return out
