"""From catalog metadata to the engine's ``TableSpec``: the only bridge between the two.

Why it matters: everything the DP engine trusts comes from here, so every value is taken from
what the steward set in the catalog and never from the data — clamping bounds from the
column's ``lower``/``upper``, group keys only from a public ``KeySet``, identifiers from the PII
tags (an identifier column can be filtered on but never grouped on), joins only where a
column declares ``joinable_to``.  ``split_as_of`` lets an analyst pin a dataset version in
the SQL itself (``FROM residents AS OF 2``) without that syntax ever reaching the parser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import TokenError
from sqlglot.tokenizer_core import TokenType

from countylab.errors import ValidationFailed
from countylab.privacy.spec import ColumnKind, ColumnPolicy, TableSpec
from countylab.storage.catalog_models import DatasetColumn
from countylab.storage.models import Dataset

_NUMERIC = ("int", "float", "double", "decimal", "uint")
_DATES = ("date", "timestamp", "datetime")


def column_kind(col: DatasetColumn, is_unit: bool) -> ColumnKind:
    """Identifier when the catalog tags the column as PII or sensitive (or it is the unit)."""
    if is_unit or col.pii_kind or col.sensitive:
        return ColumnKind.IDENTIFIER
    t = (col.type or "").lower()
    if t.startswith(_NUMERIC):
        return ColumnKind.NUMERIC
    if t.startswith(_DATES):
        return ColumnKind.DATE
    return ColumnKind.CATEGORY


def _public_keys(
    col: DatasetColumn, kind: ColumnKind, key_sets: Mapping[str, Sequence[Any]]
) -> tuple[Any, ...] | None:
    if not col.key_set or kind is ColumnKind.IDENTIFIER or col.key_set not in key_sets:
        return None
    values = list(key_sets[col.key_set])
    if kind is ColumnKind.NUMERIC:
        try:
            values = [float(v) if "float" in col.type or "double" in col.type else int(v) for v in values]
        except (TypeError, ValueError):
            return None
    else:
        values = [str(v) for v in values]
    return tuple(dict.fromkeys(values))


def column_policy(
    col: DatasetColumn, *, is_unit: bool, unique: bool, key_sets: Mapping[str, Sequence[Any]]
) -> ColumnPolicy:
    kind = column_kind(col, is_unit)
    lower = upper = None
    if (
        kind is ColumnKind.NUMERIC
        and col.lower is not None
        and col.upper is not None
        and col.lower < col.upper
    ):
        lower, upper = float(col.lower), float(col.upper)
    return ColumnPolicy(
        kind=kind,
        lower=lower,
        upper=upper,
        public_keys=_public_keys(col, kind, key_sets),
        joinable_to=tuple(col.joinable_to or ()),
        unique=unique,
    )


#: PII tags that name what kind of entity an identifier column identifies
_ENTITY_OF_PII = {"id_number": "person", "uscc": "enterprise"}


def unit_entity(ds: Dataset, unit_col: DatasetColumn | None) -> str | None:
    """The kind of entity a dataset's privacy unit identifies (``None``: no privacy unit).

    From the unit column's PII tag when it names one (a 身份证号 column identifies a person, a
    统一社会信用代码 an enterprise); otherwise the catalog's unit kind and the unit column,
    e.g. ``person:household_id`` — so a household key and a resident key are never taken for
    the same entity, and two datasets share an entity only when they declare the same one."""
    if ds.privacy_unit == "none" or unit_col is None:
        return None
    tagged = _ENTITY_OF_PII.get(str(unit_col.pii_kind or ""))
    return tagged or f"{ds.privacy_unit}:{unit_col.name}"


def table_spec(
    ds: Dataset,
    columns: Sequence[DatasetColumn],
    key_sets: Mapping[str, Sequence[Any]],
    paths: Sequence[Path],
    version: int,
) -> TableSpec:
    """The engine's view of one dataset version (``ds.name`` is the SQL table name)."""
    unit = ds.privacy_unit_column if ds.privacy_unit != "none" else None
    names = {c.name for c in columns}
    if unit is not None and unit not in names:
        raise ValidationFailed(
            "数据集的隐私主体列不存在",
            "the dataset's privacy unit column is missing",
            table=ds.name,
            column=unit,
        )
    keys = list(ds.key_columns or [])
    policies = {
        c.name: column_policy(
            c, is_unit=c.name == unit, unique=unit is None and keys == [c.name], key_sets=key_sets
        )
        for c in columns
        if c.name.isidentifier()
    }
    unit_col = next((c for c in columns if c.name == unit), None)
    return TableSpec(
        name=ds.name,
        paths=tuple(str(p) for p in paths),
        privacy_unit=unit,
        max_rows_per_unit=max(1, int(ds.dp_max_rows_per_unit or 1)),
        columns=policies,
        version=str(version),
        unit_entity=unit_entity(ds, unit_col),
    )


def split_as_of(sql: str) -> tuple[str, dict[str, int]]:
    """Remove ``<table> AS OF <n>`` from ``sql``; return the plain SQL and the versions asked for.

    Tokens, not text search, so ``'AS OF 3'`` inside a string literal is left alone.
    """
    try:
        tokens = DuckDB().tokenize(sql)
    except TokenError as exc:
        raise ValidationFailed("SQL 语法错误", "SQL syntax error", reason=str(exc)[:200]) from exc
    versions: dict[str, int] = {}
    cuts: list[tuple[int, int]] = []
    for i in range(1, len(tokens) - 2):
        name, alias, of, num = tokens[i - 1], tokens[i], tokens[i + 1], tokens[i + 2]
        if (
            alias.token_type is TokenType.ALIAS
            and of.text.upper() == "OF"
            and of.token_type is TokenType.VAR
            and num.token_type is TokenType.NUMBER
        ):
            if name.token_type is not TokenType.VAR or not num.text.isdigit():
                raise ValidationFailed(
                    "AS OF 后必须是版本号", "AS OF must follow a table and name a version", reason="as_of"
                )
            table = name.text.lower()
            if versions.get(table, int(num.text)) != int(num.text):
                raise ValidationFailed("同一个表只能指定一个版本", "one version per table", table=table)
            versions[table] = int(num.text)
            cuts.append((alias.start, num.end + 1))
    for start, end in reversed(cuts):
        sql = sql[:start] + sql[end:]
    return sql, versions


def mentioned_names(sql: str) -> set[str]:
    """Every bare word of ``sql`` in lower case: a superset of the tables it can name."""
    try:
        tokens = DuckDB().tokenize(sql)
    except TokenError:
        return set()
    return {t.text.lower() for t in tokens if t.token_type is TokenType.VAR}
