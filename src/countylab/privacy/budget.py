"""Privacy budgets: one ledger per (project, dataset) and one per analyst, spent atomically.

Why one conditional UPDATE: a check-then-write in Python would let two concurrent queries
both see enough budget and both spend it.  ``charge`` instead runs, per ledger row,
``UPDATE … SET spent = spent + cost WHERE … AND spent + cost <= limit`` and checks that exactly
one row changed.  The database evaluates the condition on the row it locks (PostgreSQL
re-checks it after waiting for a concurrent writer; SQLite transactions begin IMMEDIATE, so
writers are serialised), and every ledger of a query is charged in the caller's one
transaction: either all of them are charged or, on any refusal, none is.

Limits: the grade's cap (``policy.dp_budget_limits``, after the dataset's overrides) always
applies, read at charge time so that a raised grade shrinks budgets at once; a steward may
set a lower limit per project and per analyst (``set_limit``).  NULL means "the grade's cap".
Each ledger row belongs to a renewal period (``ledgers.renew``); a top-up the steward approved
(``topups``) raises the limit for the rest of that period only.  The same transaction also
charges the dataset-wide yearly ledger (``ledgers.charge_dataset_year``), so a query is paid on
every ledger or on none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from countylab import audit
from countylab.catalog.grading import Grade
from countylab.errors import NotFound, QuotaExceeded, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.policy import BudgetLimits, DatasetPolicy, dp_budget_limits
from countylab.privacy import ledgers
from countylab.privacy.ledgers import SLACK as _SLACK
from countylab.privacy.ledgers import aware, period_bounds
from countylab.storage.models import Dataset, Grant, Project, User, utcnow
from countylab.storage.privacy_models import PROJECT_WIDE, BudgetEntry, PrivacyBudget


def dataset_policy(ds: Dataset) -> DatasetPolicy | None:
    """The steward's per-dataset tightening stored in the catalog, or None."""
    raw = dict(ds.policy_overrides or {})
    if not raw:
        return None
    known = {k: v for k, v in raw.items() if k in DatasetPolicy.__dataclass_fields__}
    if "deny" in known:
        known["deny"] = frozenset(known["deny"] or ())
    return DatasetPolicy(**known)


def grade_limits(ds: Dataset) -> BudgetLimits:
    return dp_budget_limits(Grade(ds.grade), dataset_policy(ds))


@dataclass(frozen=True)
class Balance:
    """One ledger: effective limits (steward's and grade's, whichever is lower) and spending."""

    project_id: int
    dataset_id: int
    dataset: str
    user_id: int  # 0: the whole project
    username: str
    epsilon_limit: float
    delta_limit: float
    epsilon_spent: float
    delta_spent: float
    steward_set: bool
    grade_epsilon: float
    grade_delta: float
    period: str = "month"
    period_start: datetime | None = None
    period_end: datetime | None = None
    epsilon_topup: float = 0.0
    delta_topup: float = 0.0

    @property
    def epsilon_remaining(self) -> float:
        return max(0.0, self.epsilon_limit - self.epsilon_spent)

    @property
    def delta_remaining(self) -> float:
        return max(0.0, self.delta_limit - self.delta_spent)

    def to_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "dataset_id": self.dataset_id,
            "dataset": self.dataset,
            "user_id": self.user_id or None,
            "username": self.username or None,
            "scope": "analyst" if self.user_id else "project",
            "epsilon_limit": self.epsilon_limit,
            "delta_limit": self.delta_limit,
            "epsilon_spent": self.epsilon_spent,
            "delta_spent": self.delta_spent,
            "epsilon_remaining": self.epsilon_remaining,
            "delta_remaining": self.delta_remaining,
            "steward_set": self.steward_set,
            "grade_epsilon": self.grade_epsilon,
            "grade_delta": self.grade_delta,
            "epsilon_topup": self.epsilon_topup,
            "delta_topup": self.delta_topup,
            "period": self.period,
            "period_start": _iso(self.period_start),
            "period_end": _iso(self.period_end),
            "renews_at": _iso(self.period_end),
        }


