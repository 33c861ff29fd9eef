"""The DP SQL gateway (数据黑匣): members of a project ask SQL over the datasets granted to it.

One query, in order (each step in its own short transaction, none held while data is read):

1. **admit** — the request's parameters (``params.check_request``: finite numbers, int64
   ids, SQL length), the analyst's rate limit and the project's concurrency limit
   (``limits.Admission``); one wall clock starts for the whole request;
2. **prepare** — who asks (``query.run`` and project membership), which datasets are granted,
   catalog → ``TableSpec`` (``tables.table_spec``), ``AS OF`` versions; the engine plans the
   SQL (touching no data); the grade policy is asked for every table; ε and δ are checked
   against each grade's floor and caps (``params.resolve_budget``); the cost is estimated from
   metadata (``cost.check_cost``) and the versions are readied on a worker.  Anything failing
   here charges nothing;
3. **charge** — an identical earlier query of the project returns its stored answer at no cost,
   and an identical *running* query is waited for (``answers``: single flight); otherwise the
   fingerprint is claimed, the analyst's daily count is taken and (ε, δ) is charged on every
   ledger of every private dataset involved (``budget.charge``) and committed, so the cost is
   paid *before* the answer exists;
4. **execute** — exact aggregates in a pooled worker process, noise from OpenDP;
5. **release** — the answer is stored (the cache), the query logged and audited.

A query that fails after its charge ends ``failed`` (audited) with one answer that is the same
for every failure, returned when the request's wall clock ends: its status, message and time
say nothing about the rows.  Refusals are audited too (``query.refused``).  There is no SDC
mode: exact tables come only from sandbox jobs through the airlock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.catalog import service as catalog
from countylab.catalog.grading import Grade
from countylab.errors import (
    Conflict,
    CountylabError,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    UserError,
    ValidationFailed,
)
from countylab.identity.access import Principal
from countylab.identity.projects import authorize_member
from countylab.identity.roles import Permission
from countylab.operations import enforcement
from countylab.operations.terms import Channel
from countylab.policy import Action, require
from countylab.privacy import answers, budget, ledgers, params
from countylab.privacy.cost import TableSize, check_cost
from countylab.privacy.engine import DPEngine
from countylab.privacy.limits import Admission, GatewayConfig
from countylab.privacy.planner import QueryPlan
from countylab.privacy.pool import WorkerPool
from countylab.privacy.result import QueryFailed
from countylab.privacy.runlog import finish_run, log_failure, log_refusal, released, start_run
from countylab.privacy.spec import EngineSettings, TableSpec
from countylab.privacy.tables import mentioned_names, split_as_of, table_spec
from countylab.privacy.worker import ExactRunner, WorkerRunner
from countylab.storage.catalog_models import DatasetVersion
from countylab.storage.models import Dataset, Grant, Org, Project, utcnow
from countylab.storage.privacy_models import CachedAnswer

log = logging.getLogger("countylab.privacy.gateway")

MODES = ("dp",)
MAX_SQL = params.MAX_SQL


class PathSource(Protocol):
    """Where a dataset version's Parquet files are (``catalog.ingestion.Ingestion``)."""

    def read_paths(self, ds: Dataset, version: int | None = None) -> list[Path]: ...


@dataclass(frozen=True)
class QueryRequest:
    sql: str
    project_id: int
    epsilon: float | None = None
    delta: float | None = None
    mode: str = "dp"
    versions: Mapping[str, int] = field(default_factory=dict)
    confirm_delta: bool = True  # the console sends False first: a query spending δ asks to confirm


