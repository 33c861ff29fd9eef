"""What a dataset download holds: dummy rows always, real rows only where the preview shows them.

Why a module of its own: the rule for real rows must be the preview's rule exactly (a confirmed
一般1级 grade, ``policy.decide(..., Action.download_rows)``), and the file's headers and name must
be the ones people read on the dataset page (the column's Chinese title, the dataset's title).
The web router only turns the result into bytes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from countylab.catalog import service as catalog
from countylab.catalog.grading import Grade
from countylab.catalog.preview import dummy_table
from countylab.dummy import DUMMY_LABEL_EN, DUMMY_LABEL_ZH
from countylab.errors import NotFound, PermissionDenied
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.policy import Action, decide

if TYPE_CHECKING:
    from countylab.lab import Lab

BEIJING = ZoneInfo("Asia/Shanghai")
KINDS = ("dummy", "rows")


@dataclass(frozen=True)
class Download:
    table: pa.Table
    titles: dict[str, str]  # column name -> Chinese title (only where one is set)
    dataset_name: str
    dataset_title: str
    dummy: bool

    def headers(self, style: str) -> dict[str, str] | None:
        """``title``: the column titles (names where none); ``name``: the column identifiers."""
        return dict(self.titles) if style == "title" else None

    def filename(self, lang: str, ext: str, today: dt.date | None = None) -> str:
        """``常住人口信息-模拟数据-2026-12-05.xlsx``; English ``residents-dummy-data-2026-12-05.xlsx``."""
        day = (today or dt.datetime.now(BEIJING).date()).isoformat()
        if lang.startswith("en"):
            kind = "dummy-data" if self.dummy else "rows"
            return f"{self.dataset_name}-{kind}-{day}.{ext}"
        kind = "模拟数据" if self.dummy else "数据"
        return f"{self.dataset_title or self.dataset_name}-{kind}-{day}.{ext}"

    def notes(self, lang: str) -> list[str]:
        if not self.dummy:
            return []
        return [DUMMY_LABEL_EN if lang.startswith("en") else DUMMY_LABEL_ZH]


def dataset_download(
    lab: Lab, actor: Principal, dataset_id: int, kind: str, rows: int, seed: int = 0
) -> Download:
    """The table to download; ``kind="rows"`` is refused unless the grade lets anyone see rows."""
    with lab.read() as s:
        ds = catalog.get_dataset(s, dataset_id)
        authorize(actor, Permission.dataset_read, target=f"dataset:{ds.id}")
        titles = {c.name: c.title for c in catalog.columns(s, ds.id) if c.title}
        name, title = ds.name, ds.title
        real_allowed = decide(Grade(ds.grade), Action.download_rows).allowed and ds.grade_confirmed
        paths = lab.ingestion.read_paths(ds) if kind == "rows" and real_allowed else []
    if kind == "dummy":
        table, _ = dummy_table(lab, actor, dataset_id, rows, seed=seed)
        return Download(table, titles, name, title, True)
    if not real_allowed:
        raise PermissionDenied(
            "只有经确认为“一般数据1级”的数据集可以下载真实数据行；请下载模拟数据",
            "Only datasets confirmed as open (一般1级) allow downloading real rows; "
            "download dummy data instead",
            reason="grade_forbids_rows",
        )
    if not paths:
        raise NotFound("该数据集还没有数据", "This dataset has no data yet")
    con = duckdb.connect()
    try:
        files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
        table = con.sql(f"SELECT * FROM read_parquet({files}) LIMIT {int(rows)}").to_arrow_table()
    finally:
        con.close()
    return Download(table, titles, name, title, False)
