"""Cost estimate of a query from metadata alone, before any charge (issue 9, item 5).

The estimate is the number of rows of the relation the query would build: each table's row
count (of the version asked for), and for each equi-join ``a.x = b.y`` the textbook
cardinality ``rows(a) × rows(b) / max(distinct(x), distinct(y))`` with distinct counts from the
catalog's column profile; a join without an equality is a cross product.  It reads no data, so
refusing an expensive query reveals nothing about rows, and it happens before the budget is
charged, so a refused query costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from countylab.errors import TooLarge


@dataclass(frozen=True)
class TableSize:
    rows: int
    distinct: Mapping[str, int]  # column -> distinct values (catalog profile)


def estimate_rows(from_sql: str, sizes: Mapping[str, TableSize]) -> float:
    """Estimated rows of ``FROM …`` over tables of these sizes (unknown tables: the largest)."""
    biggest = max((s.rows for s in sizes.values()), default=0)
    try:
        tree = sqlglot.parse_one(f"SELECT 1 FROM {from_sql}", read="duckdb")
    except SqlglotError:
        total = 1.0
        for s in sizes.values():
            total *= max(1, s.rows)
        return total
    alias: dict[str, str] = {}
    order: list[str] = []
    for t in tree.find_all(exp.Table):
        alias[t.alias_or_name.lower()] = t.name.lower()
        order.append(t.alias_or_name.lower())

    def size(a: str) -> TableSize:
        return sizes.get(alias.get(a, a), TableSize(biggest, {}))

    def distinct(col: object) -> int:
        if not isinstance(col, exp.Column):
            return 1
        s = size(col.table.lower())
        return max(1, int(s.distinct.get(col.name, s.rows) or 1))

    if not order:
        return 0.0
    est = float(max(1, size(order[0]).rows))
    for join in tree.find_all(exp.Join):
        right = join.this
        name = right.alias_or_name.lower() if isinstance(right, exp.Table) else ""
        rows = float(max(1, size(name).rows)) if name else float(max(1, biggest))
        eqs = [
            e
            for e in (join.args.get("on") or exp.Boolean(this=True)).find_all(exp.EQ)
            if isinstance(e.left, exp.Column) and isinstance(e.right, exp.Column)
        ]
        est = est * rows / max(max(distinct(e.left), distinct(e.right)) for e in eqs) if eqs else est * rows
    return est


def check_cost(from_sql: str, sizes: Mapping[str, TableSize], max_rows: int) -> float:
    """Refuse (413) before any charge when the estimate exceeds ``max_rows``."""
    est = estimate_rows(from_sql, sizes)
    if est > max_rows:
        raise TooLarge(
            f"查询过于昂贵：预计连接后约 {est:,.0f} 行，上限 {max_rows:,} 行。请缩小连接范围。",
            f"Query too expensive: about {est:,.0f} joined rows estimated, the limit is {max_rows:,}. "
            "Narrow the join.",
            reason="too_expensive",
            estimated_rows=int(min(est, 2**62)),
            max_rows=max_rows,
        )
    return est
