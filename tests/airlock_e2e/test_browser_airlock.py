"""The whole release in Chromium: the developer picks outbox files and submits, two checkers
approve on the review page (blind), the developer downloads the released file; the model
registry's "try it" form.  Screenshots land in $COUNTYLAB_TEST_ARTIFACTS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.airlock_e2e.conftest import SAFE_TABLE, World, build_world
from tests.browser import Session, live_server
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    world = build_world(tmp_path_factory.mktemp("browser-airlock"))
    with live_server(world.lab) as base:
        yield world, base
    world.lab.close()


def _login(session: Session, username: str) -> None:
    session.go("/login")
    session.page.fill("input[name=username]", username)
    session.page.fill("input[name=password]", PASSWORD)
    session.page.click("#login-form button[type=submit]")
    session.page.wait_for_url(session.base + "/")


def test_developer_submits_two_checkers_approve_developer_downloads(
    site: tuple[World, str], browser: Any, artifacts: Path
) -> None:
    world, base = site
    job = world.make_job({"by_village.csv": SAFE_TABLE, "notes.txt": "方法说明：按村汇总。\n".encode()})

    dev = Session(browser, base, artifacts)
    _login(dev, "dev")
    dev.go("/airlock")
    assert dev.page.locator("#new-request").is_visible()
    dev.go(f"/airlock/new?job_id={job}")
    card = dev.page.locator("fieldset[data-file='analyse/by_village.csv']")
    card.locator("input[name=files]").check()
    card.locator("input[name^=description]").fill("各村老年人口数")
    card.locator("input[name^=controls]").fill("无小于10的单元格")
    card.locator("input[name^=count_columns]").fill("residents")
    dev.page.fill("input[name=title]", "各村老年人口")
    dev.shot("airlock-01-request-form")
    dev.page.click("#request-form button[type=submit]")
    dev.page.wait_for_url(f"{base}/airlock/requests/*")
    assert dev.page.locator("#request-state").inner_text() == "审核中"
    rid = dev.page.url.rsplit("/", 1)[1]
    dev.shot("airlock-02-submitted")

    for n, who in enumerate(("checker", "checker2"), start=1):
        checker = Session(browser, base, artifacts)
        _login(checker, who)
        checker.go("/airlock")
        assert checker.page.locator(f"#queue tr[data-request='{rid}']").count() == 1
        checker.go(f"/airlock/requests/{rid}")
        assert checker.page.locator(".preview-table").first.is_visible()  # the table, previewed
        if n == 2:
            assert "投票前不可见" in checker.page.locator("#votes").inner_text()
        checker.shot(f"airlock-0{2 + n}-review-{who}")
        checker.page.fill("#vote-form textarea[name=comment]", "口径清楚，无小单元格")
        checker.page.click("#vote-form button[value=approve]")
        checker.page.wait_for_url(f"{base}/airlock/requests/{rid}")
        checker.close()

    dev.go(f"/airlock/requests/{rid}")
    assert dev.page.locator("#request-state").inner_text() == "已出域"
    dev.go("/airlock/released")
    dev.shot("airlock-05-released")
    with dev.page.expect_download() as info:
        dev.page.locator("#released-table a.button").first.click()
    path = info.value.path()
    assert path is not None and Path(path).read_bytes() == SAFE_TABLE
    dev.close()


def test_model_registry_try_it(site: tuple[World, str], browser: Any, artifacts: Path) -> None:
    import io

    import joblib
    from sklearn.linear_model import LinearRegression

    world, base = site
    buf = io.BytesIO()
    joblib.dump(LinearRegression().fit([[60], [70], [80]], [1.0, 2.0, 3.0]), buf)
    job = world.make_job({"model.joblib": buf.getvalue()})
    model = (
        world.client("dev")
        .post(
            "/api/models",
            json={
                "job_id": job,
                "file": "analyse/model.joblib",
                "name": "助餐需求模型",
                "inputs": ["age"],
                "outputs": ["meals:number:0..10:1"],
                "target": "age",
            },
        )
        .json()
    )
    # the steward runs the memorisation tests and approves, in the browser
    steward = Session(browser, base, artifacts)
    _login(steward, "steward")
    steward.go(f"/models/{model['id']}")
    steward.page.click("#assess-form button[type=submit]")
    steward.page.wait_for_selector("#assessment-verdict")
    assert steward.page.locator("#assessment-verdict").inner_text() == "通过"
    assert "成员推断优势" in steward.page.locator("#assessment").inner_text()
    steward.shot("airlock-05b-model-assessment")
    steward.page.click("#decide-form button[value='1']")
    steward.page.wait_for_selector("#model-state")
    assert steward.page.locator("#model-state").inner_text() == "已批准"
    steward.close()
    dev = Session(browser, base, artifacts)
    _login(dev, "dev")
    dev.go("/models")
    assert "助餐需求模型" in dev.page.locator("#models-table").inner_text()
    dev.go(f"/models/{model['id']}")
    # the card lists the named input (from the catalog column), and the form asks for it by name
    assert dev.page.locator("#schema-table tr[data-field='age']").is_visible()
    dev.page.fill("#fields-form input[name='f.age']", "65")
    dev.page.click("#fields-form button[type=submit]")
    dev.page.wait_for_selector("#predictions")
    assert "1.5" in dev.page.locator("#predictions").inner_text()
    dev.shot("airlock-06-model-try-it")
    dev.page.click("#try-it details summary")  # batch: JSON records (or a spreadsheet)
    dev.page.fill("#try-form textarea[name=rows]", '[{"age": 65}, [75]]')
    dev.page.click("#try-form button[type=submit]")
    dev.page.wait_for_selector("#predictions")
    assert "2.5" in dev.page.locator("#predictions").inner_text()
    dev.close()
