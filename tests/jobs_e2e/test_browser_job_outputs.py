"""Jobs people can tell apart, in a real browser (Chromium), and the CLI's --wait summary.

A developer submits the sample project twice (once with a spec ``name:``) through the SDK and
the CLI, then sees in the jobs list names (not "train"), CPU used and the outcome; the job page
lists the declared outputs with their file counts and a 申请出域 button that opens the airlock's
new-request page with this job and its outputs preselected.  A steward outside the project sees
the real files with sizes and exact CPU seconds.  Submitting from the page shows a spinner, the
message and the elapsed time while the upload is held back.  Screenshots: test-artifacts/.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from countylab.cli import app
from countylab.i18n import catalog
from countylab.lab import Lab
from countylab_client import Client
from tests.browser import Session
from tests.jobs_e2e.e2e_helpers import EXAMPLE, center, demo_lab_from, project_id, serve, user_id, wait_state
from tests.support import token_for

ZH = catalog("zh-CN")
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("bwrap")]
DECLARED = [
    "train/metrics.json",
    "train/metrics_table.csv",
    "train/visits_by_age.csv",
    "train/visits_by_age.svg",
    "train/feature_importance.csv",
    "train/feature_importance.svg",
    "train/model.joblib",
]


RECORDER = """() => {
  const form = document.getElementById('submit-form');
  window.setInterval(() => {
    const note = form.querySelector('.progress-note');
    if (!note) return;
    sessionStorage.setItem('progress-seen', JSON.stringify({
      text: note.querySelector('.progress-text').textContent,
      elapsed: note.querySelector('.progress-elapsed').textContent,
      disabled: form.querySelector('button[type=submit]').disabled,
      busy: form.getAttribute('aria-busy'),
    }));
  }, 100);
}"""


@pytest.fixture(scope="module")
def live(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, str, str]]:
    lab = demo_lab_from(demo_template, tmp_path_factory.mktemp("outputs"))
    center(lab).start()
    with serve(lab) as url:
        yield lab, url, token_for(lab, user_id(lab, "developer"))
    lab.close()


@pytest.fixture(scope="module")
def jobs(live: tuple[Lab, str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two finished jobs: one named by the folder and script (SDK), one by its spec (CLI --wait)."""
    lab, url, token = live
    root = tmp_path_factory.mktemp("code")
    folder = root / "elder-care"
    shutil.copytree(EXAMPLE, folder)
    pid = project_id(lab, "elderly-care-demand")
    with Client(url, token) as c:
        first = c.submit_job(pid, folder)
    assert first.name == "elder-care: train.py"
    assert wait_state(lab, first.id, {"succeeded", "failed"}, timeout=120) == "succeeded"

    titled = root / "titled"
    shutil.copytree(EXAMPLE, titled)
    spec = (titled / "countylab.yaml").read_text(encoding="utf-8")
    (titled / "countylab.yaml").write_text(
        spec.replace("version: 1\n", "version: 1\nname: 养老需求模型第二版\n")
    )
    env = {"COUNTYLAB_URL": url, "COUNTYLAB_TOKEN": token, "LANG": "zh_CN.UTF-8"}
    run = CliRunner().invoke(app, ["job", "submit", str(titled), "--project", str(pid), "--wait"], env=env)
    assert run.exit_code == 0, run.output
    return {"first": first.id, "pid": pid, "summary": run.output, "env": env}


def test_wait_prints_a_readable_summary_and_json_stays_for_scripts(live, jobs) -> None:
    text = jobs["summary"]
    assert "养老需求模型第二版" in text and "{" not in text  # the spec's name, no raw JSON
    for label in (
        "状态: 已成功",
        "CPU: ≤ 60 s",
        "用时:",
        "输出文件:",
        "train/metrics.json  (指标)",
        "下一步:",
    ):
        assert label in text, (label, text)
    assert "countylab release create --job" in text
    lab, url, token = live
    out = CliRunner().invoke(app, ["job", "status", str(jobs["first"]), "--json"], env=jobs["env"])
    assert out.exit_code == 0, out.output
    view = json.loads(out.output)
    assert view["name"] == "elder-care: train.py" and view["cpu_coarse"] is True
    assert [o["selector"] for o in view["outputs"]] == DECLARED
    listed = CliRunner().invoke(app, ["job", "list"], env=jobs["env"] | {"COLUMNS": "200"})
    assert listed.exit_code == 0 and "elder-care: train.py" in listed.output and "≤ 60 s" in listed.output


