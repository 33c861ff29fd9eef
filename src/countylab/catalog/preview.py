"""Dataset previews: real rows only where the grade allows downloading rows (一般1级), otherwise
schema-faithful dummy rows, clearly labelled.  Also the dummy-data download for developers:
for a project, only the columns a job of that project will find at ``/data/<name>/``."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from sqlalchemy import select

from countylab.catalog import service as catalog
from countylab.catalog.grading import Grade
from countylab.dummy import DUMMY_LABEL_EN, DUMMY_LABEL_ZH, ColumnProfile, DatasetProfile, generate
from countylab.errors import NotFound, PermissionDenied
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.policy import Action, decide

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from countylab.lab import Lab
    from countylab.storage.models import Dataset


@dataclass(frozen=True)
class Preview:
    dummy: bool
    label: str
    columns: list[str]
    rows: list[list[Any]]


def _profile(ds: Any) -> DatasetProfile:
    if ds.dummy_profile:
        return DatasetProfile.from_dict(ds.dummy_profile)
    if not ds.table_schema:
        raise NotFound("该数据集还没有数据", "This dataset has no data yet")
    cols = [ColumnProfile(name=c["name"], type=c["type"]) for c in ds.table_schema["columns"]]
    return DatasetProfile(name=ds.name, columns=cols)


def dummy_table(
    lab: Lab, actor: Principal, dataset_id: int, rows: int, *, seed: int = 0, project_id: int | None = None
) -> tuple[pa.Table, str]:
    """Dummy rows with the dataset's schema; with ``project_id``, only the columns a sandbox job
    of that project will see (its members only; a dataset the project cannot bind is refused)."""
    with lab.read() as s:
        ds = catalog.get_dataset(s, dataset_id)
        authorize(actor, Permission.dataset_read, target=f"dataset:{ds.id}")
        columns = job_columns(s, actor, ds, project_id) if project_id is not None else None
        profile, name = _profile(ds), ds.name
    # generated whole (a column may be drawn from another), then cut to the approved columns
    table = generate(profile, rows, seed=seed)
    return (table if columns is None else _project(table, columns)), name


def job_columns(session: Session, actor: Principal, ds: Dataset, project_id: int) -> frozenset[str] | None:
    """The columns of ``ds`` a sandbox job of the project is bound with (None: every column),
    as :class:`countylab.jobs.granted.GrantedDatasets` binds them; refuses a non-member and a
    dataset the project may not bind for jobs, naming the dataset and the reason."""
    from countylab.jobs.granted import allowed_datasets
    from countylab.operations.enforcement import sandbox_datasets
    from countylab.storage.models import Grant, Project

    authorize(actor, Permission.project_read, project_id=project_id, target=f"project:{project_id}")
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"项目 {project_id} 不存在", f"Project {project_id} not found")
    if ds.id in {d.id for d in allowed_datasets(session, project_id)}:
        approved = sandbox_datasets(session, project_id)
        return None if approved is None else approved.get(ds.id)
    granted = session.execute(
        select(Grant.id).where(Grant.project_id == project_id, Grant.dataset_id == ds.id)
    ).first()
    if granted is None:
        zh, en, reason = "未授予本项目", "is not granted to the project", "not_granted"
    elif (bindable := sandbox_datasets(session, project_id)) is not None and ds.id not in bindable:
        zh, en, reason = "未授权以“沙箱作业”方式使用", "is not authorised for sandbox jobs", "channel"
    else:
        zh, en, reason = (
            "按分级规则不能用于本项目的沙箱作业",
            "may not be read by the project's sandbox jobs (grade policy)",
            "grade",
        )
    raise PermissionDenied(
        f"数据集“{ds.title}”（{ds.name}）{zh}：项目“{project.title}”的作业读不到它，因此也没有它的模拟数据",
        f"Dataset '{ds.name}' ({ds.title}) {en}: jobs of project '{project.slug}' cannot read it, "
        "so it has no dummy data for them",
        reason=reason,
        target=f"project:{project_id}",
        dataset_id=ds.id,
    )


def _project(table: pa.Table, columns: frozenset[str]) -> pa.Table:
    """Only ``columns`` (matched case-insensitively, as :func:`countylab.jobs.granted.bind_projection`
    does), fields without metadata; the table keeps its dummy-data marker."""
    wanted = {c.lower() for c in columns}
    keep = [n for n in table.column_names if n.lower() in wanted]
    schema = pa.schema(
        [table.schema.field(n).remove_metadata() for n in keep], metadata=table.schema.metadata
    )
    return pa.Table.from_arrays([table.column(n) for n in keep], schema=schema)


def preview(lab: Lab, actor: Principal, dataset_id: int, rows: int = 20) -> Preview:
    """The preview of the dataset page and the API, built once per content and kept.

    Authorisation runs on every call; what is cached is keyed by everything the answer depends
    on: the files read (a new version or pushed batch means new paths) for real rows, the
    profile for dummy rows (generated with a fixed seed).  Every dataset page view generated its
    dummy rows again, the biggest single cost of that page under load (``bench/load.py``)."""
    with lab.read() as s:
        ds = catalog.get_dataset(s, dataset_id)
        authorize(actor, Permission.dataset_read, target=f"dataset:{ds.id}")
        real_allowed = decide(Grade(ds.grade), Action.download_rows).allowed and ds.grade_confirmed
        paths = lab.ingestion.read_paths(ds) if real_allowed else []
        profile = None if real_allowed else _profile(ds)
    if real_allowed:  # a grade change flips real_allowed: never a real-rows entry for dummy data
        key: tuple[Any, ...] = ("real", ds.id, rows, tuple(str(p) for p in paths))
    else:
        key = ("dummy", ds.id, rows, _digest(profile))
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    built = _build(rows, real_allowed, paths, profile)
    with _LOCK:
        if len(_CACHE) >= _CACHE_ENTRIES:
            _CACHE.pop(next(iter(_CACHE)))  # the oldest entry
        _CACHE[key] = built
    return built


_CACHE: dict[tuple[Any, ...], Preview] = {}
_CACHE_ENTRIES = 256
_LOCK = threading.Lock()


def _digest(profile: DatasetProfile | None) -> str:
    if profile is None:
        return ""
    return hashlib.sha256(json.dumps(profile.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


def _build(rows: int, real_allowed: bool, paths: list[Any], profile: DatasetProfile | None) -> Preview:
    if real_allowed and paths:
        con = duckdb.connect()
        try:
            files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
            rel = con.execute(f"SELECT * FROM read_parquet({files}) LIMIT {int(rows)}")
            columns = [d[0] for d in rel.description]
            data = [[_jsonable(v) for v in r] for r in rel.fetchall()]
        finally:
            con.close()
        return Preview(False, "真实数据（一般数据1级，可公开）/ real rows (graded open)", columns, data)
    if profile is None:
        return Preview(False, "", [], [])
    table = generate(profile, rows, seed=0)
    return Preview(
        True,
        f"{DUMMY_LABEL_ZH} / {DUMMY_LABEL_EN}",
        table.column_names,
        [[_jsonable(v) for v in row.values()] for row in table.to_pylist()],
    )


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (int, float, str, bool)):
        return v
    return str(v)
