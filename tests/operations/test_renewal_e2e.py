"""The renewal (续期) of an authorised data-use application, end to end, on SQLite and PostgreSQL.

An enterprise's project is authorised to run DP queries on the 农业农村局's crop table (real
Parquet data, answered by the in-process gateway).  Near the end date (the lab's clock moved) the
expiry reminder points to the application's page; the applicant starts the renewal from the
terminal (``countylab application renew``), the draft is prefilled and its term starts the day
after the old end date; it goes through the renewal's approval path and 公示, a new agreement is
signed, and the project keeps working across the old end date and stops after the new one, naming
the renewal's number.  A refused renewal leaves the old authorisation as it was.  Only the
applicant's organisation renews, only an authorisation in force, one renewal at a time.  In
Chromium, the application's page offers 申请续期 and opens the prefilled draft.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.identity.access import SYSTEM
from countylab.notify.messages import aware
from countylab.operations import agreements, applications, publicity
from countylab.operations import authorisations as auths
from countylab.operations.applications import ApplicationInput, RequestedDataset
from countylab.operations.publicity import notice_of
from countylab.operations.reauth import PasswordConfirmed
from countylab.operations.workflow import SecurityTerms
from countylab.storage.authorisation_models import Authorisation
from countylab.storage.models import AuditEvent
from countylab.storage.notify_models import Notification
from countylab.storage.operations_models import Application
from countylab.web.app import create_app
from countylab_client import Client, CountylabClientError
from tests.browser import Session, live_server
from tests.operations.conftest import World, build_world
from tests.operations.workflow_helpers import decide, precheck, status
from tests.privacy_gateway.conftest import fast_gateway
from tests.support import PASSWORD, build_lab, token_for

pytestmark = [pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
TERM_DAYS = 60
#: the renewal starts this many days before the old end date (its 3-working-day notice fits,
#: Chinese public holidays included)
RENEW_BEFORE = 25


def at(day: date) -> datetime:
    """09:00 in Beijing on ``day`` (authorisations end on Beijing dates)."""
    return datetime.combine(day, time(1, 0), UTC)


class Clock:
    """The lab's clock, moved by the test."""

    def __init__(self, lab: Any) -> None:
        self.now = lab.clock()
        self.real = lab.clock
        lab.clock = lambda: self.now

    def to(self, when: datetime) -> None:
        assert when >= self.now, "the clock only moves forward"
        self.now = when


@pytest.fixture
def clocked(world: World) -> Iterator[tuple[World, Clock]]:
    """The small county with rows in the crop table (DP queries answer for real)."""
    csv = world.lab.settings.data_dir / "crops.csv"
    towns = ("城关镇", "青禾镇", "河西乡")
    rows = [f"{towns[i % 3]},{'水稻' if i % 2 else '玉米'},{10 + i % 40}" for i in range(120)]
    csv.write_text("town,crop,area_mu\n" + "\n".join(rows) + "\n", encoding="utf-8")
    world.lab.ingestion.ingest_file(SYSTEM, world.datasets["crops"], csv)
    fast_gateway(world.lab)
    clock = Clock(world.lab)
    yield world, clock
    world.lab.clock = clock.real


def api(w: World, who: str) -> TestClient:
    return TestClient(
        create_app(w.lab),
        headers={"Authorization": f"Bearer {token_for(w.lab, w.users[who])}"},
        raise_server_exceptions=False,
    )


def dp_query(w: World, project_id: int, sql: str = "SELECT COUNT(*) FROM ops_crops") -> Any:
    return api(w, "dev").post("/api/query", json={"sql": sql, "project_id": project_id, "epsilon": 0.2})


def conclude_notice(w: World, clock: Clock, app_id: int) -> None:
    """Move the clock past the notice and end it (the operator's hand, as the sweep would)."""
    assert status(w, app_id) == "publicising"
    with w.lab.read() as s:
        notice = notice_of(s, app_id)
        assert notice is not None
        ends, notice_id = aware(notice.ends_at), notice.id
    clock.to(max(clock.now, ends + timedelta(minutes=5)))
    with w.lab.tx() as s:
        publicity.conclude(s, w.principal("operator"), notice_id, now=clock.now)
    assert status(w, app_id) == "approved"


def sign_both(w: World, clock: Clock, app_id: int) -> int:
    """The operator drafts the agreement, the applicant and the platform sign: the authorisation."""
    with w.lab.tx() as s:
        agreement_id = agreements.draft(s, w.principal("operator"), app_id, now=clock.now).id
    done: agreements.Signed | None = None
    for who in ("dev", "operator"):
        with w.lab.tx() as s:
            done = agreements.sign(
                s,
                w.principal(who),
                agreement_id,
                sha256=agreements.get(s, agreement_id).sha256,
                confirmed=PasswordConfirmed(w.users[who]),
                now=clock.now,
            )
    assert done is not None and done.complete and done.authorisation_id
    return int(done.authorisation_id)


