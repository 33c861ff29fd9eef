"""notify.emit: recipients resolved by role/org/project/user, committed or rolled back with the
action, per-user read state, and the words of a notification in both languages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from countylab import notify
from countylab.errors import NotFound
from countylab.identity import projects as prj
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.notify import inbox
from countylab.notify.messages import describe
from countylab.storage.notify_models import Notification, NotificationRecipient
from tests.support import create_user


@pytest.fixture
def lab(any_lab: Lab) -> Lab:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_lab


@pytest.fixture
def people(lab: Lab) -> dict[str, int]:
    users = {
        "checker": create_user(lab, "checker", ["checker"], org="县民政局"),
        "checker_in_project": create_user(lab, "checker2", ["checker"], org="县民政局"),
        "provider": create_user(lab, "provider", ["provider"], org="县民政局"),
        "provider_other": create_user(lab, "provider2", ["provider"], org="县卫健委"),
        "dev": create_user(lab, "dev", ["developer"], org="公司"),
        "steward": create_user(lab, "steward", ["steward"], org="县大数据局"),
        "gone": create_user(lab, "gone", ["checker"], org="县民政局"),
    }
    with lab.tx() as s:
        dev = ids.principal_for(s, ids.get_user(s, users["dev"]), "system")
        project = prj.create_project(s, dev, slug="p1", title="养老需求")
        prj.add_member(s, dev, project.id, username="checker2")
        ids.set_active(s, SYSTEM, users["gone"], False)
        users["project"] = project.id
    return users


def _recipients(lab: Lab, nid: int) -> set[int]:
    with lab.read() as s:
        return set(
            s.execute(
                select(NotificationRecipient.user_id).where(NotificationRecipient.notification_id == nid)
            ).scalars()
        )


def test_recipients_by_role_org_project_and_user(lab: Lab, people: dict[str, int]) -> None:
    with lab.tx() as s:
        checkers = notify.emit(
            s,
            "release.submitted",
            recipients=notify.to_roles("checker", exclude_project=people["project"]),
            target="release:1",
            title="t",
            project="p",
        ).id
        providers = notify.emit(
            s,
            "connector.failed",
            recipients=notify.to_roles("provider", org_id=lab_org(lab, "县民政局")),
            target="connector:1",
        ).id
        project = notify.emit(
            s, "job.succeeded", recipients=notify.to_project(people["project"]), target="job:1"
        ).id
        own = notify.emit(
            s,
            "job.succeeded",
            recipients=notify.to_users(people["dev"], people["steward"]),
            target="job:2",
            actor_id=people["steward"],
        ).id
    # independent review: not the project's own checker; inactive users receive nothing
    assert _recipients(lab, checkers) == {people["checker"]}
    assert _recipients(lab, providers) == {people["provider"]}
    assert _recipients(lab, project) == {people["dev"], people["checker_in_project"]}
    assert _recipients(lab, own) == {people["dev"]}  # the actor never notifies themselves


def lab_org(lab: Lab, name: str) -> int:
    from countylab.storage.models import Org

    with lab.read() as s:
        return int(s.execute(select(Org.id).where(Org.name == name)).scalar_one())


def test_a_notification_commits_or_rolls_back_with_its_action(lab: Lab, people: dict[str, int]) -> None:
    class Refused(Exception):
        pass

    with pytest.raises(Refused), lab.tx() as s:
        notify.emit(s, "job.failed", recipients=notify.to_users(people["dev"]), target="job:9", name="x")
        raise Refused  # the action fails after emitting: nothing may remain
    with lab.read() as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
        assert inbox.unread_count(s, people["dev"]) == 0
    with lab.tx() as s:
        notify.emit(s, "job.failed", recipients=notify.to_users(people["dev"]), target="job:9", name="x")
    with lab.read() as s:
        assert inbox.unread_count(s, people["dev"]) == 1
        [item] = inbox.items(s, people["dev"])
    assert item.link == "/jobs/9" and item.read_at is None


def test_read_state_is_per_user_and_idempotent(lab: Lab, people: dict[str, int]) -> None:
    with lab.tx() as s:
        for i in range(3):
            notify.emit(
                s,
                "job.succeeded",
                recipients=notify.to_users(people["dev"], people["steward"]),
                target=f"job:{i + 1}",
                name=f"作业{i}",
            )
        dev = ids.principal_for(s, ids.get_user(s, people["dev"]), "session")
        steward = ids.principal_for(s, ids.get_user(s, people["steward"]), "session")
    with lab.read() as s:
        first = inbox.items(s, people["dev"])[-1].id
    with lab.tx() as s:
        assert inbox.mark_read(s, dev, first) is True
        assert inbox.mark_read(s, dev, first) is False  # again: unchanged
    with lab.read() as s:
        assert inbox.unread_count(s, people["dev"]) == 2
        assert inbox.unread_count(s, people["steward"]) == 3  # someone else's read state is theirs
        assert len(inbox.items(s, people["dev"], unread_only=True)) == 2
    with lab.tx() as s:
        assert inbox.mark_all_read(s, steward) == 3
    with lab.read() as s:
        assert inbox.unread_count(s, people["steward"]) == 0
    # someone else's notification is unknown to you (ids reveal nothing)
    other = create_user(lab, "other", ["developer"])
    with lab.tx() as s:
        p = ids.principal_for(s, ids.get_user(s, other), "session")
        with pytest.raises(NotFound):
            inbox.mark_read(s, p, first)


def test_words_in_both_languages_and_missing_facts() -> None:
    facts = {"title": "养老需求统计", "project": "养老", "grade": {"zh-CN": "一般3级", "en": "general 3"}}
    assert describe("release.submitted", facts, "zh-CN") == "出域申请「养老需求统计」待审核（项目：养老）"
    assert describe("release.submitted", facts, "en").startswith(
        "Release request “养老需求统计” awaits review"
    )
    assert "一般3级" in describe("grade.to_confirm", {"title": "x", **facts}, "zh-CN")
    assert "general 3" in describe("grade.to_confirm", {"title": "x", **facts}, "en")
    assert describe("release.returned", {}, "zh-CN") == "出域申请「—」已退回，请修改后重新提交"
    assert describe("no.such.kind", {}, "en") == "no.such.kind"


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20) | st.integers(), max_size=5))
def test_any_facts_render_without_error(facts: dict[str, object]) -> None:
    for kind in ("release.submitted", "job.failed", "budget.topup_requested", "connector.failed"):
        for lang in ("zh-CN", "en"):
            assert isinstance(describe(kind, facts, lang), str)
