"""Table schemas: the six column types, inference from a sample, and batch validation.

The type set is deliberately small (int64, float64, string, bool, date, timestamp) so that a
department can read and confirm an inferred schema, and so that every engine downstream
(DuckDB, dummy-data generators, the DP gateway) agrees on what a column holds.

Validation never echoes a cell value in its error: uploads hold personal data, and messages end
up in logs.  It names the row, the column and the expected type instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from countylab.errors import ValidationFailed
from countylab.ingest.names import check_column_names

COLUMN_TYPES = ("int64", "float64", "string", "bool", "date", "timestamp")
ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
TYPE_NAMES_ZH = {
    "int64": "整数",
    "float64": "数值",
    "string": "文本",
    "bool": "是/否",
    "date": "日期",
    "timestamp": "日期时间",
}
_TRUE = ["true", "t", "yes", "y", "1", "是"]
_FALSE = ["false", "f", "no", "n", "0", "否"]
# Tried after Arrow's own ISO-8601 parser; Chinese Excel writes 2024/3/5 style dates.
_DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日"]
_TIMESTAMP_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H:%M",
    *_DATE_FORMATS,
]
# Integers longer than this are identifiers (ID-card, USCC, phone, account numbers), not counts.
_MAX_INT_DIGITS = 15


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool = True

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValidationFailed(
                f"列“{self.name}”的类型“{self.type}”无效，可选：{', '.join(COLUMN_TYPES)}",
                f"Column '{self.name}' has invalid type '{self.type}'; choose one of {COLUMN_TYPES}",
                column=self.name,
                reason="bad_type",
            )


@dataclass(frozen=True)
class TableSchema:
    columns: tuple[ColumnSpec, ...]

    def __post_init__(self) -> None:
        check_column_names([c.name for c in self.columns])
        if not self.columns:
            raise ValidationFailed("表结构没有列", "The schema has no columns", reason="empty_schema")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise ValidationFailed(
            f"表结构中没有列“{name}”",
            f"The schema has no column '{name}'",
            column=name,
            reason="no_such_column",
        )

    def to_arrow(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in self.columns])

    def to_json(self) -> dict[str, Any]:
        return {"columns": [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in self.columns]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableSchema:
        return cls(
            tuple(
                ColumnSpec(str(c["name"]), str(c["type"]), bool(c.get("nullable", True)))
                for c in data["columns"]
            )
        )

    def override(
        self, types: Mapping[str, str] | None = None, nullable: Mapping[str, bool] | None = None
    ) -> TableSchema:
        """A copy with some column types or nullability changed (the provider's confirmation step)."""
        types = dict(types or {})
        nullable = dict(nullable or {})
        for name in [*types, *nullable]:
            self.column(name)
        return TableSchema(
            tuple(
                replace(c, type=types.get(c.name, c.type), nullable=nullable.get(c.name, c.nullable))
                for c in self.columns
            )
        )


@dataclass(frozen=True)
class InferredSchema:
    """What the provider is shown before confirming: schema plus a few sample rows."""

    schema: TableSchema
    sample_row_count: int
    encoding: str | None
    preview: list[dict[str, str | None]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- casting


def _bad_mask_to_index(source: pa.Array, result: pa.Array) -> int | None:
    """First index where a non-null input became null: the value that did not parse."""
    lost = pc.and_(pc.is_valid(source), pc.is_null(result))
    hits = pc.indices_nonzero(pc.fill_null(lost, False))
    return int(hits[0].as_py()) if len(hits) else None


def _parse_with_formats(text: pa.Array, formats: list[str]) -> pa.Array:
    parsed: pa.Array = pa.nulls(len(text), pa.timestamp("us"))
    for fmt in formats:
        attempt = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
        parsed = pc.coalesce(parsed, attempt)
    return parsed


def _cast_strings(text: pa.Array, type_name: str) -> tuple[pa.Array, int | None]:
    """Parse a string array; return (result, index of first bad value or None)."""
    if type_name == "string":  # text is kept as written; only an empty cell means "no value"
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text), None
    text = pc.utf8_trim_whitespace(text)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    if type_name == "bool":
        lowered = pc.utf8_lower(text)
        result = pc.if_else(
            pc.is_in(lowered, pa.array(_TRUE)),
            True,
            pc.if_else(pc.is_in(lowered, pa.array(_FALSE)), False, pa.scalar(None, pa.bool_())),
        )
        return result, _bad_mask_to_index(text, result)
    if type_name in ("date", "timestamp"):
        try:
            stamp = pc.cast(text, pa.timestamp("us"))
        except pa.ArrowInvalid:
            stamp = _parse_with_formats(text, _DATE_FORMATS if type_name == "date" else _TIMESTAMP_FORMATS)
        bad = _bad_mask_to_index(text, stamp)
        return (pc.cast(stamp, pa.date32()) if type_name == "date" else stamp), bad
    return _cast_locating(text, ARROW_TYPES[type_name])


def _cast_locating(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, int | None]:
    """Arrow's safe cast; on failure bisect to the first failing element (log2(n) casts)."""
    try:
        return pc.cast(values, target, safe=True), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    lo, hi = 0, len(values)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(values.slice(lo, mid - lo), target, safe=True)
            lo = mid
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
    return values, lo


def cast_column(values: pa.Array, type_name: str) -> tuple[pa.Array, int | None]:
    """Cast any Arrow array to a schema type; returns (result, first bad index or None)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    target = ARROW_TYPES[type_name]
    if values.type == target:
        return values, None
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), target), None
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return _cast_strings(values.cast(pa.string()), type_name)
    if type_name == "string" and not pa.types.is_nested(values.type):
        return _cast_locating(values, target)
    if type_name == "date" and pa.types.is_timestamp(values.type):
        return pc.cast(values, pa.date32()), None
    if pa.types.is_timestamp(values.type) and type_name == "timestamp":
        if values.type.tz is not None:
            values = pc.cast(values, pa.timestamp(values.type.unit))
        return _cast_locating(values, target)
    if pa.types.is_nested(values.type) or pa.types.is_binary(values.type):
        return values, 0 if len(values) else None
    return _cast_locating(values, target)


def type_error(row: int, column: str, type_name: str, reason: str = "type_mismatch") -> ValidationFailed:
    return ValidationFailed(
        f"第 {row} 行“{column}”列的值不是有效的{TYPE_NAMES_ZH[type_name]}（{type_name}）",
        f"Row {row}, column '{column}': value is not a valid {type_name}",
        row=row,
        column=column,
        reason=reason,
        expected=type_name,
    )


def schema_changed(missing: list[str], extra: list[str]) -> ValidationFailed:
    return ValidationFailed(
        f"文件的列与数据集的表结构不一致：缺少 {missing or '无'}，多出 {extra or '无'}",
        f"The file's columns differ from the dataset schema: missing {missing or 'none'}, "
        f"unexpected {extra or 'none'}",
        column=(missing or extra)[0] if (missing or extra) else None,
        reason="schema_changed",
        missing=missing,
        extra=extra,
    )


def check_header(names: list[str], schema: TableSchema) -> None:
    """Same columns as the schema (order may differ), else a ``schema_changed`` error."""
    wanted = set(schema.names)
    got = set(names)
    if wanted != got or len(names) != len(got):
        raise schema_changed([n for n in schema.names if n not in got], [n for n in names if n not in wanted])


def validate_batch(batch: pa.RecordBatch, schema: TableSchema, *, row_offset: int) -> pa.RecordBatch:
    """Cast ``batch`` to ``schema``; raise for the first bad row (1-based data row numbers).

    ``row_offset`` is the number of data rows before this batch in the upload.
    """
    check_header(batch.schema.names, schema)
    arrays = []
    for spec in schema.columns:
        result, bad = cast_column(batch.column(spec.name), spec.type)
        if bad is not None:
            raise type_error(row_offset + bad + 1, spec.name, spec.type)
        if not spec.nullable and result.null_count:
            first = int(pc.indices_nonzero(pc.is_null(result))[0].as_py())
            raise ValidationFailed(
                f"第 {row_offset + first + 1} 行“{spec.name}”列不能为空",
                f"Row {row_offset + first + 1}, column '{spec.name}' must not be empty",
                row=row_offset + first + 1,
                column=spec.name,
                reason="null_not_allowed",
            )
        arrays.append(result)
    return pa.RecordBatch.from_arrays(arrays, schema=schema.to_arrow())


# -------------------------------------------------------------------------------------- inference


def _looks_like_count(text: pa.Array) -> bool:
    """False for digit strings that are really identifiers: leading zeros, too many digits, or
    a column of mobile numbers (11 digits from 13…–19…), which clerks sum by accident otherwise."""
    present = pc.drop_null(text)
    if not len(present):
        return False
    unsigned = pc.utf8_ltrim(present, characters="+-")
    leading_zero = pc.and_(pc.starts_with(unsigned, "0"), pc.greater(pc.utf8_length(unsigned), 1))
    too_long = pc.greater(pc.utf8_length(unsigned), _MAX_INT_DIGITS)
    if pc.all(pc.match_substring_regex(present, r"^1[3-9][0-9]{9}$")).as_py():
        return False  # every value is a mainland mobile number (手机): text, not a count
    return not pc.any(pc.or_(leading_zero, too_long)).as_py()


def infer_column_type(values: pa.Array) -> str:
    """Narrowest type every non-empty sample value parses as; ``string`` when unsure."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return arrow_to_type_name(values.type)
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    if text.null_count == len(text):
        return "string"
    identifier = (
        not _looks_like_count(text)
        and pc.all(pc.match_substring_regex(pc.drop_null(text), r"^[+-]?[0-9]+$")).as_py()
    )
    for candidate in ("int64", "float64", "bool", "date", "timestamp"):
        if candidate in ("int64", "float64") and identifier:
            continue
        if (
            candidate == "bool"
            and not pc.all(
                pc.is_in(
                    pc.drop_null(pc.utf8_lower(text)), pa.array(["true", "false", "是", "否", "yes", "no"])
                )
            ).as_py()
        ):
            continue
        _, bad = cast_column(text, candidate)
        if bad is None:
            return candidate
    return "string"


def arrow_to_type_name(arrow_type: pa.DataType) -> str:
    """Map a typed source column (Parquet) to the nearest schema type."""
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int64"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float64"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return "string"


def infer_from_batch(batch: pa.RecordBatch | pa.Table) -> TableSchema:
    return TableSchema(
        tuple(ColumnSpec(name, infer_column_type(_whole(batch.column(name)))) for name in batch.schema.names)
    )


def _whole(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