def budgets(w: World) -> SecurityTerms:
    return SecurityTerms(channels=("dp_query",), budgets={w.datasets["crops"]: (3.0, None)})


def authorise(w: World, clock: Clock) -> tuple[int, int, int]:
    """The first-time path (the services; the terminal's is in test_done_when_api): an
    application for DP queries on the crop table, term of TERM_DAYS days from today, approved,
    publicised and signed.  Returns (application, authorisation, project)."""
    sid = w.scenario("renewal", by="agri", datasets=("crops",), field="agriculture")
    dev = w.principal("dev")
    with w.lab.tx() as s:
        app = applications.create(
            s,
            dev,
            ApplicationInput(
                scenario_id=sid,
                title="水稻估产模型",
                purpose="public_good",
                datasets=(RequestedDataset(w.datasets["crops"]),),
                channels=("dp_query",),
                starts_on=w.today,
                ends_on=w.today + timedelta(days=TERM_DAYS),
                expected_outputs="按乡镇的估产表",
                commitments=tuple(applications.COMMITMENTS),
            ),
            today=w.today,
        )
        applications.submit(s, dev, app.id, today=w.today)
        app_id = app.id
    precheck(w, app_id)
    decide(w, app_id, "consent", "agri")
    decide(w, app_id, "security", "steward", terms=budgets(w))
    conclude_notice(w, clock, app_id)
    auth_id = sign_both(w, clock, app_id)
    with w.lab.read() as s:
        auth = auths.get(s, auth_id)
        assert auth.status == "active" and auth.ends_on == w.today + timedelta(days=TERM_DAYS)
        return app_id, auth_id, auth.project_id


def auth_row(w: World, auth_id: int) -> dict[str, Any]:
    with w.lab.read() as s:
        return auths.view(s, auths.get(s, auth_id))


def _cli(home: Path, url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COUNTYLAB_", "LC_", "LANG"))}
    env.update(
        HOME=str(home), COUNTYLAB_URL=url, COUNTYLAB_TOKEN=token, LANG="zh_CN.UTF-8", COUNTYLAB_LANG="zh-CN"
    )
    exe = Path(sys.executable).with_name("countylab")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=env, timeout=120, cwd=REPO, check=False
    )


def refused(call: Callable[[], Any]) -> CountylabClientError:
    with pytest.raises(CountylabClientError) as caught:
        call()
    return caught.value


