"""Typed model outputs: what a served model may answer, declared on its model card.

Why: a model is an output of a job, and its predictions leave the lab on every call.  A model
that answers free text (or unbounded numbers) is a row-export API: a "1-nearest-neighbour demand
model" returned names, ID numbers and incomes.  So every output is declared on the card as

* a **number** with a closed range and a number of decimals (``visits:number:0..50:2``); the lab
  rounds each prediction to those decimals and refuses the whole call if any value is not finite
  or falls outside the range; or
* a **category** from a declared set (``risk:category:low|mid|high``); any other value refuses the
  call.

Refusals never echo the offending value (the model chose it, so it can carry data).  Every
response is also scanned for personal-information patterns (ID numbers, mobiles, bank cards) in
the digits of its numbers and in its category labels, a second line behind the range check.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from countylab.catalog.pii import match_kinds
from countylab.errors import Conflict, ValidationFailed

OutputKind = Literal["number", "category"]
MAX_CATEGORIES = 200
MAX_DECIMALS = 6
_NAME = re.compile(r"^[A-Za-z_\u4e00-\u9fff][A-Za-z0-9_\u4e00-\u9fff]{0,63}$")


@dataclass(frozen=True)
class OutputSpec:
    """One declared output of a model."""

    name: str
    kind: OutputKind
    lower: float | None = None
    upper: float | None = None
    decimals: int = 3
    categories: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        if self.kind == "number":
            return {
                "name": self.name,
                "type": "number",
                "lower": self.lower,
                "upper": self.upper,
                "decimals": self.decimals,
            }
        return {"name": self.name, "type": "category", "categories": list(self.categories)}

    def describe(self) -> str:
        """The compact form the forms and the CLI use (``visits:number:0..50:2``)."""
        if self.kind == "number":
            return f"{self.name}:number:{self.lower:g}..{self.upper:g}:{self.decimals}"
        return f"{self.name}:category:{'|'.join(self.categories)}"


def _bad(zh: str, en: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(zh, en, reason="outputs", **details)


def _number(text: str, field: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise _bad(f"输出的{field}不是数字", f"the output's {field} is not a number", field=field) from None
    if not math.isfinite(value):
        raise _bad(f"输出的{field}必须是有限数", f"the output's {field} must be finite", field=field)
    return value


def parse_output(raw: str | Mapping[str, Any]) -> OutputSpec:
    """One output from ``name:number:LO..HI[:DECIMALS]``, ``name:category:a|b|c`` or a JSON object."""
    if isinstance(raw, str):
        parts = raw.strip().split(":")
        if len(parts) < 3:
            raise _bad(
                "输出必须声明类型，例如 visits:number:0..50 或 risk:category:low|high",
                "each output needs a type, e.g. visits:number:0..50 or risk:category:low|high",
                output=raw[:80],
            )
        name, kind = parts[0].strip(), parts[1].strip().lower()
        if kind == "number":
            lo, sep, hi = parts[2].partition("..")
            if not sep:
                raise _bad("数值输出需要范围 LO..HI", "a number output needs a range LO..HI", output=name)
            obj: dict[str, Any] = {"name": name, "type": "number", "lower": lo, "upper": hi}
            if len(parts) > 3:
                obj["decimals"] = parts[3]
        else:
            obj = {"name": name, "type": kind, "categories": ":".join(parts[2:]).split("|")}
        raw = obj
    if not isinstance(raw, Mapping):
        raise _bad("输出声明格式不对", "an output declaration must be a string or an object")
    name = str(raw.get("name", "")).strip()
    if not _NAME.match(name):
        raise _bad("输出名称无效", "invalid output name", output=name[:80])
    kind = str(raw.get("type", raw.get("kind", ""))).strip().lower()
    if kind == "number":
        lower = _number(raw.get("lower"), "lower")  # type: ignore[arg-type]
        upper = _number(raw.get("upper"), "upper")  # type: ignore[arg-type]
        if not lower < upper:
            raise _bad(
                "数值输出的范围必须满足 下界 < 上界", "a number output needs lower < upper", output=name
            )
        try:
            decimals = int(raw.get("decimals", 3))
        except (TypeError, ValueError):
            raise _bad("小数位数必须是整数", "decimals must be an integer", output=name) from None
        if not 0 <= decimals <= MAX_DECIMALS:
            raise _bad(
                f"小数位数必须在 0 到 {MAX_DECIMALS} 之间", f"decimals must be 0–{MAX_DECIMALS}", output=name
            )
        return OutputSpec(name, "number", lower, upper, decimals)
    if kind == "category":
        cats = tuple(dict.fromkeys(str(c).strip() for c in raw.get("categories") or () if str(c).strip()))
        if not 2 <= len(cats) <= MAX_CATEGORIES:
            raise _bad(
                f"类别输出需要 2 到 {MAX_CATEGORIES} 个类别",
                f"a category output needs 2–{MAX_CATEGORIES} categories",
                output=name,
            )
        if any(len(c) > 64 or match_kinds(c) for c in cats):
            raise _bad(
                "类别标签过长或看起来像个人信息",
                "a category label is too long or looks personal",
                output=name,
            )
        return OutputSpec(name, "category", categories=cats)
    raise _bad(
        "输出类型只能是 number（数值）或 category（类别）；不允许自由文本",
        "an output type is number or category; free text is not allowed",
        output=name,
    )


def parse_outputs(raw: Sequence[str | Mapping[str, Any]]) -> tuple[OutputSpec, ...]:
    specs = tuple(parse_output(r) for r in raw)
    if not 1 <= len(specs) <= 20:
        raise _bad("模型卡必须声明 1 到 20 个输出", "the model card must declare 1–20 outputs")
    if len({s.name for s in specs}) != len(specs):
        raise _bad("输出名称重复", "duplicate output names")
    return specs


def refused() -> Conflict:
    """The one answer for every prediction outside the card: it names the rule, never the value."""
    return Conflict(
        "模型的输出不符合模型卡声明的类型或范围，本次调用已拒绝并记录",
        "the model's output is outside the types and ranges of its model card; the call was refused",
        reason="output_outside_card",
    )


def _personal(text: str) -> bool:
    return bool(match_kinds(text))


def _check_value(value: Any, spec: OutputSpec) -> Any:
    if spec.kind == "category":
        label = value if isinstance(value, str) else None
        if isinstance(value, bool | int) and not isinstance(value, float):
            label = str(int(value))
        if label is None or label not in spec.categories:
            raise refused()
        return label
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refused()
    number = float(value)
    assert spec.lower is not None and spec.upper is not None
    if not math.isfinite(number) or not spec.lower <= number <= spec.upper:
        raise refused()
    rounded = round(number, spec.decimals)
    digits = re.sub(r"\D", "", f"{abs(rounded):.{spec.decimals}f}")
    if len(digits) >= 11 and _personal(digits):
        raise refused()
    return int(rounded) if spec.decimals == 0 else rounded


def check_predictions(predictions: Sequence[Any], specs: Sequence[OutputSpec]) -> list[Any]:
    """Typed, rounded predictions, or :func:`refused` for the whole call."""
    out: list[Any] = []
    for p in predictions:
        if len(specs) == 1:
            value = p[0] if isinstance(p, list) and len(p) == 1 else p
            out.append(_check_value(value, specs[0]))
            continue
        if not isinstance(p, list) or len(p) != len(specs):
            raise refused()
        out.append([_check_value(v, s) for v, s in zip(p, specs, strict=True)])
    return out


def digest(values: Any) -> str:
    """SHA-256 of a canonical JSON form: what the audit log keeps instead of inputs and outputs."""
    text = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def card_outputs(card: Mapping[str, Any]) -> tuple[OutputSpec, ...]:
    """The typed outputs of a stored card; a card from before typing has none (not servable)."""
    raw = card.get("outputs") or []
    if not raw or any(not isinstance(r, Mapping) for r in raw):
        return ()
    return parse_outputs(raw)
