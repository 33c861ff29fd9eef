"""The one check every use of a project's data passes (无场景不授权): DP queries, sandbox jobs and
model predictions call :func:`check` before anything runs.

Why one function: an authorisation that ended, was suspended or revoked must stop every channel
at once, with the same words, so the three entry points cannot drift apart.  It refuses

* a project whose authorisation is not in force (naming the application, the agreement and the
  date it ended or the reason it was stopped);
* a member without a current accreditation (培训合格);
* a dataset whose grant does not include the channel, or whose emergency grant has ended;

and returns the approved columns of each dataset (None: every column), which the DP gateway uses
to refuse queries naming any other column.  Projects without an authorisation (the lab's own
system grants, emergency grants, grants made before the operations platform) keep working as
before, except that an emergency grant stops at its end date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.errors import PermissionDenied
from countylab.operations.agreement_terms import CHANNEL_EN, CHANNEL_ZH
from countylab.operations.terms import Channel
from countylab.storage.authorisation_models import Agreement, Authorisation, GrantTerms
from countylab.storage.models import Dataset, Grant
from countylab.storage.operations_models import Application

_BEIJING = ZoneInfo("Asia/Shanghai")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


C = TypeVar("C", bound=_Named)


def beijing_today(now: datetime) -> date:
    """Terms are agreed in Beijing dates: an authorisation ending on 6 月 30 日 works that whole day."""
    return now.astimezone(_BEIJING).date()


@dataclass(frozen=True)
class Allowed:
    """What a check admitted: the authorisation (None: a project without one) and the approved
    columns by dataset id (None: every column)."""

    authorisation_id: int | None
    columns: dict[int, frozenset[str] | None]


def _refuse(zh: str, en: str, *, reason: str, project_id: int, **details: object) -> PermissionDenied:
    return PermissionDenied(zh, en, reason=reason, target=f"project:{project_id}", **details)


def check(
    session: Session,
    project_id: int,
    channel: Channel,
    dataset_ids: Iterable[int],
    *,
    now: datetime,
    user_id: int | None,
) -> Allowed:
    today = beijing_today(now)
    auth = session.execute(
        select(Authorisation).where(Authorisation.project_id == project_id)
    ).scalar_one_or_none()
    if auth is not None:
        _in_force(session, auth, today)
        if channel.value not in auth.channels:
            raise _refuse(
                f"本项目的授权不含“{CHANNEL_ZH[channel]}”方式",
                f"The project's authorisation does not include {CHANNEL_EN[channel]}",
                reason="channel",
                project_id=project_id,
                channel=channel.value,
            )
        if user_id is not None:
            from countylab.operations import accreditation

            if accreditation.current(session, user_id, today) is None:
                last = accreditation.latest(session, user_id)
                when = f"已于 {last.expires_on} 过期" if last else "没有记录"
                raise _refuse(
                    f"您的培训合格{when}，不能使用本项目的数据；请联系运营方登记培训",
                    "Your accreditation "
                    + (f"expired on {last.expires_on}" if last else "is not on record")
                    + ": you may not use this project's data until the operator records current training",
                    reason="accreditation",
                    project_id=project_id,
                )
    columns: dict[int, frozenset[str] | None] = {}
    wanted = list(dict.fromkeys(dataset_ids))
    if wanted:
        rows = session.execute(
            select(Grant.dataset_id, Dataset.title, GrantTerms)
            .join(Dataset, Dataset.id == Grant.dataset_id)
            .outerjoin(GrantTerms, GrantTerms.grant_id == Grant.id)
            .where(Grant.project_id == project_id, Grant.dataset_id.in_(wanted))
        ).all()
        for dataset_id, title, terms in rows:
            if terms is not None and terms.channels is not None and channel.value not in terms.channels:
                raise _refuse(
                    f"数据集“{title}”未授权以“{CHANNEL_ZH[channel]}”方式使用",
                    f"Dataset '{title}' is not authorised for {CHANNEL_EN[channel]}",
                    reason="channel",
                    project_id=project_id,
                    dataset_id=dataset_id,
                    channel=channel.value,
                )
            if terms is not None and terms.kind == "emergency" and terms.ends_on and terms.ends_on < today:
                raise _refuse(
                    f"数据集“{title}”的紧急授权已于 {terms.ends_on} 到期",
                    f"The emergency grant of '{title}' ended on {terms.ends_on}",
                    reason="grant_expired",
                    project_id=project_id,
                    dataset_id=dataset_id,
                )
            cols = terms.columns if terms is not None else None
            columns[dataset_id] = frozenset(cols) if cols is not None else None
    return Allowed(auth.id if auth else None, columns)


def _in_force(session: Session, auth: Authorisation, today: date) -> None:
    app = session.get(Application, auth.latest_application_id)
    agreement = session.get(Agreement, auth.agreement_id)
    names_zh = f"（用数申请 {app.number if app else '?'}，协议 {agreement.number if agreement else '?'}）"
    names_en = (
        f" (application {app.number if app else '?'}, agreement {agreement.number if agreement else '?'})"
    )
    at = auth.status_at.astimezone(_BEIJING).date() if auth.status_at else today
    if auth.status == "active" and today < auth.starts_on:
        raise _refuse(
            f"本项目的授权自 {auth.starts_on} 起生效{names_zh}",
            f"The project's authorisation starts on {auth.starts_on}{names_en}",
            reason="not_started",
            project_id=auth.project_id,
        )
    if auth.status == "expired" or (auth.status == "active" and today > auth.ends_on):
        raise _refuse(
            f"本项目的授权已于 {auth.ends_on} 到期{names_zh}，查询、作业和模型服务均已停止；"
            "如需继续请提出续期申请",
            f"The project's authorisation ended on {auth.ends_on}{names_en}; queries, jobs and model "
            "serving have stopped. Apply for a renewal to continue",
            reason="authorisation_expired",
            project_id=auth.project_id,
            ends_on=auth.ends_on.isoformat(),
        )
    if auth.status == "suspended":
        raise _refuse(
            f"本项目的授权已于 {at} 被数据安全官暂停{names_zh}：{auth.status_reason}",
            f"The project's authorisation was suspended by the security officer on {at}{names_en}: "
            f"{auth.status_reason}",
            reason="authorisation_suspended",
            project_id=auth.project_id,
        )
    if auth.status == "revoked":
        raise _refuse(
            f"本项目的授权已于 {at} 被撤销{names_zh}：{auth.status_reason}",
            f"The project's authorisation was revoked on {at}{names_en}: {auth.status_reason}",
            reason="authorisation_revoked",
            project_id=auth.project_id,
        )


def sandbox_datasets(session: Session, project_id: int) -> dict[int, frozenset[str] | None] | None:
    """Dataset ids a sandbox job may bind, each with its approved columns (None: every column),
    or None when no grant of the project carries terms (the lab's own and older grants).

    Datasets granted without the sandbox channel are left out.  A dataset approved for some
    columns only is bound as a projection holding just those columns
    (:func:`countylab.jobs.granted.bind_projection`), so a job cannot read another one."""
    rows = session.execute(
        select(Grant.dataset_id, GrantTerms)
        .outerjoin(GrantTerms, GrantTerms.grant_id == Grant.id)
        .where(Grant.project_id == project_id)
    ).all()
    if all(t is None for _d, t in rows):
        return None
    return {
        d: (frozenset(t.columns) if t is not None and t.columns is not None else None)
        for d, t in rows
        if t is None or t.channels is None or Channel.sandbox_job.value in t.channels
    }


def approved_columns(
    dataset: Dataset, columns: list[C], approved: frozenset[str] | None, mentioned: set[str]
) -> list[C]:
    """The catalog columns a DP query may see: all of them, or only the approved ones.

    A query that names a column outside the approval is refused with the column named (rather
    than failing later as an unknown column), and the table the engine builds has only the
    approved columns, so no other one can be read even under another spelling."""
    if approved is None:
        return columns
    names = {c.name.lower(): c.name for c in columns}
    outside = sorted(names[n] for n in mentioned & set(names) if names[n] not in approved)
    if outside:
        raise PermissionDenied(
            f"数据集“{dataset.title}”的字段 {'、'.join(outside)} 不在授权范围内",
            f"Column(s) {', '.join(outside)} of '{dataset.name}' are not authorised",
            reason="column",
            dataset_id=dataset.id,
            columns=outside,
        )
    # the privacy unit's identifier stays in the table (the engine bounds each unit's rows with
    # it); naming it in the query is refused above unless it was approved
    unit = dataset.privacy_unit_column if dataset.privacy_unit != "none" else None
    return [c for c in columns if c.name in approved or c.name == unit]
