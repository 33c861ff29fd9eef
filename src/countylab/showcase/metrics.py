"""DP metrics of the showcase (成果展示指标), charged to the showcase budget and cached.

Why a project of its own: the showcase's DP statistics spend privacy budget like any analysis, so
they are charged to a system project **成果展示** (slug ``showcase``, of the platform organisation)
whose datasets are granted by the system when a metric first needs them, and whose budget per
dataset the security officer sets on the ordinary budget pages.  Every refresh goes through the DP
gateway (checks, grade policy, charge before answer, audit), as an inactive service account that
cannot log in, so each ledger is charged exactly once per refresh (the gateway charges the project
ledger and the analyst's own).

A refresh runs only in the background (:class:`MetricRefresher`, an elected singleton reading
``lab.clock``) or when the steward asks; no page ever runs a query.  A refresh the budget cannot
pay for is refused by the gateway: the cached value stays, marked stale, and the reason is kept for
the steward.  An identical query on unchanged data is answered by the gateway's answer cache at no
cost, so an hourly schedule over a daily-updated dataset spends once a day.

A metric is checked when it is saved, not first when it is refreshed: :func:`create` and
:func:`update` ask the gateway's own pre-spend step (``QueryGateway.check``: parse, tables and
columns, aggregation, grade policy, ε and δ caps, cost estimate) as the service account, inside the
saving transaction.  Nothing is charged or run; a refusal is the gateway's own message and rolls
the whole save back (the project, its system grants and the metric).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import Conflict, CountylabError, NotFound, ValidationFailed
from countylab.identity.access import SYSTEM, Principal, authorize
from countylab.identity.projects import grant_dataset
from countylab.identity.roles import Permission
from countylab.periodic import Periodic
from countylab.privacy.gateway import QueryRequest
from countylab.privacy.tables import mentioned_names
from countylab.showcase.widgets import Paths, WidgetSpec, render
from countylab.storage.dashboard_models import Dashboard, DashboardWidget, ShowcaseMetric
from countylab.storage.models import Dataset, Grant, Org, Project, ProjectMember, User, utcnow

if TYPE_CHECKING:
    from countylab.lab import Lab

log = logging.getLogger("countylab.showcase.metrics")

PROJECT_SLUG = "showcase"
PROJECT_TITLE = "成果展示"
SERVICE_USER = "showcase-service"
SCHEDULES: dict[str, timedelta | None] = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "manual": None,
}
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


class QueryCheck(Protocol):
    """The DP gateway's pre-spend checks (``QueryGateway.check``): raise the refusal, spend nothing."""

    def check(self, s: Session, actor: Principal, req: QueryRequest) -> tuple[float, float]: ...


def showcase_project(session: Session) -> Project | None:
    return session.execute(select(Project).where(Project.slug == PROJECT_SLUG)).scalar()


def ensure_project(session: Session, actor: Principal) -> Project:
    """The showcase project and its service account, created once (audited, by the system)."""
    project = showcase_project(session)
    user = session.execute(select(User).where(User.username == SERVICE_USER)).scalar()
    if user is None:
        # inactive and with a hash no password matches: an identity for the ledgers, never a login
        user = User(
            username=SERVICE_USER,
            display_name="成果展示服务",
            password_hash="!",  # noqa: S106 - no password hashes to "!"
            is_active=False,
        )
        session.add(user)
        session.flush()
    if project is None:
        platform = session.execute(select(Org.id).where(Org.kind == "platform").order_by(Org.id)).scalar()
        project = Project(
            slug=PROJECT_SLUG,
            title=PROJECT_TITLE,
            description="成果展示中心的差分隐私统计：预算由数据安全官设定，结果缓存后展示。",
            org_id=platform,
            status="active",
        )
        session.add(project)
        session.flush()
        audit.record(session, actor, "showcase.project.create", f"project:{project.id}", slug=PROJECT_SLUG)
    if session.get(ProjectMember, (project.id, user.id)) is None:
        session.add(ProjectMember(project_id=project.id, user_id=user.id, role="member"))
        session.flush()
    return project