def test_cli_refuses_a_missing_folder_in_one_line(jobs, tmp_path) -> None:
    for lang, words in (
        ("zh_CN.UTF-8", "作业文件夹不存在"),
        ("en_US.UTF-8", "the job folder does not exist"),
    ):
        env = jobs["env"] | {"LANG": lang}
        result = CliRunner().invoke(
            app, ["job", "submit", str(tmp_path / "nope"), "--project", str(jobs["pid"])], env=env
        )
        assert result.exit_code == 2 and "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and words in lines[0], result.output


def test_job_page_lists_outputs_and_offers_release(browser, artifacts, live, jobs) -> None:
    lab, url, _token = live
    dev = Session(browser, url, artifacts, viewport={"width": 1280, "height": 900})
    dev.login("developer")
    dev.go("/jobs")
    rows = dev.page.locator("#jobs-table tbody tr")
    texts = rows.all_inner_texts()
    assert any("elder-care: train.py" in t and "已成功" in t and "≤ 60 s" in t for t in texts), texts
    assert any("养老需求模型第二版" in t for t in texts), texts
    assert not any(re.search(r"\ttrain\t", t) for t in texts)
    dev.shot("jobs-outputs-01-list")

    dev.go(f"/jobs/{jobs['first']}")
    shown = dev.page.locator("#outputs-table tbody tr")
    assert [r.get_attribute("data-file") for r in shown.all()] == DECLARED
    assert "指标" in shown.first.inner_text()
    assert "KB" not in dev.page.locator("#job-outputs").inner_text()  # no sizes before review
    assert dev.page.locator("#cpu-s").get_attribute("data-coarse") == "1"
    button = dev.page.locator("#request-release")
    assert button.inner_text().strip() == ZH["jobs.request_release"]
    dev.shot("jobs-outputs-02-job-page")
    button.click()
    dev.page.wait_for_url(f"{url}/airlock/new?job_id={jobs['first']}")
    assert dev.page.locator("#job-form select[name=job_id]").input_value() == str(jobs["first"])
    assert dev.page.locator("#request-form input[name=files][value='*']").is_checked()
    assert dev.page.locator("#request-form input[name=title]").input_value() == "elder-care: train.py"
    declared = dev.page.locator("#request-form fieldset[data-selector]")
    assert {d.get_attribute("data-selector") for d in declared.all()} >= {"*", "logs", *DECLARED}
    dev.shot("jobs-outputs-03-airlock-prefilled")
    dev.close()

    steward = Session(browser, url, artifacts, viewport={"width": 1280, "height": 900})
    steward.login("steward")
    steward.go(f"/jobs/{jobs['first']}")
    files = {
        r.get_attribute("data-file"): r.inner_text()
        for r in steward.page.locator("#outputs-table tbody tr").all()
    }
    assert "train/metrics.json" in files and re.search(r"\d+(\.\d)? (B|KB)", files["train/metrics.json"])
    assert ZH["jobs.kind.sidecar"] in files["train/metrics_table.csv.countylab.json"]
    assert ZH["jobs.kind.log"] in files["train/logs/stdout.txt"]
    assert steward.page.locator("#cpu-s").get_attribute("data-coarse") == "0"
    assert re.fullmatch(r"\d+\.\d s", steward.page.locator("#cpu-s").inner_text().strip())
    assert steward.page.locator("#request-release").count() == 0
    steward.shot("jobs-outputs-04-steward")
    steward.close()


