"""The "done when" scenario in Chromium: the developer asks how many residents over 80 live alone,
by town, in the query console, sees noisy counts with 95% intervals and the budget going down.

uvicorn in a thread over a tiny demo county with the lab's own gateway (worker process).
Screenshots land in ``$COUNTYLAB_TEST_ARTIFACTS`` (privacy-*.png).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from countylab.bootstrap import setup_demo
from countylab.i18n import catalog
from tests.browser import Session, live_server
from tests.privacy_gateway.conftest import ELDERLY_SQL
from tests.support import build_lab

ZH = catalog("zh-CN")
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lab = build_lab(tmp_path_factory.mktemp("console"), county_name="青禾县")
    report = setup_demo(lab, size="tiny", steps=False)
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield url
    finally:
        lab.close()


def _left(s: Session) -> float:
    return float(s.page.locator('#budget-table tr[data-budget^="residents:0"] .b-left').inner_text())


def test_developer_asks_the_elderly_question_in_the_console(browser, server, artifacts):
    s = Session(browser, server, artifacts, viewport={"width": 1366, "height": 900})
    s.login("developer")
    s.page.click(f"#sidebar >> text={ZH['nav.blackbox']}")
    s.page.wait_for_url(server + "/query*")
    assert s.page.locator("h1").inner_text().strip() == ZH["query.title"]
    assert "residents" in " ".join(s.page.locator(".query-table summary").all_inner_texts())
    assert ZH["query.howto"] in s.page.content()
    before = _left(s)
    assert before == 2.0
    period = s.page.locator("#budget-period").inner_text()  # the period and when it renews
    assert ZH["query.period_month"] in period and ZH["query.period_range"] in period
    assert s.page.locator("#year-table").count() == 1  # the dataset's yearly ledger, all projects
    s.shot("privacy-01-console")

    s.page.fill("#query-form textarea[name=sql]", ELDERLY_SQL)
    s.page.select_option("#epsilon", "0.5")
    s.page.click("#run-query")
    s.page.wait_for_selector("#query-result .result-table")
    rows = s.page.locator("#query-result .result-table tbody tr")
    assert rows.count() == 12  # every town of the public key set
    first = rows.first.inner_text()
    assert "330729" in first and ZH["query.interval"] in first
    assert s.page.url.endswith("/query") or "/query?" in s.page.url  # answered in place, no reload
    assert _left(s) == pytest.approx(before - 0.5)
    assert ELDERLY_SQL in s.page.locator("#history-table").inner_text()
    s.shot("privacy-02-answer")

    # the same question again: the cached answer, the budget stays
    s.page.click("#run-query")
    s.page.wait_for_selector(f"#query-result >> text={ZH['query.cached']}")
    assert _left(s) == pytest.approx(before - 0.5)
    # another question spends more
    s.page.fill(
        "#query-form textarea[name=sql]", "SELECT town_code, AVG(income) FROM residents GROUP BY town_code"
    )
    s.page.select_option("#epsilon", "0.25")
    s.page.click("#run-query")
    s.page.wait_for_selector('#query-result .result-table th[title="avg(income)"]')
    assert _left(s) == pytest.approx(before - 0.75)
    # a refused query shows the reason and costs nothing
    s.page.fill("#query-form textarea[name=sql]", "SELECT * FROM residents")
    s.page.click("#run-query")
    s.page.wait_for_selector("#query-error:not([hidden])")
    assert "SELECT *" in s.page.locator("#query-error").inner_text()
    assert _left(s) == pytest.approx(before - 0.75)
    s.shot("privacy-03-budget-down")
    # a query that would spend δ asks first; dismissing it runs nothing, accepting runs it
    s.page.fill("#query-form textarea[name=sql]", "SELECT age, COUNT(*) FROM residents GROUP BY age")
    s.page.select_option("#epsilon", "0.1")
    messages: list[str] = []
    s.page.once("dialog", lambda d: (messages.append(d.message), d.dismiss()))
    s.page.click("#run-query")
    s.page.wait_for_function("() => !document.getElementById('run-query').disabled")
    assert messages and "δ" in messages[0]
    assert _left(s) == pytest.approx(before - 0.75)
    s.page.once("dialog", lambda d: d.accept())
    s.page.click("#run-query")
    s.page.wait_for_selector("#query-result .result-table th[title=age]")
    assert _left(s) == pytest.approx(before - 0.85)
    s.shot("privacy-05-delta-confirmed")
    s.close("status of 422", "status of 409")  # the refusal and the δ question, shown as above


def test_steward_sees_every_projects_queries(browser, server, artifacts):
    s = Session(browser, server, artifacts, viewport={"width": 1366, "height": 900})
    s.login("steward")
    s.go("/query/history")
    table = s.page.locator("#all-queries").inner_text()
    assert "elderly-care-demand" in table and "developer" in table
    s.shot("privacy-04-steward-history")
    s.go("/query")
    assert s.page.locator("#budget-form").count() == 1
    assert s.page.locator("#query-form").count() == 0  # oversight reads, never queries
    s.close()
