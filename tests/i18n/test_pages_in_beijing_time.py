"""Pages show stored UTC times in Beijing time, never as ISO text with ``+00:00``.

A dataset's version time, the data freshness and the grade history are stored in UTC; the page
must show them 8 hours later (a clerk at 09:00 in Qinghe uploads at 09:00, not at 01:00), and
nothing on the page may look like ``2026-12-05T01:00:00+00:00``.
"""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path

from fastapi.testclient import TestClient

from countylab.catalog import service as catalog
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.labels import bjtime
from countylab.storage.catalog_models import DatasetVersion
from countylab.storage.models import Dataset
from countylab.web.app import create_app
from tests.support import browser_login, build_lab, create_user

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?\+00:00")


def test_dataset_page_shows_beijing_time(tmp_path: Path) -> None:
    lab = build_lab(tmp_path)
    try:
        create_user(lab, "steward1", ["steward"])
        with lab.tx() as s:
            org = ids.create_org(s, SYSTEM, name="县民政局", kind="department")
            ds_id = catalog.create_dataset(
                s,
                SYSTEM,
                name="people",
                title="人口",
                org_id=org.id,
                privacy_unit="person",
                privacy_unit_column="resident_id",
            ).id
        src = tmp_path / "v1.csv"
        src.write_text("resident_id,income\n1,10\n2,20\n", encoding="utf-8")
        lab.ingestion.ingest_file(SYSTEM, ds_id, src)
        with lab.read() as s:
            created = s.query(DatasetVersion).filter_by(dataset_id=ds_id).one().created_at
            updated = s.get(Dataset, ds_id).data_updated_at  # type: ignore[union-attr]
        client = TestClient(create_app(lab), raise_server_exceptions=False)
        browser_login(client, "steward1")
        html = client.get(f"/datasets/{ds_id}").text
        aware = created if created.tzinfo else created.replace(tzinfo=UTC)
        assert bjtime(aware, "second") in html
        assert (aware.astimezone(UTC).hour + 8) % 24 == int(bjtime(aware, "%H"))
        assert updated is not None and bjtime(updated, "second") in html
        assert not ISO_UTC.search(html), ISO_UTC.search(html)
        assert "整数" in html  # column type by name, not int64
    finally:
        lab.close()