def service_principal(session: Session) -> Principal:
    user_id = session.execute(select(User.id).where(User.username == SERVICE_USER)).scalar_one()
    project = showcase_project(session)
    assert project is not None
    return Principal(
        user_id=user_id,
        username=SERVICE_USER,
        roles=frozenset(),
        project_ids=frozenset({project.id}),
        via="system",
    )


def create(
    session: Session,
    actor: Principal,
    *,
    name: str,
    title: str,
    sql: str,
    epsilon: float,
    schedule: str = "daily",
    gateway: QueryCheck,
) -> ShowcaseMetric:
    """A new metric; the datasets its SQL names are granted to the showcase project by the system,
    then the gateway checks the SQL as a refresh would before spending (a refusal stores nothing)."""
    authorize(actor, Permission.dashboard_compose, target=f"metric:{name}")
    if not _NAME.match(name):
        raise ValidationFailed(
            "指标标识须以小写字母开头，只含小写字母、数字和下划线（2–64位）",
            "A metric name starts with a-z and holds only a-z, 0-9 and '_' (2-64 characters)",
            field="name",
        )
    _check(title, sql, epsilon, schedule)
    if session.execute(select(ShowcaseMetric.id).where(ShowcaseMetric.name == name)).first():
        raise Conflict(f"指标“{name}”已存在", f"Metric '{name}' already exists", field="name")
    project = ensure_project(session, actor)
    names = mentioned_names(sql)
    datasets = list(session.execute(select(Dataset).where(Dataset.name.in_(names))).scalars())
    granted = set(session.execute(select(Grant.dataset_id).where(Grant.project_id == project.id)).scalars())
    for ds in datasets:
        if ds.id not in granted:
            grant_dataset(session, SYSTEM, project.id, ds.id, note="成果展示指标 " + name)
    check_sql(session, gateway, sql.strip(), epsilon)
    m = ShowcaseMetric(
        name=name,
        title=title.strip(),
        sql=sql.strip(),
        epsilon=float(epsilon),
        schedule=schedule,
        stale=False,
        stale_reason="",
        stale_reason_en="",
        epsilon_spent=0.0,
        created_by=actor.user_id,
    )
    session.add(m)
    session.flush()
    audit.record(
        session,
        actor,
        "showcase.metric.create",
        f"metric:{m.id}",
        name=name,
        epsilon=m.epsilon,
        schedule=schedule,
    )
    return m


def update(
    session: Session,
    actor: Principal,
    metric_id: int,
    *,
    title: str,
    epsilon: float,
    schedule: str,
    gateway: QueryCheck,
) -> ShowcaseMetric:
    """Change the schedule, ε or title (the SQL stays: a new question is a new metric); a new ε is
    checked by the gateway against the grade's caps as a refresh would be."""
    authorize(actor, Permission.dashboard_compose, target=f"metric:{metric_id}")
    m = get(session, metric_id)
    _check(title, m.sql, epsilon, schedule)
    if float(epsilon) != m.epsilon:
        check_sql(session, gateway, m.sql, epsilon)
    m.title, m.epsilon, m.schedule = title.strip(), float(epsilon), schedule
    audit.record(
        session, actor, "showcase.metric.update", f"metric:{m.id}", epsilon=m.epsilon, schedule=schedule
    )
    return m


