"""Publishing a dashboard: the approval record lists every number; a number that is neither open,
released nor DP is refused by name; an edit returns to draft; a withdrawn release takes the
dashboard off the public pages; the public page shows exactly the approved numbers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from countylab.errors import Conflict, PermissionDenied, ValidationFailed
from countylab.lab import Lab
from countylab.showcase import dashboards, publication
from countylab.showcase.widgets import WidgetSpec
from countylab.storage.airlock_models import ReleaseRequest
from countylab.storage.models import Dataset
from countylab.web.app import create_app
from tests.showcase.dashboard_fixtures import *  # noqa: F403 - the fixtures dash_template and dash_lab
from tests.showcase.dashboard_fixtures import dataset_id, open_bar, principal, query_runs
from tests.showcase.test_dashboard_compose import dp_metric, released_file


def _compose(lab: Lab) -> tuple[int, int, int]:
    """A board with an open bar, a released table and a DP map, composed by the operator."""
    operator = principal(lab, "operator")
    fid = released_file(lab)
    mid = dp_metric(lab)
    with lab.tx() as s:
        d = dashboards.create(s, operator, slug="pub-board", title="养老概览")
        for spec in (
            open_bar(lab),
            {"kind": "table", "title": "模型指标", "source_kind": "release", "source": {"file_id": fid}},
            {
                "kind": "map",
                "title": "独居高龄老人",
                "unit": "人",
                "source_kind": "dp",
                "source": {"metric_id": mid},
            },
        ):
            dashboards.add_widget(
                s,
                operator,
                lab.ingestion,
                d.id,
                WidgetSpec(
                    spec["kind"], spec["title"], spec["source_kind"], spec["source"], spec.get("unit", "")
                ),
            )
        return d.id, fid, mid


def _publish(lab: Lab, board: int) -> publication.DashboardApproval:
    with lab.tx() as s:
        a = publication.submit(s, principal(lab, "operator"), board)
        version = a.version
    with lab.tx() as s:
        return publication.decide(s, principal(lab, "steward"), board, approve=True, version=version)


def test_approval_record_equals_what_the_public_page_shows(dash_lab: Lab) -> None:
    board, _, _ = _compose(dash_lab)
    _publish(dash_lab, board)
    with dash_lab.read() as s:
        a = publication.approval(s, board)
        assert a is not None and a.state == "approved"
        approved = [(n["widget"], n["name"], n["value"], n["source_kind"]) for n in a.numbers]
    kinds = {k for *_, k in approved}
    assert kinds == {"open", "release", "dp"}
    dp = [name for _, name, _, kind in approved if kind == "dp"]
    assert dp and all(re.fullmatch(r"\S+(街道|镇|乡) · 独居高龄老人", name) for name in dp), dp
    runs = query_runs(dash_lab)
    client = TestClient(create_app(dash_lab))
    page = client.get("/public/dashboards/pub-board")
    assert page.status_code == 200 and "养老概览" in page.text
    data = client.get("/api/public/dashboards/pub-board").json()
    shown = []
    for w in data["widgets"]:
        chart = publication.chart_of(w["chart"])
        shown += [(w["title"], name, value, kind.value) for name, value, kind in chart.numbers()]
    assert shown == approved
    assert "/public/dashboards/pub-board" in client.get("/public/dashboards").text
    assert query_runs(dash_lab) == runs, "a public page ran a DP query"


def test_a_number_from_a_dataset_no_longer_open_is_refused_by_name(dash_lab: Lab) -> None:
    board, _, _ = _compose(dash_lab)
    with dash_lab.tx() as s:  # the steward regrades the air-quality data after it was composed
        s.execute(
            update(Dataset).where(Dataset.id == dataset_id(dash_lab, "air_quality")).values(grade="general_2")
        )
    with pytest.raises(ValidationFailed) as err, dash_lab.tx() as s:
        publication.submit(s, principal(dash_lab, "operator"), board)
    msg = err.value.message("zh-CN")
    assert "各镇PM2.5均值" in msg and "一般1级" in msg
    assert re.search(r"数字“[^”]+ · ", msg), msg  # names the number: "<town> · <measure>"
    assert err.value.details["number"] in msg
    with dash_lab.read() as s:
        assert dashboards.get(s, board).state == "draft"


def test_a_release_not_released_is_refused_by_name(dash_lab: Lab) -> None:
    board, fid, _ = _compose(dash_lab)
    with dash_lab.tx() as s:
        s.execute(update(ReleaseRequest).values(state="retracted"))
    with pytest.raises(ValidationFailed) as err, dash_lab.tx() as s:
        publication.submit(s, principal(dash_lab, "operator"), board)
    assert "模型指标" in err.value.message("zh-CN") and "retracted" in err.value.message("en")


def test_an_edit_returns_to_draft_and_leaves_the_public_pages(dash_lab: Lab) -> None:
    board, _, _ = _compose(dash_lab)
    _publish(dash_lab, board)
    client = TestClient(create_app(dash_lab))
    assert client.get("/api/public/dashboards/pub-board").status_code == 200
    with dash_lab.tx() as s:
        dashboards.update_meta(
            s, principal(dash_lab, "operator"), board, title="养老概览（新）", description=""
        )
        d = dashboards.get(s, board)
        assert d.state == "draft" and d.version == 5
    assert client.get("/api/public/dashboards/pub-board").status_code == 404
    assert client.get("/public/dashboards/pub-board").status_code == 404
    assert "pub-board" not in client.get("/public/dashboards").text
    _publish(dash_lab, board)
    assert client.get("/api/public/dashboards/pub-board").json()["title"] == "养老概览（新）"


def test_withdrawn_release_takes_the_dashboard_off_until_fixed(dash_lab: Lab) -> None:
    board, _, _ = _compose(dash_lab)
    _publish(dash_lab, board)
    client = TestClient(create_app(dash_lab))
    assert client.get("/public/dashboards/pub-board").status_code == 200
    with dash_lab.tx() as s:
        s.execute(update(ReleaseRequest).values(state="retracted"))
    page = client.get("/public/dashboards/pub-board")
    assert page.status_code == 404 and "撤回" in page.text and "dash-gone" in page.text
    assert client.get("/api/public/dashboards/pub-board").status_code == 404
    assert "pub-board" not in client.get("/public/dashboards").text
    # fixed: the table is removed, the dashboard approved again
    operator = principal(dash_lab, "operator")
    with dash_lab.tx() as s:
        table = next(w for w in dashboards.widgets(s, board) if w.source_kind == "release")
        dashboards.delete_widget(s, operator, board, table.id)
    _publish(dash_lab, board)
    assert client.get("/public/dashboards/pub-board").status_code == 200


def test_approval_needs_four_eyes_and_the_submitted_version(dash_lab: Lab) -> None:
    board, _, _ = _compose(dash_lab)
    steward = principal(dash_lab, "steward")
    with dash_lab.tx() as s:
        a = publication.submit(s, steward, board)
        version = a.version
    with pytest.raises(PermissionDenied), dash_lab.tx() as s:
        publication.decide(s, steward, board, approve=True, version=version)
    with pytest.raises(PermissionDenied), dash_lab.tx() as s:  # operators compose, never approve
        publication.decide(s, principal(dash_lab, "operator"), board, approve=True, version=version)
    with pytest.raises(Conflict) as err, dash_lab.tx() as s:
        publication.decide(s, steward, board, approve=True, version=version - 1)
    assert err.value.details["reason"] == "version"


def test_a_dashboard_waiting_for_approval_is_on_the_officers_todo_list_until_decided(dash_lab: Lab) -> None:
    from countylab.notify.todos import todos

    board, _, _ = _compose(dash_lab)
    steward = principal(dash_lab, "steward")
    with dash_lab.tx() as s:
        version = publication.submit(s, principal(dash_lab, "operator"), board).version
    with dash_lab.read() as s:
        waiting = [t for t in todos(s, steward) if t.kind == "todo.approve_dashboard"]
        operator_items = [t.kind for t in todos(s, principal(dash_lab, "operator"))]
    assert [t.link for t in waiting] == [f"/dashboards/{board}"]
    assert "养老概览" in waiting[0].text("zh-CN") and "todo.approve_dashboard" not in operator_items
    with dash_lab.tx() as s:
        publication.decide(s, steward, board, approve=True, version=version)
    with dash_lab.read() as s:
        assert not [t for t in todos(s, steward) if t.kind == "todo.approve_dashboard"]
