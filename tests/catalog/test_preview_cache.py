"""The dataset preview is cached by content (issue 11): what it shows still follows the grade and
the data at once — a grade raised after a real-rows preview shows dummy rows, new data new rows."""

from __future__ import annotations

from pathlib import Path

from countylab.catalog import preview as previews
from countylab.catalog import service as catalog
from countylab.identity.access import SYSTEM
from tests.support import build_lab


def test_cached_preview_follows_grade_and_data(tmp_path: Path) -> None:
    lab = build_lab(tmp_path)
    try:
        with lab.tx() as s:
            from countylab.identity import service as ids

            org = ids.create_org(s, SYSTEM, name="县民政局", kind="department")
            did = catalog.create_dataset(s, SYSTEM, name="towns", title="乡镇", org_id=org.id).id
        first = tmp_path / "a.csv"
        first.write_text("code,name\n1,青禾镇\n2,城关街道\n")
        lab.ingestion.ingest_file(SYSTEM, did, first)
        with lab.tx() as s:
            catalog.set_grade(s, SYSTEM, did, "general_1", reason="公开的乡镇名录")
        real = previews.preview(lab, SYSTEM, did, 10)
        assert not real.dummy and {r[1] for r in real.rows} == {"青禾镇", "城关街道"}
        assert previews.preview(lab, SYSTEM, did, 10) is real  # served from the cache

        with lab.tx() as s:
            catalog.set_grade(s, SYSTEM, did, "general_3")
        raised = previews.preview(lab, SYSTEM, did, 10)
        assert raised.dummy and not {"青禾镇", "城关街道"} & {str(v) for r in raised.rows for v in r}

        with lab.tx() as s:
            catalog.set_grade(s, SYSTEM, did, "general_1", reason="公开的乡镇名录")
        more = tmp_path / "b.csv"
        more.write_text("code,name\n3,南湾镇\n")
        lab.ingestion.ingest_file(SYSTEM, did, more)
        with lab.tx() as s:
            catalog.set_grade(
                s, SYSTEM, did, "general_1", reason="公开的乡镇名录"
            )  # a new version may propose one
        again = previews.preview(lab, SYSTEM, did, 10)
        assert not again.dummy and "南湾镇" in {r[1] for r in again.rows}
    finally:
        lab.close()
