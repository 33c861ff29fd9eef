"""The model registry (模型登记) and the prediction service.

Model files (pickle, joblib, ONNX, PyTorch state) are never releasable: a trained model can
memorise rows.  A developer registers one from a job's outbox with a model card (inputs,
outputs, training data versions, metrics that passed the airlock); a steward or an independent
checker approves it; then callers get *predictions only*, computed by a sandboxed worker
(:mod:`.worker`).  The weights are copied into the registry's own store and no route reads
them back.

Who may call a model is decided by :data:`CALLER_AUTHORIZERS`: today members of the owning
project; data products (a later capability) add an authorizer for their API keys there.
Each caller, and each caller's organisation, has a per-minute rate limit and a daily quota per
model (blunting model-inversion and membership-inference attacks, which need many queries).

A model is an output too (可用不可见 holds for models): its outputs are typed on the card
(:mod:`.outputs`: numbers in a declared range, or categories from a declared set; no free text),
every response is checked against those types and scanned, and the audit log keeps SHA-256
digests of each call's inputs and outputs, never the values.  Before a checker may approve a
model, the lab runs memorisation tests on the real training data (:mod:`.assess`) and shows the
figures; a model that fails them cannot be approved.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.airlock.checks.base import OutputFile
from countylab.airlock.checks.sniff import MODEL_SUFFIXES, Content, sniff_file
from countylab.airlock.context import job_datasets
from countylab.airlock.outbox import copy_into_store, find_entry, list_outbox
from countylab.airlock.review import require_can_review
from countylab.airlock.selection import Declared
from countylab.errors import Conflict, NotFound, PermissionDenied, QuotaExceeded, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.projects import authorize_member
from countylab.identity.roles import Permission
from countylab.notify.hooks import model_notice
from countylab.serving import assess as memo
from countylab.serving.outputs import (
    OutputSpec,
    card_outputs,
    check_predictions,
    digest,
    parse_outputs,
)
from countylab.serving.schema import InputSchema, build, expand, needs_encoding, raw_record
from countylab.serving.schema_catalog import column_facts, declared_inputs
from countylab.serving.worker import WorkerPool
from countylab.storage.airlock_models import ModelCall, RegisteredModel, ReleaseFile, ReleaseRequest
from countylab.storage.jobs_models import Job
from countylab.storage.models import Dataset, User, utcnow

SERVABLE = frozenset({"joblib", "pickle"})
MAX_ROWS = 1000
ASSESSED = ("pass", "warn")
ReadPaths = Callable[[Dataset], list[Path]]

CallerAuthorizer = Callable[[Session, Principal, RegisteredModel], str | None]
"""Returns a caller key ("user:7") when the principal may call the model, else None."""


def project_member(s: Session, actor: Principal, model: RegisteredModel) -> str | None:
    if actor.is_system or model.project_id in actor.project_ids:
        return f"user:{actor.user_id}" if actor.user_id is not None else actor.username
    return None


# Data products (issue later): append an authorizer that recognises a product's API key and
# returns "product-key:<id>"; its own rate limits then apply per key.
CALLER_AUTHORIZERS: list[CallerAuthorizer] = [project_member]


@dataclass(frozen=True)
class ModelCard:
    inputs: tuple[str, ...]
    outputs: tuple[OutputSpec, ...]
    description: str = ""
    metrics_file_id: int | None = None  # a released file (JSON/CSV metrics) of the same project
    target: str | None = None  # the training dataset's column the model predicts (for the tests)

    @classmethod
    def parse(
        cls,
        inputs: Sequence[str],
        outputs: Sequence[str | dict[str, Any]],
        description: str = "",
        metrics_file_id: int | None = None,
        target: str | None = None,
    ) -> ModelCard:
        """A card from user input; outputs must be typed (see :mod:`.outputs`)."""
        return cls(
            tuple(str(i).strip() for i in inputs),
            parse_outputs(outputs),
            description,
            metrics_file_id,
            (target or "").strip() or None,
        )

    def validate(self) -> None:
        if not self.inputs or len(self.inputs) > 500 or any(not i.strip() for i in self.inputs):
            raise ValidationFailed(
                "模型卡必须列出输入特征", "the model card must list the input features", reason="inputs"
            )
        if not self.outputs:
            raise ValidationFailed(
                "模型卡必须声明带类型的输出", "the model card must declare typed outputs", reason="outputs"
            )


def model_format(name: str, detail: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".onnx" or detail == "ONNX":
        return "onnx"
    if suffix in (".pt", ".pth", ".ckpt") or "PyTorch" in detail:
        return "pytorch"
    if suffix == ".joblib" or "joblib" in detail:
        return "joblib"
    return "pickle"


@dataclass
class ModelService:
    models_dir: Path
    pool: WorkerPool
    read_paths: ReadPaths | None = None
    default_rate_per_minute: int = 30
    default_daily_quota: int = 1000
    org_rate_factor: int = 3  # an organisation's calls per minute: this many callers' worth
    org_daily_quota: int = 3000  # calls a day per model from one organisation, all callers
    authorizers: list[CallerAuthorizer] = field(default_factory=lambda: CALLER_AUTHORIZERS)
    clock: Callable[[], datetime] = utcnow  # the lab's clock: an authorisation's end date

    def get(self, s: Session, actor: Principal, model_id: int) -> RegisteredModel:
        authorize(actor, Permission.model_predict, target=f"model:{model_id}")
        model = s.get(RegisteredModel, model_id)
        if model is None:
            raise NotFound(f"模型 {model_id} 不存在", f"model {model_id} not found", reason="no_model")
        if self._caller(s, actor, model) is None and not self._may_decide(actor, model):
            authorize(actor, Permission.model_approve, target=f"model:{model_id}")
        return model

    def list_models(self, s: Session, actor: Principal) -> list[RegisteredModel]:
        authorize(actor, Permission.model_predict)
        rows = list(
            s.execute(select(RegisteredModel).order_by(RegisteredModel.id.desc()).limit(500)).scalars()
        )
        return [m for m in rows if self._caller(s, actor, m) is not None or self._may_decide(actor, m)]

    def register(
        self, s: Session, actor: Principal, job_id: int, file_name: str, name: str, card: ModelCard
    ) -> RegisteredModel:
        authorize(actor, Permission.model_register, target=f"job:{job_id}")
        job = s.get(Job, job_id)
        if job is None:
            raise NotFound(f"作业 {job_id} 不存在", f"job {job_id} not found", reason="no_job")
        authorize_member(s, actor, Permission.model_register, job.project_id, f"job:{job_id}")
        if not name.strip():
            raise ValidationFailed("请填写模型名称", "give the model a name", reason="name")
        # Outbox names are written by the job: only a file the developer declared as a model in
        # countylab.yaml may be named here, and "missing" and "not a model" get one answer, so
        # probing names learns nothing about what the job wrote.
        if file_name.strip("/") not in Declared.of(job.spec or {}).models():
            raise ValidationFailed(
                "只能登记在 countylab.yaml 中声明为 kind: model 的输出",
                "only an output declared `kind: model` in countylab.yaml can be registered",
                reason="not_declared",
            )
        unavailable = Conflict(
            "该作业没有可登记的模型文件",
            "the job has no model file to register there",
            reason="no_model_file",
        )
        try:
            entry = find_entry(list_outbox(s, job), file_name.strip("/"))
        except NotFound:
            raise unavailable from None
        sniffed = sniff_file(OutputFile(entry.name, entry.path))
        if (
            sniffed.content is not Content.model
            and PurePosixPath(entry.name).suffix.lower() not in MODEL_SUFFIXES
        ):
            raise unavailable
        card, schema = self._schema(s, job, entry.path, card)
        card.validate()
        metrics = self._metrics(s, job.project_id, card.metrics_file_id)
        model = RegisteredModel(
            project_id=job.project_id,
            job_id=job.id,
            name=name.strip()[:200],
            file_name=entry.name,
            format=model_format(entry.name, sniffed.detail),
            stored_path="",
            sha256="",
            bytes=0,
            card={
                "inputs": list(card.inputs),
                "outputs": [o.as_json() for o in card.outputs],
                "target": card.target,
                "description": card.description,
                "training_data": [
                    {"name": d.name, "version": d.current_version} for d in job_datasets(s, job)
                ],
                "metrics": metrics,
                "input_schema": schema.to_json() if schema is not None else None,
            },
            state="pending",
            rate_per_minute=self.default_rate_per_minute,
            daily_quota=self.default_daily_quota,
            created_by=actor.user_id,
            decision_note="",
        )
        s.add(model)
        s.flush()
        dest = self.models_dir / str(model.id) / f"model{PurePosixPath(entry.name).suffix.lower() or '.bin'}"
        model.sha256, model.bytes = copy_into_store(entry.path, dest)
        model.stored_path = str(dest)
        audit.record(
            s,
            actor,
            "model.register",
            f"model:{model.id}",
            job_id=job.id,
            file=entry.name,
            sha256=model.sha256,
            format=model.format,
        )
        model_notice(s, model, actor.user_id)
        return model

    def _schema(
        self, s: Session, job: Job, path: Path, card: ModelCard
    ) -> tuple[ModelCard, InputSchema | None]:
        """The input schema (see :mod:`.schema`): from the job's sidecar beside the model, or
        from the catalog columns the card's inputs name.  A declared schema fills empty inputs."""
        declared = declared_inputs(path)
        facts = column_facts(s, [d.name for d in job_datasets(s, job)])
        schema = build(card.inputs, facts, declared)
        if schema is not None and declared and not card.inputs:
            card = replace(card, inputs=tuple(schema.columns))
        return card, schema

    def _metrics(self, s: Session, project_id: int, file_id: int | None) -> dict[str, Any] | None:
        if file_id is None:
            return None
        row = (
            s.execute(
                select(ReleaseFile, ReleaseRequest)
                .join(ReleaseRequest, ReleaseRequest.id == ReleaseFile.request_id)
                .where(ReleaseFile.id == file_id)
            )
        ).one_or_none()
        if row is None or row[1].project_id != project_id or row[0].released_path is None:
            raise ValidationFailed(
                "模型指标必须是本项目已通过出域审核的文件",
                "the metrics must be a file of this project that passed the airlock",
                reason="metrics",
            )
        f = row[0]
        metrics: dict[str, Any] = {"file_id": f.id, "name": f.name, "sha256": f.released_sha256}
        if f.kind in ("json", "csv", "text") and (f.released_bytes or 0) <= 64 * 1024:
            metrics["content"] = Path(f.released_path or "").read_text(encoding="utf-8", errors="replace")
        return metrics

    def oversees(self, actor: Principal, model: RegisteredModel) -> bool:
        """Whether ``actor`` reviews this model (sees its file's size and hash, runs the tests)."""
        return self._may_decide(actor, model)

    def _may_decide(self, actor: Principal, model: RegisteredModel) -> bool:
        try:
            authorize(actor, Permission.model_approve)
            if not actor.is_system:
                require_can_review(
                    str(actor.user_id),
                    {str(p) for p in actor.project_ids},
                    str(model.project_id),
                    requester_user_id=str(model.created_by),
                )
        except PermissionDenied:
            return False
        return True

    def decide(
        self,
        s: Session,
        actor: Principal,
        model_id: int,
        approve: bool,
        note: str = "",
        *,
        rate_per_minute: int | None = None,
        daily_quota: int | None = None,
    ) -> RegisteredModel:
        authorize(actor, Permission.model_approve, target=f"model:{model_id}")
        model = s.execute(
            select(RegisteredModel).where(RegisteredModel.id == model_id).with_for_update()
        ).scalar_one_or_none()
        if model is None:
            raise NotFound(f"模型 {model_id} 不存在", f"model {model_id} not found", reason="no_model")
        if not actor.is_system:
            require_can_review(
                str(actor.user_id),
                {str(p) for p in actor.project_ids},
                str(model.project_id),
                requester_user_id=str(model.created_by),
            )
        target = "approved" if approve else "rejected"
        report = (model.card or {}).get("assessment") or {}
        if approve and model.state == "pending":
            if report.get("verdict") not in ASSESSED:
                raise Conflict(
                    "批准前必须先运行记忆性检测且未发现记忆训练数据",
                    "approval needs the memorisation tests to have run and passed",
                    reason="assessment",
                    verdict=report.get("verdict") or "not_run",
                )
            if report.get("verdict") == "warn" and not note.strip():
                raise ValidationFailed(
                    "记忆性检测有警告：批准时请写明理由",
                    "the memorisation tests warned: give a reason to approve",
                    reason="note",
                )
        if model.state != "pending" and model.state != target:
            raise Conflict(
                f"模型已{'批准' if model.state == 'approved' else '拒绝'}",
                f"the model is already {model.state}",
                reason="decided",
            )
        for value, label in ((rate_per_minute, "rate_per_minute"), (daily_quota, "daily_quota")):
            if value is not None and not 1 <= value <= 100_000:
                raise ValidationFailed("限额必须在 1 到 100000 之间", "limits are 1–100000", reason=label)
        model.state = target
        model.decided_by, model.decided_at, model.decision_note = actor.user_id, utcnow(), note
        model.rate_per_minute = rate_per_minute or model.rate_per_minute
        model.daily_quota = daily_quota or model.daily_quota
        audit.record(
            s,
            actor,
            f"model.{target}",
            f"model:{model.id}",
            rate_per_minute=model.rate_per_minute,
            daily_quota=model.daily_quota,
            note=note,
            assessment=report.get("verdict"),
        )
        if not approve:
            self.pool.evict(model.id)
        model_notice(s, model, actor.user_id)
        return model

    def _caller(self, s: Session, actor: Principal, model: RegisteredModel) -> str | None:
        for authorizer in self.authorizers:
            key = authorizer(s, actor, model)
            if key is not None:
                return key
        return None

    def _admit(
        self, s: Session, actor: Principal, model_id: int, rows: Sequence[Any]
    ) -> tuple[RegisteredModel, str, int, list[list[Any]]]:
        authorize(actor, Permission.model_predict, target=f"model:{model_id}")
        model = s.execute(
            select(RegisteredModel).where(RegisteredModel.id == model_id).with_for_update()
        ).scalar_one_or_none()
        if model is None:
            raise NotFound(f"模型 {model_id} 不存在", f"model {model_id} not found", reason="no_model")
        caller = self._caller(s, actor, model)
        if caller is None:
            raise PermissionDenied(
                "只有模型所属项目的成员（或数据产品的调用方）可以调用该模型",
                "only members of the model's project (or data-product callers) may call it",
                permission="model.predict",
                target=f"model:{model_id}",
                reason="caller",
            )
        if model.state != "approved":
            raise Conflict("模型尚未批准，不能提供预测", "the model is not approved", reason="not_approved")
        from countylab.operations import enforcement  # the project's authorisation is in force
        from countylab.operations.terms import Channel

        now_ = self.clock()
        enforcement.check(s, model.project_id, Channel.model_serving, [], now=now_, user_id=actor.user_id)
        if not card_outputs(model.card or {}):
            raise Conflict(
                "该模型卡没有带类型的输出，不能提供预测；请重新登记",
                "the model card declares no typed outputs, so it cannot be served; register it again",
                reason="untyped_outputs",
            )
        if model.format not in SERVABLE:
            raise Conflict(
                f"暂不支持在域内运行 {model.format} 格式的模型",
                f"{model.format} models cannot be served yet",
                reason="format",
            )
        if not 1 <= len(rows) <= MAX_ROWS:
            raise ValidationFailed(
                f"每次预测 1 到 {MAX_ROWS} 行", f"send 1 to {MAX_ROWS} rows per call", reason="rows"
            )
        matrix = _rows(model.card or {}, rows)
        now = datetime.now(UTC)
        counted = select(func.count(ModelCall.id)).where(
            ModelCall.model_id == model.id, ModelCall.caller == caller
        )
        if (
            s.execute(counted.where(ModelCall.at >= now - timedelta(minutes=1))).scalar_one()
            >= model.rate_per_minute
        ):
            raise QuotaExceeded(
                f"调用过于频繁：每分钟最多 {model.rate_per_minute} 次",
                f"rate limit: at most {model.rate_per_minute} calls a minute",
                reason="rate_limited",
            )
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if s.execute(counted.where(ModelCall.at >= day)).scalar_one() >= model.daily_quota:
            raise QuotaExceeded(
                f"今日调用已达上限 {model.daily_quota} 次",
                f"daily quota of {model.daily_quota} calls used",
                reason="daily_quota",
            )
        self._org_limits(s, actor, model, now, day)
        call = ModelCall(model_id=model.id, caller=caller, at=now, rows=len(matrix), latency_ms=0.0, ok=False)
        s.add(call)
        s.flush()
        return model, caller, call.id, matrix

    def _org_limits(
        self, s: Session, actor: Principal, model: RegisteredModel, now: datetime, day: datetime
    ) -> None:
        """Limits over every caller of the actor's organisation: many accounts are one attacker."""
        if actor.org_id is None:
            return
        members = select(User.id).where(User.org_id == actor.org_id)
        callers = [f"user:{uid}" for uid in s.execute(members).scalars()]
        counted = select(func.count(ModelCall.id)).where(
            ModelCall.model_id == model.id, ModelCall.caller.in_(callers)
        )
        per_minute = model.rate_per_minute * self.org_rate_factor
        if s.execute(counted.where(ModelCall.at >= now - timedelta(minutes=1))).scalar_one() >= per_minute:
            raise QuotaExceeded(
                f"本单位调用过于频繁：每分钟最多 {per_minute} 次",
                f"organisation rate limit: at most {per_minute} calls a minute",
                reason="org_rate_limited",
            )
        if s.execute(counted.where(ModelCall.at >= day)).scalar_one() >= self.org_daily_quota:
            raise QuotaExceeded(
                f"本单位今日调用已达上限 {self.org_daily_quota} 次",
                f"your organisation's daily quota of {self.org_daily_quota} calls is used",
                reason="org_daily_quota",
            )

    def predict(
        self,
        tx: Callable[[], AbstractContextManager[Session]],
        actor: Principal,
        model_id: int,
        rows: Sequence[Any],
    ) -> dict[str, Any]:
        """Admit the call (limits) in one transaction, predict outside it, audit in a second."""
        with tx() as s:
            model, caller, call_id, matrix = self._admit(s, actor, model_id, rows)
            path = Path(model.stored_path)
            specs = card_outputs(model.card or {})
            inputs = [str(i) for i in model.card.get("inputs") or []]
            schema = InputSchema.from_card(model.card or {})
        encoded = needs_encoding(schema)
        started = time.perf_counter()
        error: Exception | None = None
        predictions: list[Any] = []
        try:  # the domain is checked on the fields' own columns, before any encoding
            assert schema is not None or not encoded
            matrix = in_domain(load_domain(path), _field_columns(schema, inputs), matrix)
            model_rows = [expand(schema, r) for r in matrix] if schema is not None and encoded else matrix
            predictions = check_predictions(self.pool.predict(model_id, path, model_rows, inputs), specs)
        except Exception as exc:  # noqa: BLE001 - audited below, then raised
            error = exc
        latency = (time.perf_counter() - started) * 1000
        with tx() as s:
            call = s.get(ModelCall, call_id)
            if call is not None:
                call.ok, call.latency_ms = error is None, latency
            audit.record(
                s,
                actor,
                "model.predict",
                f"model:{model_id}",
                outcome="ok" if error is None else "failed",
                caller=caller,
                org_id=actor.org_id,
                rows=len(matrix),
                latency_ms=round(latency, 2),
                inputs_sha256=digest(matrix),
                outputs_sha256=digest(predictions) if error is None else None,
                error=getattr(error, "details", {}).get("reason", type(error).__name__) if error else None,
            )
        if error is not None:
            raise error
        return {
            "model_id": model_id,
            "predictions": predictions,
            "outputs": [o.name for o in specs],
            "latency_ms": latency,
        }

    # -- memorisation tests ---------------------------------------------------------------------
    def assess(
        self, tx: Callable[[], AbstractContextManager[Session]], actor: Principal, model_id: int
    ) -> dict[str, Any]:
        """Run the memorisation tests on the real training data (outside any transaction) and
        store the report on the card; only those who may decide on the model run them."""
        with tx() as s:
            authorize(actor, Permission.model_approve, target=f"model:{model_id}")
            model = s.get(RegisteredModel, model_id)
            if model is None:
                raise NotFound(f"模型 {model_id} 不存在", f"model {model_id} not found", reason="no_model")
            if not self._may_decide(actor, model):
                raise PermissionDenied(
                    "只有独立审核员或数据安全官可以检测该模型",
                    "only an independent checker or the security officer may test this model",
                    permission="model.approve",
                    target=f"model:{model_id}",
                    reason="independence",
                )
            if model.state != "pending":
                raise Conflict("模型已有决定", "the model has been decided already", reason="decided")
            card = dict(model.card or {})
            path = Path(model.stored_path)
            sources = self._training_sources(s, card)
        report = self._run_assessment(model_id, path, card, sources)
        with tx() as s:
            model = s.execute(
                select(RegisteredModel).where(RegisteredModel.id == model_id).with_for_update()
            ).scalar_one()
            model.card = {**(model.card or {}), "assessment": report}
            audit.append(
                s,
                actor_id=actor.user_id,
                actor=actor.username,
                action="model.assess",
                target=f"model:{model_id}",
                details={k: v for k, v in report.items() if not isinstance(v, dict | list)},
            )
        return report

    def _training_sources(self, s: Session, card: dict[str, Any]) -> list[tuple[str, int | None, list[Path]]]:
        out = []
        for entry in card.get("training_data") or []:
            ds = s.execute(select(Dataset).where(Dataset.name == entry.get("name"))).scalar_one_or_none()
            if ds is None or self.read_paths is None:
                continue
            out.append((ds.name, entry.get("version"), self.read_paths(ds)))
        return out

    def _run_assessment(
        self,
        model_id: int,
        path: Path,
        card: dict[str, Any],
        sources: list[tuple[str, int | None, list[Path]]],
    ) -> dict[str, Any]:
        from countylab.serving.training import load_sample

        model_inputs = [str(i) for i in card.get("inputs") or []]
        schema = InputSchema.from_card(card)
        inputs = _field_columns(schema, model_inputs)  # what the training rows hold
        target = card.get("target") or None
        specs = card_outputs(card)
        if not specs:
            return memo.not_assessable("模型卡没有带类型的输出", "the model card declares no typed outputs")
        seed = memo.fresh_seed()  # the rows and probes of these tests are drawn anew each time
        sample = load_sample(sources, inputs, target, seed)
        if sample is None:
            return memo.not_assessable(
                "模型的输入不全是某个训练数据集的列：请把特征处理放进模型（如 scikit-learn Pipeline），"
                "让模型直接以数据集的列为输入",
                "the model's inputs are not all columns of one training dataset: put the feature "
                "steps inside the model (e.g. a scikit-learn Pipeline) so it takes dataset columns",
            )
        decimals = specs[0].decimals if specs[0].kind == "number" else 0
        from countylab.serving.training import input_domain

        domain = input_domain(sources, inputs)
        if domain is None:
            return memo.not_assessable(
                "无法确定模型输入的取值范围", "the range of the model's inputs could not be determined"
            )
        save_domain(path, domain)

        def predict(rows: list[list[Any]]) -> list[Any]:
            if schema is not None and needs_encoding(schema):
                rows = [expand(schema, r) for r in rows]
            raw = self.pool.predict(model_id, path, rows, model_inputs)
            try:
                return check_predictions(raw, specs)
            except Conflict:
                raise Conflict(
                    "检测时模型的输出不符合模型卡",
                    "during the tests the model answered outside its card",
                    reason="output_outside_card",
                ) from None

        try:
            report = memo.assess(sample, inputs, target, decimals, predict, seed)
            report["input_domain"] = {k: v["kind"] for k, v in domain.items()}
            return report
        except Conflict as exc:
            if (exc.details or {}).get("reason") != "output_outside_card":
                return memo.not_assessable("模型无法在沙箱中运行", "the model could not run in the sandbox")
            report = memo.not_assessable(exc.message_zh, exc.message_en)
            report["verdict"] = "fail"
            return report
        except Exception:  # noqa: BLE001 - a model that cannot run cannot be approved
            return memo.not_assessable("模型无法在沙箱中运行", "the model could not run in the sandbox")


