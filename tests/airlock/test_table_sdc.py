from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from countylab.airlock.checks import CheckContext, CheckStatus, OutputFile, TableSpec, table_sdc
from countylab.output import Outputs
from countylab.privacy.sdc import SdcRules
from tests.airlock.library_support import context_for, frame

MakeFile = Callable[[str, bytes | str], OutputFile]


def rules_of(result_details: object) -> list[str]:
    assert isinstance(result_details, dict)
    return [c["rule"] for c in result_details["cells"]]


def _library(tmp_path: Path, build: Callable[[Outputs], object], name: str, sdc: SdcRules | None = None):
    out = Outputs(tmp_path / "outbox")
    build(out)
    [f], ctx = context_for(out.outbox, [name], sdc)
    return table_sdc.run(f, ctx)


VILLAGES = {("东村",): 120, ("西村",): 85, ("南村",): 230}


def test_counts_above_threshold_pass(tmp_path: Path) -> None:
    df = frame(VILLAGES, ["村"], visits=lambda i: i % 7)
    result = _library(tmp_path, lambda o: o.pivot_table("t.csv", df, "村", "visits"), "t.csv")
    assert result.status is CheckStatus.passed, result.messages_en
    assert result.details["declared"] is True


def test_small_count_fails_with_position(tmp_path: Path) -> None:
    df = frame({("东村",): 120, ("西村",): 4, ("南村",): 230}, ["村"], visits=lambda i: i % 7)
    result = _library(tmp_path, lambda o: o.pivot_table("t.csv", df, "村", "visits"), "t.csv")
    assert result.status is CheckStatus.fail
    # sorted groups: 东村, 南村, 西村 → 西村 is on line 4; its count and its mean both fail
    assert {(c["line"], c["column"], c["rule"]) for c in result.details["cells"]} == {
        (4, "n", "threshold"),
        (4, "mean_visits", "threshold"),
    }
    assert "4 " not in " ".join(result.messages_en).replace("line 4", "")  # the value is not echoed


def test_threshold_follows_the_rules(tmp_path: Path) -> None:
    df = frame({("东村",): 12, ("西村",): 15}, ["村"])
    ok = _library(
        tmp_path, lambda o: o.crosstab("t.csv", df.assign(k="老人"), "村", "k", margins=False), "t.csv"
    )
    assert ok.status is CheckStatus.passed, ok.messages_en
    strict = _library(
        tmp_path,
        lambda o: o.crosstab("t.csv", df.assign(k="老人"), "村", "k", margins=False),
        "t.csv",
        SdcRules(min_units=20),
    )
    assert strict.status is CheckStatus.fail


def test_undeclared_table_gets_no_guessed_roles(make_file: MakeFile) -> None:
    # a count column named like an identifier, and a 0/1 column: neither role is guessed
    f = make_file("t.csv", "village,residents,lives_alone\n东村,4,0\n西村,45,1\n")
    result = table_sdc.run(f, CheckContext())
    assert result.status is CheckStatus.passed and result.details["declared"] is False
    named = table_sdc.run(f, CheckContext(tables={"t.csv": TableSpec(count_columns=("residents",))}))
    assert named.status is CheckStatus.fail  # a column the developer named is checked (stricter)


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


def test_library_sums_get_dominance_from_the_sidecar(tmp_path: Path) -> None:
    df = frame({("制造业",): 11, ("零售业",): 10}, ["行业"], 收入=lambda i: 950.0 if i == 0 else 5.0)
    result = _library(tmp_path, lambda o: o.pivot_table("t.csv", df, "行业", "收入", aggfunc="sum"), "t.csv")
    assert result.status is CheckStatus.fail
    assert {(c["line"], c["rule"]) for c in result.details["cells"]} == {
        (2, "p_percent"),
        (2, "nk_dominance"),
    }


def test_structural_disclosure_fails(tmp_path: Path) -> None:
    counts = {("东村", "参保"): 40, ("西村", "参保"): 30, ("西村", "未参保"): 25, ("南村", "参保"): 50}
    counts[("南村", "未参保")] = 20
    df = frame(counts, ["村", "状态"])
    result = _library(tmp_path, lambda o: o.crosstab("t.csv", df, "村", "状态"), "t.csv")
    assert result.status is CheckStatus.fail
    assert {"sheet": None, "row": "东村", "rule": "structural"} in result.details["cells"]
    assert any("zero cells" in m for m in result.messages_en)


def test_zeros_alone_warn(tmp_path: Path) -> None:
    counts = {("东村", "参保"): 40, ("东村", "失业"): 15, ("西村", "参保"): 30, ("西村", "未参保"): 25}
    counts.update({("西村", "失业"): 12, ("南村", "参保"): 50, ("南村", "未参保"): 20, ("南村", "失业"): 14})
    result = _library(
        tmp_path, lambda o: o.crosstab("t.csv", frame(counts, ["村", "状态"]), "村", "状态"), "t.csv"
    )
    assert result.status is CheckStatus.warn, result.messages_en


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
    assert result.status is CheckStatus.passed, result.messages_en  # (free-form: output_library warns)


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
