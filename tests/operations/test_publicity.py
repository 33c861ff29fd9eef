"""Public notices (公示) and objections, on SQLite and PostgreSQL: dismissed objections let the
notice run on, upheld ones send the application back to review (a new round) or reject it; the
sweep approves a notice whose period is over only when no objection is open."""

from __future__ import annotations

from datetime import timedelta

import pytest

from countylab.errors import Conflict, PermissionDenied, ValidationFailed
from countylab.notify.messages import aware
from countylab.operations import publicity, workflow
from countylab.storage.workflow_models import PublicNotice
from tests.operations.conftest import World
from tests.operations.workflow_helpers import decide, kinds_open, now, precheck, status, submitted


def _on_notice(world: World, title: str = "农作物估产模型") -> tuple[int, int]:
    app_id = submitted(world, datasets=("crops",), title=title, key=title)
    precheck(world, app_id)
    decide(world, app_id, "consent", "agri")
    decide(world, app_id, "security", "steward")
    assert status(world, app_id) == "publicising"
    with world.lab.read() as s:
        notice = publicity.notice_of(s, app_id)
        assert notice is not None
        return app_id, notice.id


def _object(world: World, notice_id: int, by: str = "checker", reason: str = "担心数据被用于营销") -> int:
    with world.lab.tx() as s:
        return publicity.file_objection(s, world.principal(by), notice_id, reason, now=now(world)).id


def _answer(world: World, objection_id: int, outcome: str, by: str = "operator") -> None:
    with world.lab.tx() as s:
        publicity.answer_objection(s, world.principal(by), objection_id, outcome, "已核实", now=now(world))


def _ends(world: World, notice_id: int) -> None:
    with world.lab.read() as s:
        row = s.get(PublicNotice, notice_id)
        assert row is not None
        ends = aware(row.ends_at)
    world.lab.clock = lambda: ends + timedelta(minutes=1)


def test_upheld_objection_sends_back_to_review_in_a_new_round(world: World) -> None:
    app_id, notice_id = _on_notice(world)
    obj = _object(world, notice_id)
    with pytest.raises(PermissionDenied):
        _answer(world, obj, "in_review", by="steward")  # only the operator answers
    _answer(world, obj, "in_review")
    assert status(world, app_id) == "in_review"
    assert kinds_open(world, app_id) == ["consent"]  # round 2 starts from the configured path
    with world.lab.read() as s:
        assert {st.round for st in workflow.steps_of(s, app_id)} == {1, 2}
        assert publicity.public_notices(s, now=now(world)) == []  # withdrawn from the public page
    with pytest.raises(Conflict):
        _answer(world, obj, "continue")  # answered once


def test_dismissed_objection_notice_continues_and_sweep_waits_for_open_ones(world: World) -> None:
    app_id, notice_id = _on_notice(world)
    first = _object(world, notice_id)
    second = _object(world, notice_id, by="dev2", reason="请说明模型是否识别到个人")
    _answer(world, first, "continue")
    with world.lab.read() as s:
        shown = publicity.public_notices(s, now=now(world))
    assert [n.objections_open for n in shown] == [1]
    _ends(world, notice_id)
    with world.lab.tx() as s:
        assert publicity.sweep(s, now=now(world))["approved"] == 0  # an objection is still open
    with world.lab.tx() as s, pytest.raises(Conflict):
        publicity.conclude(s, world.principal("operator"), notice_id, now=now(world))
    with pytest.raises(Conflict):  # the period is over: no new objection
        _object(world, notice_id)
    _answer(world, second, "continue")
    with world.lab.tx() as s:
        assert publicity.sweep(s, now=now(world))["approved"] == 1
    assert status(world, app_id) == "approved"
    with world.lab.read() as s:
        assert [n.status for n in publicity.recent_notices(s)] == ["ended"]


def test_upheld_objection_can_reject_and_objections_need_a_reason(world: World) -> None:
    app_id, notice_id = _on_notice(world)
    with pytest.raises(ValidationFailed):
        _object(world, notice_id, reason="不")
    obj = _object(world, notice_id)
    _answer(world, obj, "rejected")
    assert status(world, app_id) == "rejected"


def test_notice_names_no_person(world: World) -> None:
    _, notice_id = _on_notice(world, title="养殖补贴测算")
    with world.lab.read() as s:
        n = publicity.public_notice(s, notice_id)
    text = repr(n)
    for name in ("dev", "agri", "steward", "operator"):
        assert f"'{name}'" not in text
    assert n.organisation == "青禾数智科技有限公司" and n.datasets == ["农作物种植面积"]
