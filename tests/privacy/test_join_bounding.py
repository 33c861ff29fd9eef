"""Contribution bounding on the relation actually aggregated, whatever the joins.

Spec tests run the engine-written SQL without noise and compare it with a pandas reference
that applies the same rule: after the joins and the WHERE clause, each privacy unit keeps at
most k rows.  Refusals pin the ownership rule: two private tables join only on their units,
and only when the units are the same kind of entity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from countylab.errors import UserError, ValidationFailed
from countylab.privacy.engine import DPEngine
from countylab.privacy.planner import QueryPlan
from countylab.privacy.spec import ColumnKind, ColumnPolicy, TableSpec

from .conftest import TOWNS, make_residents
from .layout import engine_for

K_VISITS = 10
HIGH = 100.0


def _towns() -> pd.DataFrame:
    # A public lookup with a duplicated key: no uniqueness is assumed any more.
    t = pd.DataFrame({"town": list(TOWNS), "region": ["north", "north", "south", "south", "west"]})
    return pd.concat([t, t.head(1)], ignore_index=True)


def _visits(res: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = rng.integers(0, 25, len(res))
    n[7] = 400  # one resident with far more rows than k
    pids = np.repeat(res.pid.to_numpy(), n)
    return pd.DataFrame(
        {
            "pid": pids,
            # one town per person, so group sums do not depend on which k rows are kept
            "town": np.repeat(res.town.to_numpy(), n),
            "minutes": rng.integers(0, 900, len(pids)).astype(float),  # above the bound sometimes
        }
    )


def _households(res: pd.DataFrame) -> pd.DataFrame:
    hids = np.arange(res.hid.max() + 1)
    return pd.DataFrame({"hid": hids, "town": np.resize(np.array(TOWNS[:4]), len(hids)), "hsize": 3.0})


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    res = make_residents(1500, seed=5)
    return {"residents": res, "visits": _visits(res), "households": _households(res), "towns": _towns()}


def specs(d: Path, visits_entity: str | None = None) -> list[TableSpec]:
    cat, num = ColumnPolicy(ColumnKind.CATEGORY), ColumnKind.NUMERIC
    town = ColumnPolicy(ColumnKind.CATEGORY, public_keys=TOWNS, joinable_to=("towns.town",))
    return [
        TableSpec(
            "residents",
            (str(d / "residents.parquet"),),
            "pid",
            1,
            {
                "pid": ColumnPolicy(ColumnKind.IDENTIFIER),
                "id_number": ColumnPolicy(ColumnKind.IDENTIFIER),
                "town": town,
                "village": ColumnPolicy(ColumnKind.CATEGORY, joinable_to=("residents.village",)),
                "income": ColumnPolicy(num, 0.0, 200_000.0),
                "age": ColumnPolicy(num, 0.0, 100.0),
                "hid": ColumnPolicy(ColumnKind.CATEGORY, joinable_to=("households.hid",)),
            },
            "r1",
            unit_entity="person",
        ),
        TableSpec(
            "visits",
            (str(d / "visits.parquet"),),
            "pid",
            K_VISITS,
            {
                "pid": ColumnPolicy(ColumnKind.IDENTIFIER),
                "town": town,
                "minutes": ColumnPolicy(num, 0.0, 600.0),
            },
            "v1",
            unit_entity=visits_entity or "person",
        ),
        TableSpec(
            "households",
            (str(d / "households.parquet"),),
            "hid",
            1,
            {"hid": ColumnPolicy(ColumnKind.IDENTIFIER), "town": town, "hsize": ColumnPolicy(num, 1.0, 10.0)},
            "h1",
            unit_entity="household",
        ),
        TableSpec("towns", (str(d / "towns.parquet"),), None, 1, {"town": cat, "region": cat}, "t1"),
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, frames: dict[str, pd.DataFrame]) -> Path:
    d = tmp_path_factory.mktemp("joins")
    for name, df in frames.items():
        df.to_parquet(d / f"{name}.parquet")
    return d


@pytest.fixture(scope="module")
def eng(data: Path) -> DPEngine:
    return engine_for(*specs(data))


def exact(eng: DPEngine, plan: QueryPlan) -> dict[tuple[Any, ...], dict[str, float]]:
    """The bounded relation's aggregates without noise, decoded (the engine's own exact path)."""
    rows = eng.runner.run(list(plan.model.tables), [plan.main_sql], bounded=True)[0]
    ng = len(plan.model.group_sqls)
    out = {}
    for r in rows:
        vals = {}
        for i, m in enumerate(x for x in plan.measurements if x.kind != "hist"):
            v = r[ng + i]
            vals[m.key] = m.fixed.decode(v) if m.fixed is not None else float(v)
        out[tuple(r[:ng])] = vals
    return out


def bounded(df: pd.DataFrame, unit: str, k: int) -> pd.DataFrame:
    """Reference bounding: at most k rows per unit (which rows does not matter for counts)."""
    return df.groupby(unit, group_keys=False).head(k)


# -- refused: rows that would belong to several units ------------------------------------------

REFUSED = {
    "private-public-private chain on the town code": (
        "SELECT count(*) FROM residents r JOIN towns t ON r.town = t.town "
        "JOIN households h ON t.town = h.town"
    ),
    "persons to households (different entities)": (
        "SELECT count(*) FROM residents r JOIN households h ON r.hid = h.hid"
    ),
    "the same private table twice on a non-unit column": (
        "SELECT count(*) FROM residents a JOIN residents b ON a.village = b.village"
    ),
    "two private tables on non-unit columns": (
        "SELECT count(*) FROM residents r JOIN visits v ON r.town = v.town"
    ),
    "unit joined to another table's non-unit": (
        "SELECT count(*) FROM visits v JOIN residents r ON v.pid = r.hid"
    ),
    "public first, then two private tables on a public key": (
        "SELECT count(*) FROM towns t JOIN residents r ON t.town = r.town JOIN visits v ON t.town = v.town"
    ),
}


@pytest.mark.parametrize("sql", REFUSED.values(), ids=REFUSED.keys())
def test_joins_that_give_a_row_several_owners_are_refused(eng: DPEngine, sql: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        eng.plan(sql, 1.0)
    assert info.value.details["reason"] == "private_join"
    assert "沙箱作业" in info.value.message_zh and "sandbox job" in info.value.message_en


def test_units_of_different_entities_never_join_even_on_their_unit_columns(data: Path) -> None:
    eng = engine_for(*specs(data, visits_entity="household"))
    with pytest.raises(ValidationFailed):
        eng.plan("SELECT count(*) FROM residents r JOIN visits v ON r.pid = v.pid", 1.0)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM residents r LEFT JOIN towns t ON r.town = t.town",
        "SELECT count(*) FROM residents r JOIN towns t ON r.age = t.town",
        "SELECT count(*) FROM residents r JOIN towns t ON r.town = t.town AND r.age > 3",
        "SELECT count(*) FROM residents r, towns t",
        "SELECT count(*) FROM residents r CROSS JOIN towns t",
    ],
)
def test_other_join_forms_are_refused(eng: DPEngine, sql: str) -> None:
    with pytest.raises(UserError):
        eng.plan(sql, 1.0)


# -- allowed: bounded after the join -------------------------------------------------------------


def test_public_table_first_then_private_is_bounded_at_that_tables_k(
    eng: DPEngine, frames: dict[str, pd.DataFrame]
) -> None:
    # The old planner bounded this at 1 row per unit instead of k = 10.
    plan = eng.plan("SELECT count(*) FROM towns t JOIN visits v ON t.town = v.town", HIGH)
    assert plan.model.contribution == K_VISITS
    assert [t.name for t in plan.model.private_tables] == ["visits"]
    assert plan.measurements[0].sensitivity == K_VISITS
    joined = frames["visits"].merge(frames["towns"], on="town")
    ref = len(bounded(joined, "pid", K_VISITS))
    assert len(joined) > ref  # the duplicated town and the heavy resident are both cut
    assert exact(eng, plan)[()]["count:None"] == ref
    assert abs(eng.execute(plan).rows[0][0] - ref) <= 5


def test_private_tables_of_the_same_entity_join_on_their_units(
    eng: DPEngine, frames: dict[str, pd.DataFrame]
) -> None:
    sql = (
        "SELECT count(*) AS n, sum(r.income) AS s, count(DISTINCT r.pid) AS u "
        "FROM residents r JOIN visits v ON r.pid = v.pid WHERE v.minutes > 100"
    )
    plan = eng.plan(sql, HIGH)
    assert {t.name for t in plan.model.private_tables} == {"residents", "visits"}  # both ledgers charged
    assert plan.model.contribution == max(1, K_VISITS)  # k = the largest of the tables involved
    res, vis = frames["residents"], frames["visits"]
    joined = bounded(res.merge(vis[vis.minutes > 100], on="pid", suffixes=("", "_v")), "pid", K_VISITS)
    got = exact(eng, plan)[()]
    assert got["count:None"] == len(joined)
    assert got["count_unit:None"] == joined.pid.nunique()
    ref_sum = joined.income.clip(0, 200_000).sum()
    q = plan.measurements[1].fixed.quantum  # type: ignore[union-attr]
    assert abs(got['sum:"r"."income"'] - ref_sum) <= len(joined) * q / 2
    n, s, u = eng.execute(plan).rows[0]
    assert abs(n - len(joined)) <= 5 and abs(u - joined.pid.nunique()) <= 1
    assert s == pytest.approx(ref_sum, rel=1e-3)


def test_grouped_join_through_a_public_table_matches_the_reference(
    eng: DPEngine, frames: dict[str, pd.DataFrame]
) -> None:
    sql = (
        "SELECT t.region, count(*) AS n, avg(v.minutes) AS m FROM visits v "
        "JOIN towns t ON v.town = t.town GROUP BY t.region"
    )
    plan = eng.plan(sql, HIGH)
    assert plan.select_partitions  # region has no public key set
    joined = bounded(frames["visits"].merge(frames["towns"], on="town"), "pid", K_VISITS)
    ref = joined.groupby("region").size()
    got = exact(eng, plan)
    assert {k[0]: v["count:None"] for k, v in got.items()} == ref.to_dict()
    released = {r[0]: r for r in eng.execute(plan).rows}
    assert set(released) == set(ref.index)
    for region, n in ref.items():
        assert abs(released[region][1] - n) <= 5
        assert 0.0 <= released[region][2] <= 600.0


def test_self_join_on_the_unit_is_bounded_at_k(eng: DPEngine, frames: dict[str, pd.DataFrame]) -> None:
    plan = eng.plan("SELECT count(*) FROM visits a JOIN visits b ON a.pid = b.pid", HIGH)
    assert [t.name for t in plan.model.tables] == ["visits"]  # materialised once
    per_unit = frames["visits"].groupby("pid").size()
    assert exact(eng, plan)[()]["count:None"] == int(np.minimum(per_unit**2, K_VISITS).sum())


def test_sensitivity_comes_from_k_only(eng: DPEngine) -> None:
    cases = {
        "SELECT count(*), sum(age) FROM residents": 1,
        "SELECT count(*), sum(age) FROM residents r JOIN towns t ON r.town = t.town": 1,
        "SELECT count(*), sum(r.age) FROM residents r JOIN visits v ON r.pid = v.pid": K_VISITS,
        "SELECT count(*), sum(r.age) FROM towns t JOIN residents r ON t.town = r.town": 1,
        "SELECT count(*), sum(minutes) FROM visits v JOIN towns t ON v.town = t.town": K_VISITS,
    }
    for sql, k in cases.items():
        plan = eng.plan(sql, 1.0)
        count, total = plan.measurements
        assert plan.model.contribution == k
        assert count.sensitivity == k
        assert total.fixed is not None and total.sensitivity == k * total.fixed.max_abs


def test_single_table_path_stays_a_plain_filtered_aggregate(eng: DPEngine) -> None:
    plan = eng.plan("SELECT town, count(*), avg(age) FROM residents WHERE age > 30 GROUP BY town", 1.0)
    sql = plan.main_sql
    assert '"__rank" <= 1' in sql
    assert "QUALIFY" not in sql and "row_number" not in sql and "JOIN" not in sql


# -- stability: removing one unit changes only that unit's rows ------------------------------------


@pytest.mark.parametrize("victim", [7, 0, 3])
def test_removing_one_person_changes_the_bounded_relation_by_at_most_k_rows(
    tmp_path: Path, frames: dict[str, pd.DataFrame], victim: int
) -> None:
    sql = (
        "SELECT t.region, count(*) FROM residents r JOIN visits v ON r.pid = v.pid "
        "JOIN towns t ON v.town = t.town GROUP BY t.region"
    )
    results = []
    for name, keep in (("with", lambda df: df), ("without", lambda df: df[df.pid != victim])):
        d = tmp_path / name
        d.mkdir()
        for tname, df in frames.items():
            (keep(df) if "pid" in df else df).to_parquet(d / f"{tname}.parquet")
        eng = engine_for(*specs(d))
        plan = eng.plan(sql, 1.0)
        results.append({k: v["count:None"] for k, v in exact(eng, plan).items()})
    with_, without = results
    l1 = sum(abs(with_.get(k, 0) - without.get(k, 0)) for k in set(with_) | set(without))
    assert l1 <= K_VISITS  # the sensitivity the plan charged for
