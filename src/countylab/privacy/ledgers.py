"""The ledgers around a project's budget: renewal periods, the dataset-wide yearly ledger and the
per-analyst daily query counter.

Why each exists:

* **Renewal periods.** A project's budget is ε per period (``dp_budget_period``: month,
  quarter or year, calendar periods in UTC).  At the boundary the spending and any top-up of
  the old period are dropped and the full budget is there again.  Renewal happens lazily, by
  one conditional UPDATE (``period_end <= now``) right before a charge, so two concurrent
  queries renew a row once.
* **The dataset-wide ledger.** Renewal and several projects on one dataset mean the total ε an
  individual is exposed to grows without bound unless something caps the sum: projects can
  collude (or be the same company).  ``dataset_budgets`` holds what *every* project together
  spent on a dataset in a calendar year, charged by a conditional UPDATE in the same
  transaction as the project's ledgers, against the grade's ``epsilon_per_year``.
* **The daily query cap.** ε per query has a floor, and an analyst may ask only
  ``queries_per_day`` charged queries a day; the counter is one conditional UPDATE too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from countylab.errors import QuotaExceeded
from countylab.storage.models import Dataset, utcnow
from countylab.storage.privacy_models import DailyQueries, DatasetBudget, PrivacyBudget

Period = Literal["month", "quarter", "year"]
PERIODS: tuple[Period, ...] = ("month", "quarter", "year")
_PERIOD_ZH = {"month": "每月", "quarter": "每季度", "year": "每年"}

#: relative slack for float sums (ten charges of 0.1 must fit a limit of 1.0)
SLACK = 1.0 + 1e-9


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def period_bounds(now: datetime, period: str) -> tuple[datetime, datetime]:
    """The calendar period (UTC) that contains ``now``: [start, end)."""
    now = aware(now).astimezone(UTC)
    months = {"month": 1, "quarter": 3, "year": 12}.get(period, 1)
    first = ((now.month - 1) // months) * months + 1
    start = datetime(now.year, first, 1, tzinfo=UTC)
    month0 = first - 1 + months
    end = datetime(now.year + month0 // 12, month0 % 12 + 1, 1, tzinfo=UTC)
    return start, end


def period_label(period: str, lang: str = "zh-CN") -> str:
    return period if lang.startswith("en") else _PERIOD_ZH.get(period, period)


def renew(session: Session, project_id: int, dataset_id: int, period: str, now: datetime) -> None:
    """Start a new period on every ledger row of (project, dataset) whose period has ended.

    Rows written before periods existed get the current period and keep what they spent."""
    start, end = period_bounds(now, period)
    where = (PrivacyBudget.project_id == project_id, PrivacyBudget.dataset_id == dataset_id)
    session.execute(
        update(PrivacyBudget)
        .where(*where, PrivacyBudget.period_end.is_(None))
        .values(period_start=start, period_end=end)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(PrivacyBudget)
        .where(*where, PrivacyBudget.period_end <= now)
        .values(
            epsilon_spent=0.0,
            delta_spent=0.0,
            epsilon_topup=0.0,
            delta_topup=0.0,
            period_start=start,
            period_end=end,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _insert_ignore(session: Session, model: Any, values: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(model).values(**values).on_conflict_do_nothing())
    else:
        session.execute(sqlite.insert(model).values(**values).on_conflict_do_nothing())


# -- the dataset-wide yearly ledger ---------------------------------------------------------------
def dataset_year(session: Session, dataset_id: int, now: datetime) -> DatasetBudget | None:
    return session.execute(
        select(DatasetBudget).where(
            DatasetBudget.dataset_id == dataset_id, DatasetBudget.year == aware(now).year
        )
    ).scalar_one_or_none()


def charge_dataset_year(
    session: Session,
    ds: Dataset,
    *,
    epsilon: float,
    delta: float,
    epsilon_cap: float,
    delta_cap: float,
    now: datetime,
) -> None:
    """Spend (ε, δ) on the dataset's ledger of this year across all projects, or raise."""
    year = aware(now).year
    _insert_ignore(
        session,
        DatasetBudget,
        {"dataset_id": ds.id, "year": year, "epsilon_spent": 0.0, "delta_spent": 0.0, "updated_at": now},
    )
    result = session.execute(
        update(DatasetBudget)
        .where(
            DatasetBudget.dataset_id == ds.id,
            DatasetBudget.year == year,
            DatasetBudget.epsilon_spent + epsilon <= epsilon_cap * SLACK,
            DatasetBudget.delta_spent + delta <= delta_cap * SLACK,
        )
        .values(
            epsilon_spent=DatasetBudget.epsilon_spent + epsilon,
            delta_spent=DatasetBudget.delta_spent + delta,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        row = dataset_year(session, ds.id, now)
        left = max(0.0, epsilon_cap - (row.epsilon_spent if row else 0.0))
        raise QuotaExceeded(
            f"数据集“{ds.name}”今年所有项目合计的隐私预算已用尽（剩余 ε={left:.4g}），"
            f"明年 1 月 1 日更新。请联系数据安全官。",
            f"The yearly privacy budget of dataset '{ds.name}' across all projects is spent "
            f"(ε={left:.4g} left); it renews on 1 January. Ask the security officer.",
            reason="dataset_year_exhausted",
            dataset=ds.name,
            epsilon_remaining=left,
            epsilon_needed=epsilon,
            renews_at=datetime(year + 1, 1, 1, tzinfo=UTC).isoformat(),
        )


def dataset_year_view(session: Session, ds: Dataset, epsilon_cap: float, delta_cap: float) -> dict[str, Any]:
    now = utcnow()
    row = dataset_year(session, ds.id, now)
    spent = row.epsilon_spent if row else 0.0
    return {
        "dataset_id": ds.id,
        "dataset": ds.name,
        "year": aware(now).year,
        "epsilon_limit": epsilon_cap,
        "delta_limit": delta_cap,
        "epsilon_spent": spent,
        "delta_spent": row.delta_spent if row else 0.0,
        "epsilon_remaining": max(0.0, epsilon_cap - spent),
        "renews_at": datetime(aware(now).year + 1, 1, 1, tzinfo=UTC).isoformat(),
    }


# -- the daily query cap --------------------------------------------------------------------------
def count_query(session: Session, user_id: int, cap: int, now: datetime) -> None:
    """Count one charged query of ``user_id`` today (UTC), or raise when the day's cap is reached."""
    day = aware(now).astimezone(UTC).date().isoformat()
    _insert_ignore(session, DailyQueries, {"user_id": user_id, "day": day, "queries": 0})
    result = session.execute(
        update(DailyQueries)
        .where(DailyQueries.user_id == user_id, DailyQueries.day == day, DailyQueries.queries < cap)
        .values(queries=DailyQueries.queries + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise QuotaExceeded(
            f"今天的查询次数已达上限（{cap} 次），明天（UTC）恢复。",
            f"You have reached today's query cap ({cap} queries); it resets tomorrow (UTC).",
            reason="daily_cap",
            cap=cap,
        )


def queries_today(session: Session, user_id: int) -> int:
    day = utcnow().astimezone(UTC).date().isoformat()
    n = session.execute(
        select(DailyQueries.queries).where(DailyQueries.user_id == user_id, DailyQueries.day == day)
    ).scalar_one_or_none()
    return int(n or 0)
