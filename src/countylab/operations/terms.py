"""The approved terms of an application: what the agreement states and the authorisation grants.

The approval workflow (``workflow``) builds them from the application and the security officer's
review (:func:`countylab.operations.workflow.approved_terms`); the agreement (``agreements``)
prints them and the authorisation (``authorisations``) applies them, exactly.  A frozen value,
so what was printed and signed is what takes effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Channel(StrEnum):
    """How a project may use a dataset (使用方式)."""

    dp_query = "dp_query"  # 差分隐私查询 (the DP SQL gateway)
    sandbox_job = "sandbox_job"  # 沙箱作业 (code in the sandbox, outputs through the airlock)
    model_serving = "model_serving"  # 模型服务 (trained models answer predictions in the domain)


@dataclass(frozen=True)
class DatasetTerms:
    dataset_id: int
    columns: tuple[str, ...] | None  # None: every column the scenario offers
    epsilon: float | None = None  # the project's privacy budget on this dataset (per period)
    delta: float | None = None


@dataclass(frozen=True)
class QuotaTerms:
    """The compute quota (``ProjectQuota`` fields) the security officer set."""

    max_cpu: float
    max_memory_mb: int
    max_time_s: int
    cpu_seconds: float | None  # per period; None: unlimited
    concurrent_jobs: int
    period_days: int = 30
    max_gpu: int = 0
    gpu_seconds: float | None = None


@dataclass(frozen=True)
class ApprovedTerms:
    application_id: int
    application_number: str
    scenario_id: int
    org_id: int  # the authorised organisation
    purpose: str  # public_good | industry (the fee basis later)
    datasets: tuple[DatasetTerms, ...]
    channels: frozenset[Channel]
    starts_on: date
    ends_on: date
    member_ids: tuple[int, ...]  # the team; the first is the applicant (project owner)
    quota: QuotaTerms | None
    output_rules: str  # 输出规则 in words (airlock review, minimum cell size …)
    conditions: str  # the security officer's conditions in words
    renewal_of: int | None = None  # the application this one renews
