"""Dashboards on SQLite and PostgreSQL: compose from a cached metric, submit, approve (four eyes),
public JSON from the cache, an edit back to draft, a big screen; the tables of migration 0018."""

from __future__ import annotations

from fastapi.testclient import TestClient

from countylab.identity import service as ids
from countylab.lab import Lab
from countylab.showcase import bigscreen, dashboards, metrics, publication
from countylab.showcase.widgets import WidgetSpec
from countylab.web.app import create_app


def test_dashboard_lifecycle(any_lab: Lab, make_user) -> None:  # type: ignore[no-untyped-def]
    lab = any_lab
    composer_id = make_user(lab, "op", ["operator"], org="平台", kind="platform")
    officer_id = make_user(lab, "sec", ["steward"], org="平台", kind="platform")
    with lab.read() as s:
        composer = ids.principal_for(s, ids.get_user(s, composer_id), "session")
        officer = ids.principal_for(s, ids.get_user(s, officer_id), "session")
    with lab.tx() as s:
        project = metrics.ensure_project(s, officer)
        assert project.slug == "showcase" and project.org is not None and project.org.kind == "platform"
        m = metrics.ShowcaseMetric(
            name="m1",
            title="人数",
            sql="SELECT 1",
            epsilon=0.5,
            schedule="manual",
            stale=False,
            stale_reason="",
            stale_reason_en="",
            epsilon_spent=0.0,
            result={
                "columns": ["town", "n"],
                "rows": [["a", 10.0], ["b", 4.0]],
                "intervals": {"n": [[7.0, 13.0], [1.0, 7.0]]},
            },
        )
        s.add(m)
        s.flush()
        d = dashboards.create(s, composer, slug="db-board", title="看板")
        dashboards.add_widget(
            s, composer, lab.ingestion, d.id, WidgetSpec("bar", "人数", "dp", {"metric_id": m.id})
        )
        board = d.id
    with lab.tx() as s:
        a = publication.submit(s, composer, board)
        assert [(n["name"], n["value"]) for n in a.numbers] == [("a · 人数", 10.0), ("b · 人数", 4.0)]
        version = a.version
    with lab.tx() as s:
        publication.decide(s, officer, board, approve=True, version=version)
    client = TestClient(create_app(lab))
    data = client.get("/api/public/dashboards/db-board").json()
    assert data["widgets"][0]["chart"]["series"][0]["low"] == [7.0, 1.0]
    with lab.tx() as s:
        b = bigscreen.create(s, composer, title="大屏", dashboard_ids=[board], seconds=10)
        assert bigscreen.screen_data(s, b.id)["pages"][0]["title"] == "看板"
        dashboards.update_meta(s, composer, board, title="看板2", description="")
    assert client.get("/api/public/dashboards/db-board").status_code == 404
    with lab.read() as s:
        assert [x.state for x in dashboards.list_all(s)] == ["draft"]
        assert publication.public_list(s) == []
