"""The model registry (模型登记) and the prediction service.

Model files (pickle, joblib, ONNX, PyTorch state) are never releasable: a trained model can
memorise rows.  A developer registers one from a job's outbox with a model card (inputs,
outputs, training data versions, metrics that passed the airlock); a steward or an independent
checker approves it; then callers get *predictions only*, computed by a sandboxed worker
(:mod:`.worker`).  The weights are copied into the registry's own store and no route reads
them back.

Who may call a model is decided by :data:`CALLER_AUTHORIZERS`: today members of the owning
project; data products (a later capability) add an authorizer for their API keys there.
Each caller has a per-minute rate limit and a daily quota per model (blunting model-inversion
and membership-inference attacks, which need many queries), and every call's inputs and
outputs are written to the audit log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.airlock.checks.base import OutputFile
from countylab.airlock.checks.sniff import MODEL_SUFFIXES, Content, sniff_file
from countylab.airlock.context import job_datasets
from countylab.airlock.outbox import OutboxLister, copy_into_store, find_entry, list_outbox
from countylab.airlock.review import require_can_review
from countylab.errors import Conflict, NotFound, PermissionDenied, QuotaExceeded, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.serving.worker import WorkerPool
from countylab.storage.airlock_models import ModelCall, RegisteredModel, ReleaseFile, ReleaseRequest
from countylab.storage.jobs_models import Job
from countylab.storage.models import utcnow

SERVABLE = frozenset({"joblib", "pickle"})
MAX_ROWS = 1000
AUDITED_ROWS = 100

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
    outputs: tuple[str, ...] = ("prediction",)
    description: str = ""
    metrics_file_id: int | None = None  # a released file (JSON/CSV metrics) of the same project

    def validate(self) -> None:
        if not self.inputs or len(self.inputs) > 500 or any(not i.strip() for i in self.inputs):
            raise ValidationFailed(
                "模型卡必须列出输入特征", "the model card must list the input features", reason="inputs"
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
    outbox_lister: OutboxLister | None = None
    default_rate_per_minute: int = 30
    default_daily_quota: int = 1000
    authorizers: list[CallerAuthorizer] = field(default_factory=lambda: CALLER_AUTHORIZERS)

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
        authorize(actor, Permission.model_register, project_id=job.project_id, target=f"job:{job_id}")
        if not actor.is_system and job.project_id not in actor.project_ids:
            authorize(actor, Permission.model_register, project_id=job.project_id, project_owner=True)
        card.validate()
        if not name.strip():
            raise ValidationFailed("请填写模型名称", "give the model a name", reason="name")
        entry = find_entry(list_outbox(s, job, self.outbox_lister), file_name)
        sniffed = sniff_file(OutputFile(entry.name, entry.path))
        if (
            sniffed.content is not Content.model
            and PurePosixPath(entry.name).suffix.lower() not in MODEL_SUFFIXES
        ):
            raise ValidationFailed(
                f"“{entry.name}”不是模型文件（{sniffed.detail}）",
                f"{entry.name!r} is not a model file ({sniffed.detail})",
                reason="not_a_model",
            )
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
                "outputs": list(card.outputs),
                "description": card.description,
                "training_data": [
                    {"name": d.name, "version": d.current_version} for d in job_datasets(s, job)
                ],
                "metrics": metrics,
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
        audit.append(
            s,
            actor_id=actor.user_id,
            actor=actor.username,
            action="model.register",
            target=f"model:{model.id}",
            details={"job_id": job.id, "file": entry.name, "sha256": model.sha256, "format": model.format},
        )
        return model

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
        audit.append(
            s,
            actor_id=actor.user_id,
            actor=actor.username,
            action=f"model.{target}",
            target=f"model:{model.id}",
            details={
                "rate_per_minute": model.rate_per_minute,
                "daily_quota": model.daily_quota,
                "note": note,
            },
        )
        if not approve:
            self.pool.evict(model.id)
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
        inputs = [str(i) for i in model.card.get("inputs") or []]
        matrix = [_row(r, inputs, i) for i, r in enumerate(rows)]
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
        call = ModelCall(model_id=model.id, caller=caller, at=now, rows=len(matrix), latency_ms=0.0, ok=False)
        s.add(call)
        s.flush()
        return model, caller, call.id, matrix

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
            outputs = list(model.card.get("outputs") or ["prediction"])
        started = time.perf_counter()
        error: Exception | None = None
        predictions: list[Any] = []
        try:
            predictions = self.pool.predict(model_id, path, matrix)
        except Exception as exc:  # noqa: BLE001 - audited below, then raised
            error = exc
        latency = (time.perf_counter() - started) * 1000
        with tx() as s:
            call = s.get(ModelCall, call_id)
            if call is not None:
                call.ok, call.latency_ms = error is None, latency
            audit.append(
                s,
                actor_id=actor.user_id,
                actor=actor.username,
                action="model.predict",
                target=f"model:{model_id}",
                outcome="ok" if error is None else "failed",
                details={
                    "caller": caller,
                    "rows": len(matrix),
                    "latency_ms": round(latency, 2),
                    "inputs": matrix[:AUDITED_ROWS],
                    "outputs": predictions[:AUDITED_ROWS],
                    "truncated": len(matrix) > AUDITED_ROWS,
                    "error": str(error)[:300] if error else None,
                },
            )
        if error is not None:
            raise error
        return {"model_id": model_id, "predictions": predictions, "outputs": outputs, "latency_ms": latency}


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
