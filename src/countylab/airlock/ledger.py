"""The release ledger: every released table, across projects, and differencing risks.

Two tables that are each safe can together reveal a small group.  A count of 120 people per
village released by one project and 117 per village "excluding households on 低保" released
by another give away 3 households on 低保 in that village.  So every released frequency table
is recorded here with its dataset, grouping and filter, and a new table is compared with all
earlier releases from the same dataset, whichever project made them.

:func:`differencing_risks` aligns two tables on their common grouping (a finer table is summed
up to the coarser one's grouping first) and flags cells whose difference is positive and
below the threshold.  Each :class:`Risk` carries both tables side by side for the checker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Cells = Mapping[tuple[str, ...], float]


@dataclass(frozen=True)
class ReleasedTable:
    """A released frequency table: cell key (values of ``grouping``, in order) → unit count."""

    release_id: str
    project_id: str
    dataset_id: str
    grouping: tuple[str, ...]
    filter_description: str
    cells: Cells
    dataset_version: str | None = None

    def rolled_up(self, grouping: tuple[str, ...]) -> dict[tuple[str, ...], float]:
        """Counts summed up to a coarser ``grouping`` (a subset of this table's)."""
        idx = [self.grouping.index(g) for g in grouping]
        out: dict[tuple[str, ...], float] = defaultdict(float)
        for key, n in self.cells.items():
            out[tuple(key[i] for i in idx)] += n
        return dict(out)


@dataclass(frozen=True)
class RiskCell:
    key: tuple[str, ...]
    new_count: float
    earlier_count: float

    @property
    def difference(self) -> float:
        return abs(self.new_count - self.earlier_count)


@dataclass(frozen=True)
class Risk:
    """A differencing risk between ``new`` and ``earlier`` on ``grouping``: the cells listed
    differ by a small positive number of units.  ``side_by_side``: every common cell as
    (key, new count, earlier count), for the checker to read both tables together."""

    dataset_id: str
    grouping: tuple[str, ...]
    new: ReleasedTable
    earlier: ReleasedTable
    cells: tuple[RiskCell, ...]
    side_by_side: tuple[tuple[tuple[str, ...], float, float], ...]

    @property
    def message_zh(self) -> str:
        return (
            f"与项目 {self.earlier.project_id} 已出域的表（{self.earlier.filter_description or '无筛选'}）"
            f"相减，有 {len(self.cells)} 个单元格只差不足阈值的少数个体"
        )

    @property
    def message_en(self) -> str:
        return (
            f"differencing with the table project {self.earlier.project_id} released "
            f"({self.earlier.filter_description or 'no filter'}) leaves {len(self.cells)} cells "
            "with a small positive number of units"
        )


def differencing_risks(
    new_table: ReleasedTable, earlier_tables: Iterable[ReleasedTable], *, threshold: int = 10
) -> list[Risk]:
    """Risks of ``new_table`` against each earlier table from the same dataset (any project).

    Tables are compared when one grouping contains the other; the finer one is rolled up.
    A cell is risky when 0 < |difference| < ``threshold``: the units in the difference form a
    group smaller than the threshold whose membership (and count) the two releases reveal.
    """
    risks: list[Risk] = []
    for earlier in earlier_tables:
        if earlier.dataset_id != new_table.dataset_id or earlier.release_id == new_table.release_id:
            continue
        if set(earlier.grouping) <= set(new_table.grouping):
            grouping = earlier.grouping
        elif set(new_table.grouping) <= set(earlier.grouping):
            grouping = new_table.grouping
        else:
            continue
        a, b = new_table.rolled_up(grouping), earlier.rolled_up(grouping)
        common = [k for k in a if k in b]
        side = tuple((k, a[k], b[k]) for k in sorted(common))
        small = tuple(RiskCell(k, a[k], b[k]) for k in sorted(common) if 0 < abs(a[k] - b[k]) < threshold)
        if small:
            risks.append(Risk(new_table.dataset_id, grouping, new_table, earlier, small, side))
    return risks


@dataclass
class Ledger:
    """In-memory ledger (the storage layer persists the same records)."""

    tables: list[ReleasedTable] = field(default_factory=list)

    def record(self, table: ReleasedTable) -> None:
        self.tables.append(table)

    def for_dataset(self, dataset_id: str) -> list[ReleasedTable]:
        return [t for t in self.tables if t.dataset_id == dataset_id]

    def risks(self, new_table: ReleasedTable, *, threshold: int = 10) -> list[Risk]:
        return differencing_risks(new_table, self.for_dataset(new_table.dataset_id), threshold=threshold)
