"""The chart component inside the lab (real Chromium): the dataset page's quality profile, a job's
metering, the operator's applications by stage and the query console's bars with whiskers, each
drawn on a canvas with a PNG button.

Screenshots: ``$COUNTYLAB_TEST_ARTIFACTS/lab-charts-*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select, update

from countylab.bootstrap import setup_demo
from countylab.i18n import catalog
from countylab.storage.jobs_models import JobAttempt
from countylab.storage.models import Dataset, Project, User
from tests.browser import Session, live_server
from tests.privacy_gateway.conftest import ELDERLY_SQL
from tests.support import build_lab, finished_job

ZH = catalog("zh-CN")
pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: whether the canvas inside the element ``id`` has more than ``least`` non-blank pixels (a function
#: with an argument, not an expression: polling an expression is an eval, which the lab's CSP refuses)
INKED = """([id, least]) => {
  const c = document.querySelector('#' + id + ' canvas');
  if (!c) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && Math.max(d[i], d[i + 1], d[i + 2]) < 235) n++;
  }
  return n > least;
}"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lab = build_lab(tmp_path_factory.mktemp("labcharts"), county_name="青禾县")
    report = setup_demo(lab, size="tiny")
    with lab.tx() as s:
        residents = s.execute(select(Dataset.id).where(Dataset.name == "residents")).scalar_one()
        project = s.execute(select(Project.id).order_by(Project.id)).scalars().first()
        developer = s.execute(select(User.id).where(User.username == "developer")).scalar_one()
        job = finished_job(
            s,
            lab,
            project_id=project,
            submitted_by=developer,
            datasets=["residents"],
            files={"metrics.csv": b"auc\n0.8\n"},
        )
        actions = [
            {
                "name": "prepare",
                "state": "succeeded",
                "exit_code": 0,
                "cpu_s": 3.5,
                "wall_s": 4.0,
                "max_rss_mb": 180.0,
            },
            {
                "name": "train",
                "state": "succeeded",
                "exit_code": 0,
                "cpu_s": 41.2,
                "wall_s": 30.0,
                "max_rss_mb": 920.0,
            },
        ]
        s.execute(update(JobAttempt).where(JobAttempt.job_id == job).values(actions=actions))
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield {"url": url, "residents": residents, "job": job}
    finally:
        lab.close()


def png_is_a_chart(path: Any) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 600
        pixels = np.asarray(image.convert("L"))
    assert (pixels < 200).mean() > 0.003 and (pixels > 250).mean() > 0.3


def test_dataset_profile_and_job_metering_are_drawn(browser, world, artifacts, tmp_path) -> None:
    s = Session(
        browser, world["url"], artifacts, viewport={"width": 1366, "height": 1000}, accept_downloads=True
    )
    s.login("steward")
    s.go(f"/datasets/{world['residents']}")
    for chart in ("profile-nulls", "profile-distinct"):
        s.page.wait_for_function(INKED, arg=[chart, 2000])
    assert s.page.locator("#schema h3").inner_text() == ZH["chart.profile.title"]
    s.page.locator("#profile-charts").scroll_into_view_if_needed()
    s.shot("lab-charts-01-dataset-profile")
    with s.page.expect_download() as info:
        s.page.locator("#profile-nulls .chart-export").click()
    assert info.value.suggested_filename == f"{ZH['chart.profile.null_share']}.png"
    info.value.save_as(tmp_path / "nulls.png")
    png_is_a_chart(tmp_path / "nulls.png")

    s.close()
    # metering is for oversight roles outside the project (countylab.web.api.jobs.sees_details)
    s = Session(browser, world["url"], artifacts, viewport={"width": 1366, "height": 1000})
    s.login("checker")
    s.go(f"/jobs/{world['job']}")
    assert s.page.locator("#job-metering").count() == 1
    for chart in ("metering-cpu", "metering-memory"):
        s.page.wait_for_function(INKED, arg=[chart, 2000])
    assert s.page.locator("#job-metering h2").inner_text() == ZH["chart.metering.title"]
    s.page.locator("#job-metering").scroll_into_view_if_needed()
    s.shot("lab-charts-02-job-metering")
    s.close()


def test_the_query_console_keeps_its_whiskers_and_gains_a_png_button(
    browser, world, artifacts, tmp_path
) -> None:
    s = Session(
        browser, world["url"], artifacts, viewport={"width": 1366, "height": 1000}, accept_downloads=True
    )
    s.login("developer")
    s.go("/query")
    s.page.fill("#query-form textarea[name=sql]", ELDERLY_SQL)
    s.page.select_option("#epsilon", "0.5")
    s.page.click("#run-query")
    s.page.wait_for_selector("#query-result .result-table")
    s.page.wait_for_function(INKED, arg=["answer-chart", 2000])
    button = s.page.locator(".answer-chart .chart-export")
    assert button.inner_text() == ZH["chart.export_png"]
    with s.page.expect_download() as info:
        button.click()
    assert info.value.suggested_filename.startswith(ZH["answers.chart"])
    info.value.save_as(tmp_path / "answer.png")
    png_is_a_chart(tmp_path / "answer.png")
    s.page.locator(".answer-chart").scroll_into_view_if_needed()
    s.shot("lab-charts-03-query-console")
    s.close()


def test_the_operators_view_charts_applications_by_stage(browser, world, artifacts) -> None:
    s = Session(browser, world["url"], artifacts, viewport={"width": 1366, "height": 1000})
    s.login("operator")
    s.go("/ops")
    s.page.wait_for_function(INKED, arg=["ops-stage-chart", 2000])
    assert s.page.locator("#ops-stage-chart .chart-export").count() == 1
    s.shot("lab-charts-04-ops-by-stage")
    s.close()
