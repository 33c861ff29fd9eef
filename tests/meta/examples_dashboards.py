"""Meta-test examples for dashboards, showcase metrics, publication and big screens.

setup() gives the World a showcase metric over d1 (refreshed once, so widgets can show it);
fill() makes a fresh dashboard for each call (with one DP widget; submitted by the system where
the route decides on it, so no actor approves their own request) and a big screen."""

from __future__ import annotations

from typing import Any

from countylab.identity.access import SYSTEM
from countylab.showcase import bigscreen, dashboards, metrics, publication
from countylab.showcase.widgets import WidgetSpec
from tests.meta.example import Example

WIDGET = {"kind": "bar", "title": "人数", "source_kind": "dp", "source": {"metric_id": 0}}
FORM_WIDGET = {"kind": "card", "title": "人数", "source_kind": "dp", "metric_id": "0"}

EXAMPLES: dict[tuple[str, str], Any] = {
    ("POST", "/api/dashboards"): Example("steward", {"slug": "new-board", "title": "新看板"}),
    ("PUT", "/api/dashboards/{dashboard_id}"): Example("steward", {"title": "改名", "description": "说明"}),
    ("POST", "/api/dashboards/{dashboard_id}/widgets"): Example("steward", WIDGET),
    ("PUT", "/api/dashboards/{dashboard_id}/widgets/{widget_id}"): Example("steward", WIDGET),
    ("DELETE", "/api/dashboards/{dashboard_id}/widgets/{widget_id}"): Example("steward"),
    ("POST", "/api/dashboards/{dashboard_id}/submit"): Example("steward"),
    ("POST", "/api/dashboards/{dashboard_id}/decision"): Example("steward", {"approve": True, "version": 2}),
    ("POST", "/api/showcase/metrics"): Example(
        "steward", {"name": "m_new", "title": "新指标", "sql": "SELECT COUNT(*) FROM d1", "epsilon": 0.1}
    ),
    ("PUT", "/api/showcase/metrics/{metric_id}"): Example(
        "steward", {"title": "人数", "epsilon": 0.2, "schedule": "weekly"}
    ),
    ("POST", "/api/showcase/metrics/{metric_id}/refresh"): Example("steward"),
    ("POST", "/api/bigscreens"): Example("steward", {"title": "大屏", "dashboard_ids": [0], "seconds": 15}),
    ("PUT", "/api/bigscreens/{screen_id}"): Example("steward", {"title": "大屏", "dashboard_ids": [0]}),
    ("POST", "/dashboards"): Example("steward", {"slug": "form-board", "title": "新看板"}),
    ("POST", "/dashboards/{dashboard_id}/edit"): Example("steward", {"title": "改名"}),
    ("POST", "/dashboards/{dashboard_id}/widgets"): Example("steward", FORM_WIDGET),
    ("POST", "/dashboards/{dashboard_id}/widgets/{widget_id}"): Example("steward", FORM_WIDGET),
    ("POST", "/dashboards/{dashboard_id}/widgets/{widget_id}/delete"): Example("steward", {}),
    ("POST", "/dashboards/{dashboard_id}/widgets/{widget_id}/move"): Example("steward", {"position": "0"}),
    ("POST", "/dashboards/{dashboard_id}/submit"): Example("steward", {}),
    ("POST", "/dashboards/{dashboard_id}/decision"): Example(
        "steward", {"choice": "approve", "version": "2"}
    ),
    ("POST", "/dashboards/metrics"): Example(
        "steward", {"name": "m_form", "title": "新指标", "sql": "SELECT COUNT(*) FROM d1", "epsilon": "0.1"}
    ),
    ("POST", "/dashboards/metrics/{metric_id}"): Example(
        "steward", {"title": "人数", "epsilon": "0.2", "schedule": "manual"}
    ),
    ("POST", "/dashboards/metrics/{metric_id}/refresh"): Example("steward", {}),
    ("POST", "/bigscreen"): Example("steward", {"title": "大屏", "dashboard_ids": "0", "seconds": "15"}),
    ("POST", "/bigscreen/{screen_id}"): Example("steward", {"title": "大屏", "dashboard_ids": "0"}),
}


def setup(world: Any) -> None:
    with world.lab.tx() as s:
        m = metrics.create(
            s,
            SYSTEM,
            name="d1_count",
            title="人数",
            sql="SELECT COUNT(*) FROM d1",
            epsilon=0.1,
            schedule="manual",
            gateway=world.lab.gateway,
        )
        # the cached answer a refresh leaves (the gateway itself is exercised by the refresh routes)
        m.result = {"columns": ["n"], "rows": [[2.0]], "intervals": {"n": [[0.5, 3.5]]}}
        world.values["metric_id"] = str(m.id)
    WIDGET["source"] = {"metric_id": m.id}
    FORM_WIDGET["metric_id"] = str(m.id)
    board = _board(world, "meta-screen")
    for key in (("POST", "/api/bigscreens"), ("PUT", "/api/bigscreens/{screen_id}")):
        EXAMPLES[key].body["dashboard_ids"] = [board]
    for key in (("POST", "/bigscreen"), ("POST", "/bigscreen/{screen_id}")):
        EXAMPLES[key].body["dashboard_ids"] = str(board)
    with world.lab.tx() as s:
        world.values["screen_id"] = str(bigscreen.create(s, SYSTEM, title="大屏", dashboard_ids=[board]).id)
    # a published dashboard for the GET pages (in the lab and public)
    with world.lab.tx() as s:
        publication.submit(s, SYSTEM, board)
    with world.lab.tx() as s:
        publication.decide(s, SYSTEM, board, approve=True, version=2)
    world.values["dashboard_id"] = str(board)
    world.values["slug"] = "meta-screen"


_n = [0]


def _board(world: Any, slug: str | None = None) -> int:
    _n[0] += 1
    with world.lab.tx() as s:
        d = dashboards.create(s, SYSTEM, slug=slug or f"meta-{_n[0]}", title="看板")
        metric_id = int(world.values["metric_id"])
        dashboards.add_widget(
            s, SYSTEM, world.lab.ingestion, d.id, WidgetSpec("card", "人数", "dp", {"metric_id": metric_id})
        )
        return int(d.id)


def fill(world: Any, path: str, actor: str) -> dict[str, str]:
    if "{dashboard_id}" not in path:
        return {}
    board = _board(world)
    if path.endswith("/decision"):
        with world.lab.tx() as s:
            publication.submit(s, SYSTEM, board)
    with world.lab.read() as s:
        widget = dashboards.widgets(s, board)[0].id
    return {"dashboard_id": str(board), "widget_id": str(widget)}
