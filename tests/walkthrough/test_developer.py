"""docs/tutorial/developer.md in real Chromium and a real terminal: 刘开发 finds datasets by the words
people use, downloads dummy data as Excel, asks a DP question by town and gets names, a chart and an
Excel answer, submits the sample model with ``countylab job submit … --wait`` (one real sandboxed
job), finds it by name, asks for its release from the job page, resubmits after a checker returns
it, and calls the approved elderly-care model by named fields.

The checker's return and the security officer's model approval are the other people's steps
(their own tutorials); here they happen through the checker's API token and the steward's
browser session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.browser import Session
from tests.capabilities import need
from tests.walkthrough.world import (
    Demo,
    assert_beijing,
    cli,
    demo_county,
    download,
    shoot,
    visible_text,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.needs("sandbox")]

SQL = "SELECT town_code, COUNT(*) FROM residents WHERE age > 80 AND lives_alone GROUP BY town_code"
INKED = """() => {
  const c = document.querySelector('#answer-chart canvas');
  if (!c) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
}"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    need("sandbox")
    with demo_county(tmp_path_factory.mktemp("walk-developer"), jobs=True) as d:
        yield d


def _search(s: Session, words: str) -> list[str]:
    s.page.fill(".search-form input[name=q]", words)
    s.page.click(".search-form button[type=submit]")
    s.page.wait_for_load_state()
    return [t.strip() for t in s.page.locator("#dataset-list .dataset-card h2").all_inner_texts()]


