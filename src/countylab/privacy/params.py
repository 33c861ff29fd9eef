"""Every parameter of a query request is checked before anything runs (issue 9, item 4).

Why: a NaN ε, an ε of 1e-9, a δ of 0.5 or a project id of 2**70 must each end as a clear,
bilingual 4xx, never as a 5xx from deep inside a library and never as a query that runs.  Two
stages: ``check_request`` needs only the request (types, finite numbers, int64 ids, SQL
length); ``resolve_budget`` needs the datasets the query uses, because the floor on ε, the
largest ε and δ, and the default δ come from their grades (``policy.BudgetLimits``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from countylab.errors import ValidationFailed
from countylab.policy import BudgetLimits

INT64_MAX = 2**63 - 1
MAX_SQL = 20_000
MAX_VERSIONS = 64


def check_id(name: str, value: Any) -> int:
    """An id within int64 (what the metadata database can hold); ``bool`` is not an id."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise ValidationFailed(
            f"{name} 必须是 0 到 2^63-1 之间的整数",
            f"{name} must be an integer between 0 and 2^63-1",
            field=name,
            reason="int64",
        )
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationFailed(f"{name} 必须是数字", f"{name} must be a number", field=name, reason="type")
    v = float(value)
    if not math.isfinite(v):
        raise ValidationFailed(f"{name} 必须是有限数", f"{name} must be finite", field=name, reason="finite")
    return v


def check_request(sql: Any, project_id: Any, epsilon: Any, delta: Any, versions: Mapping[Any, Any]) -> None:
    """Shape checks that need no database: raise ValidationFailed (422) on the first bad field."""
    if not isinstance(sql, str) or not sql.strip() or len(sql) > MAX_SQL:
        raise ValidationFailed("SQL 为空或过长", "SQL is empty or too long", field="sql", max_chars=MAX_SQL)
    check_id("project_id", project_id)
    if epsilon is None:
        raise ValidationFailed("DP 查询需要 ε", "a DP query needs epsilon", field="epsilon", reason="epsilon")
    if _number("epsilon", epsilon) <= 0:
        raise ValidationFailed("ε 必须是正数", "epsilon must be positive", field="epsilon", reason="range")
    if delta is not None and not 0 < _number("delta", delta) < 1:
        raise ValidationFailed(
            "δ 必须在 (0, 1) 之间", "delta must be in (0, 1)", field="delta", reason="range"
        )
    if len(versions) > MAX_VERSIONS:
        raise ValidationFailed("指定的版本过多", "too many versions", field="versions")
    for name, v in versions.items():
        if not isinstance(name, str) or len(name) > 128:
            raise ValidationFailed("表名无效", "invalid table name", field="versions")
        check_id("version", v)


def resolve_budget(
    epsilon: float, delta: float | None, rules: Sequence[tuple[str, BudgetLimits]]
) -> tuple[float, float]:
    """(ε, δ) for a query over datasets with these rules: ε within [highest floor, lowest cap],
    δ within (0, lowest δ cap], by default the smallest of the grades' default δ."""
    if not rules:
        return epsilon, delta if delta is not None else 0.0
    floor_name, floor = max(((n, r.min_epsilon) for n, r in rules), key=lambda p: p[1])
    top = min(r.epsilon_per_project for _, r in rules)
    if epsilon < floor:
        raise ValidationFailed(
            f"ε 过小：数据集“{floor_name}”的分级要求每次查询 ε ≥ {floor:g}",
            f"epsilon too small: the grade of dataset '{floor_name}' needs epsilon >= {floor:g} per query",
            field="epsilon",
            reason="epsilon_floor",
            min_epsilon=floor,
        )
    if epsilon > top:
        raise ValidationFailed(
            f"ε 过大：每次查询 ε ≤ {top:g}（该分级每期的预算）",
            f"epsilon too large: at most {top:g} per query (the grade's budget per period)",
            field="epsilon",
            reason="epsilon_cap",
            max_epsilon=top,
        )
    delta_cap = min(r.delta for _, r in rules)
    if delta is None:
        return epsilon, min(r.default_delta for _, r in rules)
    if delta > delta_cap:
        raise ValidationFailed(
            f"δ 过大：该分级 δ ≤ {delta_cap:g}",
            f"delta too large: the grade allows delta <= {delta_cap:g}",
            field="delta",
            reason="delta_cap",
            max_delta=delta_cap,
        )
    return epsilon, delta