def _balance(
    ds: Dataset,
    project_id: int,
    row: PrivacyBudget | None,
    user_id: int,
    username: str,
    period: str = "month",
    now: datetime | None = None,
) -> Balance:
    """A ledger as it stands now: a row whose period has ended shows the renewed budget."""
    caps = grade_limits(ds)
    now = now or utcnow()
    start, end = period_bounds(now, period)
    current = row is not None and (row.period_end is None or aware(row.period_end) > now)
    spent_e = row.epsilon_spent if row is not None and current else 0.0
    spent_d = row.delta_spent if row is not None and current else 0.0
    top_e = row.epsilon_topup if row is not None and current else 0.0
    top_d = row.delta_topup if row is not None and current else 0.0
    if row is not None and current and row.period_end is not None:
        start, end = aware(row.period_start or start), aware(row.period_end)
    eps_lim = (
        caps.epsilon_per_project
        if row is None or row.epsilon_limit is None
        else min(caps.epsilon_per_project, row.epsilon_limit)
    )
    delta_lim = caps.delta if row is None or row.delta_limit is None else min(caps.delta, row.delta_limit)
    return Balance(
        project_id,
        ds.id,
        ds.name,
        user_id,
        username,
        eps_lim + top_e,
        delta_lim + top_d,
        spent_e,
        spent_d,
        row is not None and (row.epsilon_limit is not None or row.delta_limit is not None),
        caps.epsilon_per_project,
        caps.delta,
        period,
        start,
        end,
        top_e,
        top_d,
    )


def _row(session: Session, project_id: int, dataset_id: int, user_id: int) -> PrivacyBudget | None:
    return session.execute(
        select(PrivacyBudget).where(
            PrivacyBudget.project_id == project_id,
            PrivacyBudget.dataset_id == dataset_id,
            PrivacyBudget.user_id == user_id,
        )
    ).scalar_one_or_none()


def _ensure(session: Session, project_id: int, dataset_id: int, user_id: int, period: str = "month") -> None:
    """Create the ledger row if missing (in the current period); concurrent creators do not conflict.

    A new analyst row starts with the top-up its project row has this period, so an approved
    top-up reaches analysts who join after the approval too."""
    now = utcnow()
    start, end = period_bounds(now, period)
    top_e = top_d = 0.0
    if user_id != PROJECT_WIDE:
        proj = _row(session, project_id, dataset_id, PROJECT_WIDE)
        if proj is not None and proj.period_end is not None and aware(proj.period_end) > now:
            top_e, top_d = proj.epsilon_topup, proj.delta_topup
    values = {
        "project_id": project_id,
        "dataset_id": dataset_id,
        "user_id": user_id,
        "epsilon_spent": 0.0,
        "delta_spent": 0.0,
        "updated_at": now,
        "period_start": start,
        "period_end": end,
        "epsilon_topup": top_e,
        "delta_topup": top_d,
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(PrivacyBudget).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite.insert(PrivacyBudget).values(**values).on_conflict_do_nothing())
    elif _row(session, project_id, dataset_id, user_id) is None:
        session.add(PrivacyBudget(**values))
        session.flush()


def balances_for(
    session: Session,
    project_id: int,
    datasets: Sequence[Dataset],
    user_id: int | None = None,
    period: str = "month",
) -> list[Balance]:
    """Project ledgers of ``datasets`` and, with ``user_id``, that analyst's ledgers too."""
    names: dict[int, str] = {}
    if user_id is None:  # two columns, not every user's ORM object (a budget page view under load)
        names = {uid: name for uid, name in session.execute(select(User.id, User.username))}
    now = utcnow()
    out: list[Balance] = []
    for ds in datasets:
        proj = _row(session, project_id, ds.id, PROJECT_WIDE)
        out.append(_balance(ds, project_id, proj, PROJECT_WIDE, "", period, now))
        if user_id is not None:
            mine = _row(session, project_id, ds.id, user_id)
            out.append(_balance(ds, project_id, mine, user_id, "", period, now))
            continue
        rows = session.execute(
            select(PrivacyBudget)
            .where(
                PrivacyBudget.project_id == project_id,
                PrivacyBudget.dataset_id == ds.id,
                PrivacyBudget.user_id != PROJECT_WIDE,
            )
            .order_by(PrivacyBudget.user_id)
        ).scalars()
        out.extend(
            _balance(ds, project_id, r, r.user_id, names.get(r.user_id, ""), period, now) for r in rows
        )
    return out