def _field_columns(schema: InputSchema | None, inputs: list[str]) -> list[str]:
    """The catalog columns a row holds before encoding: the fields' own for an encoded model."""
    return [f.column for f in schema.fields] if schema is not None and needs_encoding(schema) else inputs


def _rows(card: dict[str, Any], rows: Sequence[Any]) -> list[list[Any]]:
    """Each record as one value per field (named records, see :mod:`.schema`) or per model input
    (positional rows: models whose inputs are plain columns, as before)."""
    schema = InputSchema.from_card(card)
    inputs = [str(i) for i in card.get("inputs") or []]
    out: list[list[Any]] = []
    for i, r in enumerate(rows):
        if schema is not None and isinstance(r, dict):
            out.append(raw_record(schema, r, i + 1))
        elif needs_encoding(schema):
            raise ValidationFailed(
                f'第 {i + 1} 行：该模型按字段名调用，请按字段名传入（如 {{"town": "城关镇"}}）',
                f'row {i + 1}: this model takes named fields (e.g. {{"town": "城关镇"}}), not positions',
                row=i + 1,
                reason="named_fields_required",
            )
        else:
            out.append(_row(r, inputs, i))
    return out


def _row(row: Any, inputs: list[str], i: int) -> list[Any]:
    if isinstance(row, dict):
        missing = [k for k in inputs if k not in row]
        if missing:
            raise ValidationFailed(
                f"第 {i + 1} 行缺少输入：{', '.join(missing)}",
                f"row {i + 1} lacks {missing}",
                row=i + 1,
                reason="missing_inputs",
            )
        row = [row[k] for k in inputs]
    if not isinstance(row, list) or (inputs and len(row) != len(inputs)):
        raise ValidationFailed(
            f"第 {i + 1} 行应有 {len(inputs)} 个输入值",
            f"row {i + 1} needs {len(inputs)} values",
            row=i + 1,
            reason="row_shape",
        )
    if any(not isinstance(v, str | int | float | bool) and v is not None for v in row):
        raise ValidationFailed(
            f"第 {i + 1} 行只能含数值或文本",
            f"row {i + 1} may hold plain values only",
            row=i + 1,
            reason="row_values",
        )
    return row


