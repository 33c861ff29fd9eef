"""Spec tests for the access policy: every cell of the grade table (docs/reference/policy.md),
and overrides only tighten."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from countylab.catalog.grading import Grade
from countylab.errors import PermissionDenied, ValidationFailed
from countylab.policy import (
    Action,
    DatasetPolicy,
    ReviewRule,
    check_overrides,
    decide,
    dp_budget_limits,
    policy_table_markdown,
    release_review,
    require,
    sandbox_requires_approved_code,
    sdc_thresholds,
)

G1, G2, G3, G4, IMP, CORE = (
    Grade.general_1,
    Grade.general_2,
    Grade.general_3,
    Grade.general_4,
    Grade.important,
    Grade.core,
)

# The grade table, columns: download rows, DP queries, sandbox jobs (external project).  Exact
# tables have no action of their own: they come only from sandbox jobs through the airlock.
TABLE = {
    G1: (True, True, True),
    G2: (False, True, True),
    G3: (False, True, True),
    G4: (False, True, True),
    IMP: (False, True, True),
    CORE: (False, False, False),
}
COLUMNS = (Action.download_rows, Action.dp_query, Action.sandbox_job)
CELLS = [(grade, action, row[i]) for grade, row in TABLE.items() for i, action in enumerate(COLUMNS)]


@pytest.mark.parametrize(("grade", "action", "allowed"), CELLS)
def test_design_table_cell(grade: Grade, action: Action, allowed: bool) -> None:
    decision = decide(grade, action)
    assert decision.allowed is allowed
    assert grade.label_zh in decision.reason_zh and grade.label_en in decision.reason_en
    if allowed:
        assert require(grade, action) == decision
    else:
        with pytest.raises(PermissionDenied) as denied:
            require(grade, action)
        assert denied.value.message_zh == decision.reason_zh
        assert denied.value.details == {"grade": str(grade), "action": str(action)}


@pytest.mark.parametrize(
    ("grade", "rule"),
    [
        (G1, ReviewRule(auto_checks=True, checkers=0, security_officer=False)),
        (G2, ReviewRule(auto_checks=True, checkers=1, security_officer=False)),
        (G3, ReviewRule(auto_checks=True, checkers=2, security_officer=False)),
        (G4, ReviewRule(auto_checks=True, checkers=2, security_officer=False)),
        (IMP, ReviewRule(auto_checks=True, checkers=2, security_officer=True)),
    ],
)
def test_design_table_release_review(grade: Grade, rule: ReviewRule) -> None:
    assert release_review(grade) == rule
    assert decide(grade, Action.release).allowed


def test_core_data_nothing_releasable_and_closed_to_external_projects() -> None:
    with pytest.raises(PermissionDenied):
        release_review(CORE)
    assert not decide(CORE, Action.release, external=False).allowed
    assert not decide(CORE, Action.external_project_access).allowed
    assert "外部项目" in decide(CORE, Action.sandbox_job).reason_zh
    # in-domain projects may run (approved) sandbox jobs on core data, but nothing else
    assert decide(CORE, Action.sandbox_job, external=False).allowed
    assert sandbox_requires_approved_code(CORE)
    for action in (Action.download_rows, Action.dp_query):
        assert not decide(CORE, action, external=False).allowed


@pytest.mark.parametrize("grade", [G1, G2, G3, G4, IMP])
def test_external_projects_are_allowed_below_core(grade: Grade) -> None:
    assert decide(grade, Action.external_project_access).allowed


def test_sdc_threshold_and_dominance_for_level_2() -> None:
    sdc = sdc_thresholds(G2)
    assert sdc is not None and sdc.min_cell_count >= 10 and 0 < sdc.dominance_k < 1
    assert sdc_thresholds(G3) is None and sdc_thresholds(IMP) is None


def test_no_interactive_exact_answers_on_any_grade() -> None:
    """Option (b) of issue 9: exact tables only through jobs and the airlock, never interactively."""
    assert "sdc_aggregate" not in {a.value for a in Action}
    assert DatasetPolicy(deny=frozenset({"sdc_aggregate", "release"})).deny == {Action.release}  # type: ignore[arg-type]


@pytest.mark.parametrize("grade", [G1, G2, G3, G4, IMP])
def test_every_dp_grade_has_a_floor_a_daily_cap_and_a_yearly_dataset_cap(grade: Grade) -> None:
    b = dp_budget_limits(grade)
    assert 0 < b.min_epsilon <= b.epsilon_per_project
    assert b.queries_per_day > 0
    assert b.epsilon_per_year >= b.epsilon_per_project and b.delta_per_year >= b.delta
    assert 0 < b.default_delta <= b.delta / 10  # one grouped query never takes a period's δ
    tightened = dp_budget_limits(grade, DatasetPolicy(dp_epsilon_cap=0.5))
    assert tightened.min_epsilon == b.min_epsilon and tightened.queries_per_day == b.queries_per_day


def test_floors_rise_and_caps_fall_with_grade() -> None:
    grades = (G1, G2, G3, G4, IMP)
    floors = [dp_budget_limits(g).min_epsilon for g in grades]
    caps = [dp_budget_limits(g).queries_per_day for g in grades]
    assert floors == sorted(floors) and caps == sorted(caps, reverse=True)


def test_dp_budgets_shrink_with_grade_and_core_has_none() -> None:
    eps = [dp_budget_limits(g).epsilon_per_project for g in (G1, G2, G3, G4, IMP)]
    assert eps == sorted(eps, reverse=True) and len(set(eps)) == len(eps)
    assert dp_budget_limits(IMP).epsilon_per_project <= 1.0
    assert dp_budget_limits(CORE).epsilon_per_project == 0.0 and dp_budget_limits(CORE).delta == 0.0
    assert all(0 < dp_budget_limits(g).delta < 1e-5 for g in (G1, G2, G3, G4, IMP))


@pytest.mark.parametrize(
    ("grade", "approved"), [(G1, False), (G2, False), (G3, False), (G4, False), (IMP, True)]
)
def test_sandbox_approved_code(grade: Grade, approved: bool) -> None:
    assert sandbox_requires_approved_code(grade) is approved


# ---------------------------------------------------------------------------------------------
# overrides


def test_deny_override_tightens_only_the_named_action() -> None:
    policy = DatasetPolicy(deny=frozenset({Action.download_rows}))
    denied = decide(G1, Action.download_rows, overrides=policy)
    assert not denied.allowed and "数据安全官" in denied.reason_zh
    assert decide(G1, Action.dp_query, overrides=policy).allowed


def test_epsilon_cap_tightens_and_zero_cap_denies_dp() -> None:
    assert dp_budget_limits(G2, DatasetPolicy(dp_epsilon_cap=0.5)).epsilon_per_project == 0.5
    assert dp_budget_limits(G2, DatasetPolicy(dp_delta_cap=1e-9)).delta == 1e-9
    assert not decide(G2, Action.dp_query, overrides=DatasetPolicy(dp_epsilon_cap=0.0)).allowed
    assert dp_budget_limits(G2, DatasetPolicy(deny=frozenset({Action.dp_query}))).epsilon_per_project == 0


def test_loosening_caps_have_no_effect_and_are_rejected_when_saved() -> None:
    loose = DatasetPolicy(dp_epsilon_cap=50.0, dp_delta_cap=0.1, min_cell_count=3)
    assert dp_budget_limits(G2, loose) == dp_budget_limits(G2)
    assert sdc_thresholds(G2, loose) == sdc_thresholds(G2)
    assert not decide(CORE, Action.dp_query, overrides=loose, external=False).allowed
    with pytest.raises(ValidationFailed) as rejected:
        check_overrides(G2, loose)
    assert set(rejected.value.details["fields"]) == {"dp_epsilon_cap", "dp_delta_cap", "min_cell_count"}
    check_overrides(G2, DatasetPolicy(dp_epsilon_cap=1.0, min_cell_count=20))


def test_other_tightenings() -> None:
    assert sdc_thresholds(G2, DatasetPolicy(min_cell_count=20)).min_cell_count == 20  # type: ignore[union-attr]
    assert sandbox_requires_approved_code(G1, DatasetPolicy(require_approved_code=True))
    strict = DatasetPolicy(extra_checkers=1, require_security_officer=True)
    assert release_review(G2, strict) == ReviewRule(auto_checks=True, checkers=2, security_officer=True)
    with pytest.raises(PermissionDenied):
        release_review(G1, DatasetPolicy(deny=frozenset({Action.release})))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dp_epsilon_cap": -1.0},
        {"dp_epsilon_cap": math.nan},
        {"dp_delta_cap": math.inf},
        {"min_cell_count": 0},
        {"extra_checkers": -1},
        {"deny": frozenset({"allow_everything"})},
    ],
)
def test_invalid_override_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed):
        DatasetPolicy(**kwargs)  # type: ignore[arg-type]


def test_deny_accepts_action_names() -> None:
    assert DatasetPolicy(deny=frozenset({"release"})).deny == frozenset({Action.release})  # type: ignore[arg-type]


overrides_strategy = st.builds(
    DatasetPolicy,
    deny=st.frozensets(st.sampled_from(list(Action))),
    dp_epsilon_cap=st.none() | st.floats(min_value=0, max_value=100),
    dp_delta_cap=st.none() | st.floats(min_value=0, max_value=1),
    min_cell_count=st.none() | st.integers(min_value=1, max_value=100),
    require_approved_code=st.booleans(),
    extra_checkers=st.integers(min_value=0, max_value=3),
    require_security_officer=st.booleans(),
)


@given(st.sampled_from(list(Grade)), st.sampled_from(list(Action)), st.booleans(), overrides_strategy)
def test_no_override_ever_loosens(
    grade: Grade, action: Action, external: bool, policy: DatasetPolicy
) -> None:
    if decide(grade, action, overrides=policy, external=external).allowed:
        assert decide(grade, action, external=external).allowed
    base, tight = dp_budget_limits(grade), dp_budget_limits(grade, policy)
    assert tight.epsilon_per_project <= base.epsilon_per_project and tight.delta <= base.delta
    base_sdc, tight_sdc = sdc_thresholds(grade), sdc_thresholds(grade, policy)
    if tight_sdc is not None:
        assert base_sdc is not None and tight_sdc.min_cell_count >= base_sdc.min_cell_count
    assert sandbox_requires_approved_code(grade, policy) >= sandbox_requires_approved_code(grade)
    if decide(grade, Action.release, overrides=policy).allowed:
        base_rule, rule = release_review(grade), release_review(grade, policy)
        assert rule.checkers >= base_rule.checkers and rule.security_officer >= base_rule.security_officer


# ---------------------------------------------------------------------------------------------
# the rendered table agrees with decide()


@pytest.mark.parametrize(("lang", "yes", "no"), [("zh-CN", "是", "否"), ("en", "yes", "no")])
def test_markdown_table_matches_decisions(lang: str, yes: str, no: str) -> None:
    text = policy_table_markdown(lang)
    lines = text.strip().splitlines()
    assert len(lines) == 2 + len(Grade)
    for line, grade in zip(lines[2:], sorted(Grade), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == grade.label(lang)
        for cell, action in zip([cells[1], cells[3], cells[4]], COLUMNS, strict=True):
            assert cell.startswith(yes if decide(grade, action).allowed else no), (grade, action, cell)
        exact = "sandbox job" if lang == "en" else "沙箱作业"
        assert cells[2].startswith(exact if decide(grade, Action.release).allowed else no), (grade, cells[2])
    assert re.search(r"ε ≤ 1\D", text)  # 重要数据's smaller budget is visible in the docs