def remaining(balances: Sequence[Balance]) -> float:
    """The ε still spendable by the next query on all of these ledgers."""
    return min((b.epsilon_remaining for b in balances), default=0.0)


def _exhausted(ds: Dataset, left: list[Balance], epsilon: float, delta: float) -> QuotaExceeded:
    proj = next(b for b in left if b.user_id == PROJECT_WIDE)
    mine = next((b for b in left if b.user_id != PROJECT_WIDE), proj)
    eps_left, delta_left = (
        min(proj.epsilon_remaining, mine.epsilon_remaining),
        min(proj.delta_remaining, mine.delta_remaining),
    )
    renews = _iso(proj.period_end) or ""
    return QuotaExceeded(
        f"隐私预算不足：数据集“{ds.name}”剩余 ε={eps_left:.4g}、δ={delta_left:.3g}，"
        f"本次查询需要 ε={epsilon:.4g}、δ={delta:.3g}。请降低 ε，等待 {renews[:10]} 预算更新，"
        f"或申请追加预算。",
        f"Privacy budget exhausted on dataset '{ds.name}': ε={eps_left:.4g}, δ={delta_left:.3g} left, "
        f"this query needs ε={epsilon:.4g}, δ={delta:.3g}. Lower ε, wait for the renewal on "
        f"{renews[:10]} or request a top-up.",
        reason="budget_exhausted",
        dataset=ds.name,
        epsilon_remaining=eps_left,
        delta_remaining=delta_left,
        project_epsilon_remaining=proj.epsilon_remaining,
        analyst_epsilon_remaining=mine.epsilon_remaining,
        epsilon_needed=epsilon,
        delta_needed=delta,
        renews_at=renews,
    )


