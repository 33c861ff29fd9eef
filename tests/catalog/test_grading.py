"""Grade proposal rules (GB/T 43697-2024) and who may change a grade."""

from __future__ import annotations

import pytest

from countylab.catalog.grading import Grade, GradeProposal, check_grade_change, propose_grade
from countylab.catalog.pii import ColumnFinding, PiiKind
from countylab.errors import PermissionDenied, ValidationFailed


def f(column: str, kind: PiiKind) -> ColumnFinding:
    return ColumnFinding(column, kind, 0.95, 2000, 1900)


def test_labels_and_rank_order() -> None:
    assert [g.label_zh for g in sorted(Grade)] == [
        "一般数据1级",
        "一般数据2级",
        "一般数据3级",
        "一般数据4级",
        "重要数据",
        "核心数据",
    ]
    assert Grade.general_3.label_en == "general data, level 3"
    assert Grade.core.rank > Grade.important.rank > Grade.general_4.rank > Grade.general_1.rank
    # compared by rank, not as text ("core" < "general_1" alphabetically)
    assert Grade.core > Grade.general_1
    assert max(Grade) is Grade.core and min(Grade) is Grade.general_1
    assert Grade.general_2 <= Grade.general_2 < Grade.general_3


@pytest.mark.parametrize(
    ("findings", "unit", "rows", "tags", "expected"),
    [
        ([], "none", 100, (), Grade.general_1),
        ([], "enterprise", 100, (), Grade.general_2),
        ([f("代码", PiiKind.uscc)], "none", 100, (), Grade.general_2),
        ([], "person", 100, (), Grade.general_3),
        ([f("姓名", PiiKind.person_name)], "person", 100, (), Grade.general_3),
        ([f("住址", PiiKind.address)], "none", 100, (), Grade.general_3),
        ([f("车牌", PiiKind.licence_plate)], "none", 100, (), Grade.general_3),
        ([f("电话", PiiKind.mobile)], "person", 100, (), Grade.general_3),
        ([f("电话", PiiKind.mobile), f("姓名", PiiKind.person_name)], "person", 100, (), Grade.general_4),
        ([f("身份证号", PiiKind.id_number)], "person", 100, (), Grade.general_4),
        ([f("卡号", PiiKind.bank_card)], "person", 100, (), Grade.general_4),
        ([f("身份证号", PiiKind.id_number), f("代码", PiiKind.uscc)], "enterprise", 100, (), Grade.general_4),
        ([], "person", 1_000_000, (), Grade.important),
        ([], "person", 999_999, (), Grade.general_3),
        ([f("姓名", PiiKind.person_name)], "none", 2_000_000, (), Grade.important),
        ([], "enterprise", 5_000_000, (), Grade.general_2),
        ([], "none", 10, ("重要",), Grade.important),
        ([], "none", 10, ("关键基础设施",), Grade.important),
        ([], "none", 10, ("地理信息",), Grade.important),
        ([f("身份证号", PiiKind.id_number)], "person", 10, ("核心",), Grade.core),
        ([], "none", 10, ("重要数据", "核心数据"), Grade.core),
        ([], "none", 10, ("农业", "公开"), Grade.general_1),
    ],
)
def test_proposal_rules(
    findings: list[ColumnFinding], unit: str, rows: int, tags: tuple[str, ...], expected: Grade
) -> None:
    proposal = propose_grade(findings, privacy_unit=unit, row_count=rows, tags=tags)
    assert proposal.grade is expected
    assert proposal.reason_zh.startswith(f"建议定为{expected.label_zh}")
    assert proposal.reason_en.startswith(f"proposed {expected.label_en}")


def test_reasons_name_columns_kinds_and_counts() -> None:
    findings = [f("身份证号", PiiKind.id_number), f("联系电话", PiiKind.mobile)]
    p = propose_grade(findings, privacy_unit="person", row_count=1200, department="民政局")
    assert isinstance(p, GradeProposal)
    assert "身份证号（身份证号）" in p.reason_zh
    assert "ID numbers" in p.reason_en
    assert "pii:id_number:身份证号" in p.factors and "pii:mobile:联系电话" in p.factors
    assert "rows:1200" in p.factors and "privacy_unit:person" in p.factors
    assert "department:民政局" in p.factors
    big = propose_grade([], privacy_unit="person", row_count=1_500_000)
    assert "1500000" in big.reason_zh and "1500000" in big.reason_en


def test_bad_privacy_unit_or_row_count() -> None:
    with pytest.raises(ValidationFailed):
        propose_grade([], privacy_unit="household", row_count=1)
    with pytest.raises(ValidationFailed):
        propose_grade([], privacy_unit="none", row_count=-1)


@pytest.mark.parametrize("officer", [True, False])
@pytest.mark.parametrize(
    ("current", "new"),
    [(Grade.general_2, Grade.general_2), (Grade.general_2, Grade.general_4), (Grade.general_1, Grade.core)],
)
def test_anyone_with_steward_role_may_confirm_or_raise(current: Grade, new: Grade, officer: bool) -> None:
    check_grade_change(current, new, actor_is_security_officer=officer, reason=None)


def test_lowering_needs_the_security_officer_and_a_reason() -> None:
    with pytest.raises(PermissionDenied) as denied:
        check_grade_change(
            Grade.important, Grade.general_3, actor_is_security_officer=False, reason="已脱敏处理完毕，经评审"
        )
    assert "数据安全官" in denied.value.message_zh
    for reason in (None, "", "短", "  四个字  "):
        with pytest.raises(ValidationFailed):
            check_grade_change(
                Grade.important, Grade.general_3, actor_is_security_officer=True, reason=reason
            )
    check_grade_change(
        Grade.important, Grade.general_3, actor_is_security_officer=True, reason="已删除身份证号列"
    )