# -- the input domain: a served model answers only where it was trained and tested -------------
# A model can hold a second behaviour at inputs no memorisation test visits (age 1000 + k →
# digits of row k's ID number; age 70.0001·k between the whole ages of the training data).  The
# assessment records where the training data lies (:func:`countylab.serving.training.input_domain`)
# beside the stored model, never on the card; serving refuses rows outside it and rounds inputs
# of whole-number columns to whole numbers, so the tested inputs are the only ones there are.


def domain_path(model_path: Path) -> Path:
    """Beside the model's folder, not in it: the folder is bound into the model's sandbox."""
    folder = model_path.parent
    return folder.with_name(f"{folder.name}.{model_path.name}.domain.json")


def save_domain(model_path: Path, domain: dict[str, Any]) -> None:
    target = domain_path(model_path)
    tmp = target.with_name(target.name + ".part")
    tmp.write_text(json.dumps(domain, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    tmp.replace(target)


def load_domain(model_path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(domain_path(model_path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def outside_domain() -> ValidationFailed:
    """The one answer for an input outside the training domain: no value, no bound, no row."""
    return ValidationFailed(
        "输入超出模型训练数据的取值范围，本次调用已拒绝",
        "an input lies outside the range of the model's training data; the call was refused",
        reason="input_outside_domain",
    )


def in_domain(domain: dict[str, Any] | None, inputs: list[str], matrix: list[list[Any]]) -> list[list[Any]]:
    """The rows as the model sees them, or :func:`outside_domain` for the whole call."""
    if domain is None:  # not assessed (an unassessed model is never approved)
        return matrix
    out: list[list[Any]] = []
    for row in matrix:
        fixed: list[Any] = []
        for name, value in zip(inputs, row, strict=True):
            rule = domain.get(name) or {"kind": "open"}
            if value is None or rule["kind"] == "open":
                fixed.append(value)
            elif rule["kind"] == "number":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise outside_domain()
                number = float(value)
                if not math.isfinite(number) or not rule["lower"] <= number <= rule["upper"]:
                    raise outside_domain()
                fixed.append(int(round(number)) if rule.get("whole") else value)
            else:
                text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                if text not in set(rule["levels"]):
                    raise outside_domain()
                fixed.append(value)
        out.append(fixed)
    return out
