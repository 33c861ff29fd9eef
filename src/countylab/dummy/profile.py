"""The metadata that dummy data (模拟数据) is generated from.

A steward approves a :class:`DatasetProfile` per dataset; the catalog stores it as JSON
(``to_dict``/``from_dict``). The generator reads *only* this profile, never the warehouse, so
what a developer can learn from dummy data is bounded by what the steward approved here: types,
null rates, ranges of non-sensitive measures and category lists built from public key sets or
from values frequent enough to be safe.

Validation happens when a profile is built, so a bad profile is refused when the steward saves
it, not later when a developer asks for a download.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from countylab.errors import ValidationFailed
from countylab.identifiers import USCC_ALPHABET

COLUMN_TYPES = ("int64", "float64", "string", "bool", "date", "timestamp")
SEMANTICS = (
    "id_number",
    "mobile",
    "person_name",
    "org_name",
    "address",
    "uscc",
    "bank_card",
    "licence_plate",
    "privacy_unit_id",
    "category",
    "measure",
    "key",
    "foreign_key",
    "text",
    "date",
)
DISTRIBUTIONS = ("uniform", "normal", "lognormal")
# Semantics whose values only make sense as text (check characters, Chinese characters).
_STRING_ONLY = frozenset({"id_number", "person_name", "org_name", "address", "uscc", "licence_plate", "text"})
_STRING_OR_INT = frozenset({"mobile", "bank_card", "key", "privacy_unit_id", "foreign_key"})
PROFILE_FORMAT = 1
#: Age bands (lower bounds, years) that age-conditional category weights are kept for.
AGE_BANDS = (0, 6, 12, 15, 18, 23, 30, 45, 60, 70, 80)
MAX_SCALE = 6
# id_prefix: longest allowed prefix and its alphabet (None: any text), by semantic.
_PREFIX_RULES: dict[str, tuple[int, str | None]] = {
    "id_number": (6, "0123456789"),
    "mobile": (7, "0123456789"),
    "bank_card": (12, "0123456789"),
    "uscc": (16, USCC_ALPHABET),
    "licence_plate": (2, None),
}

_ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


def arrow_type(type_name: str) -> pa.DataType:
    """The Arrow type a profile type name maps to (timestamps are naive, microseconds)."""
    try:
        return _ARROW_TYPES[type_name]
    except KeyError:
        raise ValidationFailed(
            f"未知的列类型：{type_name}", f"unknown column type: {type_name}", reason="type"
        ) from None


def _bad(column: str, reason: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed(f"列 {column}：{zh}", f"column {column}: {en}", column=column, reason=reason)


def parse_category(type_name: str, value: str) -> Any:
    """Convert one category label (always stored as text) to the column's Python value.

    Categories are stored as strings so the profile stays JSON-safe whatever the column type.
    """
    if type_name == "int64":
        return int(value)
    if type_name == "float64":
        return float(value)
    if type_name == "bool":
        lowered = value.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError(value)
        return lowered in ("true", "1")
    if type_name == "date":
        return np.datetime64(value).astype("datetime64[D]")
    if type_name == "timestamp":
        return np.datetime64(value).astype("datetime64[us]")
    return value


def parse_bound(type_name: str, value: float | str) -> float:
    """A range bound as a float: days since epoch for dates, seconds for timestamps."""
    if type_name == "date":
        return float(np.datetime64(str(value)).astype("datetime64[D]").astype(np.int64))
    if type_name == "timestamp":
        return float(np.datetime64(str(value)).astype("datetime64[s]").astype(np.int64))
    if isinstance(value, str):
        return float(value)
    return float(value)


def split_foreign_key(ref: str) -> tuple[str, str]:
    """``"households.household_id"`` → ``("households", "household_id")``."""
    dataset, _, column = ref.rpartition(".")
    if not dataset or not column:
        raise ValueError(ref)
    return dataset, column


@dataclass
class ColumnProfile:
    """What the generator may know about one column (no raw values of sensitive columns)."""

    name: str
    type: str
    semantic: str | None = None
    null_rate: float = 0.0
    minimum: float | str | None = None
    maximum: float | str | None = None
    mean: float | None = None
    distribution: str | None = None
    categories: list[str] | None = None
    category_weights: list[float] | None = None
    id_prefix: str | None = None
    foreign_key: str | None = None
    unique: bool = False
    # -- what keeps a row coherent (all structural or public; see docs/explanation/dummy-data.md) --
    #: display names of category codes, from the public key set's labels (code -> name)
    labels: dict[str, str] | None = None
    #: this column holds the label (name) of the code in that column of the same row
    label_of: str | None = None
    #: this column's value is a function of that column's value (village -> town) ...
    determined_by: str | None = None
    #: ... given by this table (determinant value -> value), all public or frequent values
    mapping: dict[str, str] | None = None
    #: copy the value from the parent row that this foreign-key column of the same row points at
    follows: str | None = None
    #: decimal places of a float column (money: 2); None leaves full precision
    scale: int | None = None
    #: digits after ``id_prefix`` in sequential keys (``H0000001``: prefix H, width 7)
    key_width: int | None = None
    #: category weights per age band (``AGE_BANDS``), rows with no observed band are all 0
    weights_by_age: list[list[float]] | None = None
    #: a date/timestamp column that this one never precedes (end date >= start date)
    after: str | None = None
    #: timestamps fall on whole multiples of this many seconds (hourly readings: 3600)
    step_seconds: int | None = None
    #: rows sharing that key column's value share this value (a plot keeps its village each year)
    constant_per: str | None = None
    #: mean of a measure per age band (``AGE_BANDS``), None where fewer than the minimum count
    mean_by_age: list[float | None] | None = None

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        name = self.name
        if not name:
            raise ValidationFailed("列名不能为空", "a column needs a name", reason="name")
        if self.type not in COLUMN_TYPES:
            raise _bad(name, "type", f"未知类型 {self.type}", f"unknown type {self.type}")
        if self.semantic is not None and self.semantic not in SEMANTICS:
            raise _bad(name, "semantic", f"未知语义 {self.semantic}", f"unknown semantic {self.semantic}")
        if self.semantic in _STRING_OR_INT and self.type not in ("string", "int64"):
            raise _bad(
                name, "semantic", "该语义只能用于文本或整数列", f"semantic {self.semantic} needs string/int64"
            )
        if self.semantic in _STRING_ONLY and self.type != "string":
            raise _bad(name, "semantic", "该语义只能用于文本列", f"semantic {self.semantic} needs a string")
        if not (0.0 <= self.null_rate <= 1.0) or math.isnan(self.null_rate):
            raise _bad(name, "null_rate", "空值率须在 0 到 1 之间", "null_rate must be within [0, 1]")
        if self.distribution is not None and self.distribution not in DISTRIBUTIONS:
            raise _bad(name, "distribution", "未知分布", f"unknown distribution {self.distribution}")
        self._validate_range()
        self._validate_categories()
        self._validate_prefix()
        self._validate_coherence()
        if self.foreign_key is not None:
            try:
                split_foreign_key(self.foreign_key)
            except ValueError:
                raise _bad(
                    name, "foreign_key", "外键须写成 数据集.列", "foreign_key is dataset.column"
                ) from None

    def _validate_range(self) -> None:
        bounds = []
        for label, bound in (("minimum", self.minimum), ("maximum", self.maximum)):
            if bound is None:
                continue
            try:
                value = parse_bound(self.type, bound)
            except (ValueError, TypeError):
                raise _bad(self.name, label, f"{label} 无法解析", f"cannot parse {label}") from None
            if not math.isfinite(value):
                raise _bad(self.name, label, f"{label} 须为有限值", f"{label} must be finite")
            bounds.append(value)
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            raise _bad(self.name, "range", "最小值大于最大值", "minimum is above maximum")
        if self.mean is not None and not math.isfinite(self.mean):
            raise _bad(self.name, "mean", "均值须为有限值", "mean must be finite")
        if (
            self.distribution == "lognormal"
            and self.mean is not None
            and self.minimum is not None
            and self.mean <= parse_bound(self.type, self.minimum)
        ):
            raise _bad(
                self.name, "mean", "对数正态分布的均值须大于最小值", "lognormal mean must exceed minimum"
            )

    def _validate_prefix(self) -> None:
        prefix = self.id_prefix
        if prefix is None:
            return
        rule = _PREFIX_RULES.get(self.semantic or "", (20, None))
        longest, alphabet = rule
        if len(prefix) > longest or (alphabet is not None and any(ch not in alphabet for ch in prefix)):
            raise _bad(
                self.name,
                "id_prefix",
                f"前缀须为至多 {longest} 个合法字符",
                f"id_prefix must be at most {longest} valid characters",
            )
        if self.semantic == "licence_plate" and len(prefix) == 2 and not ("A" <= prefix[1] <= "Z"):
            raise _bad(
                self.name, "id_prefix", "号牌前缀第二位须为字母", "a plate prefix is province + letter"
            )
        if self.semantic == "mobile" and not prefix.startswith("1"):
            raise _bad(self.name, "id_prefix", "手机号前缀须以 1 开头", "a mobile prefix starts with 1")

    def _validate_coherence(self) -> None:
        name = self.name
        for field_name in ("label_of", "determined_by", "follows", "after", "constant_per"):
            if getattr(self, field_name) == name:
                raise _bad(name, field_name, "不能引用本列", f"{field_name} cannot name the column itself")
        if (self.determined_by is None) != (self.mapping is None):
            raise _bad(name, "mapping", "决定列与对照表须同时给出", "determined_by needs a mapping")
        if self.scale is not None and not (0 <= self.scale <= MAX_SCALE and self.type == "float64"):
            raise _bad(name, "scale", f"小数位须在 0 到 {MAX_SCALE} 之间且为小数列", "bad scale")
        if self.key_width is not None and not (1 <= self.key_width <= 30):
            raise _bad(name, "key_width", "键的位数须在 1 到 30 之间", "key_width must be within [1, 30]")
        if self.step_seconds is not None and not (
            1 <= self.step_seconds <= 86_400 and self.type == "timestamp"
        ):
            raise _bad(name, "step_seconds", "时间步长须在 1 秒到 1 天之间", "step_seconds must be 1..86400")
        if self.after is not None and self.type not in ("date", "timestamp"):
            raise _bad(name, "after", "只有日期列有先后", "after needs a date or timestamp column")
        means = self.mean_by_age
        if means is not None and (
            len(means) != len(AGE_BANDS)
            or self.type not in ("int64", "float64")
            or any(m is not None and not math.isfinite(m) for m in means)
        ):
            raise _bad(name, "mean_by_age", "按年龄段的均值形状不符", "mean_by_age shape")
        weights = self.weights_by_age
        if weights is not None:
            width = len(self.categories or [])
            if len(weights) != len(AGE_BANDS) or any(len(row) != width for row in weights):
                raise _bad(name, "weights_by_age", "按年龄段的权重形状不符", "weights_by_age shape")
            if any(not math.isfinite(w) or w < 0 for row in weights for w in row):
                raise _bad(name, "weights_by_age", "权重须非负", "weights must be >= 0")

    def _validate_categories(self) -> None:
        if self.categories is None:
            if self.category_weights is not None:
                raise _bad(self.name, "category_weights", "有权重却无类别", "weights without categories")
            return
        if not self.categories:
            raise _bad(self.name, "categories", "类别列表为空", "categories is empty")
        for value in self.categories:
            try:
                parse_category(self.type, str(value))
            except (ValueError, TypeError):
                raise _bad(
                    self.name, "categories", "类别值与列类型不符", "a category does not fit the type"
                ) from None
        weights = self.category_weights
        if weights is not None:
            if len(weights) != len(self.categories):
                raise _bad(self.name, "category_weights", "权重个数与类别不符", "one weight per category")
            if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
                raise _bad(
                    self.name, "category_weights", "权重须非负且和为正", "weights must be >= 0, sum > 0"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "semantic": self.semantic,
            "null_rate": self.null_rate,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "mean": self.mean,
            "distribution": self.distribution,
            "categories": list(self.categories) if self.categories is not None else None,
            "category_weights": list(self.category_weights) if self.category_weights is not None else None,
            "id_prefix": self.id_prefix,
            "foreign_key": self.foreign_key,
            "unique": self.unique,
            **{key: value for key in _COHERENCE_FIELDS if (value := getattr(self, key)) is not None},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        if not isinstance(data, dict) or "name" not in data or "type" not in data:
            raise ValidationFailed("列描述须含 name 与 type", "a column needs name and type", reason="format")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValidationFailed(
                f"列描述含未知字段：{sorted(unknown)}",
                f"unknown column fields: {sorted(unknown)}",
                column=data.get("name"),
                reason="format",
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValidationFailed("列描述格式错误", f"bad column profile: {exc}", reason="format") from None


_COHERENCE_FIELDS = (
    "labels",
    "label_of",
    "determined_by",
    "mapping",
    "follows",
    "scale",
    "key_width",
    "weights_by_age",
    "after",
    "step_seconds",
    "constant_per",
    "mean_by_age",
)


@dataclass
class DatasetProfile:
    """A steward-approved description of one dataset, enough to synthesise look-alike rows."""

    name: str
    columns: list[ColumnProfile]
    row_count_hint: int = 1000
    primary_key: list[str] | None = field(default=None)
    #: the day the data describe ("today" for ages and registration dates); ISO date
    as_of: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if not self.name:
            raise ValidationFailed("数据集名不能为空", "a dataset needs a name", reason="name")
        if not names:
            raise ValidationFailed(
                "数据集至少要有一列", "a dataset needs at least one column", reason="columns"
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValidationFailed(
                f"列名重复：{duplicates}", f"duplicate column names: {duplicates}", reason="columns"
            )
        if self.row_count_hint < 0:
            raise ValidationFailed("行数须非负", "row_count_hint must be >= 0", reason="row_count_hint")
        for key in self.primary_key or []:
            if key not in names:
                raise _bad(key, "primary_key", "主键列不存在", "primary key column does not exist")
        for col in self.columns:
            for field_name in ("label_of", "determined_by", "follows", "after", "constant_per"):
                ref = getattr(col, field_name)
                if ref is not None and ref not in names:
                    raise _bad(col.name, field_name, f"引用的列 {ref} 不存在", f"no column {ref}")
        if self.as_of is not None:
            try:
                np.datetime64(self.as_of, "D")
            except ValueError:
                raise ValidationFailed(
                    "as_of 须为日期", "as_of must be an ISO date", reason="as_of"
                ) from None

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise _bad(name, "column", "列不存在", "no such column")

    def arrow_schema(self) -> pa.Schema:
        """The schema generated tables have (before the dummy-data marker is added)."""
        return pa.schema([pa.field(c.name, arrow_type(c.type)) for c in self.columns])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "name": self.name,
            "row_count_hint": self.row_count_hint,
            "primary_key": list(self.primary_key) if self.primary_key is not None else None,
            "columns": [c.to_dict() for c in self.columns],
            **({"as_of": self.as_of} if self.as_of is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetProfile:
        if not isinstance(data, dict):
            raise ValidationFailed("数据集描述须为对象", "a dataset profile is an object", reason="format")
        if data.get("format", PROFILE_FORMAT) != PROFILE_FORMAT:
            raise ValidationFailed(
                "不支持的描述格式版本", f"unsupported profile format {data.get('format')}", reason="format"
            )
        columns = data.get("columns")
        if not isinstance(columns, list):
            raise ValidationFailed("缺少 columns 列表", "columns must be a list", reason="format")
        primary_key = data.get("primary_key")
        return cls(
            name=str(data.get("name", "")),
            columns=[ColumnProfile.from_dict(c) for c in columns],
            row_count_hint=int(data.get("row_count_hint", 1000)),
            primary_key=list(primary_key) if primary_key is not None else None,
            as_of=str(data["as_of"]) if data.get("as_of") is not None else None,
        )