def test_renewal_through_cli_and_client_keeps_the_project_working(
    clocked: tuple[World, Clock], tmp_path: Path
) -> None:
    w, clock = clocked
    lab = w.lab
    app_id, auth_id, project_id = authorise(w, clock)
    old_end = w.today + timedelta(days=TERM_DAYS)

    # 1. the project answers DP queries on its dataset
    first = dp_query(w, project_id)
    assert first.status_code == 200, first.text

    # the reminder 30 days ahead points to the application, where the renewal starts
    clock.to(at(old_end - timedelta(days=RENEW_BEFORE)))
    assert [auth for auth, _days in lab.expiry.run_once().reminded] == [auth_id]
    with lab.read() as s:
        reminder = s.execute(
            select(Notification).where(Notification.kind == "authorisation.expiring")
        ).scalar_one()
        assert reminder.link == f"/applications/{app_id}"
        assert reminder.facts["ends_on"] == old_end.isoformat()

    with live_server(lab) as url:

        def sdk(who: str) -> Client:
            return Client(url, token=token_for(lab, w.users[who]))

        def run(who: str, *args: str) -> str:
            done = _cli(tmp_path, url, token_for(lab, w.users[who]), *args)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
            return done.stdout

        # 2. the applicant starts the renewal in the terminal: a prefilled draft
        draft = json.loads(run("dev", "application", "renew", str(app_id), "--json"))
        renewal_id, renewal_no = int(draft["id"]), draft["number"]
        assert draft["status"] == "draft" and draft["renewal_of"] == app_id
        assert draft["title"] == "水稻估产模型（续期）"
        assert [d["dataset_id"] for d in draft["datasets"]] == [w.datasets["crops"]]
        assert draft["channels"] == ["dp_query"] and draft["purpose"] == "public_good"
        assert draft["expected_outputs"] == "按乡镇的估产表"
        assert draft["starts_on"] == (old_end + timedelta(days=1)).isoformat()  # the day after
        assert draft["ends_on"] == (old_end + timedelta(days=1 + TERM_DAYS)).isoformat()

        # 5. one renewal at a time; only the applicant's organisation; only an authorisation
        dev = sdk("dev")
        twice = refused(lambda: dev.renew_application(app_id))
        assert twice.status_code == 409 and renewal_no in twice.message, twice
        other = refused(lambda: sdk("researcher").renew_application(app_id))
        assert other.status_code in (403, 404), other
        again = _cli(tmp_path, url, token_for(lab, w.users["dev"]), "application", "renew", str(renewal_id))
        assert again.returncode != 0
        assert "只有已授权的申请可以续期" in again.stderr + again.stdout, again
        assert "草稿" in again.stderr + again.stdout, again  # the state in words, not its code
        with lab.read() as s:  # the refusals left no draft behind
            renewals = s.execute(select(Application.id).where(Application.renewal_of.is_not(None))).all()
            assert [r[0] for r in renewals] == [renewal_id]

        # the applicant ticks the commitments again and submits; the renewal's path and notice
        dev.update_application(
            renewal_id,
            scenario_id=draft["scenario_id"],
            title=draft["title"],
            purpose=draft["purpose"],
            datasets=[w.datasets["crops"]],
            channels=draft["channels"],
            starts_on=draft["starts_on"],
            ends_on=draft["ends_on"],
            expected_outputs=draft["expected_outputs"],
            commitments=list(applications.COMMITMENTS),
        )
        dev.submit_application(renewal_id)
        sdk("operator").decide(renewal_id, "precheck", "pass")
        sdk("steward").decide(
            renewal_id,
            "security",
            "approve",
            channels=["dp_query"],
            budgets={w.datasets["crops"]: (3.0, None)},
        )
        assert status(w, renewal_id) == "publicising"  # no department consent on a renewal's path
        assert any(n["title"] == "水稻估产模型（续期）" for n in sdk("checker").notices())
        conclude_notice(w, clock, renewal_id)
        assert clock.now.date() < old_end  # approved before the old term ends

        # a new agreement, signed by both sides through the client
        sdk("operator").draft_agreement(renewal_id)
        agreement = dev.agreement_of(renewal_id)
        assert agreement["number"] != ""
        assert not dev.sign_agreement(int(agreement["id"]), PASSWORD)["complete"]
        signed = sdk("operator").sign_agreement(int(agreement["id"]), PASSWORD)
        assert signed["complete"] and int(signed["authorisation_id"]) == auth_id  # the same record
        extended = sdk("steward").authorisation(auth_id)
        new_end = old_end + timedelta(days=1 + TERM_DAYS)
        assert extended["status"] == "active" and extended["ends_on"] == new_end.isoformat()
        assert extended["application_number"] == renewal_no
        assert extended["project_id"] == project_id
        assert [e["kind"] for e in extended["events"]] == ["granted", "extended"]
        assert dev.application(app_id)["status"] == "authorised"
        assert dev.application(renewal_id)["status"] == "authorised"

    with lab.read() as s:
        extend = s.execute(select(AuditEvent).where(AuditEvent.action == "authorisation.extend")).scalar_one()
        assert json.loads(extend.details)["ends_on"] == new_end.isoformat()

    # 3. no gap across the old end date: the last old day and the day after both answer
    clock.to(at(old_end))
    last_day = dp_query(w, project_id, "SELECT COUNT(*) FROM ops_crops WHERE crop = '水稻'")
    assert last_day.status_code == 200, last_day.text
    clock.to(at(old_end + timedelta(days=1)))
    assert lab.expiry.run_once().expired == []
    day_after = dp_query(w, project_id)
    assert day_after.status_code == 200, day_after.text
    assert auth_row(w, auth_id)["status"] == "active"

    # the new end date earns its own reminders
    clock.to(at(new_end - timedelta(days=6)))
    assert [d for _a, d in lab.expiry.run_once().reminded] == [7]

    # …and stops after the NEW end date, naming the renewal
    clock.to(at(new_end))
    assert dp_query(w, project_id).status_code == 200
    clock.to(at(new_end + timedelta(days=1)))
    stopped = dp_query(w, project_id)
    assert stopped.status_code == 403, stopped.text
    words = stopped.json()["error"]["message"]
    assert renewal_no in words and new_end.isoformat() in words and "续期" in words, words
    assert lab.expiry.run_once().expired == [auth_id]
    assert auth_row(w, auth_id)["status"] == "expired"


