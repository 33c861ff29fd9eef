"""States of scenarios and data-use applications, and the transitions allowed between them.

One table per state machine: every module that moves an application calls :func:`move`, so a
transition not listed here cannot happen anywhere (docs/explanation/operations.md has the
diagram).  ``move`` also bumps the application's ``version``: two reviewers who read the same
version race on ``UPDATE … WHERE version = :read``, and exactly one wins.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.orm import Session

from countylab.errors import Conflict
from countylab.storage.models import utcnow
from countylab.storage.operations_models import Application


class ScenarioStatus(StrEnum):
    proposed = "proposed"  # 待受理: a developer's own proposal, not yet accepted by the operator
    collecting = "collecting"  # 征集中
    matched = "matched"  # 已对接
    in_progress = "in_progress"  # 实施中
    completed = "completed"  # 已完成
    closed = "closed"  # 已关闭
    rejected = "rejected"  # 未受理 (a proposal the operator declined)


SCENARIO_TRANSITIONS: dict[ScenarioStatus, frozenset[ScenarioStatus]] = {
    ScenarioStatus.proposed: frozenset({ScenarioStatus.collecting, ScenarioStatus.rejected}),
    ScenarioStatus.collecting: frozenset({ScenarioStatus.matched, ScenarioStatus.closed}),
    ScenarioStatus.matched: frozenset(
        {ScenarioStatus.in_progress, ScenarioStatus.collecting, ScenarioStatus.closed}
    ),
    ScenarioStatus.in_progress: frozenset({ScenarioStatus.completed, ScenarioStatus.closed}),
    ScenarioStatus.completed: frozenset(),
    ScenarioStatus.closed: frozenset(),
    ScenarioStatus.rejected: frozenset(),
}


class ApplicationStatus(StrEnum):
    draft = "draft"  # 草稿: the applicant edits it
    submitted = "submitted"  # 已提交: waiting for the operator's materials pre-check
    returned = "returned"  # 已退回: back to the applicant with comments; resubmitting → submitted
    in_review = "in_review"  # 审批中: department consent, security review, expert review, final approval
    publicising = "publicising"  # 公示中: the public notice period, objections may be filed
    approved = "approved"  # 已批准: waiting for the agreement (协议签订)
    signing = "signing"  # 签署中: the agreement is drafted, signatures are being collected
    authorised = "authorised"  # 已授权: signed by both parties, the project works (授权备案)
    rejected = "rejected"  # 未通过
    withdrawn = "withdrawn"  # 已撤回 by the applicant


APPLICATION_TRANSITIONS: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    ApplicationStatus.draft: frozenset({ApplicationStatus.submitted, ApplicationStatus.withdrawn}),
    ApplicationStatus.submitted: frozenset(
        {
            ApplicationStatus.returned,
            ApplicationStatus.in_review,
            ApplicationStatus.rejected,
            ApplicationStatus.withdrawn,
        }
    ),
    ApplicationStatus.returned: frozenset({ApplicationStatus.submitted, ApplicationStatus.withdrawn}),
    ApplicationStatus.in_review: frozenset(
        {
            ApplicationStatus.returned,
            ApplicationStatus.publicising,
            ApplicationStatus.rejected,
            ApplicationStatus.withdrawn,
        }
    ),
    ApplicationStatus.publicising: frozenset(
        {ApplicationStatus.approved, ApplicationStatus.in_review, ApplicationStatus.rejected}
    ),
    ApplicationStatus.approved: frozenset({ApplicationStatus.signing, ApplicationStatus.withdrawn}),
    ApplicationStatus.signing: frozenset({ApplicationStatus.authorised, ApplicationStatus.approved}),
    ApplicationStatus.authorised: frozenset(),
    ApplicationStatus.rejected: frozenset(),
    ApplicationStatus.withdrawn: frozenset(),
}

#: states in which the applicant may still edit the application
EDITABLE = frozenset({ApplicationStatus.draft, ApplicationStatus.returned})
#: states that are over (no further step)
FINAL = frozenset({ApplicationStatus.authorised, ApplicationStatus.rejected, ApplicationStatus.withdrawn})


def may_move(current: str, new: str) -> bool:
    return ApplicationStatus(new) in APPLICATION_TRANSITIONS[ApplicationStatus(current)]


def may_move_scenario(current: str, new: str) -> bool:
    return ScenarioStatus(new) in SCENARIO_TRANSITIONS[ScenarioStatus(current)]


_STATUS_ZH = {
    "draft": "草稿",
    "submitted": "已提交",
    "returned": "已退回",
    "in_review": "审批中",
    "publicising": "公示中",
    "approved": "已批准",
    "signing": "签署中",
    "authorised": "已授权",
    "rejected": "未通过",
    "withdrawn": "已撤回",
}


def move(
    session: Session,
    application: Application,
    new: ApplicationStatus,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> None:
    """Move ``application`` to ``new`` if the table allows it and nobody moved it since it was read.

    The UPDATE names the version the caller read: a concurrent move of the same application
    (another reviewer, another server) has bumped it, so this one updates no row and raises
    :class:`Conflict`, and the caller's transaction rolls back whole."""
    current = ApplicationStatus(application.status)
    if new not in APPLICATION_TRANSITIONS[current]:
        raise Conflict(
            f"申请 {application.number} 当前为“{_STATUS_ZH[current]}”，不能变为“{_STATUS_ZH[new]}”",
            f"Application {application.number} is {current.value}; it cannot become {new.value}",
            field="status",
        )
    values: dict[str, object] = {
        "status": new.value,
        "version": application.version + 1,
        "updated_at": now or utcnow(),
    }
    if reason is not None:
        values["status_reason"] = reason
    done = session.execute(
        update(Application)
        .where(Application.id == application.id, Application.version == application.version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"申请 {application.number} 已被他人处理，请刷新后再试",
            f"Application {application.number} was changed by someone else; reload and try again",
        )
    session.refresh(application)
