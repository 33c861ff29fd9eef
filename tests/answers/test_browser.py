"""The developer asks a question in the console (real Chromium): town names in the table, a chart
of bars with interval whiskers drawn on a canvas, and both downloads (CSV with BOM, XLSX).

Screenshots: ``$COUNTYLAB_TEST_ARTIFACTS/answers-*.png``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import openpyxl
import pytest

from countylab.bootstrap import setup_demo
from countylab.i18n import catalog
from tests.browser import Session, live_server
from tests.privacy_gateway.conftest import ELDERLY_SQL
from tests.support import build_lab

ZH = catalog("zh-CN")
EN = catalog("en")
pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: how many non-blank pixels the chart's canvas must have (bars, whiskers, axes and labels)
INKED = """() => {
  const c = document.querySelector('#answer-chart canvas');
  if (!c) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
}"""


#: records the progress message app.js shows while the page's script runs the query
SEE_PROGRESS = """() => {
  window.__progress = null;
  new MutationObserver(() => {
    const t = document.querySelector('.progress-note .progress-text');
    if (t) window.__progress = t.textContent;
  }).observe(document.body, { childList: true, subtree: true });
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lab = build_lab(tmp_path_factory.mktemp("answers"), county_name="青禾县")
    report = setup_demo(lab, size="tiny")
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield url
    finally:
        lab.close()


def test_developer_sees_names_a_chart_and_downloads_the_answer(browser, server, artifacts, tmp_path):
    s = Session(browser, server, artifacts, viewport={"width": 1366, "height": 1000}, accept_downloads=True)
    s.login("developer")
    s.go("/query")
    s.page.fill("#query-form textarea[name=sql]", ELDERLY_SQL)
    s.page.select_option("#epsilon", "0.5")
    s.page.evaluate(SEE_PROGRESS)
    s.page.click("#run-query")
    s.page.wait_for_selector("#query-result .result-table")
    assert s.page.evaluate("window.__progress") == ZH["answers.progress"]  # shown while it ran
    heads = s.page.locator("#query-result .result-table th").all_inner_texts()
    assert heads == ["乡镇", ZH["answers.people"]]
    first = s.page.locator("#query-result .result-table tbody tr").first.inner_text()
    assert "330729001" in first and "(" in first and ZH["query.interval"] in first
    town = first.split(" (")[0].strip()
    assert town and not town.isdigit()  # a name, not a code
    # the chart: an ECharts canvas with ink on it, titled in the page language
    s.page.wait_for_function(f"({INKED})() > 2000")
    assert s.page.locator(".answer-chart h3").inner_text() == ZH["answers.chart"]
    s.page.locator(".answer-chart").scroll_into_view_if_needed()
    s.shot("answers-01-names-and-chart")
    # for the docs: the answer alone, without the sticky top bar across it
    s.page.evaluate("document.querySelector('.topbar').style.visibility = 'hidden'")
    s.page.locator("#query-result").screenshot(path=str(artifacts / "answers-result-zh.png"))
    s.page.evaluate("document.querySelector('.topbar').style.visibility = ''")

    with s.page.expect_download() as csv_dl:
        s.page.click("#download-csv")
    csv_path = tmp_path / "a.csv"
    csv_dl.value.save_as(csv_path)
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and town in raw.decode("utf-8-sig")
    assert csv_dl.value.suggested_filename.endswith(".csv")
    with s.page.expect_download() as xlsx_dl:
        s.page.click("#download-xlsx")
    xlsx_path = tmp_path / "a.xlsx"
    xlsx_dl.value.save_as(xlsx_path)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_path.read_bytes()))
    cells = [str(c.value) for row in wb.active.iter_rows() for c in row if c.value is not None]
    assert town in cells and any("ε = 0.5" in c for c in cells)

    # two measures: a picker chooses what the chart shows; headers are words
    s.page.fill(
        "#query-form textarea[name=sql]",
        "SELECT town_code, COUNT(*), AVG(income) FROM residents GROUP BY town_code",
    )
    s.page.click("#run-query")
    s.page.wait_for_selector("#chart-measure")
    heads = s.page.locator("#query-result .result-table th").all_inner_texts()
    assert heads[1] == ZH["answers.people"] and heads[2].endswith("平均")
    s.page.select_option("#chart-measure", index=1)
    s.page.wait_for_function(f"({INKED})() > 2000")
    s.shot("answers-02-two-measures")

    # two group columns: grouped bars, one series (and legend entry) per gender
    s.page.fill(
        "#query-form textarea[name=sql]",
        "SELECT town_code, gender, COUNT(*) FROM residents GROUP BY town_code, gender",
    )
    s.page.once("dialog", lambda d: d.accept())  # gender is no public key set: it spends δ, asked first
    s.page.click("#run-query")
    s.page.wait_for_selector("#query-result .result-table th[title=gender]")
    s.page.wait_for_function(f"({INKED})() > 2000")
    series = s.page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('answer-chart'))"
        ".getOption().series.filter((x) => x.type === 'bar').map((x) => x.name)"
    )
    assert sorted(series) == ["女", "男"]
    s.page.locator(".answer-chart").scroll_into_view_if_needed()
    s.shot("answers-04-grouped-bars")
    # the history offers the answer's downloads too
    assert s.page.locator("#history-table a[href$='answer.xlsx']").count() >= 3
    s.close("status of 409")  # the δ question


def test_the_english_console_and_a_page_without_echarts_keeps_its_table(browser, server, artifacts):
    s = Session(browser, server, artifacts, viewport={"width": 1366, "height": 900})
    s.context.add_cookies([{"name": "lang", "value": "en", "url": server}])
    s.context.route("**/static/vendor/echarts.min.js", lambda route: route.abort())
    s.login("developer")
    s.go("/query")
    s.page.fill("#query-form textarea[name=sql]", ELDERLY_SQL)
    s.page.click("#run-query")
    s.page.wait_for_selector("#query-result .result-table")
    assert s.page.locator("#query-result .result-table th").all_inner_texts() == [
        "town",
        EN["answers.people"],
    ]
    assert s.page.locator("#answer-chart canvas").count() == 0  # no chart, the table and downloads stay
    assert s.page.locator(".answer-chart").is_hidden()
    assert s.page.locator("#download-xlsx").is_visible()
    s.shot("answers-03-english-no-echarts")
    s.close("echarts.min.js", "ERR_FAILED")