def test_developer_tutorial(browser: Any, demo: Demo, artifacts: Path, tmp_path: Path) -> None:
    s = demo.session(browser, "developer", artifacts)
    page = s.page
    # 1. search the catalog with the words people use
    page.click("#sidebar >> text=数据目录")
    assert _search(s, "居民")[0] == "常住人口信息"
    assert _search(s, "老人")[0] == "居家养老服务记录"
    assert _search(s, "身份证")[0] == "常住人口信息"
    assert "公民身份号码" in page.locator(".search-why").first.inner_text()
    shoot(s, "developer-search")

    # 2. open it and download 1,000 rows of dummy data as Excel
    page.locator("#dataset-list a.dataset-card").first.click()
    page.wait_for_selector("#dl-dummy-xlsx")
    assert "模拟数据" in visible_text(s, "#preview")
    xlsx = download(s, "#dl-dummy-xlsx")
    assert xlsx.name.startswith("常住人口信息-模拟数据-")
    rows = list(load_workbook(xlsx).active.iter_rows(values_only=True))
    heads = next(r for r in rows if r and "公民身份号码" in r)
    assert {"姓名", "出生日期", "年龄"} <= set(heads)
    assert len(rows) >= 1000

    # 3. a DP question by town: names, a chart with whiskers, an Excel answer
    page.click("#sidebar >> text=数据黑匣")
    s.go("/query")
    page.fill("#query-form textarea[name=sql]", SQL)
    page.click("#run-query")
    page.wait_for_selector("#query-result .result-table")
    assert page.locator("#query-result .result-table th").all_inner_texts()[:2] == ["乡镇", "人数"]
    first = page.locator("#query-result .result-table tbody tr").first.inner_text()
    town = first.split(" (")[0].strip()
    assert town.endswith(("镇", "街道", "乡")), first  # a name, with its code beside it
    page.wait_for_function(f"({INKED})() > 2000")
    page.locator(".answer-chart").scroll_into_view_if_needed()
    shoot(s, "developer-query-chart")
    answer = download(s, "#download-xlsx")
    cells = [str(c) for r in load_workbook(answer).active.iter_rows(values_only=True) for c in r if c]
    assert town in cells

    # 4. the terminal: log in once, submit the sample model and wait for its summary
    home = tmp_path / "home"
    home.mkdir()
    login = cli(home, demo.url, "login", "-u", "developer", "--password", "Demo@2026")
    assert login.returncode == 0 and "已登录" in login.stdout, login.stdout + login.stderr
    pid = demo.project_id()
    submitted = datetime.now(UTC)
    run = cli(home, demo.url, "job", "submit", "examples/elderly-care-model", "--project", str(pid), "--wait")
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "elderly-care-model: train.py" in out and "状态: 已成功" in out, out
    assert "train/visits_by_age.svg  (图表)" in out and "申请出域" in out
    assert not out.lstrip().startswith("{")  # a summary, not JSON
    job_id = int(re.search(r"作业 (\d+)", out).group(1))  # type: ignore[union-attr]
    (artifacts / "walkthrough-developer-cli.txt").write_text(out)

    # 5. the job by name in 作业, in Beijing time; its page lists the outputs
    s.go("/jobs")
    row = page.locator("table tr", has_text="elderly-care-model: train.py").first
    assert "已成功" in row.inner_text()
    assert_beijing(row.inner_text(), submitted)
    row.locator("a").first.click()
    page.wait_for_selector("#request-release")
    assert "train/feature_importance.svg" in visible_text(s, "main")
    assert_beijing(visible_text(s, "main"), submitted)
    shoot(s, "developer-job-page")

    # 6. 申请出域 from the job page: all outputs, a title, submitted
    page.click("#request-release")
    page.wait_for_selector("#request-form")
    page.fill("#request-form input[name=title]", "各年龄段养老服务需求")
    page.click("#request-form button[type=submit]")
    page.wait_for_selector("#request-state")
    page.wait_for_function(
        "() => document.querySelector('#request-state').textContent.trim() === '审核中'", timeout=60_000
    )
    rid = int(page.url.rstrip("/").split("/")[-1])

    # 7. a checker returns it with a comment; the developer sees it in the to-do list
    back = demo.api("checker").post(
        f"/api/airlock/requests/{rid}/votes",
        json={"choice": "return", "comment": "请补充各年龄段的样本量说明"},
    )
    assert back.status_code == 200, back.text
    page.click("text=首页")
    returned = page.locator('#todo li[data-kind="todo.release_returned"]')
    assert "出域申请「各年龄段养老服务需求」已退回" in returned.inner_text()
    returned.locator("a").first.click()
    page.wait_for_selector("#resubmit-form")
    assert page.locator("#request-state").inner_text().strip() == "已退回"
    assert "请补充各年龄段的样本量说明" in visible_text(s, "main"), visible_text(s, "main")
    page.locator("#resubmit-form input[name=selector][value='train/visits_by_age.csv']").check()
    reply = page.locator("#resubmit-form textarea[name^='reply.']")
    if reply.count():
        reply.first.fill("已在表中增加样本量列")
    page.click("#resubmit-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#request-state').textContent.trim() === '审核中'", timeout=60_000
    )
    shoot(s, "developer-resubmitted")

    # 8. register the model, the security officer approves it, predict by named fields
    s.go("/models")
    page.select_option("#model-form select[name=job_id]", str(job_id))
    page.fill("#model-form input[name=file]", "train/model.joblib")
    page.fill("#model-form input[name=name]", "养老服务需求预测模型")
    page.fill("#model-form input[name=inputs]", "age, lives_alone, gender, income, town_code")
    page.fill("#model-form textarea[name=outputs]", "visits:number:0..200:2")
    page.click("#model-form button[type=submit]")
    page.wait_for_selector("#model-state")
    assert page.locator("#model-state").inner_text().strip() == "待审批"
    schema = visible_text(s, "#input-schema")
    assert "town" in schema and town in schema
    model_url = page.url

    officer = demo.session(browser, "steward", artifacts)
    officer.page.click('#todo li[data-kind="todo.approve_model"] a')
    officer.page.click("#assess-form button[type=submit]")
    officer.page.wait_for_selector("#assessment-verdict", timeout=120_000)
    officer.page.fill("#decide-form input[name=note]", "演示模型，只返回预测值")
    officer.page.click("#decide-form button[value='1']")
    officer.page.wait_for_load_state()
    assert officer.page.locator("#model-state").inner_text().strip() == "已批准"
    officer.close()

    page.goto(model_url)
    page.select_option("#fields-form select[name='f.town']", label=f"{town} ({_code_of(first)})")
    page.fill("#fields-form input[name='f.age']", "82")
    page.select_option("#fields-form select[name='f.lives_alone']", "true")
    page.fill("#fields-form input[name='f.income']", "12000")
    page.click("#fields-form button[type=submit]")
    page.wait_for_selector("#predictions", timeout=60_000)
    result = visible_text(s, "#predictions")
    assert town in result  # the row as asked, by name
    assert re.search(r"\d+\.\d{2}", result), result
    assert page.locator("#predict-error").count() == 0
    shoot(s, "developer-predict", "#try-it")
    s.close("status of 4")


def _code_of(row_text: str) -> str:
    m = re.search(r"\((\d{9,12})\)", row_text)
    assert m, row_text
    return m.group(1)
