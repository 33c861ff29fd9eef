"""A department's refusal at 部门同意 drops only its datasets when others remain (SQLite and
PostgreSQL): the application goes on with the rest, the refusal and the dropped datasets are on
its history for the applicant and later reviewers, and the approved terms never include a
dropped dataset.  When nothing remains the application is rejected as before.  Two departments
deciding at once stay safe (one winner per application version)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from countylab.errors import Conflict
from countylab.notify.messages import aware
from countylab.operations import workflow, workflow_view
from countylab.operations.publicity import conclude, notice_of, public_notices
from countylab.storage.models import AuditEvent
from countylab.storage.notify_models import Notification, NotificationRecipient
from countylab.storage.workflow_models import ApprovalStep
from tests.browser import Session, live_server
from tests.operations.conftest import AGRI, ECON, World
from tests.operations.workflow_helpers import decide, kinds_open, now, open_steps, precheck, status, submitted
from tests.support import PASSWORD


def _asked(w: World, app_id: int) -> list[int]:
    with w.lab.read() as s:
        app = workflow.get_application(s, app_id)
        return [ds.id for _, ds in workflow.requested(s, app)]


def _finish_notice(w: World, app_id: int) -> None:
    with w.lab.read() as s:
        notice = notice_of(s, app_id)
        assert notice is not None
        ends = aware(notice.ends_at)
    w.lab.clock = lambda: ends + timedelta(minutes=1)
    with w.lab.tx() as s:
        conclude(s, w.principal("operator"), notice.id, now=now(w))


def test_refusal_drops_only_that_departments_datasets(world: World) -> None:
    w = world
    crops, power = w.datasets["crops"], w.datasets["power"]
    app_id = submitted(w, datasets=("crops", "power"))
    precheck(w, app_id)
    assert kinds_open(w, app_id) == ["consent", "consent"]
    decide(w, app_id, "consent", "econ", "refuse", "用电数据涉及企业经营信息，不同意提供", org=ECON)
    assert status(w, app_id) == "in_review"  # not rejected: 农作物种植面积 remains
    assert _asked(w, app_id) == [crops]
    assert kinds_open(w, app_id) == ["consent"]  # 农业农村局 still decides its own
    with w.lab.read() as s:
        dropped = workflow.dropped_datasets(s, app_id)
        assert [(d["dataset_id"], d["title"], d["org_id"]) for d in dropped] == [
            (power, "企业用电量", w.orgs[ECON])
        ]
        assert dropped[0]["reason"].startswith("用电数据")
        ev = s.execute(
            select(AuditEvent).where(
                AuditEvent.action == "application.consent", AuditEvent.target == f"application:{app_id}"
            )
        ).scalar_one()
        facts = json.loads(ev.details) if isinstance(ev.details, str) else ev.details
        assert facts["decision"] == "refuse" and facts["dropped"] == [power]
        told = s.execute(
            select(Notification.facts)
            .join(NotificationRecipient, NotificationRecipient.notification_id == Notification.id)
            .where(NotificationRecipient.user_id == w.users["dev"], Notification.kind == "workflow.decided")
        ).scalars()
        assert any("企业用电量" in str(f.get("reason")) for f in told)  # the applicant hears what was dropped
    decide(w, app_id, "consent", "agri", org=AGRI)
    assert kinds_open(w, app_id) == ["security"]
    with w.lab.read() as s:
        app = workflow.get_application(s, app_id)
        for who in ("dev", "steward"):  # the applicant and a later reviewer see it
            shown = workflow_view.view(s, app, w.principal(who), now=now(w))
            assert [d["title"] for d in shown["dropped"]] == ["企业用电量"]
            assert [d["id"] for d in shown["datasets"]] == [crops]
    decide(w, app_id, "security", "steward")
    assert status(w, app_id) == "publicising"
    with w.lab.read() as s:
        sec = s.execute(
            select(ApprovalStep).where(ApprovalStep.application_id == app_id, ApprovalStep.kind == "security")
        ).scalar_one()
        assert list(sec.details["datasets"]) == [str(crops)]
        assert public_notices(s, now=now(w))[0].datasets == ["农作物种植面积"]
    _finish_notice(w, app_id)
    assert status(w, app_id) == "approved"
    with w.lab.read() as s:
        terms = workflow.approved_terms(s, app_id)
    assert [d.dataset_id for d in terms.datasets] == [crops]  # so the agreement and grants never name power


def test_refusal_after_the_others_approved_opens_the_next_stage(world: World) -> None:
    w = world
    app_id = submitted(w, datasets=("crops", "power"))
    precheck(w, app_id)
    decide(w, app_id, "consent", "agri", org=AGRI)
    decide(w, app_id, "consent", "econ", "refuse", "不同意", org=ECON)
    assert status(w, app_id) == "in_review" and kinds_open(w, app_id) == ["security"]
    assert _asked(w, app_id) == [w.datasets["crops"]]


def test_when_nothing_remains_the_application_is_rejected(world: World) -> None:
    w = world
    app_id = submitted(w, datasets=("crops", "power"))
    precheck(w, app_id)
    decide(w, app_id, "consent", "econ", "refuse", "不同意提供用电数据", org=ECON)
    decide(w, app_id, "consent", "agri", "refuse", "数据正在核查", org=AGRI)
    assert status(w, app_id) == "rejected"
    assert open_steps(w, app_id) == []
    assert _asked(w, app_id) == [w.datasets["crops"]]  # the last refusal rejects, it drops nothing
    with w.lab.read() as s:
        assert [d["title"] for d in workflow.dropped_datasets(s, app_id)] == ["企业用电量"]
    # a single-department application is rejected by its refusal as before
    single = submitted(w, datasets=("crops",))
    precheck(w, single)
    decide(w, single, "consent", "agri", "refuse", "不同意")
    assert status(w, single) == "rejected" and _asked(w, single) == [w.datasets["crops"]]


def _race(w: World, app_id: int, decisions: dict[str, str]) -> list[BaseException]:
    """Each department decides its own consent at once, retrying on 'changed by someone else'."""
    steps = {st.org_id: st for st in open_steps(w, app_id, "consent")}
    barrier = threading.Barrier(len(decisions))
    errors: list[BaseException] = []
    retried: list[str] = []

    def run(name: str) -> None:
        p = w.principal(name)
        barrier.wait()
        try:
            for _ in range(10):
                try:
                    with w.lab.tx() as s:
                        workflow.decide(s, p, steps[p.org_id].id, decisions[name], "并发决定", now=now(w))
                    return
                except Conflict as exc:
                    if exc.details.get("reason") == "already_decided":
                        raise
                    retried.append(name)
        except BaseException as exc:  # noqa: BLE001 - collected and checked by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in decisions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_two_departments_refusing_at_once_reject_and_never_leave_an_empty_application(world: World) -> None:
    w = world
    for _ in range(2):
        app_id = submitted(w, datasets=("crops", "power"))
        precheck(w, app_id)
        errors = _race(w, app_id, {"agri": "refuse", "econ": "refuse"})
        assert errors == []
        assert status(w, app_id) == "rejected"
        assert len(_asked(w, app_id)) == 1  # one refusal dropped its dataset, the other rejected
        with w.lab.read() as s:
            assert len(workflow.dropped_datasets(s, app_id)) == 1


def test_one_refusing_one_approving_at_once(world: World) -> None:
    w = world
    app_id = submitted(w, datasets=("crops", "power"))
    precheck(w, app_id)
    assert _race(w, app_id, {"agri": "approve", "econ": "refuse"}) == []
    assert status(w, app_id) == "in_review" and kinds_open(w, app_id) == ["security"]
    assert _asked(w, app_id) == [w.datasets["crops"]]


@pytest.mark.browser
@pytest.mark.slow
def test_applicants_page_shows_the_dropped_dataset(sqlite_world: World, browser: Any, artifacts: Any) -> None:
    w = sqlite_world
    app_id = submitted(w, datasets=("crops", "power"))
    precheck(w, app_id)
    decide(w, app_id, "consent", "econ", "refuse", "用电数据不同意提供", org=ECON)
    with live_server(w.lab) as base:
        s = Session(browser, base, artifacts, viewport={"width": 1280, "height": 1000})
        s.go("/login")
        s.page.fill("input[name=username]", "dev")
        s.page.fill("input[name=password]", PASSWORD)
        s.page.click("#login-form button[type=submit]")
        s.page.wait_for_url(base + "/")
        s.go(f"/applications/{app_id}")
        box = s.page.inner_text("#dropped-datasets")
        assert "企业用电量" in box and "用电数据不同意提供" in box and "经信局" in box
        s.shot("partial-consent-applicant")
        s.close()
