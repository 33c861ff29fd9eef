"""A model's input schema: callers send named fields with categories as words, the lab encodes.

County staff think in fields ("town": "城关镇", "age": 82, "lives_alone": true), not in the
positional vector a model was fitted on (16 one-hot columns assembled by hand).  At registration
the lab records, per field, what a caller may send and how it becomes the model's columns:

* the **type** and **title** come from the training dataset's catalog column;
* **allowed categories** come from the column's public key set (codes with their display names)
  or the steward-approved category set of its dummy profile; **ranges** come from the steward's
  clamping bounds.  Never from the raw data: the schema is shown to every caller, so its values
  must be public already (a raw minimum is a resident's age);
* the **encoding** (``raw``, ``onehot``, ``ordinal``, ``scale``) may be declared by the training
  job in a sidecar beside the model (``model.joblib.countylab.json``: ``{"inputs": [{"name":
  "town", "column": "town_code", "encoding": "onehot"}, ...]}``); without one each model input
  that is a catalog column becomes a ``raw`` field.  The sidecar is written by the job, so only
  names, columns and encodings are taken from it; everything a caller is told comes from the
  catalog.

:func:`encode` turns named records into the model's rows before the sandboxed worker sees them,
and refuses an unknown, missing or out-of-range field, or an unknown category, naming the field
and what it allows (422, bilingual).  Positional rows still work for models registered before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from countylab.errors import ValidationFailed

ENCODINGS = ("raw", "onehot", "ordinal", "scale")
TYPES = ("number", "integer", "boolean", "category", "text")
MAX_LISTED = 500  # categories shown and accepted per field (a town list, not a register)
_TRUE = frozenset({"true", "1", "yes", "y", "是", "真", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "否", "假", "f"})
_INTEGER_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "integer")
_NUMBER_TYPES = ("float", "float32", "float64", "double", "decimal", "number")


@dataclass(frozen=True)
class InputField:
    """One named input a caller sends, and the model column(s) it becomes."""

    name: str  # what callers write ("town")
    column: str  # the catalog column it stands for ("town_code")
    type: str  # number | integer | boolean | category | text
    title: str = ""
    lower: float | None = None
    upper: float | None = None
    categories: tuple[tuple[str, str], ...] = ()  # (code, display name), in the encoding's order
    encoding: str = "raw"
    source: str = ""  # where the allowed values came from: key_set:<name> | bounds | approved_profile

    @property
    def columns(self) -> list[str]:
        """The model columns this field fills, in order."""
        if self.encoding == "onehot":
            return [f"{self.column}={code}" for code, _ in self.categories]
        return [self.column]

    def example(self) -> Any:
        if self.categories:
            code, label = self.categories[0]
            return label or code
        if self.type == "boolean":
            return True
        if self.type in ("number", "integer") and self.lower is not None and self.upper is not None:
            mid = (self.lower + self.upper) / 2
            return int(round(mid)) if self.type == "integer" else round(mid, 2)
        return 0 if self.type in ("number", "integer") else ""

    def allowed(self) -> tuple[str, str]:
        """What the field accepts, in words (zh, en), for errors and the model card."""
        if self.categories:
            words = "、".join(label or code for code, label in self.categories[:30])
            more = "…" if len(self.categories) > 30 else ""
            return words + more, ", ".join(label or code for code, label in self.categories[:30]) + more
        if self.type == "boolean":
            return "是/否（true/false）", "true/false"
        if self.type in ("number", "integer"):
            kind_zh = "整数" if self.type == "integer" else "数值"
            kind_en = "a whole number" if self.type == "integer" else "a number"
            if self.lower is not None and self.upper is not None:
                lo, hi = _fmt(self.lower), _fmt(self.upper)
                return f"{lo} 到 {hi} 之间的{kind_zh}", f"{kind_en} from {lo} to {hi}"
            return kind_zh, kind_en
        return "文本", "text"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = [{"code": c, "label": lab} for c, lab in self.categories]
        d["columns"] = self.columns
        d["example"] = self.example()
        d["allowed_zh"], d["allowed_en"] = self.allowed()
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> InputField:
        return cls(
            name=str(d["name"]),
            column=str(d["column"]),
            type=str(d["type"]),
            title=str(d.get("title") or ""),
            lower=d.get("lower"),
            upper=d.get("upper"),
            categories=tuple((str(c["code"]), str(c.get("label") or "")) for c in d.get("categories") or []),
            encoding=str(d.get("encoding") or "raw"),
            source=str(d.get("source") or ""),
        )


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


@dataclass(frozen=True)
class ColumnFacts:
    """What the catalog says of one training column (all of it public or steward-set)."""

    name: str
    type: str
    title: str = ""
    lower: float | None = None
    upper: float | None = None
    key_set: str | None = None
    categories: tuple[tuple[str, str], ...] = ()  # from the key set (with labels) or approved profile
    category_source: str = ""


def field_type(column_type: str, semantic: str | None, has_categories: bool) -> str:
    t = column_type.lower()
    if t in ("bool", "boolean") or semantic == "flag":
        return "boolean"
    if has_categories:
        return "category"
    if t.startswith(_INTEGER_TYPES):
        return "integer"
    if t.startswith(_NUMBER_TYPES):
        return "number"
    return "text"


def default_name(column: str, facts: ColumnFacts) -> str:
    """``town_code`` with a public key set is called ``town``: callers send the town, not its code."""
    if facts.categories and column.endswith("_code") and len(column) > 5:
        return column[: -len("_code")]
    return column


@dataclass(frozen=True)
class InputSchema:
    fields: tuple[InputField, ...] = field(default_factory=tuple)

    @property
    def columns(self) -> list[str]:
        return [c for f in self.fields for c in f.columns]

    def to_json(self) -> dict[str, Any]:
        return {"fields": [f.to_json() for f in self.fields], "columns": self.columns}

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> InputSchema | None:
        raw = card.get("input_schema")
        if not isinstance(raw, Mapping) or not raw.get("fields"):
            return None
        return cls(tuple(InputField.from_json(f) for f in raw["fields"]))

    def example(self) -> dict[str, Any]:
        return {f.name: f.example() for f in self.fields}


def build(
    inputs: Sequence[str],
    facts: Mapping[str, ColumnFacts],
    declared: Sequence[Mapping[str, Any]] | None = None,
) -> InputSchema | None:
    """The schema of a model whose columns are ``inputs``.

    ``declared`` (the job's sidecar) names fields, their catalog columns and encodings; without
    it every input must be a catalog column (a ``raw`` field each).  ``None`` when the inputs
    cannot all be explained by catalog columns: such a model keeps positional rows only.
    """
    if declared:
        fields = [_declared_field(i + 1, d, facts) for i, d in enumerate(declared)]
    else:
        if not all(i in facts for i in inputs):
            return None
        fields = [_field(facts[i], default_name(i, facts[i]), "raw") for i in inputs]
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ValidationFailed("输入字段名重复", "two input fields have the same name", reason="schema_names")
    schema = InputSchema(tuple(fields))
    if declared and inputs and list(inputs) != schema.columns:
        raise ValidationFailed(
            "模型卡的输入列与输入字段编码后的列不一致：" + "、".join(schema.columns[:20]),
            "the card's inputs differ from the columns the declared fields encode to: "
            + ", ".join(schema.columns[:20]),
            reason="schema_columns",
        )
    return schema


def _declared_field(n: int, d: Mapping[str, Any], facts: Mapping[str, ColumnFacts]) -> InputField:
    if not isinstance(d, Mapping):
        raise ValidationFailed(
            f"第 {n} 个输入字段不是映射", f"input field {n} is not a mapping", reason="schema"
        )
    column = str(d.get("column") or d.get("name") or "").strip()
    if column not in facts:
        raise ValidationFailed(
            f"输入字段 {n}（{column or '—'}）不是训练数据集的列",
            f"input field {n} ({column or '—'}) is not a column of a training dataset",
            reason="schema_column",
            column=column,
        )
    encoding = str(d.get("encoding") or "raw")
    if encoding not in ENCODINGS:
        raise ValidationFailed(
            f"输入字段 {column} 的编码 {encoding} 不支持（可用：{'、'.join(ENCODINGS)}）",
            f"field {column}: encoding {encoding!r} is not one of {', '.join(ENCODINGS)}",
            reason="schema_encoding",
            column=column,
        )
    f = _field(facts[column], str(d.get("name") or default_name(column, facts[column])).strip(), encoding)
    if encoding in ("onehot", "ordinal") and not f.categories:
        raise ValidationFailed(
            f"输入字段 {column} 没有公开键集或已批准的类别，不能做 {encoding} 编码",
            f"field {column} has no public key set or approved categories to {encoding}-encode",
            reason="schema_categories",
            column=column,
        )
    if encoding == "scale" and (f.lower is None or f.upper is None or f.upper <= f.lower):
        raise ValidationFailed(
            f"输入字段 {column} 没有数据安全官设定的上下界，不能缩放",
            f"field {column} has no steward bounds to scale by",
            reason="schema_bounds",
            column=column,
        )
    return f


def _field(facts: ColumnFacts, name: str, encoding: str) -> InputField:
    kind = field_type(facts.type, None, bool(facts.categories))
    if facts.type == "flag":
        kind = "boolean"
    source = facts.category_source if facts.categories else ("bounds" if facts.lower is not None else "")
    return InputField(
        name=name,
        column=facts.name,
        type=kind,
        title=facts.title,
        lower=facts.lower if kind in ("number", "integer") else None,
        upper=facts.upper if kind in ("number", "integer") else None,
        categories=facts.categories[:MAX_LISTED] if kind == "category" else (),
        encoding=encoding,
        source=source,
    )


# -- encoding -----------------------------------------------------------------------------------
def _bad(row: int, f: InputField | None, zh: str, en: str, reason: str, **details: Any) -> ValidationFailed:
    where_zh = f"第 {row} 条记录" if row else "记录"
    where_en = f"record {row}" if row else "the record"
    return ValidationFailed(
        f"{where_zh}：{zh}",
        f"{where_en}: {en}",
        row=row or None,
        column=f.name if f else details.pop("column", None),
        reason=reason,
        **details,
    )


def _value(row: int, f: InputField, value: Any) -> Any:
    """One field's value as the model's raw column holds it (a code, a bool, a number)."""
    allowed_zh, allowed_en = f.allowed()
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _bad(row, f, f"字段“{f.name}”不能为空，应为{allowed_zh}", f"field {f.name!r} is empty; "
                   f"expected {allowed_en}", "empty_field", allowed=allowed_en)  # fmt: skip
    if f.type == "category":
        text = str(value).strip()
        for code, label in f.categories:
            if text in (label, code):
                return code
        raise _bad(
            row, f, f"字段“{f.name}”的值不在可选范围内，可选：{allowed_zh}",
            f"field {f.name!r} has an unknown category; allowed: {allowed_en}", "unknown_category",
            allowed=[lab or c for c, lab in f.categories],
        )  # fmt: skip
    if f.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise _bad(row, f, f"字段“{f.name}”应为是或否", f"field {f.name!r} must be true or false",
                   "not_boolean", allowed=allowed_en)  # fmt: skip
    if f.type in ("number", "integer"):
        number = _number(value)
        if number is None:
            raise _bad(row, f, f"字段“{f.name}”应为{allowed_zh}", f"field {f.name!r} must be {allowed_en}",
                       "not_a_number", allowed=allowed_en)  # fmt: skip
        if f.type == "integer" and not number.is_integer():
            raise _bad(row, f, f"字段“{f.name}”应为整数", f"field {f.name!r} must be a whole number",
                       "not_integer", allowed=allowed_en)  # fmt: skip
        if (f.lower is not None and number < f.lower) or (f.upper is not None and number > f.upper):
            raise _bad(row, f, f"字段“{f.name}”超出范围，应为{allowed_zh}",
                       f"field {f.name!r} is out of range; expected {allowed_en}", "out_of_range",
                       allowed=allowed_en)  # fmt: skip
        return int(number) if f.type == "integer" else number
    if not isinstance(value, str | int | float):
        raise _bad(row, f, f"字段“{f.name}”应为文本", f"field {f.name!r} must be text", "not_text")
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def raw_record(schema: InputSchema, record: Mapping[str, Any], row: int = 0) -> list[Any]:
    """One named record → one value per field, as the catalog column holds it (a code, a bool,
    a number): what the input domain is checked against before encoding."""
    by_name = {f.name: f for f in schema.fields}
    aliases = {f.column: f.name for f in schema.fields if f.column != f.name}
    named: dict[str, Any] = {}
    for key, value in record.items():
        name = str(key) if str(key) in by_name else aliases.get(str(key), str(key))
        if name not in by_name:
            raise _bad(
                row, None, f"未知字段“{key}”，可用字段：{'、'.join(by_name)}",
                f"unknown field {key!r}; the fields are: {', '.join(by_name)}", "unknown_field",
                column=str(key), allowed=list(by_name),
            )  # fmt: skip
        named[name] = value
    missing = [n for n in by_name if n not in named]
    if missing:
        raise _bad(
            row, None, f"缺少字段：{'、'.join(missing)}", f"missing fields: {', '.join(missing)}",
            "missing_field", column=missing[0], missing=missing,
        )  # fmt: skip
    return [_value(row, f, named[f.name]) for f in schema.fields]


def expand(schema: InputSchema, raw: Sequence[Any]) -> list[Any]:
    """Field values → the model's columns (one-hot, ordinal, scaled or as they are)."""
    out: list[Any] = []
    for f, value in zip(schema.fields, raw, strict=True):
        if f.encoding == "onehot":
            out.extend(1.0 if code == str(value) else 0.0 for code, _ in f.categories)
        elif f.encoding == "ordinal":
            codes = [c for c, _ in f.categories]
            out.append(float(codes.index(str(value))) if str(value) in codes else -1.0)
        elif f.encoding == "scale":
            assert f.lower is not None and f.upper is not None
            out.append((float(value) - f.lower) / (f.upper - f.lower))
        else:
            out.append(value)
    return out


def needs_encoding(schema: InputSchema | None) -> bool:
    return schema is not None and any(f.encoding != "raw" for f in schema.fields)