def test_submitting_shows_progress_until_the_page_answers(browser, artifacts, live, jobs, tmp_path) -> None:
    lab, url, _token = live
    archive = tmp_path / "care-model.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", EXAMPLE)
    dev = Session(browser, url, artifacts, viewport={"width": 1280, "height": 900})
    dev.login("developer")
    dev.go(f"/jobs?project={jobs['pid']}")
    held: list[Any] = []
    dev.page.route(re.compile(r".*/projects/\d+/jobs$"), lambda route: held.append(route))
    # While the upload is held back the page is navigating, so Playwright waits for it to finish
    # before it looks at the page; the page itself records what a person sees, every 100 ms.
    dev.page.evaluate(RECORDER)
    dev.page.set_input_files("#submit-form input[name=file]", str(archive))
    dev.page.click("#submit-form button[type=submit]", no_wait_after=True)
    for _ in range(100):
        if held:
            break
        dev.page.wait_for_timeout(50)
    assert held, "the submission was not held back"
    dev.page.wait_for_timeout(3000)
    held[0].continue_()
    dev.page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    seen = json.loads(dev.page.evaluate("() => sessionStorage.getItem('progress-seen') || '{}'"))
    assert seen.get("text") == ZH["jobs.progress_submit"], seen
    assert seen.get("disabled") is True and seen.get("busy") == "true", seen
    assert re.fullmatch(r"0:0[2-9]", seen.get("elapsed", "")), seen  # the elapsed time, after 2 s
    assert "care-model: train.py" in dev.page.locator("h1").inner_text()  # named after the zip
    dev.close()


SCRIPTED = """() => {
  const form = document.getElementById('submit-form');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();  // as the query console does: the page's own script sends the form
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    window.setTimeout(() => { button.disabled = false; }, 4000);
  });
}"""


def test_a_form_sent_by_script_shows_progress_until_its_button_returns(
    browser, artifacts, live, jobs
) -> None:
    lab, url, _token = live
    dev = Session(browser, url, artifacts, viewport={"width": 1280, "height": 900})
    dev.login("developer")
    dev.go(f"/jobs?project={jobs['pid']}")
    dev.page.evaluate(SCRIPTED)
    dev.page.click("#submit-form button[type=submit]")
    note = dev.page.locator("#submit-form .progress-note")
    note.wait_for(state="visible")
    assert ZH["jobs.progress_submit"] in note.inner_text()
    dev.page.wait_for_function(
        "() => /^0:0[2-9]$/.test(document.querySelector('#submit-form .progress-elapsed')?.textContent || '')"
    )
    dev.page.locator("#submit-card").screenshot(path=str(artifacts / "jobs-outputs-05-progress.png"))
    note.wait_for(state="detached", timeout=10_000)  # the script enabled its button: the note goes
    assert dev.page.locator("#submit-form").get_attribute("aria-busy") is None
    assert dev.page.url.endswith(f"/jobs?project={jobs['pid']}")
    dev.close()


def test_a_waiting_job_shows_the_time_since_submission(browser, artifacts, live, jobs, tmp_path) -> None:
    lab, url, token = live
    folder = tmp_path / "held-model"
    shutil.copytree(EXAMPLE, folder)
    with Client(url, token) as c:
        held = c.submit_job(jobs["pid"], folder, hold=True)  # pending until a steward admits it
        assert held.state == "pending"
        dev = Session(browser, url, artifacts, viewport={"width": 1280, "height": 900})
        dev.login("developer")
        dev.go(f"/jobs/{held.id}")
        running = dev.page.locator("#job-running")
        assert ZH["jobs.state.pending"] in running.inner_text()
        dev.page.wait_for_function(
            "() => /^\\d+:\\d\\d$/.test("
            "document.querySelector('#job-running [data-elapsed-since]').textContent)"
        )
        first = running.locator("[data-elapsed-since]").inner_text()
        dev.page.wait_for_timeout(1500)
        assert running.locator("[data-elapsed-since]").inner_text() != first  # it ticks
        dev.close()
        c.cancel_job(held.id)