def charge(
    session: Session,
    *,
    project_id: int,
    user_id: int,
    datasets: Sequence[Dataset],
    epsilon: float,
    delta: float,
    query_id: int | None,
    period: str = "month",
) -> list[Balance]:
    """Spend (ε, δ) on every ledger of ``datasets`` (project, analyst and the dataset's yearly
    ledger across all projects) or raise QuotaExceeded.

    Runs inside the caller's transaction, which must commit before the answer is computed.
    """
    now = utcnow()
    for ds in datasets:
        ledgers.renew(session, project_id, ds.id, period, now)
    before = balances_for(session, project_id, datasets, user_id, period)  # for the refusal message
    for ds in datasets:
        caps = grade_limits(ds)
        for uid in (PROJECT_WIDE, user_id):
            _ensure(session, project_id, ds.id, uid, period)
            result = session.execute(
                update(PrivacyBudget)
                .where(
                    PrivacyBudget.project_id == project_id,
                    PrivacyBudget.dataset_id == ds.id,
                    PrivacyBudget.user_id == uid,
                    PrivacyBudget.epsilon_spent + epsilon
                    <= (caps.epsilon_per_project + PrivacyBudget.epsilon_topup) * _SLACK,
                    PrivacyBudget.delta_spent + delta <= (caps.delta + PrivacyBudget.delta_topup) * _SLACK,
                    or_(
                        PrivacyBudget.epsilon_limit.is_(None),
                        PrivacyBudget.epsilon_spent + epsilon
                        <= (PrivacyBudget.epsilon_limit + PrivacyBudget.epsilon_topup) * _SLACK,
                    ),
                    or_(
                        PrivacyBudget.delta_limit.is_(None),
                        PrivacyBudget.delta_spent + delta
                        <= (PrivacyBudget.delta_limit + PrivacyBudget.delta_topup) * _SLACK,
                    ),
                )
                .values(
                    epsilon_spent=PrivacyBudget.epsilon_spent + epsilon,
                    delta_spent=PrivacyBudget.delta_spent + delta,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise _exhausted(ds, [b for b in before if b.dataset_id == ds.id], epsilon, delta)
            session.add(
                BudgetEntry(
                    project_id=project_id,
                    dataset_id=ds.id,
                    user_id=uid,
                    kind="charge",
                    epsilon=epsilon,
                    delta=delta,
                    query_id=query_id,
                    by_user=user_id or None,
                    at=now,
                )
            )
        ledgers.charge_dataset_year(
            session,
            ds,
            epsilon=epsilon,
            delta=delta,
            epsilon_cap=caps.epsilon_per_year,
            delta_cap=caps.delta_per_year,
            now=now,
        )
    session.flush()
    session.expire_all()
    return balances_for(session, project_id, datasets, user_id, period)


def set_limit(
    session: Session,
    actor: Principal,
    project_id: int,
    dataset_id: int,
    *,
    epsilon: float | None,
    delta: float | None,
    user_id: int | None = None,
    period: str = "month",
) -> Balance:
    """Steward: cap a project's (or one analyst's) budget on a granted dataset, within the grade's caps."""
    authorize(actor, Permission.budget_manage, target=f"project:{project_id}")
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("项目不存在", "Project not found", project_id=project_id)
    grant = session.execute(
        select(Grant).where(Grant.project_id == project_id, Grant.dataset_id == dataset_id)
    ).scalar_one_or_none()
    if grant is None:
        raise NotFound(
            "该数据集未授权给此项目", "The dataset is not granted to this project", dataset_id=dataset_id
        )
    ds = grant.dataset
    uid = PROJECT_WIDE
    if user_id:
        if user_id not in {m.user_id for m in project.members}:
            raise ValidationFailed(
                "该用户不是项目成员", "The user is not a member of this project", user_id=user_id
            )
        uid = user_id
    caps = grade_limits(ds)
    for name, value, cap in (("epsilon", epsilon, caps.epsilon_per_project), ("delta", delta, caps.delta)):
        if value is not None and not (0.0 <= value <= cap):
            raise ValidationFailed(
                f"{name} 必须在 0 到该分级上限 {cap:g} 之间",
                f"{name} must be between 0 and the grade's cap {cap:g}",
                reason="above_grade_cap",
                field=name,
                cap=cap,
            )
    _ensure(session, project_id, ds.id, uid, period)
    row = _row(session, project_id, ds.id, uid)
    assert row is not None
    row.epsilon_limit, row.delta_limit, row.set_by, row.updated_at = epsilon, delta, actor.user_id, utcnow()
    session.add(
        BudgetEntry(
            project_id=project_id,
            dataset_id=ds.id,
            user_id=uid,
            kind="limit",
            epsilon=epsilon,
            delta=delta,
            by_user=actor.user_id,
            at=row.updated_at,
        )
    )
    audit.record(
        session,
        actor,
        "budget.set",
        f"project:{project_id}",
        dataset=ds.name,
        user_id=uid or None,
        epsilon=epsilon,
        delta=delta,
    )
    session.flush()
    return _balance(ds, project_id, row, uid, "", period)


def entries(session: Session, project_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The ledger of a project, newest first: charges and limit changes."""
    rows = session.execute(
        select(BudgetEntry, Dataset.name)
        .join(Dataset, Dataset.id == BudgetEntry.dataset_id)
        .where(BudgetEntry.project_id == project_id)
        .order_by(BudgetEntry.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": e.id,
            "at": _iso(e.at),
            "dataset": name,
            "scope": "analyst" if e.user_id else "project",
            "user_id": e.user_id or None,
            "kind": e.kind,
            "epsilon": e.epsilon,
            "delta": e.delta,
            "query_id": e.query_id,
        }
        for e, name in rows
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def spent_within_limits(session: Session) -> bool:
    """Invariant for tests and ops: no ledger has ever spent beyond its limits."""
    for row in session.execute(select(PrivacyBudget)).scalars():
        ds = session.get(Dataset, row.dataset_id)
        assert ds is not None
        b = _balance(ds, row.project_id, row, row.user_id, "")
        if b.epsilon_spent > b.epsilon_limit * _SLACK or b.delta_spent > b.delta_limit * _SLACK:
            return False
    return True