@dataclass(frozen=True)
class QueryAnswer:
    """A released answer with what it cost and what is left (``to_json`` is the API shape)."""

    answer: dict[str, Any]
    mode: str
    cached: bool
    epsilon_spent: float
    delta_spent: float
    budget: list[budget.Balance]
    query_id: int

    @property
    def budget_remaining(self) -> float:
        return budget.remaining(self.budget)

    def to_json(self) -> dict[str, Any]:
        a = self.answer
        return {
            "columns": a["columns"],
            "rows": a["rows"],
            "intervals": a["intervals"],
            "notes": a["notes"],
            "suppressed": a.get("suppressed", []),
            "mode": self.mode,
            "cached": self.cached,
            "epsilon_spent": self.epsilon_spent,
            "delta_spent": self.delta_spent,
            "budget_remaining": self.budget_remaining,
            "budget": [b.to_json() for b in self.budget],
            "query_id": self.query_id,
            "datasets": a.get("datasets", []),
        }


@dataclass
class _Prepared:
    external: bool
    by_name: dict[str, Dataset]
    specs: list[TableSpec]
    versions: dict[str, int]


@dataclass
class _Planned:
    prep: _Prepared
    engine: DPEngine
    plan: QueryPlan
    used: list[Dataset]
    daily_cap: int


