"""Data-use applications from the applicant's side, with every refusal of the issue's bad-input
list (SQLite and PostgreSQL): each names the field, dataset or person and leaves nothing behind."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pypdfium2
import pytest
from sqlalchemy import func, select

from countylab.errors import Conflict, PermissionDenied, ValidationFailed
from countylab.operations import applications as apps
from countylab.operations import attachments
from countylab.operations import scenarios as sv
from countylab.operations.applications import COMMITMENTS, ApplicationInput, RequestedDataset
from countylab.operations.scenarios import Offer, ScenarioInput
from countylab.operations.states import ApplicationStatus, move
from countylab.storage.models import AuditEvent
from countylab.storage.operations_models import Application, ApplicationAttachment
from tests.operations.conftest import World


def _full(w: World, sid: int, **over: object) -> ApplicationInput:
    base = ApplicationInput(
        scenario_id=sid,
        title="养老需求预测",
        purpose="public_good",
        datasets=(RequestedDataset(w.datasets["elderly"], ("town", "age")),),
        channels=("dp_query", "sandbox_job"),
        member_ids=(w.users["researcher"],),
        starts_on=w.today + timedelta(days=7),
        ends_on=w.today + timedelta(days=372),
        expected_outputs="分乡镇需求预测表",
        commitments=tuple(COMMITMENTS),
    )
    return replace(base, **over)  # type: ignore[arg-type]


def _pdf(pages: int = 2) -> bytes:
    doc = pypdfium2.PdfDocument.new()
    for _ in range(pages):
        doc.new_page(595, 842)
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()


def _count(w: World) -> int:
    with w.lab.read() as s:
        return int(s.execute(select(func.count()).select_from(Application)).scalar_one())


def test_draft_submit_return_resubmit_withdraw(world: World) -> None:
    sid = world.scenario()
    dev = world.principal("dev")
    with world.lab.tx() as s:
        app = apps.create(s, dev, _full(world, sid, commitments=()), today=world.today)
        assert app.number == f"SQ-{world.today.year}-0001" and app.status == "draft"
        aid = app.id
    with world.lab.read() as s:
        app = s.get(Application, aid)
        assert app is not None
        assert "承诺书" in apps.problems(s, app, world.today)[0]
    with pytest.raises(ValidationFailed) as err, world.lab.tx() as s:
        apps.submit(s, dev, aid, today=world.today)
    assert err.value.details["field"] == "commitments"
    with world.lab.tx() as s:
        apps.update(s, dev, aid, _full(world, sid), today=world.today)
        app = apps.submit(s, dev, aid, today=world.today)
        assert app.status == "submitted" and app.commitments["by"] == world.users["dev"]
    # editing a submitted application is refused
    with pytest.raises(Conflict) as c, world.lab.tx() as s:
        apps.update(s, dev, aid, _full(world, sid, title="改"), today=world.today)
    assert "SQ-" in c.value.message_zh and "only drafts" in c.value.message_en
    # the operator returns it (engineer B does this through states.move)
    with world.lab.tx() as s:
        app = s.get(Application, aid)
        assert app is not None
        move(s, app, ApplicationStatus.returned, reason="请补充附件")
    with world.lab.tx() as s:
        apps.update(s, dev, aid, _full(world, sid, title="养老需求预测（修改）"), today=world.today)
        assert apps.submit(s, dev, aid, today=world.today).status == "submitted"
        assert apps.withdraw(s, dev, aid, "不再需要").status == "withdrawn"
    with world.lab.read() as s:
        actions = [
            (a.action, json.loads(a.details).get("number")) for a in s.execute(select(AuditEvent)).scalars()
        ]
    number = f"SQ-{world.today.year}-0001"
    for action in (
        "application.create",
        "application.submit",
        "application.resubmit",
        "application.withdraw",
    ):
        assert (action, number) in actions


@pytest.mark.parametrize(
    "case",
    ["not_offered", "core_external", "column", "term_long", "term_past", "bad_channel"],
)
def test_bad_input_names_what_is_wrong_and_leaves_nothing(sqlite_world: World, case: str) -> None:
    w = sqlite_world
    sid = w.scenario(datasets=("elderly", "assistance"), columns={"elderly": ("town", "age")})
    over: dict[str, object] = {
        "not_offered": {"datasets": (RequestedDataset(w.datasets["crops"]),)},
        "core_external": {"datasets": (RequestedDataset(w.datasets["assistance"]),)},
        "column": {"datasets": (RequestedDataset(w.datasets["elderly"], ("town", "care_level")),)},
        "term_long": {"ends_on": w.today + timedelta(days=7 + 800)},
        "term_past": {"starts_on": w.today - timedelta(days=1)},
        "bad_channel": {"channels": ("download",)},
    }[case]  # type: ignore[assignment]
    names = {
        "not_offered": "农作物种植面积",
        "core_external": "低保救助对象",
        "column": "care_level",
        "term_long": "两年",
        "term_past": "过去",
        "bad_channel": "download",
    }
    before = _count(w)
    with pytest.raises(ValidationFailed) as err, w.lab.tx() as s:
        apps.create(s, w.principal("dev"), _full(w, sid, **over), today=w.today)
    assert names[case] in err.value.message_zh
    assert err.value.message_en and err.value.message_en != err.value.message_zh
    assert _count(w) == before


def test_core_data_is_fine_in_the_domain(sqlite_world: World) -> None:
    w = sqlite_world
    sid = w.scenario(datasets=("assistance",))
    with w.lab.tx() as s:
        app = apps.create(
            s,
            w.principal("gov_dev"),
            _full(w, sid, datasets=(RequestedDataset(w.datasets["assistance"]),), member_ids=()),
            today=w.today,
        )
        assert app.org_id == w.orgs["民政局"]


def test_window_closed_and_scenario_not_accepted(sqlite_world: World) -> None:
    w = sqlite_world
    dev = w.principal("dev")
    sid = w.scenario(until_days=3)
    with w.lab.tx() as s:
        aid = apps.create(s, dev, _full(w, sid), today=w.today).id
    later = w.today + timedelta(days=5)
    with pytest.raises(ValidationFailed) as err, w.lab.tx() as s:
        apps.submit(s, dev, aid, today=later)
    assert "征集期" in err.value.message_zh and err.value.details["field"] == "scenario_id"
    # propose my own: a draft may wait, submitting waits for the operator
    with w.lab.tx() as s:
        own = sv.propose(
            s,
            dev,
            ScenarioInput(
                "自拟：养老床位", "床位紧张", None, "elderly_care", (Offer(w.datasets["elderly"]),)
            ),
        )
        aid2 = apps.create(s, dev, _full(w, own.id), today=w.today).id
        oid = own.id
    with pytest.raises(ValidationFailed) as err, w.lab.tx() as s:
        apps.submit(s, dev, aid2, today=w.today)
    assert "尚未被运营方受理" in err.value.message_zh
    with w.lab.tx() as s:
        sv.accept(s, w.principal("operator"), oid, "同意")
        assert apps.submit(s, dev, aid2, today=w.today).status == "submitted"


def test_member_without_accreditation_is_flagged_then_refused(sqlite_world: World) -> None:
    w = sqlite_world
    sid = w.scenario()
    dev = w.principal("dev")
    with w.lab.tx() as s:
        aid = apps.create(
            s, dev, _full(w, sid, member_ids=(w.users["dev2"], w.users["dev3"])), today=w.today
        ).id
    with pytest.raises(PermissionDenied) as err, w.lab.tx() as s:
        apps.submit(s, dev, aid, today=w.today)
    zh, en = err.value.message_zh, err.value.message_en
    assert "李二" in zh and "过期" in zh and "赵三" in zh and "无培训合格记录" in zh
    assert "expired on" in en and "none on record" in en.replace(
        "no accreditation on record", "none on record"
    )
    with w.lab.read() as s:
        assert s.get(Application, aid).status == "draft"  # type: ignore[union-attr]


def test_who_may_read(sqlite_world: World) -> None:
    w = sqlite_world
    sid = w.scenario()
    with w.lab.tx() as s:
        aid = apps.create(s, w.principal("dev"), _full(w, sid), today=w.today).id
    readers = ["dev", "dev2", "researcher", "operator", "steward", "leader", "admin"]
    for name in readers:
        with w.lab.read() as s:
            apps.get(s, w.principal(name), aid)
    for name in ["agri", "checker", "gov_dev", "civil", "expert"]:  # civil: a draft is not theirs yet
        with pytest.raises(PermissionDenied), w.lab.read() as s:
            apps.get(s, w.principal(name), aid)
    with w.lab.tx() as s:
        apps.submit(s, w.principal("dev"), aid, today=w.today)
    with w.lab.read() as s:
        apps.get(s, w.principal("civil"), aid)  # the owning department, once submitted


def test_attachments_real_pdf_only(sqlite_world: World, tmp_path: Path) -> None:
    w = sqlite_world
    sid = w.scenario()
    dev = w.principal("dev")
    data = w.lab.settings.data_dir
    with w.lab.tx() as s:
        aid = apps.create(s, dev, _full(w, sid), today=w.today).id
        att = attachments.attach(s, dev, aid, filename="../方案.pdf", content=_pdf(3), data_dir=data)
        assert att.filename == "方案.pdf" and len(att.sha256) == 64
        assert (data / att.stored_as).read_bytes()[:5] == b"%PDF-"
    for content, word in ((b"PK\x03\x04 docx", "%PDF-"), (b"%PDF-1.7\n garbage", "损坏")):
        with pytest.raises(ValidationFailed) as err, w.lab.tx() as s:
            attachments.attach(s, dev, aid, filename="x.pdf", content=content, data_dir=data)
        assert word in err.value.message_zh
    with w.lab.read() as s:
        assert s.execute(select(func.count()).select_from(ApplicationAttachment)).scalar_one() == 1
        _, _, path = attachments.open_for(s, w.principal("operator"), aid, att.id, data)
        assert path.is_file()
        with pytest.raises(PermissionDenied):
            attachments.open_for(s, w.principal("agri"), aid, att.id, data)


def test_numbers_have_no_gaps_under_concurrency(world: World) -> None:
    sid = world.scenario()
    dev = world.principal("dev")

    def one(i: int) -> str:
        for _ in range(20):
            try:
                with world.lab.tx() as s:
                    return apps.create(s, dev, _full(world, sid, title=f"并发 {i}"), today=world.today).number
            except Exception as exc:  # SQLite: database is locked under contention; retry like a user
                if "locked" not in str(exc):
                    raise
        raise AssertionError("never got a number")

    with ThreadPoolExecutor(6) as pool:
        numbers = sorted(pool.map(one, range(6)))
    assert numbers == [f"SQ-{world.today.year}-{n:04d}" for n in range(1, 7)]


def test_renewal_prefills_from_an_authorised_application(sqlite_world: World) -> None:
    w = sqlite_world
    sid = w.scenario()
    dev = w.principal("dev")
    with w.lab.tx() as s:
        aid = apps.create(s, dev, _full(w, sid), today=w.today).id
        with pytest.raises(Conflict):
            apps.start_renewal(s, dev, aid)
        app = s.get(Application, aid)
        assert app is not None
        app.status = "authorised"  # the workflow's end state (engineers B/C get it there)
    with w.lab.tx() as s:
        new = apps.start_renewal(s, dev, aid, today=w.today)
        assert new.renewal_of == aid and new.status == "draft" and new.title.endswith("（续期）")
        assert apps.dataset_ids(s, new.id) == [w.datasets["elderly"]]
        assert sorted(apps.member_ids(s, new.id)) == sorted([w.users["dev"], w.users["researcher"]])
        assert new.starts_on == (app.ends_on or w.today) + timedelta(days=1)
        assert new.commitments == {}
