"""What the airlock needs to know about a job's source datasets: their grade, the review rule
it implies, the SDC thresholds of the checks and the leakage scan's sources.

The grade of a release is the highest grade among the datasets the job read (the names in its
``countylab.yaml``); a job that named none is judged by every dataset granted to its project,
because it could have read any of them.  :func:`release_policy` turns that grade (and each
dataset's steward overrides) into the :class:`~countylab.policy.ReviewRule` and
:class:`~countylab.privacy.sdc.SdcRules`; grades without SDC-checked aggregates (一般3–4级,
重要) still get the default thresholds, because a release from them is an aggregate too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.airlock.sources import DatasetSource
from countylab.catalog.grading import Grade
from countylab.policy import DatasetPolicy, ReviewRule, release_review, sdc_thresholds
from countylab.privacy.sdc import SdcRules
from countylab.storage.catalog_models import DatasetColumn
from countylab.storage.jobs_models import Job
from countylab.storage.models import Dataset, Grant

ReadPaths = Callable[[Dataset], list[Path]]


@dataclass(frozen=True)
class ReleasePolicy:
    grade: Grade
    rule: ReviewRule
    sdc: SdcRules
    datasets: tuple[Dataset, ...]


def job_datasets(session: Session, job: Job) -> list[Dataset]:
    names: set[str] = set()
    actions: dict[str, Any] = (job.spec or {}).get("actions", {}) or {}
    for action in actions.values():
        names.update(str(n) for n in (action or {}).get("datasets", []) or [])
    if names:
        found = session.execute(select(Dataset).where(Dataset.name.in_(names))).scalars().all()
    else:
        found = (
            session.execute(
                select(Dataset)
                .join(Grant, Grant.dataset_id == Dataset.id)
                .where(Grant.project_id == job.project_id)
            )
            .scalars()
            .all()
        )
    return sorted(found, key=lambda d: d.id)


def overrides_of(dataset: Dataset) -> DatasetPolicy | None:
    raw = dict(dataset.policy_overrides or {})
    if not raw:
        return None
    try:
        return DatasetPolicy(**raw)
    except TypeError:
        return None


def release_policy(datasets: Sequence[Dataset]) -> ReleasePolicy:
    """The strictest grade, rule and thresholds over ``datasets`` (PermissionDenied for 核心数据)."""
    grades = [Grade(d.grade) for d in datasets] or [Grade.general_2]
    grade = max(grades, key=lambda g: g.rank)
    checkers, officer = 0, False
    sdc = SdcRules()
    for d in datasets or ():
        rule = release_review(Grade(d.grade), overrides_of(d))
        checkers, officer = max(checkers, rule.checkers), officer or rule.security_officer
        t = sdc_thresholds(Grade(d.grade), overrides_of(d))
        if t is not None and t.min_cell_count > sdc.min_units:
            sdc = SdcRules(
                min_units=t.min_cell_count,
                p_percent=sdc.p_percent,
                nk_n=t.dominance_n,
                nk_k=min(sdc.nk_k, t.dominance_k * 100),
            )
    if not datasets:
        rule = release_review(grade)
        checkers, officer = rule.checkers, rule.security_officer
    return ReleasePolicy(grade, ReviewRule(True, checkers, officer), sdc, tuple(datasets))


def dataset_source(session: Session, dataset: Dataset, read_paths: ReadPaths) -> DatasetSource:
    columns = (
        session.execute(
            select(DatasetColumn)
            .where(DatasetColumn.dataset_id == dataset.id)
            .order_by(DatasetColumn.position)
        )
        .scalars()
        .all()
    )
    pii = [c.name for c in columns if c.pii_kind]
    unit = [dataset.privacy_unit_column] if dataset.privacy_unit_column else []
    identifiers = tuple(dict.fromkeys([*unit, *pii]))
    return DatasetSource(
        dataset.name, dataset.current_version, tuple(read_paths(dataset)), identifiers, tuple(pii)
    )