class QueryGateway:
    """The service behind ``POST /api/query``, the query console and ``countylab query``."""

    def __init__(
        self,
        transaction: Callable[[], Any],
        paths: PathSource,
        settings: EngineSettings | None = None,
        runner: ExactRunner | None = None,
        config: GatewayConfig | None = None,
    ) -> None:
        self._tx = transaction
        self.paths = paths
        #: the lab's clock (``Lab.clock``): an authorisation's end date is compared with it
        self.clock: Callable[[], datetime] = utcnow
        self.settings = settings or EngineSettings()
        self.config = config or GatewayConfig()
        self.admission = Admission(self.config)
        self.runner: ExactRunner = runner or WorkerPool(
            self.config.workers, lambda: WorkerRunner(self.settings.limits, self.settings.bound_seed)
        )

    def close(self) -> None:
        self.runner.close()

    # -- the one entry point ------------------------------------------------------------------
    def run(self, actor: Principal, req: QueryRequest) -> QueryAnswer:
        try:
            _check_params(req)
            if not actor.is_system and req.project_id not in actor.project_ids:
                return self._run(actor, req)  # refused in _prepare; holds no slot of the project
            with self.admission.admit(actor.user_id or 0, req.project_id):
                return self._run(actor, req)
        except CountylabError as exc:
            if not getattr(exc, "_logged", False):
                self._refused(actor, req, exc)
            raise
        except Exception as exc:  # noqa: BLE001 - a bug before the charge is a refusal, never a 5xx
            log.exception("DP query refused after an unexpected error")
            refused = _unprocessable()
            self._refused(actor, req, refused)
            raise refused from exc

    def check(self, s: Session, actor: Principal, req: QueryRequest) -> tuple[float, float]:
        """Every check a run makes before it spends, in the caller's transaction: parameters,
        membership, grants, authorisation and approved columns, the SQL plan (no data is read),
        grade policy, ε and δ caps, the cost estimate.  Nothing is charged, run, cached or
        recorded (a showcase metric is checked so when it is saved).  Returns the (ε, δ) a run
        would spend; raises the refusal a run would raise."""
        _check_params(req)
        try:
            return self._plan(s, actor, req).plan.cost
        except CountylabError:
            raise
        except Exception as exc:  # noqa: BLE001 - as in run: a bug in the checks is a refusal
            log.exception("DP query check refused after an unexpected error")
            raise _unprocessable() from exc

    def _plan(self, s: Session, actor: Principal, req: QueryRequest) -> _Planned:
        """Step 2 of a run: prepare and plan, touching no data; anything failing charges nothing."""
        sql, as_of = split_as_of(req.sql)
        versions = {k.lower(): int(v) for k, v in {**req.versions, **as_of}.items()}
        prep = self._prepare(s, actor, req, sql, versions)
        engine = DPEngine(prep.specs, self.settings, self.runner)
        eps = float(req.epsilon or 0.0)
        model_plan = engine.plan(sql, eps, None)
        used = _involved(model_plan.model, prep.by_name)
        rules = []
        for ds in used:
            overrides = budget.dataset_policy(ds)
            require(Grade(ds.grade), Action.dp_query, overrides=overrides, external=prep.external)
            rules.append((ds.name, budget.grade_limits(ds)))
        eps, delta = params.resolve_budget(eps, req.delta, rules)
        plan = engine.plan(sql, eps, delta)
        check_cost(plan.model.from_sql, _sizes(s, used, prep.versions), self.config.max_estimated_rows)
        daily_cap = min((r.queries_per_day for _, r in rules), default=0)
        return _Planned(prep, engine, plan, used, daily_cap)

    def _run(self, actor: Principal, req: QueryRequest) -> QueryAnswer:
        with self._tx() as s:
            p = self._plan(s, actor, req)
        prep, engine, plan, used, daily_cap = p.prep, p.engine, p.plan, p.used, p.daily_cap
        if (
            plan.cost[1] > 0
            and not req.confirm_delta
            and not self._answered(req.project_id, plan.fingerprint)
        ):
            confirm = Conflict(
                f"此查询的分组键不是公开键集，需用差分隐私分区选择，将消耗 ε={plan.cost[0]:g} 和 "
                f"δ={plan.cost[1]:.2g}（δ 是小概率完全泄露的上限）。确认后再运行。",
                f"This query groups by keys that are not a public key set: DP partition selection will "
                f"spend ε={plan.cost[0]:g} and δ={plan.cost[1]:.2g} (δ bounds the chance of a full "
                "disclosure). Confirm to run it.",
                reason="confirm_delta",
                epsilon=plan.cost[0],
                delta=plan.cost[1],
            )
            confirm._logged = True  # type: ignore[attr-defined]  # a question, not a refusal
            raise confirm
        labels = _labels(used, prep.versions)
        self._ready(plan.model.tables)
        # the wall clock of the charged part: waiting for an identical query, and execution
        deadline = time.monotonic() + self.config.wall_clock_s
        while True:  # single flight: charge once per fingerprint, others wait for the answer
            with self._tx() as s:
                hit = answers.lookup(s, req.project_id, plan.fingerprint)
                if hit is not None and not answers.is_pending(hit.answer):
                    return self._cached(s, actor, req, used, labels, hit)
                if hit is None:
                    run = start_run(s, actor, req, labels, plan.fingerprint)
                    if answers.claim(s, req.project_id, plan.fingerprint, run.id):
                        self._charge(s, actor, req, run, used, plan.cost, daily_cap)
                        run_id = run.id
                        break
                    s.rollback()
                elif answers.stale(hit, self.config.wall_clock_s * 2 + 30):
                    answers.release_claim(s, req.project_id, plan.fingerprint, hit.query_id)
                    continue
            if time.monotonic() > deadline:
                raise QuotaExceeded(
                    "相同的查询正在运行，请稍后再试（不会重复扣费）",
                    "An identical query is running; retry shortly (it will not be charged twice)",
                    reason="identical_running",
                    retry_after_s=2,
                )
            time.sleep(0.05)
        try:
            with self._deadline(deadline):
                result = engine.execute(plan)
            answer = released(result, labels)
        except Exception as exc:  # noqa: BLE001 - every failure after a charge is answered alike
            self._failed(actor, req, run_id, plan.fingerprint, exc, deadline)
        try:
            with self._tx() as s:
                answers.fulfil(s, req.project_id, plan.fingerprint, run_id, answer)
                balances = budget.balances_for(
                    s, req.project_id, used, actor.user_id or 0, self.config.period
                )
                finish_run(s, actor, run_id, answer, "answered")
        except Exception as exc:  # noqa: BLE001 - charged: storing the answer failed, answered alike
            self._failed(actor, req, run_id, plan.fingerprint, exc, deadline)
        eps_spent, delta_spent = plan.cost
        return QueryAnswer(answer, "dp", False, eps_spent, delta_spent, balances, run_id)

    # -- steps --------------------------------------------------------------------------------
    def _prepare(
        self, s: Session, actor: Principal, req: QueryRequest, sql: str, versions: Mapping[str, int]
    ) -> _Prepared:
        target = f"project:{req.project_id}"
        authorize_member(s, actor, Permission.query_run, req.project_id, target)
        found = s.execute(
            select(Project.status, Org.kind)
            .outerjoin(Org, Org.id == Project.org_id)
            .where(Project.id == req.project_id)
        ).first()
        if found is None:
            raise NotFound(f"项目 {req.project_id} 不存在", f"Project {req.project_id} not found")
        status, org_kind = found
        if status != "active":
            raise PermissionDenied(
                "项目未处于活动状态",
                "The project is not active",
                permission=Permission.query_run.value,
                target=target,
                reason="project_status",
            )
        datasets = s.execute(
            select(Dataset)
            .join(Grant, Grant.dataset_id == Dataset.id)
            .where(Grant.project_id == req.project_id)
        ).scalars()
        by_name = {d.name: d for d in datasets if d.current_version is not None}
        unknown = sorted(set(versions) - set(by_name))
        if unknown:
            raise NotFound(
                f"表 {unknown[0]} 不存在或未授权本项目使用",
                f"table {unknown[0]} does not exist or is not granted to this project",
                table=unknown[0],
            )
        key_sets = {name: list(ks.values or []) for name, ks in catalog.key_sets(s).items()}
        specs = []
        used_versions: dict[str, int] = {}
        mentioned = mentioned_names(sql)
        named = [ds for ds in by_name.values() if ds.name in mentioned]
        allowed = enforcement.check(  # the authorisation: in force, channel, accreditation, columns
            s,
            req.project_id,
            Channel.dp_query,
            [d.id for d in named],
            now=self.clock(),
            user_id=actor.user_id,
        )
        for ds in named:  # only the tables the SQL can name are materialised
            version = int(versions.get(ds.name, ds.current_version or 0))
            paths = self.paths.read_paths(ds, version)
            if not paths:
                continue
            used_versions[ds.name] = version
            approved = allowed.columns.get(ds.id)
            cols = enforcement.approved_columns(ds, catalog.columns(s, ds.id), approved, mentioned)
            specs.append(table_spec(ds, cols, key_sets, paths, version))
        return _Prepared(org_kind != "department", by_name, specs, used_versions)

    def _answered(self, project_id: int, fingerprint: str) -> bool:
        """An identical query has its answer already: repeating it costs nothing, so no question."""
        with self._tx() as s:
            hit = answers.lookup(s, project_id, fingerprint)
            return hit is not None and not answers.is_pending(hit.answer)

    def _ready(self, specs: Sequence[TableSpec]) -> None:
        """Ready the versions before the charge: a preparation failure charges nothing.

        Preparation has its own (longer) limit in the runner: a large new version may take
        minutes once, and cutting it at the query's wall clock would mean it never finishes."""
        prepare = getattr(self.runner, "prepare", None)
        if not callable(prepare):
            return
        try:
            prepare(list(specs))
        except Exception as exc:  # noqa: BLE001 - any preparation failure is a refusal, uncharged
            raise UserError(
                "数据准备失败，本次查询未扣除预算。请稍后再试或联系管理员。",
                "Preparing the data failed; nothing was charged. Retry later or ask an admin.",
                reason="prepare_failed",
            ) from exc

    def _deadline(self, deadline: float) -> Any:
        fn = getattr(self.runner, "deadline", None)
        if callable(fn):
            return fn(deadline)
        from contextlib import nullcontext

        return nullcontext()

    def _charge(
        self,
        s: Session,
        actor: Principal,
        req: QueryRequest,
        run: Any,
        used: Sequence[Dataset],
        cost: tuple[float, float],
        daily_cap: int,
    ) -> None:
        eps, delta = cost
        ledgers.count_query(s, actor.user_id or 0, daily_cap, utcnow())
        budget.charge(
            s,
            project_id=req.project_id,
            user_id=actor.user_id or 0,
            datasets=used,
            epsilon=eps,
            delta=delta,
            query_id=run.id,
            period=self.config.period,
        )
        run.epsilon_spent, run.delta_spent = eps, delta
        audit.record(
            s,
            actor,
            "query.charge",
            f"project:{req.project_id}",
            query_id=run.id,
            epsilon=eps,
            delta=delta,
            datasets=run.datasets,
        )

    def _cached(
        self,
        s: Session,
        actor: Principal,
        req: QueryRequest,
        used: Sequence[Dataset],
        labels: Sequence[str],
        hit: CachedAnswer,
    ) -> QueryAnswer:
        run = start_run(s, actor, req, labels, hit.fingerprint)
        run.cached = True
        finish_run(s, actor, run.id, hit.answer, "cached")
        balances = budget.balances_for(s, req.project_id, used, actor.user_id or 0, self.config.period)
        return QueryAnswer(dict(hit.answer), "dp", True, 0.0, 0.0, balances, run.id)

    def _failed(
        self,
        actor: Principal,
        req: QueryRequest,
        run_id: int,
        fingerprint: str,
        exc: BaseException,
        deadline: float,
    ) -> NoReturn:
        """Record the failure, free the claim, wait out the wall clock, give the one failure answer."""
        with self._tx() as s:
            answers.release_claim(s, req.project_id, fingerprint, run_id)
            log_failure(s, actor, req, run_id, exc)
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.5))
        failed = QueryFailed()
        failed._logged = True  # type: ignore[attr-defined]
        raise failed from None

    def _refused(self, actor: Principal, req: QueryRequest, exc: CountylabError) -> None:
        with self._tx() as s:
            log_refusal(s, actor, req, exc)