def check_sql(session: Session, gateway: QueryCheck, sql: str, epsilon: float) -> tuple[float, float]:
    """The gateway's checks before it spends, as the service account of the showcase project: the
    (ε, δ) a refresh would spend, or the gateway's own refusal.  Nothing is charged or run."""
    project = showcase_project(session)
    if project is None:
        raise NotFound("成果展示项目尚未建立", "The showcase project does not exist yet")
    req = QueryRequest(sql=sql, project_id=project.id, epsilon=float(epsilon), confirm_delta=True)
    try:
        return gateway.check(session, service_principal(session), req)
    except CountylabError as exc:  # the SQL or ε is what is wrong, not the steward's rights
        zh, en = exc.message_zh, exc.message_en
        named = exc.details.get("column") or exc.details.get("table")
        if isinstance(named, str) and named not in en:  # say which one
            zh, en = f"{zh}：{named}", f"{en}: {named}"
        details = {"field": "sql", **exc.details, "gateway_code": exc.code}
        raise ValidationFailed(zh, en, **details) from exc


def _check(title: str, sql: str, epsilon: float, schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise ValidationFailed(
            f"刷新周期“{schedule}”不存在（可选：hourly、daily、weekly、manual）",
            f"Unknown schedule '{schedule}' (hourly, daily, weekly, manual)",
            field="schedule",
        )
    if not (0.0 < float(epsilon) <= 10.0):
        raise ValidationFailed("ε 必须大于 0、不超过 10", "ε must be above 0 and at most 10", field="epsilon")
    if not title.strip() or len(title) > 200:
        raise ValidationFailed(
            "指标名称不能为空（最多200字）", "A title is required (at most 200 characters)"
        )
    if not sql.strip() or len(sql) > 4000:
        raise ValidationFailed("SQL 不能为空（最多4000字符）", "SQL is required (at most 4000 characters)")


def get(session: Session, metric_id: int) -> ShowcaseMetric:
    m = session.get(ShowcaseMetric, metric_id)
    if m is None:
        raise NotFound(f"指标 {metric_id} 不存在", f"Metric {metric_id} not found")
    return m


def list_all(session: Session) -> list[ShowcaseMetric]:
    return list(session.execute(select(ShowcaseMetric).order_by(ShowcaseMetric.id)).scalars())


def view(m: ShowcaseMetric, now: datetime | None = None) -> dict[str, Any]:
    due = next_due(m)
    return {
        "id": m.id,
        "name": m.name,
        "title": m.title,
        "sql": m.sql,
        "epsilon": m.epsilon,
        "schedule": m.schedule,
        "result": m.result,
        "refreshed_at": m.refreshed_at.isoformat() if m.refreshed_at else None,
        "tried_at": m.tried_at.isoformat() if m.tried_at else None,
        "next_due_at": due.isoformat() if due else None,
        "stale": m.stale,
        "stale_reason": m.stale_reason,
        "stale_reason_en": m.stale_reason_en,
        "epsilon_spent": m.epsilon_spent,
        "query_id": m.query_id,
    }


def _aware(t: datetime) -> datetime:
    from datetime import UTC

    return t if t.tzinfo else t.replace(tzinfo=UTC)


def next_due(m: ShowcaseMetric) -> datetime | None:
    period = SCHEDULES.get(m.schedule)
    if period is None:
        return None
    last = m.tried_at or m.refreshed_at
    return _aware(last) + period if last else None


def is_due(m: ShowcaseMetric, now: datetime) -> bool:
    if SCHEDULES.get(m.schedule) is None:
        return m.result is None and m.tried_at is None  # manual: only its first value
    due = next_due(m)
    return due is None or due <= now


def refresh(lab: Lab, actor: Principal, metric_id: int) -> dict[str, Any]:
    """Run the metric's DP query now (charged to the showcase budget), cache the answer and
    re-render the widgets that show it.  A refused query leaves the cached value, marked stale."""
    authorize(actor, Permission.dashboard_compose, target=f"metric:{metric_id}")
    with lab.tx() as s:
        m = get(s, metric_id)
        ensure_project(s, actor)
        project = showcase_project(s)
        assert project is not None
        service = service_principal(s)
        req = QueryRequest(sql=m.sql, project_id=project.id, epsilon=m.epsilon, confirm_delta=True)
    now = lab.clock()
    try:
        answer = lab.gateway.run(service, req)
    except CountylabError as exc:
        with lab.tx() as s:
            m = get(s, metric_id)
            m.stale, m.tried_at = True, now
            m.stale_reason, m.stale_reason_en = exc.message("zh-CN"), exc.message("en")
            audit.record(
                s,
                actor,
                "showcase.metric.refresh",
                f"metric:{m.id}",
                outcome="failed",
                reason=str(exc.details.get("reason") or exc.code),
            )
            return view(m)
    with lab.tx() as s:
        m = get(s, metric_id)
        m.result = {
            "columns": list(answer.answer["columns"]),
            "rows": [list(r) for r in answer.answer["rows"]],
            "intervals": answer.answer["intervals"],
        }
        m.refreshed_at = m.tried_at = now
        m.stale, m.stale_reason, m.stale_reason_en = False, "", ""
        m.query_id = answer.query_id
        m.epsilon_spent += answer.epsilon_spent
        audit.record(
            s,
            actor,
            "showcase.metric.refresh",
            f"metric:{m.id}",
            query_id=answer.query_id,
            cached=answer.cached,
            epsilon=answer.epsilon_spent,
        )
        rerender(s, lab.ingestion, lambda w: w.source_kind == "dp" and _ref(w, "metric_id") == m.id)
        return view(m)


def _ref(w: DashboardWidget, key: str) -> int | None:
    raw = (w.source or {}).get(key)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def rerender(session: Session, paths: Paths, which: Callable[[DashboardWidget], bool]) -> int:
    """Re-render the cached chart of matching widgets (their data changed, not their definition):
    the dashboard's ``data_version`` moves, its ``version`` (and approval) does not.  A widget whose
    source now fails keeps its last chart; publication re-checks every number anyway."""
    n = 0
    touched: set[int] = set()
    for w in session.execute(select(DashboardWidget)).scalars():
        if not which(w):
            continue
        spec = WidgetSpec(w.kind, w.title, w.source_kind, dict(w.source or {}), w.unit)
        try:
            chart = render(session, paths, spec).to_dict()
        except CountylabError as exc:
            log.warning("widget %s not re-rendered: %s", w.id, exc.message("en"))
            continue
        if chart != w.chart:
            w.chart, w.rendered_at = chart, utcnow()
            touched.add(w.dashboard_id)
            n += 1
    for did in touched:
        d = session.get(Dashboard, did)
        if d is not None:
            d.data_version += 1
    return n


class MetricRefresher(Periodic):
    """The elected singleton that refreshes due metrics and re-renders open-data widgets whose
    dataset has a new version (the live air-quality feed), so pages only ever read."""

    thread_name = "countylab-showcase-metrics"

    def __init__(self, lab: Lab, interval_s: float = 60.0) -> None:
        super().__init__()
        self.lab = lab
        self.interval_s = interval_s

    def interval_s_now(self) -> float:
        return self.interval_s

    def run_once(self) -> int:
        now = self.lab.clock()
        with self.lab.read() as s:
            due = [m.id for m in list_all(s) if is_due(m, now)]
            versions = {d.id: d.current_version for d in s.execute(select(Dataset)).scalars()}
            stale_open = [
                w.id
                for w in s.execute(
                    select(DashboardWidget).where(DashboardWidget.source_kind == "open")
                ).scalars()
                if _open_version(w) != versions.get(_ref(w, "dataset_id") or 0)
            ]
        for metric_id in due:
            refresh(self.lab, SYSTEM, metric_id)
        if stale_open:
            with self.lab.tx() as s:
                wanted = set(stale_open)
                rerender(s, self.lab.ingestion, lambda w: w.id in wanted)
        return len(due)


def _open_version(w: DashboardWidget) -> int | None:
    ref = str(((w.chart or {}).get("source") or {}).get("ref") or "")
    _, _, v = ref.partition("@v")
    return int(v) if v.isdigit() else None
