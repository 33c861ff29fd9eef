"""Which datasets a job may read, and the folder each is bound from.

A job sees a dataset at ``/data/<name>/`` — a folder of Parquet files, the same shape whether
it runs on the server (real data) or on a laptop (dummy data, ``countylab run``), so code never
changes between the two.  On the server the folder is built from the dataset's *current
version* (:meth:`countylab.catalog.ingestion.Ingestion.read_paths`): the version's parts plus
pushed rows not yet compacted.  Those files live in different warehouse folders, so we make a
**bind folder of hard links** for each distinct set of files (named by a digest of their paths,
sizes and mtimes): cheap, immutable (Parquet files are never rewritten in place), shared by
every job that reads the same version, and holding nothing else of the warehouse.  Where hard
links are impossible (another file system) the files are copied once.

What a project may read is the intersection of its grants and the grade policy
(:func:`countylab.policy.decide` with :attr:`~countylab.policy.Action.sandbox_job`): core data
is closed to external projects, and a steward may deny sandbox jobs on one dataset.  Datasets
whose grade allows only *approved code* (重要数据, or a steward's tightening) make a submission
wait in ``pending`` until a steward admits it (:func:`needs_approved_code`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.catalog.grading import Grade
from countylab.errors import ValidationFailed
from countylab.policy import Action, DatasetPolicy, decide, sandbox_requires_approved_code
from countylab.storage.models import Dataset, Grant, Project

log = logging.getLogger(__name__)


class ReadPaths(Protocol):
    """The catalog's answer to "which files hold this dataset's current version"."""

    def read_paths(self, ds: Dataset, version: int | None = None) -> list[Path]: ...


def is_external(project: Project | None) -> bool:
    """Companies' and researchers' projects are external; only a department's project is not."""
    return project is None or project.org is None or project.org.kind != "department"


def dataset_policy(ds: Dataset) -> DatasetPolicy | None:
    """The steward's per-dataset tightening; an unreadable override denies sandbox jobs (fail closed)."""
    raw = ds.policy_overrides or {}
    if not raw:
        return None
    try:
        return DatasetPolicy(**raw)
    except (TypeError, ValidationFailed):
        log.error("dataset %s has an unreadable policy override: sandbox jobs denied", ds.name)
        return DatasetPolicy(deny=frozenset({Action.sandbox_job}))


def allowed_datasets(session: Session, project_id: int) -> list[Dataset]:
    """Datasets granted to the project on which the policy allows sandbox jobs."""
    project = session.get(Project, project_id)
    external = is_external(project)
    q = (
        select(Dataset)
        .join(Grant, Grant.dataset_id == Dataset.id)
        .where(Grant.project_id == project_id)
        .order_by(Dataset.name)
    )
    from countylab.operations.enforcement import sandbox_datasets

    bindable = sandbox_datasets(session, project_id)  # channel and column terms of the grants
    found = []
    for ds in session.execute(q).scalars():
        if bindable is not None and ds.id not in bindable:
            continue
        try:
            grade = Grade(ds.grade)
        except ValueError:
            continue  # an unknown grade is never allowed
        if decide(grade, Action.sandbox_job, overrides=dataset_policy(ds), external=external).allowed:
            found.append(ds)
    return found


def needs_approved_code(session: Session, project_id: int, names: Iterable[str]) -> list[str]:
    """The names among ``names`` whose grade (or steward) allows only approved code."""
    wanted = set(names)
    return [
        ds.name
        for ds in allowed_datasets(session, project_id)
        if ds.name in wanted and sandbox_requires_approved_code(Grade(ds.grade), dataset_policy(ds))
    ]


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _build_once(folder: Path, fill: Callable[[Path], None]) -> Path:
    """``folder``, built by ``fill`` in a staging folder renamed into place; built once (a
    concurrent builder's identical result is kept), no staging folder left behind."""
    if folder.is_dir():
        return folder
    staging = folder.parent / f".tmp-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        fill(staging)
        os.rename(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not folder.is_dir():  # a concurrent builder won the rename: theirs is identical
            raise
    return folder


def _bound_name(src: Path, i: int, files: list[Path]) -> str:
    return src.name if len(files) == 1 else f"{i:05d}-{src.name}"


def bind_folder(root: Path, name: str, version: int, files: list[Path]) -> Path:
    """A folder under ``root`` holding exactly ``files`` (hard links, else copies); built once."""

    def fill(staging: Path) -> None:
        for i, src in enumerate(files):
            dest = staging / _bound_name(src, i, files)
            try:
                os.link(src, dest)
            except OSError:  # another file system: copy once
                shutil.copyfile(src, dest)

    return _build_once(root / name / f"v{version}-{_digest(files)}", fill)


def bind_projection(root: Path, name: str, version: int, files: list[Path], columns: frozenset[str]) -> Path:
    """Like :func:`bind_folder`, but each file rewritten with only ``columns`` (an authorisation
    approved for some columns): the job's folder holds no other column, under any spelling,
    so nothing in the sandbox can read one.  Streamed batch by batch; built once per version
    and column set, and shared by the jobs that read it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = {c.lower() for c in columns}

    def fill(staging: Path) -> None:
        for i, src in enumerate(files):
            source = pq.ParquetFile(src)
            keep = [n for n in source.schema_arrow.names if n.lower() in wanted]
            # no schema metadata: pandas' would still list every column, approved or not
            projected = pa.schema([source.schema_arrow.field(n).remove_metadata() for n in keep])
            with pq.ParquetWriter(staging / _bound_name(src, i, files), projected) as writer:
                for batch in source.iter_batches(columns=keep):
                    writer.write_batch(batch)

    cols = hashlib.sha256("\0".join(sorted(wanted)).encode()).hexdigest()[:12]
    return _build_once(root / name / f"v{version}-{_digest(files)}-cols-{cols}", fill)


class GrantedDatasets:
    """:data:`countylab.jobs.DatasetPaths` for a lab: name → bind folder of the current version."""

    def __init__(self, catalog: ReadPaths, bind_root: Path) -> None:
        self.catalog = catalog
        self.bind_root = bind_root

    def __call__(self, session: Session, project_id: int) -> Mapping[str, Path]:
        from countylab.operations.enforcement import sandbox_datasets

        approved = sandbox_datasets(session, project_id) or {}
        out: dict[str, Path] = {}
        for ds in allowed_datasets(session, project_id):
            files = self.catalog.read_paths(ds)
            if ds.current_version is None or not files:
                continue  # nothing ingested yet
            columns = approved.get(ds.id)
            if columns is None:
                out[ds.name] = bind_folder(self.bind_root, ds.name, ds.current_version, files)
            else:  # approved for some columns only: a folder holding just those
                out[ds.name] = bind_projection(self.bind_root, ds.name, ds.current_version, files, columns)
        return out

    def files_of(self, session: Session, project_id: int, names: Iterable[str]) -> list[Path]:
        """Parquet files of the named granted datasets (for the log leakage index)."""
        wanted = set(names)
        return [
            f
            for ds in allowed_datasets(session, project_id)
            if ds.name in wanted
            for f in self.catalog.read_paths(ds)
        ]
