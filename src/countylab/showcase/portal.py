"""The public portal's home page (门户首页): overview figures, scenarios, notices, stories, gallery.

Everything here is counts or records meant for the public: datasets per department, scenarios,
projects, queries, jobs and releases as *counts*; the public scenario list and the 公示 notices
through the operations platform's contract functions (imported lazily, so the portal shows what
exists while those parts are missing or failing to import); published stories; showable gallery
items.  Counts are cached for a few seconds (:mod:`.cache`): the home page should cost a dict
lookup under load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab.airlock.states import ReleaseState
from countylab.storage.airlock_models import ReleaseRequest
from countylab.storage.jobs_models import Job
from countylab.storage.models import Dataset, Org, Project
from countylab.storage.privacy_models import QueryRun

COUNTS_TTL_S = 10.0


@dataclass(frozen=True)
class Overview:
    datasets: int
    by_department: list[tuple[str, int]]  # (department name, datasets), most first
    scenarios: int
    projects: int
    queries: int
    jobs: int
    releases: int
    as_of: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "datasets": self.datasets,
            "datasets_by_department": [{"department": d, "datasets": n} for d, n in self.by_department],
            "scenarios": self.scenarios,
            "projects": self.projects,
            "queries": self.queries,
            "jobs": self.jobs,
            "releases": self.releases,
            "as_of": self.as_of,
        }


def overview(s: Session, now: datetime) -> Overview:
    by_dept = [
        (str(name), int(n))
        for name, n in s.execute(
            select(Org.name, func.count(Dataset.id))
            .join(Dataset, Dataset.org_id == Org.id)
            .group_by(Org.name)
            .order_by(func.count(Dataset.id).desc(), Org.name)
        )
    ]
    return Overview(
        datasets=sum(n for _d, n in by_dept),
        by_department=by_dept,
        scenarios=len(public_scenarios(s, limit=None)),
        projects=int(s.scalar(select(func.count(Project.id))) or 0),
        queries=int(
            s.scalar(select(func.count(QueryRun.id)).where(QueryRun.status.in_(("answered", "cached")))) or 0
        ),
        jobs=int(s.scalar(select(func.count(Job.id))) or 0),
        releases=int(
            s.scalar(
                select(func.count(ReleaseRequest.id)).where(
                    ReleaseRequest.state == ReleaseState.released.value
                )
            )
            or 0
        ),
        as_of=now.isoformat(timespec="seconds"),
    )


def public_scenarios(s: Session, *, limit: int | None) -> list[Any]:
    """Engineer A's CONTRACT ``countylab.operations.public.public_scenarios``; [] until it lands."""
    try:
        from countylab.operations.public import public_scenarios as scenarios
    except ImportError:
        return []
    return list(scenarios(s, limit=limit))


def public_notices(s: Session, *, now: datetime, limit: int | None) -> list[Any]:
    """Engineer B's CONTRACT ``countylab.operations.publicity.public_notices``; [] until it lands."""
    try:
        from countylab.operations.publicity import public_notices as notices
    except ImportError:
        return []
    return list(notices(s, now=now, limit=limit))


@dataclass
class Home:
    overview: Overview
    scenarios: list[Any] = field(default_factory=list)
    notices: list[Any] = field(default_factory=list)
