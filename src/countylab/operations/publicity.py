"""The public notice (公示) after the last approval, objections (异议), and the sweep that ends
notices and reminds about overdue steps.

A notice shows on ``/public/notices`` without login, so what it says is chosen here, once:
the application's title and number, the applicant *organisation*, the scenario, the datasets'
titles, the channels and the term, never a person's name.  Anyone logged in may object with a
reason; the operator answers: dismissed (the notice runs on) or upheld (back to review in a new
round, or rejected).  When the period is over and no objection is open the application becomes
``approved``, by the elected :class:`WorkflowSweep` or by the operator's explicit action.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from countylab import audit, notify
from countylab.errors import Conflict, NotFound, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission, Role
from countylab.labels import BEIJING
from countylab.operations import states
from countylab.operations.states import ApplicationStatus
from countylab.periodic import Periodic
from countylab.storage.models import Dataset, Org
from countylab.storage.operations_models import Application, ApplicationDataset, Scenario
from countylab.storage.workflow_models import ApprovalStep, Objection
from countylab.storage.workflow_models import PublicNotice as NoticeRow

CHANNEL_ZH = {"dp_query": "差分隐私查询", "sandbox_job": "沙箱作业", "model_serving": "模型服务"}


@dataclass(frozen=True)
class PublicNotice:
    """What the public may read of one notice (CONTRACT for the portal)."""

    id: int
    application_number: str
    title: str
    organisation: str
    scenario_title: str
    datasets: list[str]
    channels: list[str]  # channel codes (dp_query, sandbox_job, model_serving)
    starts_on: date  # the notice period, Beijing dates
    ends_on: date
    objections_open: int
    term_from: date | None = None  # the term applied for
    term_until: date | None = None
    status: str = "open"  # open | ended | withdrawn


def start_notice(session: Session, app: Application, round_: int, days: int, now: datetime) -> NoticeRow:
    """Open the notice after the last approval (called inside that decision's transaction)."""
    states.move(session, app, ApplicationStatus.publicising, now=now)
    row = NoticeRow(
        application_id=app.id,
        round=round_,
        status="open",
        starts_at=now,
        ends_at=now + timedelta(days=days),
        version=1,
    )
    session.add(row)
    session.flush()
    notify.emit(
        session,
        "workflow.notice_started",
        recipients=notify.to_users(app.applicant_id) | notify.to_roles(Role.operator),
        target=f"application:{app.id}",
        link=f"/public/notices/{row.id}",
        number=app.number,
        title=app.title,
        until=_day(row.ends_at).isoformat(),
    )
    return row


def _day(ts: datetime) -> date:
    return _aware(ts).astimezone(BEIJING).date()


def _aware(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _open_counts(session: Session, notice_ids: list[int]) -> dict[int, int]:
    if not notice_ids:
        return {}
    rows = session.execute(
        select(Objection.notice_id, func.count())
        .where(Objection.notice_id.in_(notice_ids), Objection.status == "open")
        .group_by(Objection.notice_id)
    ).all()
    return {int(n): int(c) for n, c in rows}


def _describe(session: Session, rows: list[NoticeRow]) -> list[PublicNotice]:
    if not rows:
        return []
    apps = {
        a.id: a
        for a in session.execute(
            select(Application).where(Application.id.in_([r.application_id for r in rows]))
        ).scalars()
    }
    orgs = {
        o.id: o.name
        for o in session.execute(select(Org).where(Org.id.in_({a.org_id for a in apps.values()}))).scalars()
    }
    scen = {
        s.id: s.title
        for s in session.execute(
            select(Scenario).where(Scenario.id.in_({a.scenario_id for a in apps.values()}))
        ).scalars()
    }
    titles: dict[int, list[str]] = {}
    for app_id, title in session.execute(
        select(ApplicationDataset.application_id, Dataset.title)
        .join(Dataset, Dataset.id == ApplicationDataset.dataset_id)
        .where(ApplicationDataset.application_id.in_(list(apps)))
        .order_by(Dataset.id)
    ).all():
        titles.setdefault(int(app_id), []).append(str(title))
    channels = _approved_channels(session, list(apps))
    counts = _open_counts(session, [r.id for r in rows])
    out = []
    for r in rows:
        a = apps[r.application_id]
        out.append(
            PublicNotice(
                id=r.id,
                application_number=a.number,
                title=a.title,
                organisation=orgs.get(a.org_id, ""),
                scenario_title=scen.get(a.scenario_id, ""),
                datasets=titles.get(a.id, []),
                channels=channels.get(a.id, list(a.channels or [])),
                starts_on=_day(r.starts_at),
                ends_on=_day(r.ends_at),
                objections_open=counts.get(r.id, 0),
                term_from=a.starts_on,
                term_until=a.ends_on,
                status=r.status,
            )
        )
    return out


def _approved_channels(session: Session, app_ids: list[int]) -> dict[int, list[str]]:
    """The channels the security officer kept (the notice shows what would be granted)."""
    found: dict[int, list[str]] = {}
    for step in session.execute(
        select(ApprovalStep)
        .where(
            ApprovalStep.application_id.in_(app_ids),
            ApprovalStep.kind == "security",
            ApprovalStep.status == "approved",
        )
        .order_by(ApprovalStep.round)
    ).scalars():
        chans = (step.details or {}).get("channels")
        if chans:
            found[step.application_id] = list(chans)
    return found


def public_notices(session: Session, *, now: datetime, limit: int | None = None) -> list[PublicNotice]:
    """The notices running now (open, period not over), newest first."""
    q = (
        select(NoticeRow)
        .join(Application, Application.id == NoticeRow.application_id)
        .where(NoticeRow.status == "open", Application.status == ApplicationStatus.publicising.value)
        .order_by(NoticeRow.starts_at.desc(), NoticeRow.id.desc())
    )
    if limit is not None:
        q = q.limit(limit)
    return _describe(session, list(session.execute(q).scalars()))


def recent_notices(session: Session, *, limit: int = 20) -> list[PublicNotice]:
    """Notices that ended (for the public archive below the running ones)."""
    q = select(NoticeRow).where(NoticeRow.status == "ended").order_by(NoticeRow.closed_at.desc()).limit(limit)
    return _describe(session, list(session.execute(q).scalars()))


def public_notice(session: Session, notice_id: int) -> PublicNotice:
    row = session.get(NoticeRow, notice_id)
    if row is None or row.status == "withdrawn":
        raise NotFound(f"没有编号为 {notice_id} 的公示", f"no public notice {notice_id}")
    return _describe(session, [row])[0]


def notice_of(session: Session, application_id: int) -> NoticeRow | None:
    return session.execute(
        select(NoticeRow)
        .where(NoticeRow.application_id == application_id)
        .order_by(NoticeRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def objections_of(session: Session, notice_id: int) -> list[Objection]:
    return list(
        session.execute(
            select(Objection).where(Objection.notice_id == notice_id).order_by(Objection.id)
        ).scalars()
    )


# -- objections --------------------------------------------------------------------------------


def file_objection(
    session: Session, principal: Principal, notice_id: int, reason: str, *, now: datetime
) -> Objection:
    authorize(principal, Permission.objection_file, target=f"notice:{notice_id}")
    row = session.get(NoticeRow, notice_id)
    if row is None:
        raise NotFound(f"没有编号为 {notice_id} 的公示", f"no public notice {notice_id}")
    if row.status != "open" or now >= _aware(row.ends_at):
        raise Conflict(
            "公示期已结束，不能再提出异议",
            "the notice period is over; objections are closed",
            reason="notice_closed",
        )
    text = (reason or "").strip()
    if len(text) < 5:
        raise ValidationFailed(
            "请写明异议理由（至少 5 个字）",
            "give the reason of the objection (5 characters or more)",
            field="reason",
        )
    if len(text) > 4000:
        raise ValidationFailed(
            "异议理由不能超过 4000 字", "the reason may be at most 4000 characters", field="reason"
        )
    obj = Objection(
        notice_id=row.id,
        filed_by=principal.user_id,
        reason=text,
        filed_at=now,
        status="open",
        answer="",
        outcome="",
        version=1,
    )
    session.add(obj)
    session.flush()
    app = session.get(Application, row.application_id)
    assert app is not None
    audit.record(
        session,
        principal,
        "objection.file",
        f"application:{app.id}",
        notice=row.id,
        objection=obj.id,
        number=app.number,
    )
    notify.emit(
        session,
        "workflow.objection_filed",
        recipients=notify.to_roles(Role.operator),
        target=f"application:{app.id}",
        link="/reviews",
        actor_id=principal.user_id,
        number=app.number,
        title=app.title,
    )
    return obj


def answer_objection(
    session: Session, principal: Principal, objection_id: int, outcome: str, answer: str, *, now: datetime
) -> Objection:
    """dismissed (``continue``) or upheld (``in_review``: a new review round; ``rejected``)."""
    authorize(principal, Permission.objection_answer, target=f"objection:{objection_id}")
    obj = session.get(Objection, objection_id)
    if obj is None:
        raise NotFound(f"没有编号为 {objection_id} 的异议", f"no objection {objection_id}")
    if outcome not in ("continue", "in_review", "rejected"):
        raise ValidationFailed(
            "处理结果只能是 continue、in_review 或 rejected",
            "outcome must be continue, in_review or rejected",
            field="outcome",
        )
    text = (answer or "").strip()
    if not text:
        raise ValidationFailed("请写明答复", "write the answer", field="answer", reason="required")
    done = session.execute(
        update(Objection)
        .where(Objection.id == obj.id, Objection.version == obj.version, Objection.status == "open")
        .values(
            status="dismissed" if outcome == "continue" else "upheld",
            outcome=outcome,
            answer=text,
            answered_by=principal.user_id,
            answered_at=now,
            version=obj.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("该异议已答复", "this objection was already answered", reason="already_decided")
    session.refresh(obj)
    notice = session.get(NoticeRow, obj.notice_id)
    assert notice is not None
    app = session.get(Application, notice.application_id)
    assert app is not None
    if outcome != "continue":
        _close_notice(session, notice, "withdrawn", now)
        session.execute(
            update(Objection)
            .where(Objection.notice_id == notice.id, Objection.status == "open")
            .values(
                status="upheld", outcome=outcome, answer=text, answered_by=principal.user_id, answered_at=now
            )
            .execution_options(synchronize_session=False)
        )
        if outcome == "rejected":
            states.move(session, app, ApplicationStatus.rejected, reason=text, now=now)
        else:
            from countylab.operations import workflow  # a new review round from the configuration

            states.move(session, app, ApplicationStatus.in_review, reason=text, now=now)
            config = workflow.config_of(session, app)
            workflow._open_round(
                session,
                app,
                workflow.last_round(session, app.id) + 1,
                config,
                now,
                actor_id=principal.user_id,
            )
    audit.record(
        session,
        principal,
        "objection.answer",
        f"application:{app.id}",
        objection=obj.id,
        outcome=outcome,
        answer=text,
        number=app.number,
    )
    notify.emit(
        session,
        "workflow.objection_answered",
        recipients=notify.to_users(obj.filed_by, app.applicant_id),
        target=f"application:{app.id}",
        link=f"/public/notices/{notice.id}",
        actor_id=principal.user_id,
        number=app.number,
        title=app.title,
        outcome={"zh-CN": _OUTCOME_ZH[outcome], "en": outcome},
    )
    return obj


_OUTCOME_ZH = {"continue": "不成立，公示继续", "in_review": "成立，重新审查", "rejected": "成立，不予批准"}


def _close_notice(session: Session, notice: NoticeRow, status: str, now: datetime) -> None:
    done = session.execute(
        update(NoticeRow)
        .where(NoticeRow.id == notice.id, NoticeRow.version == notice.version, NoticeRow.status == "open")
        .values(status=status, closed_at=now, version=notice.version + 1)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("该公示已结束", "this notice has already ended", reason="already_decided")
    session.refresh(notice)


def conclude(session: Session, principal: Principal | None, notice_id: int, *, now: datetime) -> Application:
    """End a notice whose period is over with no open objection: the application is approved.

    ``principal`` None is the sweep (the lab itself); the operator may do the same by hand."""
    if principal is not None:
        authorize(principal, Permission.objection_answer, target=f"notice:{notice_id}")
    notice = session.get(NoticeRow, notice_id)
    if notice is None:
        raise NotFound(f"没有编号为 {notice_id} 的公示", f"no public notice {notice_id}")
    app = session.get(Application, notice.application_id)
    assert app is not None
    if notice.status != "open":
        raise Conflict("该公示已结束", "this notice has already ended", reason="already_decided")
    if now < _aware(notice.ends_at):
        raise Conflict(
            f"公示期至 {_day(notice.ends_at).isoformat()} 结束，尚未届满",
            f"the notice runs until {_day(notice.ends_at).isoformat()}; it is not over yet",
            reason="not_over",
        )
    open_count = _open_counts(session, [notice.id]).get(notice.id, 0)
    if open_count:
        raise Conflict(
            f"还有 {open_count} 件异议未答复，公示不能结束",
            f"{open_count} objection(s) are still open",
            reason="objections_open",
        )
    _close_notice(session, notice, "ended", now)
    states.move(session, app, ApplicationStatus.approved, reason="公示期满无异议", now=now)
    audit.record(
        session,
        principal,
        "application.approve",
        f"application:{app.id}",
        notice=notice.id,
        number=app.number,
    )
    notify.emit(
        session,
        "workflow.approved",
        recipients=notify.to_users(app.applicant_id) | notify.to_roles(Role.operator),
        target=f"application:{app.id}",
        link=f"/applications/{app.id}",
        number=app.number,
        title=app.title,
    )
    return app


# -- the sweep ---------------------------------------------------------------------------------


def sweep(session: Session, *, now: datetime) -> dict[str, int]:
    """One pass: remind once about every step that became overdue, and end finished notices."""
    from countylab.operations.workflow import STEP_ROLE, STEP_ZH

    reminded = 0
    overdue = session.execute(
        select(ApprovalStep, Application)
        .join(Application, Application.id == ApprovalStep.application_id)
        .where(
            ApprovalStep.status == "open",
            ApprovalStep.due_at < now,
            ApprovalStep.reminded_at.is_(None),
            Application.status == ApplicationStatus.in_review.value,
        )
    ).all()
    for step, app in overdue:
        step.reminded_at = now
        role = STEP_ROLE[step.kind]
        who = notify.to_roles(role, org_id=step.org_id) if step.kind == "consent" else notify.to_roles(role)
        if step.kind == "expert":
            from countylab.operations.workflow import experts_of

            pending = [e.user_id for e in experts_of(session, step.id) if e.decision is None]
            who = notify.to_users(*pending) | notify.to_roles(Role.operator)
        notify.emit(
            session,
            "workflow.overdue",
            recipients=who,
            target=f"application:{app.id}",
            link="/reviews",
            number=app.number,
            title=app.title,
            step={"zh-CN": STEP_ZH[step.kind], "en": step.kind},
        )
        audit.record(
            session,
            None,
            "application.overdue",
            f"application:{app.id}",
            step=step.id,
            kind=step.kind,
            number=app.number,
        )
        reminded += 1
    ended = 0
    for notice in (
        session.execute(
            select(NoticeRow)
            .where(NoticeRow.status == "open", NoticeRow.ends_at <= now)
            .order_by(NoticeRow.id)
        )
        .scalars()
        .all()
    ):
        if _open_counts(session, [notice.id]).get(notice.id, 0):
            continue
        conclude(session, None, notice.id, now=now)
        ended += 1
    session.flush()
    return {"reminded": reminded, "approved": ended}


class WorkflowSweep(Periodic):
    """The elected background pass of :func:`sweep` (one lab process runs it)."""

    thread_name = "countylab-workflow-sweep"

    def __init__(
        self,
        tx: Callable[[], AbstractContextManager[Session]],
        clock: Callable[[], datetime],
        interval_s: float = 60.0,
    ) -> None:
        super().__init__()
        self._tx, self._clock, self._interval_s = tx, clock, interval_s

    def run_once(self) -> dict[str, int]:
        with self._tx() as s:
            return sweep(s, now=self._clock())

    def interval_s_now(self) -> float:
        return self._interval_s
