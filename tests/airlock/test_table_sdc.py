from __future__ import annotations

from collections.abc import Callable

from countylab.airlock.checks import CheckContext, CheckStatus, OutputFile, TableSpec, table_sdc
from countylab.privacy.sdc import SdcRules

MakeFile = Callable[[str, bytes | str], OutputFile]


def rules_of(result_details: object) -> list[str]:
    assert isinstance(result_details, dict)
    return [c["rule"] for c in result_details["cells"]]


def test_counts_above_threshold_pass(make_file: MakeFile) -> None:
    f = make_file("t.csv", "村,人数\n东村,120\n西村,85\n南村,230\n")
    result = table_sdc.run(f, CheckContext())
    assert result.status is CheckStatus.passed, result.messages_en


def test_small_count_fails_with_position(make_file: MakeFile) -> None:
    f = make_file("t.csv", "村,人数\n东村,120\n西村,4\n南村,230\n")
    result = table_sdc.run(f, CheckContext())
    assert result.status is CheckStatus.fail
    assert result.details["cells"] == [{"line": 3, "sheet": None, "column": "人数", "rule": "threshold"}]
    assert "4" not in " ".join(result.messages_en).replace("line 3", "")  # the value is not echoed


def test_threshold_follows_the_rules(make_file: MakeFile) -> None:
    f = make_file("t.csv", "村,人数\n东村,12\n西村,15\n")
    assert table_sdc.run(f, CheckContext()).status is CheckStatus.passed
    assert table_sdc.run(f, CheckContext(sdc=SdcRules(min_units=20))).status is CheckStatus.fail


def test_declared_count_column_among_labels(make_file: MakeFile) -> None:
    # year-like integer columns are labels, not counts; the declared frequency column is checked
    f = make_file("t.csv", "年份,月,频数\n2024,1,50\n2024,2,3\n")
    result = table_sdc.run(f, CheckContext(tables={"t.csv": TableSpec(count_columns=("频数",))}))
    assert result.status is CheckStatus.fail
    assert [c["column"] for c in result.details["cells"]] == ["频数"]


def test_dominance_from_contributions(make_file: MakeFile) -> None:
    f = make_file("t.csv", "行业,营业收入\n制造业,1000\n零售业,500\n")
    contributions = {
        (0, "营业收入"): [950.0] + [5.0] * 10,  # one firm holds 95 %
        (1, "营业收入"): [50.0] * 10,
    }
    spec = TableSpec(magnitude_columns=("营业收入",), contributions=contributions)
    result = table_sdc.run(f, CheckContext(tables={"t.csv": spec}))
    assert result.status is CheckStatus.fail
    assert {(c["line"], c["rule"]) for c in result.details["cells"]} == {
        (2, "p_percent"),
        (2, "nk_dominance"),
    }


def test_sums_without_counts_warn(make_file: MakeFile) -> None:
    f = make_file("t.csv", "行业,营业收入\n制造业,1000.5\n零售业,500.25\n")
    spec = TableSpec(magnitude_columns=("营业收入",))
    result = table_sdc.run(f, CheckContext(tables={"t.csv": spec}))
    assert result.status is CheckStatus.warn
    assert any("must come with its counts" in m for m in result.messages_en)
    undeclared = table_sdc.run(f, CheckContext())
    assert undeclared.status is CheckStatus.warn


def test_structural_disclosure_fails(make_file: MakeFile) -> None:
    csv = "村,参保,未参保,失业\n东村,40,0,0\n西村,30,25,12\n南村,50,20,14\n"
    result = table_sdc.run(make_file("t.csv", csv), CheckContext())
    assert result.status is CheckStatus.fail
    assert {"sheet": None, "row": "东村", "rule": "structural"} in result.details["cells"]
    assert any("zero cells" in m for m in result.messages_en)


def test_zeros_alone_warn(make_file: MakeFile) -> None:
    csv = "村,参保,未参保,失业\n东村,40,0,15\n西村,30,25,12\n南村,50,20,14\n"
    result = table_sdc.run(make_file("t.csv", csv), CheckContext())
    assert result.status is CheckStatus.warn


WIDE = "村,男,女,合计\n东村,*,52,60\n西村,40,45,85\n合计,{m},97,145\n"


def test_suppressed_cell_recoverable_from_totals_fails(make_file: MakeFile) -> None:
    result = table_sdc.run(make_file("t.csv", WIDE.format(m=48)), CheckContext())
    assert result.status is CheckStatus.fail
    assert rules_of(result.details) == ["recoverable"]
    assert result.details["cells"][0]["line"] == 2


def test_secondary_suppression_passes(make_file: MakeFile) -> None:
    csv = "村,男,女,合计\n东村,*,*,60\n西村,*,*,85\n合计,48,97,145\n"
    result = table_sdc.run(make_file("t.csv", csv), CheckContext())
    assert "recoverable" not in rules_of(result.details)
    assert result.status is CheckStatus.passed, result.messages_en


def test_chained_recovery_is_found(make_file: MakeFile) -> None:
    # 东村×男 is alone in its row once 东村×女 is recovered from its column
    csv = "村,男,女,合计\n东村,*,<10,60\n西村,40,45,85\n合计,*,97,*\n"
    result = table_sdc.run(make_file("t.csv", csv), CheckContext())
    assert rules_of(result.details).count("recoverable") == 2


def test_long_layout_with_total_row(make_file: MakeFile) -> None:
    csv = "村,性别,人数\n东村,男,*\n东村,女,52\n东村,合计,60\n西村,男,40\n西村,女,45\n"
    result = table_sdc.run(make_file("t.csv", csv), CheckContext())
    assert rules_of(result.details) == ["recoverable"]
    one_label = "村,人数\n东村,*\n西村,45\n合计,105\n"
    assert rules_of(table_sdc.run(make_file("u.csv", one_label), CheckContext()).details) == ["recoverable"]
