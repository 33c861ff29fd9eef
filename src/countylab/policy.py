"""The one access policy: what each grade allows, written once as data
(rendered as docs/reference/policy.md).

Every capability that touches a dataset (downloads, the DP gateway, sandbox jobs, external
projects, the airlock) asks this module and nothing else, so the table in the docs
(:func:`policy_table_markdown`) and the behaviour cannot drift apart.

Exact tables are never answered interactively: there is no SDC mode in the query gateway (an
exact-answer oracle leaks individuals by differencing unless every defence is perfect).  Exact
tables come from sandbox jobs and leave through the airlock, whose cell rules for each grade
are :func:`sdc_thresholds`; every DP query obeys the grade's :class:`BudgetLimits` (a budget
per renewal period, a floor on ε per query, a daily query cap per analyst and a yearly cap per
dataset across every project).

A steward may *tighten* the default for one dataset with a :class:`DatasetPolicy` (deny an
action, cap ε, raise the minimum cell count, ask for approved code or more checkers).  The
override type has no field that could allow anything, and numeric caps are combined with
``min``/``max``, so a cap that would loosen has no effect; :func:`check_overrides` rejects
such a cap when the steward saves it, so they learn at once instead of later.  Combining
rather than trusting matters because a grade can be raised after an override was saved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from countylab.catalog.grading import Grade
from countylab.errors import PermissionDenied, ValidationFailed


class Action(StrEnum):
    download_rows = "download_rows"
    dp_query = "dp_query"
    sandbox_job = "sandbox_job"
    external_project_access = "external_project_access"
    release = "release"


_ACTION_LABELS = {
    Action.download_rows: ("下载明细行", "downloading rows"),
    Action.dp_query: ("差分隐私查询", "differentially private queries"),
    Action.sandbox_job: ("沙箱作业", "sandbox jobs"),
    Action.external_project_access: ("外部项目访问", "access by external projects"),
    Action.release: ("出域", "release"),
}


@dataclass(frozen=True)
class ReviewRule:
    """Who must look at a release request before it leaves the domain."""

    auto_checks: bool
    checkers: int  # independent output checkers, never members of the requesting project
    security_officer: bool


#: a name a steward's stored ``deny`` list may still hold from before interactive SDC was removed
_RETIRED_ACTIONS = frozenset({"sdc_aggregate"})


@dataclass(frozen=True)
class BudgetLimits:
    """Default privacy budget rules for one dataset; ε = 0 means no DP queries.

    ``epsilon_per_project``/``delta`` are what one project may spend per renewal period (the
    lab's ``dp_budget_period``); ``epsilon_per_year``/``delta_per_year`` cap what *all*
    projects together spend on the dataset in a calendar year, because projects can collude.
    A query must spend at least ``min_epsilon`` (a floor: near-free queries would let an
    analyst ask thousands of yes/no questions) and an analyst may ask at most
    ``queries_per_day`` charged queries a day.  A query that does not name δ spends
    ``delta × default_delta_fraction``, so one grouped query never uses a period's whole δ.
    """

    epsilon_per_project: float
    delta: float
    min_epsilon: float = 0.01
    queries_per_day: int = 500
    epsilon_per_year: float = 0.0
    delta_per_year: float = 0.0
    default_delta_fraction: float = 0.02

    @property
    def default_delta(self) -> float:
        return self.delta * self.default_delta_fraction


@dataclass(frozen=True)
class SdcThresholds:
    """Cell suppression rules: a cell needs ``min_cell_count`` contributors, and its
    ``dominance_n`` largest contributors may hold at most ``dominance_k`` of its total."""

    min_cell_count: int
    dominance_n: int
    dominance_k: float


@dataclass(frozen=True)
class GradeRules:
    download_rows: bool
    sdc: SdcThresholds | None  # stricter airlock cell rules for this grade (None: the airlock's defaults)
    budget: BudgetLimits
    sandbox_job: bool
    sandbox_approved_code_only: bool
    external_projects: bool
    review: ReviewRule | None  # None: nothing is releasable


_SDC = SdcThresholds(min_cell_count=10, dominance_n=2, dominance_k=0.85)


def _review(checkers: int, security_officer: bool = False) -> ReviewRule:
    return ReviewRule(auto_checks=True, checkers=checkers, security_officer=security_officer)


POLICY: dict[Grade, GradeRules] = {
    Grade.general_1: GradeRules(
        download_rows=True,
        sdc=_SDC,
        budget=BudgetLimits(10.0, 1e-6, 0.01, 1000, 120.0, 1e-5),
        sandbox_job=True,
        sandbox_approved_code_only=False,
        external_projects=True,
        review=_review(0),
    ),
    Grade.general_2: GradeRules(
        download_rows=False,
        sdc=_SDC,
        budget=BudgetLimits(5.0, 1e-6, 0.01, 500, 60.0, 1e-5),
        sandbox_job=True,
        sandbox_approved_code_only=False,
        external_projects=True,
        review=_review(1),
    ),
    Grade.general_3: GradeRules(
        download_rows=False,
        sdc=None,
        budget=BudgetLimits(3.0, 1e-7, 0.02, 300, 30.0, 1e-6),
        sandbox_job=True,
        sandbox_approved_code_only=False,
        external_projects=True,
        review=_review(2),
    ),
    Grade.general_4: GradeRules(
        download_rows=False,
        sdc=None,
        budget=BudgetLimits(2.0, 1e-7, 0.02, 200, 20.0, 1e-6),
        sandbox_job=True,
        sandbox_approved_code_only=False,
        external_projects=True,
        review=_review(2),
    ),
    Grade.important: GradeRules(
        download_rows=False,
        sdc=None,
        budget=BudgetLimits(1.0, 1e-8, 0.05, 100, 8.0, 1e-7),
        sandbox_job=True,
        sandbox_approved_code_only=True,
        external_projects=True,
        review=_review(2, security_officer=True),
    ),
    # 核心数据: closed to external projects; in-domain projects may run approved sandbox jobs only.
    Grade.core: GradeRules(
        download_rows=False,
        sdc=None,
        budget=BudgetLimits(0.0, 0.0, 0.0, 0, 0.0, 0.0),
        sandbox_job=True,
        sandbox_approved_code_only=True,
        external_projects=False,
        review=None,
    ),
}
"""Default rules per grade: the policy reference table as data.  Only tightened, never edited per
dataset; changing a value here changes the documented policy."""


@dataclass(frozen=True)
class DatasetPolicy:
    """A steward's per-dataset tightening of the default rules.  Every field only restricts."""

    deny: frozenset[Action] = field(default_factory=frozenset)
    dp_epsilon_cap: float | None = None
    dp_delta_cap: float | None = None
    min_cell_count: int | None = None
    require_approved_code: bool = False
    extra_checkers: int = 0
    require_security_officer: bool = False

    def __post_init__(self) -> None:
        try:
            deny = frozenset(Action(a) for a in self.deny if str(a) not in _RETIRED_ACTIONS)
            object.__setattr__(self, "deny", deny)
        except ValueError as exc:
            raise ValidationFailed("未知的操作", f"unknown action: {exc}", reason="deny") from None
        for name in ("dp_epsilon_cap", "dp_delta_cap"):
            cap = getattr(self, name)
            if cap is not None and not (math.isfinite(cap) and cap >= 0):
                raise ValidationFailed(
                    "隐私预算上限必须是非负有限数", f"{name} must be finite and ≥ 0", reason=name
                )
        if self.min_cell_count is not None and self.min_cell_count < 1:
            raise ValidationFailed(
                "最小单元格计数必须 ≥ 1", "min_cell_count must be ≥ 1", reason="min_cell_count"
            )
        if self.extra_checkers < 0:
            raise ValidationFailed(
                "额外审核员人数不能为负", "extra_checkers cannot be negative", reason="extra_checkers"
            )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason_zh: str
    reason_en: str

    def reason(self, lang: str = "zh-CN") -> str:
        return self.reason_en if lang.startswith("en") else self.reason_zh


def check_overrides(grade: Grade, overrides: DatasetPolicy) -> None:
    """Reject a cap that would loosen the default for ``grade`` (it would have no effect)."""
    rules = POLICY[grade]
    loosening: list[str] = []
    if overrides.dp_epsilon_cap is not None and overrides.dp_epsilon_cap > rules.budget.epsilon_per_project:
        loosening.append("dp_epsilon_cap")
    if overrides.dp_delta_cap is not None and overrides.dp_delta_cap > rules.budget.delta:
        loosening.append("dp_delta_cap")
    if (
        overrides.min_cell_count is not None
        and rules.sdc is not None
        and overrides.min_cell_count < rules.sdc.min_cell_count
    ):
        loosening.append("min_cell_count")
    if loosening:
        raise ValidationFailed(
            f"数据集策略只能收紧、不能放宽{grade.label_zh}的默认规则：{'、'.join(loosening)}",
            f"a dataset policy may only tighten the {grade.label_en} defaults: {', '.join(loosening)}",
            reason="loosening",
            fields=loosening,
        )


def dp_budget_limits(grade: Grade, overrides: DatasetPolicy | None = None) -> BudgetLimits:
    """The budget rules for one project on a dataset of ``grade``, after the steward's caps."""
    base = POLICY[grade].budget
    if overrides is None:
        return base
    eps, delta = base.epsilon_per_project, base.delta
    if Action.dp_query in overrides.deny:
        eps, delta = 0.0, 0.0
    if overrides.dp_epsilon_cap is not None:
        eps = min(eps, overrides.dp_epsilon_cap)
    if overrides.dp_delta_cap is not None:
        delta = min(delta, overrides.dp_delta_cap)
    return replace(base, epsilon_per_project=eps, delta=delta)


def sdc_thresholds(grade: Grade, overrides: DatasetPolicy | None = None) -> SdcThresholds | None:
    """The airlock's stricter cell rules for exact tables from ``grade``, or None (its defaults)."""
    base = POLICY[grade].sdc
    if base is None or overrides is None:
        return base
    if overrides.min_cell_count is not None and overrides.min_cell_count > base.min_cell_count:
        return SdcThresholds(overrides.min_cell_count, base.dominance_n, base.dominance_k)
    return base


def sandbox_requires_approved_code(grade: Grade, overrides: DatasetPolicy | None = None) -> bool:
    """True when a sandbox job on this dataset may only run code a steward has approved."""
    tightened = overrides is not None and overrides.require_approved_code
    return POLICY[grade].sandbox_approved_code_only or tightened


def _allowed_by_grade(grade: Grade, action: Action, overrides: DatasetPolicy | None) -> bool:
    rules = POLICY[grade]
    match action:
        case Action.download_rows:
            return rules.download_rows
        case Action.dp_query:
            return dp_budget_limits(grade, overrides).epsilon_per_project > 0
        case Action.sandbox_job:
            return rules.sandbox_job
        case Action.external_project_access:
            return rules.external_projects
        case Action.release:
            return rules.review is not None


def decide(
    grade: Grade, action: Action, *, overrides: DatasetPolicy | None = None, external: bool = True
) -> Decision:
    """May ``action`` happen on a dataset of ``grade``?  ``external``: the project is a company's
    or researcher's (not an in-domain department's); only core data tells the two apart."""
    label_zh, label_en = _ACTION_LABELS[action]
    rules = POLICY[grade]
    if external and not rules.external_projects:
        return Decision(
            False,
            f"{grade.label_zh}不对外部项目开放，不允许{label_zh}",
            f"{grade.label_en} is closed to external projects: no {label_en}",
        )
    if overrides is not None and action in overrides.deny:
        return Decision(
            False,
            f"数据安全官已对该数据集禁止{label_zh}",
            f"the steward has denied {label_en} on this dataset",
        )
    if not _allowed_by_grade(grade, action, overrides):
        return Decision(
            False, f"{grade.label_zh}不允许{label_zh}", f"{grade.label_en} does not allow {label_en}"
        )
    return Decision(True, f"{grade.label_zh}允许{label_zh}", f"{grade.label_en} allows {label_en}")


def require(
    grade: Grade, action: Action, *, overrides: DatasetPolicy | None = None, external: bool = True
) -> Decision:
    """Like :func:`decide`, but raise :class:`PermissionDenied` (with the reason) when denied."""
    decision = decide(grade, action, overrides=overrides, external=external)
    if not decision.allowed:
        raise PermissionDenied(decision.reason_zh, decision.reason_en, grade=str(grade), action=str(action))
    return decision


def release_review(grade: Grade, overrides: DatasetPolicy | None = None) -> ReviewRule:
    """Review a release request needs; raises PermissionDenied where nothing is releasable."""
    require(grade, Action.release, overrides=overrides, external=False)
    rule = POLICY[grade].review
    assert rule is not None  # require() has checked
    if overrides is None:
        return rule
    return ReviewRule(
        rule.auto_checks,
        rule.checkers + overrides.extra_checkers,
        rule.security_officer or overrides.require_security_officer,
    )


# ---------------------------------------------------------------------------------------------
# the table for the docs

_HEAD = {
    "zh": (
        "分级 (GB/T 43697-2024)",
        "下载明细行",
        "精确表格",
        "差分隐私查询",
        "沙箱作业",
        "出域审核",
    ),
    "en": (
        "grade (GB/T 43697-2024)",
        "download rows",
        "exact tables",
        "DP queries",
        "sandbox jobs",
        "release review",
    ),
}


def _cells(grade: Grade, en: bool) -> list[str]:
    rules = POLICY[grade]
    yes, no = ("yes", "no") if en else ("是", "否")
    sdc = rules.sdc
    if rules.review is None:
        sdc_cell = no
    elif en:
        sdc_cell = "sandbox job + airlock"
        if sdc is not None:
            sdc_cell += f" (≥{sdc.min_cell_count} per cell; top {sdc.dominance_n} ≤ {sdc.dominance_k:.0%})"
    else:
        sdc_cell = "沙箱作业 + 出域审核"
        if sdc is not None:
            sdc_cell += f"（每格 ≥{sdc.min_cell_count}；前 {sdc.dominance_n} 名占比 ≤{sdc.dominance_k:.0%}）"
    b = rules.budget
    if b.epsilon_per_project <= 0:
        dp_cell = no
    elif en:
        dp_cell = (
            f"{yes} (per project and period ε ≤ {b.epsilon_per_project:g}, δ ≤ {b.delta:g}; "
            f"ε ≥ {b.min_epsilon:g} per query; ≤ {b.queries_per_day} queries per analyst a day; "
            f"all projects ε ≤ {b.epsilon_per_year:g} a year)"
        )
    else:
        dp_cell = (
            f"是（每项目每期 ε ≤ {b.epsilon_per_project:g}，δ ≤ {b.delta:g}；每次 ε ≥ {b.min_epsilon:g}；"
            f"每人每日 ≤ {b.queries_per_day} 次；全部项目每年 ε ≤ {b.epsilon_per_year:g}）"
        )
    if not rules.external_projects:
        box = "no (in-domain projects only, approved code)" if en else "否（仅限域内项目，且须已审批代码）"
    elif not rules.sandbox_job:
        box = no
    elif rules.sandbox_approved_code_only:
        box = "yes, approved code only" if en else "是，仅限已审批代码"
    else:
        box = yes
    r = rules.review
    if r is None:
        review = "nothing releasable" if en else "不可出域"
    else:
        parts = ["automatic checks" if en else "自动检查"] if r.auto_checks else []
        if r.checkers:
            plural = "s" if r.checkers > 1 else ""
            parts.append(f"{r.checkers} independent checker{plural}" if en else f"{r.checkers} 名独立审核员")
        if r.security_officer:
            parts.append("security officer" if en else "数据安全官")
        review = " + ".join(parts)
    label = grade.label_en if en else grade.label_zh
    return [label, yes if rules.download_rows else no, sdc_cell, dp_cell, box, review]


def policy_table_markdown(lang: str = "zh-CN") -> str:
    """The default policy as a Markdown table, lowest grade first, generated from :data:`POLICY`."""
    en = lang.startswith("en")
    head = _HEAD["en" if en else "zh"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for grade in sorted(Grade):
        lines.append("| " + " | ".join(_cells(grade, en)) + " |")
    return "\n".join(lines) + "\n"