def _unprocessable() -> UserError:
    return UserError(
        "查询无法处理，未扣除预算。",
        "The query could not be processed; nothing was charged.",
        reason="error",
    )


def _check_params(req: QueryRequest) -> None:
    if req.mode not in MODES:
        raise ValidationFailed(
            "只支持差分隐私查询（mode=dp）；精确表格请通过沙箱作业和出域审核获取",
            "only DP queries exist (mode=dp); exact tables come from sandbox jobs and the airlock",
            field="mode",
            reason="mode",
        )
    params.check_request(req.sql, req.project_id, req.epsilon, req.delta, req.versions)


def _involved(model: Any, by_name: Mapping[str, Dataset]) -> list[Dataset]:
    """Every dataset the query touches, private ones first among them (all are charged)."""
    names = [t.name for t in model.tables]
    for t in getattr(model, "private_tables", ()) or ():
        name = t if isinstance(t, str) else t.name
        if name not in names:
            names.append(name)
    return [by_name[n] for n in names if n in by_name]


def _sizes(s: Session, used: Sequence[Dataset], versions: Mapping[str, int]) -> dict[str, TableSize]:
    out = {}
    for ds in used:
        v = versions.get(ds.name, ds.current_version or 0)
        rows = s.execute(
            select(DatasetVersion.row_count).where(
                DatasetVersion.dataset_id == ds.id, DatasetVersion.version == v
            )
        ).scalar_one_or_none()
        distinct = {
            c.name: int((c.profile or {}).get("distinct") or 0)
            for c in catalog.columns(s, ds.id)
            if (c.profile or {}).get("distinct")
        }
        out[ds.name] = TableSize(int(rows if rows is not None else ds.row_count or 0), distinct)
    return out


def _labels(used: Sequence[Dataset], versions: Mapping[str, int]) -> list[str]:
    return sorted(f"{d.name}@v{versions.get(d.name, d.current_version)}" for d in used)