def test_a_refused_renewal_leaves_the_old_authorisation(clocked: tuple[World, Clock]) -> None:
    w, clock = clocked
    app_id, auth_id, project_id = authorise(w, clock)
    old_end = w.today + timedelta(days=TERM_DAYS)
    before = auth_row(w, auth_id)
    clock.to(at(old_end - timedelta(days=RENEW_BEFORE)))

    # the API: the applicant's renewal; the researcher (another organisation) may not
    made = api(w, "dev").post(f"/api/applications/{app_id}/renew")
    assert made.status_code == 201, made.text
    renewal_id = int(made.json()["id"])
    assert made.json()["starts_on"] == (old_end + timedelta(days=1)).isoformat()
    foreign = api(w, "researcher").post(f"/api/applications/{app_id}/renew")
    assert foreign.status_code == 403, foreign.text
    second = api(w, "dev2").post(f"/api/applications/{app_id}/renew")  # same organisation, at once
    assert second.status_code == 409, second.text
    assert made.json()["number"] in second.json()["error"]["message"]

    dev = w.principal("dev")
    with w.lab.tx() as s:
        renewal = s.get(Application, renewal_id)
        assert renewal is not None
        applications.update(
            s,
            dev,
            renewal_id,
            ApplicationInput(
                scenario_id=renewal.scenario_id,
                title=renewal.title,
                purpose=renewal.purpose,
                datasets=(RequestedDataset(w.datasets["crops"]),),
                channels=tuple(renewal.channels),
                starts_on=renewal.starts_on,
                ends_on=renewal.ends_on,
                expected_outputs=renewal.expected_outputs,
                commitments=tuple(applications.COMMITMENTS),
            ),
            today=clock.now.date(),
        )
        applications.submit(s, dev, renewal_id, today=clock.now.date())
    precheck(w, renewal_id)
    decide(w, renewal_id, "security", "steward", "refuse", reason="使用情况报告未按期提交")
    assert status(w, renewal_id) == "rejected"

    # 4. the old authorisation is untouched; access stops at the old end date
    after = auth_row(w, auth_id)
    assert after == before
    clock.to(at(old_end))
    assert dp_query(w, project_id).status_code == 200
    clock.to(at(old_end + timedelta(days=1)))
    stopped = dp_query(w, project_id)
    assert stopped.status_code == 403, stopped.text
    words = stopped.json()["error"]["message"]
    with w.lab.read() as s:
        number = s.get(Application, app_id).number  # type: ignore[union-attr]
    assert number in words and old_end.isoformat() in words, words

    # a refused renewal does not block the next one (after expiry, to continue)
    assert w.lab.expiry.run_once().expired == [auth_id]
    again = api(w, "dev").post(f"/api/applications/{app_id}/renew")
    assert again.status_code == 201, again.text
    assert again.json()["starts_on"] == clock.now.date().isoformat()  # today: the old term is over

    # a revoked authorisation is not renewed (the steward revokes only one in force: the row is
    # set directly here, after the applicant withdrew the renewal draft)
    with w.lab.tx() as s:
        applications.withdraw(s, dev, int(again.json()["id"]), "改为新申请")
        s.get(Authorisation, auth_id).status = "revoked"  # type: ignore[union-attr]
    revoked = api(w, "dev").post(f"/api/applications/{app_id}/renew")
    assert revoked.status_code == 409 and "撤销" in revoked.json()["error"]["message"], revoked.text


@pytest.mark.browser
def test_the_application_page_offers_the_renewal(browser: Any, artifacts: Any, tmp_path: Path) -> None:
    lab = build_lab(tmp_path, county_name="青禾县")
    try:
        w = build_world(lab)
        clock = Clock(lab)
        app_id, _auth, _project = authorise(w, clock)
        lab.clock = clock.real  # the browser's session lives in real time
        with live_server(lab) as url:
            s = Session(browser, url, artifacts, viewport={"width": 1280, "height": 1000})
            s.go("/login")
            s.page.fill("input[name=username]", "dev")
            s.page.fill("input[name=password]", PASSWORD)
            s.page.click("#login-form button[type=submit]")
            s.page.wait_for_url(url + "/")
            s.go(f"/applications/{app_id}")
            button = s.page.locator("#renew")
            assert button.inner_text().strip() == "申请续期"
            button.click()
            s.page.wait_for_url(f"{url}/applications/*/edit")
            assert s.page.input_value("input[name=title]") == "水稻估产模型（续期）"
            old_end = w.today + timedelta(days=TERM_DAYS)
            assert s.page.input_value("input[name=starts_on]") == (old_end + timedelta(days=1)).isoformat()
            s.shot("renewal-draft")
            s.close()
            other = Session(browser, url, artifacts)
            other.go("/login")
            other.page.fill("input[name=username]", "operator")
            other.page.fill("input[name=password]", PASSWORD)
            other.page.click("#login-form button[type=submit]")
            other.page.wait_for_url(url + "/")
            other.go(f"/applications/{app_id}")
            assert other.page.locator("#renew").count() == 0  # not the applicant: no button
            other.close()
    finally:
        lab.close()
