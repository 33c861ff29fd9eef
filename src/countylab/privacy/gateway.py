"""The DP SQL gateway (数据黑匣): members of a project ask SQL over the datasets granted to it.

One query, in order (each step in its own short transaction, none held while data is read):

1. **prepare** — who asks (``query.run`` and project membership), which datasets are granted,
   catalog → ``TableSpec`` (``tables.table_spec``), ``AS OF`` versions; the engine plans the
   SQL (touching no data) and the grade policy is asked for every table the query uses;
2. **charge** — an identical earlier query of the project returns its stored noisy answer at
   no cost; otherwise (ε, δ) is charged on every ledger (``budget.charge``) and committed,
   so the cost is paid *before* the answer exists and a crash afterwards cannot refund it;
3. **execute** — exact aggregates in the worker process (no metadata credentials, watchdog,
   memory limit, row cap), noise from OpenDP, time padded to a bucket;
4. **release** — the answer is stored (the cache), the query logged and audited.

Refusals are audited too (``query.refused``), in their own transaction, because the
request's own transaction rolls back.  SDC mode (``mode="sdc"``) skips 2: exact aggregates,
allowed only where every table's grade offers SDC-checked aggregates (一般1–2级).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from countylab import audit
from countylab.catalog import service as catalog
from countylab.catalog.grading import Grade
from countylab.errors import CountylabError, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.policy import Action, require, sdc_thresholds
from countylab.privacy import budget
from countylab.privacy.engine import DPEngine
from countylab.privacy.result import DPResult
from countylab.privacy.sdc import SdcRules
from countylab.privacy.spec import EngineSettings, TableSpec
from countylab.privacy.sqlcheck import parse_query
from countylab.privacy.tables import mentioned_names, split_as_of, table_spec
from countylab.privacy.worker import ExactRunner, WorkerRunner
from countylab.storage.models import Dataset, Grant, Org, Project, utcnow
from countylab.storage.privacy_models import CachedAnswer, QueryRun

MODES = ("dp", "sdc")
MAX_SQL = 20_000


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
            "suppressed": a["suppressed"],
            "mode": self.mode,
            "cached": self.cached,
            "epsilon_spent": self.epsilon_spent,
            "delta_spent": self.delta_spent,
            "budget_remaining": self.budget_remaining,
            "budget": [b.to_json() for b in self.budget],
            "query_id": self.query_id,
            "datasets": a.get("datasets", []),
        }


def released(result: DPResult, datasets: Sequence[str]) -> dict[str, Any]:
    """The JSON stored in the cache and sent out: intervals per noisy column, JSON-safe values."""
    j = result.to_json()
    intervals: dict[str, list[Any]] = {}
    for ci, col in enumerate(j["columns"]):
        pairs = [row[ci] for row in j["intervals"]]
        if any(p is not None for p in pairs):
            intervals[col] = pairs
    safe: dict[str, Any] = json.loads(
        json.dumps(
            {
                "columns": j["columns"],
                "rows": j["rows"],
                "intervals": intervals,
                "notes": j["notes"],
                "suppressed": j["suppressed"],
                "datasets": list(datasets),
            },
            default=str,
            ensure_ascii=False,
        )
    )
    return safe


@dataclass
class _Prepared:
    external: bool
    by_name: dict[str, Dataset]
    specs: list[TableSpec]


class QueryGateway:
    """The service behind ``POST /api/query``, the query console and ``countylab query``."""

    def __init__(
        self,
        transaction: Callable[[], Any],
        paths: PathSource,
        settings: EngineSettings | None = None,
        runner: ExactRunner | None = None,
    ) -> None:
        self._tx = transaction
        self.paths = paths
        self.settings = settings or EngineSettings()
        self.runner: ExactRunner = runner or WorkerRunner(self.settings.limits, self.settings.bound_seed)

    def close(self) -> None:
        self.runner.close()

    # -- the one entry point ------------------------------------------------------------------
    def run(self, actor: Principal, req: QueryRequest) -> QueryAnswer:
        try:
            sql, as_of = split_as_of(req.sql)
            versions = {k.lower(): int(v) for k, v in {**req.versions, **as_of}.items()}
            with self._tx() as s:
                prep = self._prepare(s, actor, req, sql, versions)
                engine = DPEngine(prep.specs, self.settings, self.runner)
                if req.mode == "sdc":
                    rules, used = self._sdc_rules(engine, sql, prep)
                    run = self._start(s, actor, req, _labels(used, versions), "")
                    run_id = run.id
                else:
                    if req.epsilon is None:
                        raise ValidationFailed("DP 查询需要 ε", "a DP query needs epsilon", reason="epsilon")
                    plan = engine.plan(sql, float(req.epsilon), req.delta)
                    used = [prep.by_name[t.name] for t in plan.model.tables]
                    for ds in used:
                        require(
                            Grade(ds.grade),
                            Action.dp_query,
                            overrides=budget.dataset_policy(ds),
                            external=prep.external,
                        )
                    hit = s.execute(
                        select(CachedAnswer).where(
                            CachedAnswer.project_id == req.project_id,
                            CachedAnswer.fingerprint == plan.fingerprint,
                        )
                    ).scalar_one_or_none()
                    if hit is not None:
                        return self._cached(s, actor, req, used, _labels(used, versions), hit)
                    run = self._start(s, actor, req, _labels(used, versions), plan.fingerprint)
                    run_id = run.id
                    eps, delta = plan.cost
                    balances = budget.charge(
                        s,
                        project_id=req.project_id,
                        user_id=actor.user_id or 0,
                        datasets=used,
                        epsilon=eps,
                        delta=delta,
                        query_id=run.id,
                    )
                    run.epsilon_spent, run.delta_spent = eps, delta
                    audit.append(
                        s,
                        actor_id=actor.user_id,
                        actor=actor.username,
                        action="query.charge",
                        target=f"project:{req.project_id}",
                        details={
                            "query_id": run.id,
                            "epsilon": eps,
                            "delta": delta,
                            "datasets": run.datasets,
                        },
                    )
        except CountylabError as exc:
            self._log_refusal(actor, req, exc)
            raise
        names = _labels(used, versions)
        with self._failures(actor, req, run_id):
            result = engine.execute_sdc(sql, rules) if req.mode == "sdc" else engine.execute(plan)
        answer = released(result, names)
        with self._tx() as s:
            if req.mode == "dp":
                answer = self._store(s, req.project_id, plan.fingerprint, answer, run_id)
            balances = budget.balances_for(s, req.project_id, used, actor.user_id or 0)
            self._finish(s, actor, run_id, answer, "answered")
        return QueryAnswer(
            answer, req.mode, False, result.epsilon_spent, result.delta_spent, balances, run_id
        )

    # -- steps --------------------------------------------------------------------------------
    def _prepare(
        self, s: Session, actor: Principal, req: QueryRequest, sql: str, versions: Mapping[str, int]
    ) -> _Prepared:
        if req.mode not in MODES:
            raise ValidationFailed("mode 必须是 dp 或 sdc", "mode must be dp or sdc", field="mode")
        if not req.sql.strip() or len(req.sql) > MAX_SQL:
            raise ValidationFailed(
                "SQL 为空或过长", "SQL is empty or too long", field="sql", max_chars=MAX_SQL
            )
        target = f"project:{req.project_id}"
        authorize(actor, Permission.query_run, project_id=req.project_id, target=target)
        if not actor.is_system and req.project_id not in actor.project_ids:
            raise PermissionDenied(
                "没有权限（query.run）：只有项目成员可以查询",
                "Permission denied (query.run): only members of the project may query",
                permission=Permission.query_run.value,
                target=target,
                reason="project_member",
            )
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
            raise NotFound("表不存在或未授权", "table not found or not granted", table=unknown[0])
        key_sets = {name: list(ks.values or []) for name, ks in catalog.key_sets(s).items()}
        specs = []
        mentioned = mentioned_names(sql)
        for ds in by_name.values():
            if ds.name not in mentioned:  # only the tables the SQL can name are materialised
                continue
            version = versions.get(ds.name, ds.current_version)
            paths = self.paths.read_paths(ds, version)
            if not paths:
                continue
            specs.append(table_spec(ds, catalog.columns(s, ds.id), key_sets, paths, int(version or 0)))
        return _Prepared(org_kind != "department", by_name, specs)

    def _sdc_rules(self, engine: DPEngine, sql: str, prep: _Prepared) -> tuple[SdcRules, list[Dataset]]:
        model = parse_query(sql, engine.tables, self.settings.limits.max_result_rows)
        used = [prep.by_name[t.name] for t in model.tables]
        rules = SdcRules()
        for ds in used:
            grade, overrides = Grade(ds.grade), budget.dataset_policy(ds)
            require(grade, Action.sdc_aggregate, overrides=overrides, external=prep.external)
            thr = sdc_thresholds(grade, overrides)
            assert thr is not None  # require() has checked
            rules = SdcRules(
                min_units=max(rules.min_units, thr.min_cell_count),
                p_percent=rules.p_percent,
                nk_n=thr.dominance_n,
                nk_k=min(rules.nk_k, thr.dominance_k * 100.0),
            )
        return rules, used

    def _start(
        self, s: Session, actor: Principal, req: QueryRequest, labels: Sequence[str], fingerprint: str
    ) -> QueryRun:
        run = QueryRun(
            project_id=req.project_id,
            user_id=actor.user_id,
            username=actor.username,
            sql=req.sql,
            mode=req.mode,
            epsilon=float(req.epsilon or 0.0),
            delta=float(req.delta or 0.0),
            epsilon_spent=0.0,
            delta_spent=0.0,
            datasets=list(labels),
            fingerprint=fingerprint,
            status="running",
            cached=False,
            rows=0,
            suppressed=0,
            error="",
            created_at=utcnow(),
        )
        s.add(run)
        s.flush()
        return run

    def _cached(
        self,
        s: Session,
        actor: Principal,
        req: QueryRequest,
        used: Sequence[Dataset],
        labels: Sequence[str],
        hit: CachedAnswer,
    ) -> QueryAnswer:
        run = self._start(s, actor, req, labels, hit.fingerprint)
        run.cached = True
        self._finish(s, actor, run.id, hit.answer, "cached")
        balances = budget.balances_for(s, req.project_id, used, actor.user_id or 0)
        return QueryAnswer(dict(hit.answer), req.mode, True, 0.0, 0.0, balances, run.id)

    def _store(
        self, s: Session, project_id: int, fingerprint: str, answer: dict[str, Any], run_id: int
    ) -> dict[str, Any]:
        """Keep the first answer of a fingerprint; a concurrent identical query gets that one."""
        values = {
            "project_id": project_id,
            "fingerprint": fingerprint,
            "answer": answer,
            "query_id": run_id,
            "created_at": utcnow(),
        }
        dialect = s.get_bind().dialect.name
        stmt: Any
        if dialect == "postgresql":
            stmt = postgresql.insert(CachedAnswer).values(**values).on_conflict_do_nothing()
        else:
            stmt = sqlite.insert(CachedAnswer).values(**values).on_conflict_do_nothing()
        s.execute(stmt)
        stored = s.execute(
            select(CachedAnswer.answer).where(
                CachedAnswer.project_id == project_id, CachedAnswer.fingerprint == fingerprint
            )
        ).scalar_one()
        return dict(stored)

    def _finish(
        self, s: Session, actor: Principal, run_id: int, answer: Mapping[str, Any], status: str
    ) -> None:
        run = s.get(QueryRun, run_id)
        assert run is not None
        run.status, run.finished_at = status, utcnow()
        run.rows, run.suppressed = len(answer.get("rows", [])), len(answer.get("suppressed", []))
        audit.append(
            s,
            actor_id=actor.user_id,
            actor=actor.username,
            action="query.run",
            target=f"project:{run.project_id}",
            details={
                "query_id": run.id,
                "sql": run.sql,
                "mode": run.mode,
                "status": status,
                "epsilon_spent": 0.0 if run.cached else run.epsilon_spent,
                "delta_spent": 0.0 if run.cached else run.delta_spent,
                "cached": run.cached,
                "datasets": run.datasets,
                "rows": run.rows,
                "suppressed": run.suppressed,
                "suppressed_cells": list(answer.get("suppressed", []))[:50],
            },
        )

    @contextmanager
    def _failures(self, actor: Principal, req: QueryRequest, run_id: int) -> Iterator[None]:
        """A query that fails after its charge keeps the charge (its failure may depend on data)."""
        try:
            yield
        except CountylabError as exc:
            with self._tx() as s:
                run = s.get(QueryRun, run_id)
                if run is not None:
                    run.status, run.error, run.finished_at = "failed", exc.message_en[:500], utcnow()
                audit.append(
                    s,
                    actor_id=actor.user_id,
                    actor=actor.username,
                    action="query.failed",
                    target=f"project:{req.project_id}",
                    details={
                        "query_id": run_id,
                        "sql": req.sql[:4000],
                        "code": exc.code,
                        "reason": exc.message_en,
                        "epsilon_spent": run.epsilon_spent if run else 0.0,
                    },
                )
            raise

    def _log_refusal(self, actor: Principal, req: QueryRequest, exc: CountylabError) -> None:
        details = {
            k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool) or v is None
        }
        with self._tx() as s:
            project = s.get(Project, req.project_id)
            if project is not None and actor.user_id is not None and project.id in actor.project_ids:
                s.add(
                    QueryRun(
                        project_id=project.id,
                        user_id=actor.user_id,
                        username=actor.username,
                        sql=req.sql[:MAX_SQL],
                        mode=str(req.mode)[:10],
                        epsilon=float(req.epsilon or 0.0),
                        delta=float(req.delta or 0.0),
                        epsilon_spent=0.0,
                        delta_spent=0.0,
                        datasets=[],
                        fingerprint="",
                        status="refused",
                        cached=False,
                        rows=0,
                        suppressed=0,
                        error=exc.message_en[:500],
                        created_at=utcnow(),
                        finished_at=utcnow(),
                    )
                )
            audit.append(
                s,
                actor_id=actor.user_id,
                actor=actor.username,
                action="query.refused",
                target=f"project:{req.project_id}",
                outcome="denied",
                details={
                    "sql": req.sql[:4000],
                    "mode": str(req.mode)[:10],
                    "epsilon": req.epsilon,
                    "code": exc.code,
                    "reason": exc.message_en,
                    **details,
                },
            )


def _labels(used: Sequence[Dataset], versions: Mapping[str, int]) -> list[str]:
    return sorted(f"{d.name}@v{versions.get(d.name, d.current_version)}" for d in used)
