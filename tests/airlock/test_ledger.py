from __future__ import annotations

from collections.abc import Mapping

from countylab.airlock.ledger import Ledger, ReleasedTable, differencing_risks

VILLAGES: dict[tuple[str, ...], float] = {("东村",): 120.0, ("西村",): 85.0, ("南村",): 230.0}


def table(
    release: str,
    project: str,
    cells: Mapping[tuple[str, ...], float],
    *,
    filt: str = "",
    grouping: tuple[str, ...] = ("村",),
    dataset: str = "households",
) -> ReleasedTable:
    return ReleasedTable(release, project, dataset, grouping, filt, cells)


def test_filter_excluding_a_few_units_is_flagged_with_both_tables() -> None:
    earlier = table("r1", "pA", VILLAGES)
    crafted = table("r2", "pB", {("东村",): 117.0, ("西村",): 85.0, ("南村",): 230.0}, filt="不含低保户")
    risks = differencing_risks(crafted, [earlier])
    assert len(risks) == 1
    risk = risks[0]
    assert [c.key for c in risk.cells] == [("东村",)]
    assert risk.cells[0].difference == 3
    assert risk.new is crafted and risk.earlier is earlier
    assert (("东村",), 117.0, 120.0) in risk.side_by_side
    assert "pA" in risk.message_zh and "pA" in risk.message_en


def test_finer_table_is_rolled_up_before_comparing() -> None:
    earlier = table("r1", "pA", VILLAGES)
    finer = table(
        "r2",
        "pB",
        {("东村", "男"): 60.0, ("东村", "女"): 58.0, ("西村", "男"): 40.0, ("西村", "女"): 45.0},
        grouping=("村", "性别"),
    )
    risks = differencing_risks(finer, [earlier])
    assert [c.key for c in risks[0].cells] == [("东村",)]


def test_innocent_pairs_are_not_flagged() -> None:
    earlier = table("r1", "pA", VILLAGES)
    identical = table("r2", "pB", dict(VILLAGES))
    big_difference = table("r3", "pC", {("东村",): 60.0, ("西村",): 40.0, ("南村",): 110.0}, filt="仅女性")
    other_dataset = table("r4", "pD", {("东村",): 118.0}, dataset="people")
    other_grouping = table("r5", "pE", {("男",): 200.0}, grouping=("性别",))
    for new in (identical, big_difference, other_dataset, other_grouping):
        assert differencing_risks(new, [earlier]) == []


def test_ledger_compares_across_projects_within_a_dataset() -> None:
    ledger = Ledger()
    ledger.record(table("r1", "pA", VILLAGES))
    ledger.record(table("r9", "pZ", {("东村",): 119.0}, dataset="people"))
    new = table("r2", "pB", {("东村",): 119.0, ("西村",): 85.0, ("南村",): 230.0})
    risks = ledger.risks(new)
    assert [r.earlier.release_id for r in risks] == ["r1"]
    assert ledger.risks(new, threshold=1) == []
