"""Editing a dashboard widget on the edit page in real Chromium: its title and chart kind change
through the same service call as ``PUT /api/dashboards/{id}/widgets/{wid}`` (validation,
re-render, audit), survive a reload and show on the dashboard; a bad source is refused on the
page with the reason and changes nothing.  Screenshot: test-artifacts/widget-edit.png."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from countylab.lab import Lab
from countylab.showcase import dashboards
from countylab.showcase.widgets import WidgetSpec
from countylab.storage.models import AuditEvent
from tests.browser import Session, live_server
from tests.showcase.dashboard_fixtures import *  # noqa: F403 - the fixtures dash_template and dash_lab
from tests.showcase.dashboard_fixtures import open_bar, principal

pytestmark = [pytest.mark.browser, pytest.mark.needs("browser")]


@pytest.fixture
def server(dash_lab: Lab) -> Iterator[tuple[str, Lab]]:
    with live_server(dash_lab) as url:
        yield url, dash_lab


def _board(lab: Lab) -> tuple[int, int]:
    steward = principal(lab, "steward")
    spec = open_bar(lab)
    with lab.tx() as s:
        d = dashboards.create(s, steward, slug="edit-me", title="待编辑看板")
        dashboards.add_widget(
            s, steward, lab.ingestion, d.id, WidgetSpec("card", "总数", "open", dict(spec["source"]), "")
        )
        w = dashboards.add_widget(
            s,
            steward,
            lab.ingestion,
            d.id,
            WidgetSpec(spec["kind"], spec["title"], "open", dict(spec["source"]), spec["unit"]),
        )
        return d.id, w.id


def _widget(lab: Lab, board: int, wid: int) -> dict[str, Any]:
    with lab.read() as s:
        return next(w for w in dashboards.view(s, board)["items"] if w["id"] == wid)


def _audited(lab: Lab, wid: int) -> int:
    with lab.read() as s:
        events = s.execute(
            select(AuditEvent.details).where(AuditEvent.action == "dashboard.widget.update")
        ).scalars()
        return sum(1 for e in events if json.loads(e or "{}").get("widget_id") == wid)


def test_a_widget_is_edited_on_the_page_and_a_bad_edit_is_refused(
    browser: Any, server: tuple[str, Lab], artifacts: Any
) -> None:
    url, lab = server
    board, wid = _board(lab)
    s = Session(browser, url, artifacts, viewport={"width": 1366, "height": 1000})
    s.login("steward")
    s.go(f"/dashboards/{board}/edit")
    form = s.page.locator(f"form[data-widget-form='{wid}']")
    s.page.locator(f"#widget-{wid} summary").click()
    assert form.locator("input[name=title]").input_value() == "各镇PM2.5均值"  # the current values
    assert form.locator("select[name=kind]").input_value() == "bar"
    assert form.locator("input[name=group_by]").input_value() == "town_code"
    assert form.locator("fieldset[data-source=dp]").is_hidden()  # only the chosen source's fields
    assert form.locator("fieldset[data-source=open]").is_visible()
    form.locator("input[name=title]").fill("各镇PM2.5均值（折线）")
    form.locator("select[name=kind]").select_option("line")
    form.locator("select[name=position]").select_option("0")
    form.locator("button[type=submit]").click()
    s.page.locator(".flash-ok", has_text="图表已保存").wait_for()
    s.page.reload()
    rows = s.page.locator("#widgets tbody tr[data-widget]")
    first = rows.first
    assert first.get_attribute("data-widget") == str(wid)  # moved to the top
    assert "各镇PM2.5均值（折线）" in first.inner_text() and "折线图" in first.inner_text()
    saved = _widget(lab, board, wid)
    assert (saved["kind"], saved["title"], saved["position"]) == ("line", "各镇PM2.5均值（折线）", 0)
    assert saved["chart"]["kind"] == "line"  # re-rendered as PUT does
    assert _audited(lab, wid) == 1

    # a bad edit: a column the open dataset does not have is refused with the reason, nothing changes
    s.page.locator(f"#widget-{wid} summary").click()
    form.locator("input[name=title]").fill("不该保存的名字")
    form.locator("input[name=group_by]").fill("nosuch_col")
    form.locator("button[type=submit]").click()
    error = s.page.locator(".flash-error")
    error.wait_for()
    assert "nosuch_col" in error.inner_text(), error.inner_text()
    assert _widget(lab, board, wid) == saved and _audited(lab, wid) == 1
    s.page.locator(f"#widget-{wid} summary").click()
    s.shot("widget-edit")

    s.go(f"/dashboards/{board}")  # the dashboard draws the edited widget as a line chart
    line = s.page.locator(".dash-line")
    line.locator("canvas").first.wait_for()
    assert "各镇PM2.5均值（折线）" in line.inner_text()
    s.close()
