"""Data flows into the catalog: file uploads (stage → confirm → commit), pushes, compaction.

Each successful upload commits exactly one immutable warehouse version and one catalog row;
a failure at any step leaves neither (the version directory is removed, and ``recover``
clears what a crash left behind).  Version numbers of one dataset are serialised by an
in-process lock, so building a large version never holds the metadata database's write lock.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.catalog import service as catalog
from countylab.catalog.analysis import analyse, key_set_inputs
from countylab.catalog.grading import Grade
from countylab.catalog.push_commit import GroupCommitter, PendingPush, recover_hidden
from countylab.errors import Conflict, NotFound, TooLarge, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.ingest import (
    MODES,
    InferredSchema,
    PushBuffer,
    TableSchema,
    build_version,
    format_from_filename,
    infer_schema,
    open_batches,
    safe_filename,
)
from countylab.ingest.idents import identifiers_for
from countylab.ingest.layout import Layout, Sample, detect, read_sample
from countylab.ingest.schema import ColumnSpec
from countylab.ingest.tidy import at_sheet_row, tidy
from countylab.storage.catalog_models import DatasetColumn, DatasetVersion
from countylab.storage.db import transaction
from countylab.storage.leader import NamedLocks
from countylab.storage.models import Dataset
from countylab.storage.warehouse import VersionFiles, Warehouse

UPLOAD_TTL_S = 24 * 3600
ORPHAN_GRACE_S = 60.0
PUSH_META_TTL_S = 5.0  # a dataset's name/owner/schema never change once it has data


@dataclass(frozen=True)
class StagedUpload:
    id: str
    dataset_id: int
    filename: str
    format: str
    encoding: str | None
    schema: TableSchema
    preview: list[dict[str, Any]]
    bytes: int
    existing_schema: bool
    #: the spreadsheet layout (header rows, skipped rows) and the sample it was detected on;
    #: None for Parquet and JSON Lines
    layout: Layout | None = None
    sample: Sample | None = None
    #: header text -> the identifier proposed for it (pinyin for a new dataset's Chinese headers)
    suggested: dict[str, str] | None = None


SHEET_FORMATS = ("csv", "xlsx", "xls")


class Ingestion:
    def __init__(
        self,
        sessions: Any,
        warehouse: Warehouse,
        uploads_dir: Path,
        *,
        max_upload_bytes: int,
        read_sessions: Any = None,
    ) -> None:
        self.sessions = sessions
        self.read_sessions = read_sessions or sessions
        self.warehouse = warehouse
        self.uploads_dir = uploads_dir
        self.max_upload_bytes = max_upload_bytes
        # idempotency keys are checked and recorded by ``push`` itself, in the metadata database
        self.push_buffer = PushBuffer(warehouse, seen=_NoSeen(), max_rows=100_000)
        self.committer = GroupCommitter(warehouse, self._tx, read_tx=self._read)
        self._push_meta: dict[int, tuple[float, tuple[str, int, TableSchema]]] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # set by the Lab: the same dataset lock across processes (serve --workers N, several servers)
        self.cross_process: NamedLocks | None = None

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with transaction(self.sessions) as s:
            yield s

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with transaction(self.read_sessions) as s:
            yield s

    @contextmanager
    def dataset_lock(self, dataset_id: int) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(dataset_id, threading.Lock())
        with lock:
            if self.cross_process is None:
                yield
            else:
                with self.cross_process.hold(f"dataset-{dataset_id}"):
                    yield

    # -- uploads: stage, then commit --------------------------------------------------------
    def stage_upload(
        self,
        actor: Principal,
        dataset_id: int,
        filename: str,
        stream: BinaryIO,
        *,
        header_row: int | None = None,
        skip_rows: frozenset[int] = frozenset(),
    ) -> StagedUpload:
        """Keep the file and propose how to read it; nothing reaches the catalog until commit.

        Spreadsheets (CSV, XLSX, XLS) get their layout detected (``header_row``/``skip_rows``
        override it): a 花名册 with title rows, a two-row header and 合计/制表人 rows is read
        from its header, not refused for its title's empty cells.
        """
        with self._tx() as s:
            ds = catalog.get_dataset(s, dataset_id)
            catalog.authorize_write(actor, ds)
            existing = TableSchema.from_json(ds.table_schema) if ds.table_schema else None
            titles = {c.title: c.name for c in catalog.columns(s, ds.id) if c.title}
        name = safe_filename(filename)
        fmt = format_from_filename(name)
        upload_id = uuid.uuid4().hex
        folder = self.uploads_dir / upload_id
        folder.mkdir(parents=True)
        path = folder / name
        try:
            size = _copy_capped(stream, path, self.max_upload_bytes)
            layout = sample = suggested = None
            if fmt in SHEET_FORMATS:
                sample = read_sample(path, fmt)
                layout = detect(sample, header_row=header_row, skip_rows=skip_rows)
                suggested = suggest_names(layout, existing, titles)
            if layout is not None and sample is not None and needs_tidy(layout, sample):
                tidied = infer_schema(self.tidy_copy(path, fmt, layout, folder), "csv", tmp_dir=folder)
                inferred = InferredSchema(
                    tidied.schema, tidied.sample_row_count, sample.encoding, tidied.preview
                )
            else:
                inferred = infer_schema(path, fmt, tmp_dir=folder)
            if existing is not None:
                check_same_columns(existing, _renamed(inferred.schema, suggested))
            schema = existing or inferred.schema
            meta = {
                "dataset_id": dataset_id,
                "user_id": actor.user_id,
                "filename": name,
                "format": fmt,
                "encoding": inferred.encoding,
                "schema": schema.to_json(),
                "created": time.time(),
                "bytes": size,
                "existing": existing is not None,
                "header_rows": list(layout.header_rows) if layout else None,
                "skip_rows": sorted(skip_rows),
            }
            (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))
            with self._tx() as s:
                audit.record(
                    s,
                    actor,
                    "dataset.upload.stage",
                    f"dataset:{dataset_id}",
                    upload_id=upload_id,
                    filename=name,
                    bytes=size,
                    format=fmt,
                )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return StagedUpload(
            upload_id,
            dataset_id,
            name,
            fmt,
            inferred.encoding,
            schema,
            inferred.preview[:10],
            size,
            existing is not None,
            layout,
            sample,
            suggested,
        )

    def tidy_copy(self, path: Path, fmt: str, layout: Layout, folder: Path) -> Path:
        out = folder / "tidy.csv"
        tidy(path, fmt, layout, out)
        return out

    def restage(
        self,
        actor: Principal,
        dataset_id: int,
        upload_id: str,
        *,
        header_row: int | None = None,
        skip_rows: frozenset[int] = frozenset(),
    ) -> tuple[Layout, Sample, dict[str, str], dict[str, Any]]:
        """The layout of a staged spreadsheet read another way (the user picked the header row):
        computed from the file's first and last rows, written nowhere."""
        with self._read() as s:
            ds = catalog.get_dataset(s, dataset_id)
            catalog.authorize_write(actor, ds)
            existing = TableSchema.from_json(ds.table_schema) if ds.table_schema else None
            titles = {c.title: c.name for c in catalog.columns(s, ds.id) if c.title}
        path, meta = self._staged(actor, dataset_id, upload_id)
        if meta["format"] not in SHEET_FORMATS:
            raise ValidationFailed(
                "只有表格文件可以选择表头行", "Only spreadsheets have a header row to choose"
            )
        sample = read_sample(path, meta["format"])
        layout = detect(sample, header_row=header_row, skip_rows=skip_rows)
        return layout, sample, suggest_names(layout, existing, titles), meta

    def _staged(self, actor: Principal, dataset_id: int, upload_id: str) -> tuple[Path, dict[str, Any]]:
        if not upload_id.isalnum():
            raise NotFound("上传不存在或已过期", "Upload not found or expired")
        folder = self.uploads_dir / upload_id
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            raise NotFound("上传不存在或已过期", "Upload not found or expired")
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        if meta["dataset_id"] != dataset_id or (meta["user_id"] != actor.user_id and not actor.is_system):
            raise NotFound("上传不存在或已过期", "Upload not found or expired")
        return folder / meta["filename"], meta

    def commit_upload(
        self,
        actor: Principal,
        dataset_id: int,
        upload_id: str,
        *,
        mode: str = "replace",
        schema_override: dict[str, str] | None = None,
        key: list[str] | None = None,
        note: str = "",
        source: str = "upload",
        header_row: int | None = None,
        skip_rows: frozenset[int] | None = None,
        names: dict[str, str] | None = None,
    ) -> DatasetVersion:
        """Commit a staged upload as the next version, read with the layout the user confirmed.

        ``header_row``/``skip_rows`` default to what staging detected; ``names`` maps header
        texts to column identifiers (the header text becomes the column's title).  Errors name
        the sheet and its own row numbers.
        """
        with self._tx() as s:
            ds = catalog.get_dataset(s, dataset_id)
            catalog.authorize_write(actor, ds)
            existing = TableSchema.from_json(ds.table_schema) if ds.table_schema else None
            titles = {c.title: c.name for c in catalog.columns(s, ds.id) if c.title}
        path, meta = self._staged(actor, dataset_id, upload_id)
        try:
            fmt = meta["format"]
            plain = {"fmt": fmt, "mode": mode, "key": key, "note": note, "source": source}
            if fmt not in SHEET_FORMATS:
                return self.ingest_file(actor, dataset_id, path, schema_override=schema_override, **plain)
            sample = read_sample(path, fmt)
            staged = meta.get("header_rows") or []
            if header_row is None and len(staged) == 1:
                header_row = staged[0]
            skip = frozenset(meta.get("skip_rows") or ()) if skip_rows is None else skip_rows
            layout = detect(sample, header_row=header_row, skip_rows=skip)
            if existing is not None:  # the columns are fixed: headers map to them by name or title
                names = suggest_names(layout, existing, titles)
            rename = {h: n for h, n in (names or {}).items() if h in layout.names and n and n != h}
            if not rename and not needs_tidy(layout, sample):
                return self.ingest_file(actor, dataset_id, path, schema_override=schema_override, **plain)
            final = [rename.get(h, h) for h in layout.names]
            titles = {n: h for h, n in zip(layout.names, final, strict=True) if n != h}
            override = {rename.get(k, k): v for k, v in (schema_override or {}).items()} or None
            rowmap = array("l")
            out = path.parent / "tidy.csv"
            try:
                rowmap = tidy(path, fmt, layout, out, final)
                return self.ingest_file(
                    actor,
                    dataset_id,
                    out,
                    schema_override=None if existing is not None else override,
                    titles=titles,
                    **{**plain, "fmt": "csv"},
                )
            except ValidationFailed as exc:
                raise at_sheet_row(exc, layout.sheet, rowmap, titles) from None
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)

    def ingest_file(
        self,
        actor: Principal,
        dataset_id: int,
        path: Path,
        *,
        fmt: str | None = None,
        mode: str = "replace",
        schema_override: dict[str, str] | None = None,
        key: list[str] | None = None,
        note: str = "",
        source: str = "upload",
        titles: dict[str, str] | None = None,
    ) -> DatasetVersion:
        """Validate the whole file and commit it as the dataset's next version (or change nothing).

        ``titles`` (column name -> title) fills the titles of columns that have none yet."""
        if mode not in MODES:
            raise ValidationFailed(f"未知的写入方式：{mode}", f"Unknown mode: {mode}", field="mode")
        fmt = fmt or format_from_filename(path.name)
        with self.dataset_lock(dataset_id):
            with self._tx() as s:
                ds = catalog.get_dataset(s, dataset_id)
                catalog.authorize_write(actor, ds)
                name, current = ds.name, ds.current_version
                existing = TableSchema.from_json(ds.table_schema) if ds.table_schema else None
                key = key or list(ds.key_columns or []) or None
            if existing is not None:
                if schema_override:
                    raise ValidationFailed(
                        "已有版本的数据集不能更改结构；请新建数据集",
                        "The schema of a dataset with versions cannot change; create a new dataset",
                        reason="schema_change",
                    )
                schema = existing
            else:
                schema = infer_schema(path, fmt, tmp_dir=self.warehouse.scratch_dir).schema
                if schema_override:
                    schema = schema.override(types=schema_override)
            self._fold_stream(actor, dataset_id, name, current, existing)
            with self._tx() as s:
                current = catalog.get_dataset(s, dataset_id).current_version
            previous = self.warehouse.files(name, current) if current else None
            self._clear_orphan(name, (current or 0) + 1)
            batches = open_batches(
                path, fmt, schema, max_bytes=self.max_upload_bytes, tmp_dir=self.warehouse.scratch_dir
            )
            files = build_version(
                self.warehouse, name, (current or 0) + 1, previous, batches, mode, key, schema
            )
            try:
                return self._record(
                    actor,
                    dataset_id,
                    files,
                    schema,
                    mode=mode,
                    source=source,
                    note=note,
                    key=key,
                    titles=titles,
                )
            except BaseException:
                shutil.rmtree(self.warehouse.version_dir(name, files.version), ignore_errors=True)
                raise

    def _clear_orphan(self, name: str, version: int) -> None:
        """A version directory the catalog does not know, left by a crash, must not block the next commit."""
        path = self.warehouse.version_dir(name, version)
        if not path.exists():
            return
        # under a cross-process dataset lock nobody else can be committing it: remove it at once
        if self.cross_process is None and time.time() - path.stat().st_mtime < ORPHAN_GRACE_S:
            raise Conflict(
                "该数据集有另一个上传正在提交，请稍后重试",
                "Another upload of this dataset is being committed; try again shortly",
                reason="busy",
            )
        shutil.rmtree(path)

    def _record(
        self,
        actor: Principal,
        dataset_id: int,
        files: VersionFiles,
        schema: TableSchema,
        *,
        mode: str,
        source: str,
        note: str,
        key: list[str] | None,
        analyse_data: bool = True,
        titles: dict[str, str] | None = None,
    ) -> DatasetVersion:
        with self._tx() as s:
            ds = catalog.get_dataset(s, dataset_id)
            facts = (ds.name, ds.privacy_unit, ds.privacy_unit_column, list(ds.tags or []), ds.org.name)
            cols = catalog.columns(s, ds.id)
            semantics = {c.name: c.semantic for c in cols if c.semantic}
            all_sets = catalog.key_sets(s)
            key_sets = {c.name: list(all_sets[c.key_set].values) for c in cols if c.key_set in all_sets}
            foreign_keys = {c.name: c.joinable_to[0] for c in cols if c.joinable_to}
            key_set_extras = key_set_inputs(cols, all_sets)  # labels and the county's code lists
        result = (
            analyse(
                list(files.paths),
                name=facts[0],
                privacy_unit=facts[1],
                privacy_unit_column=facts[2],
                row_count=files.row_count,
                tags=facts[3],
                department=facts[4],
                semantics=semantics,
                key_sets=key_sets,
                primary_key=key,
                foreign_keys=foreign_keys,
                **key_set_extras,
            )
            if analyse_data
            else None
        )
        with self._tx() as s:
            ds = catalog.get_dataset(s, dataset_id)
            version = DatasetVersion(
                dataset_id=ds.id,
                version=files.version,
                row_count=files.row_count,
                bytes=files.bytes,
                mode=mode,
                source=source,
                files=dict(files.sha256),
                note=note,
                created_by=actor.user_id,
            )
            s.add(version)
            ds.table_schema = schema.to_json()
            ds.current_version, ds.row_count = files.version, files.row_count
            ds.data_updated_at = datetime.now(UTC)
            if key and not ds.key_columns:
                ds.key_columns = key
            if result is not None:
                _sync_columns(s, ds, schema, result.findings, result.profiles)
                catalog.apply_proposal(s, ds, Grade(result.proposal.grade), result.proposal.reason_zh)
                ds.dummy_profile = result.dummy.to_dict()
            if titles:
                s.flush()
                for col in catalog.columns(s, ds.id):
                    if not col.title and titles.get(col.name):
                        col.title = titles[col.name][:200]
            s.flush()
            audit.record(
                s,
                actor,
                f"dataset.version.{source}",
                f"dataset:{ds.id}",
                version=files.version,
                rows=files.row_count,
                mode=mode,
                grade=ds.grade,
            )
            return version

    def reanalyse(self, actor: Principal, dataset_id: int) -> None:
        """Refresh PII tags, quality profile and the proposed dummy profile of the current version
        (after the steward changed column metadata such as key sets or joins)."""
        with self.dataset_lock(dataset_id):
            with self._tx() as s:
                ds = catalog.get_dataset(s, dataset_id)
                catalog.authorize_write(actor, ds)
                if ds.current_version is None or not ds.table_schema:
                    return
                name, version = ds.name, ds.current_version
                schema = TableSchema.from_json(ds.table_schema)
                key = list(ds.key_columns or []) or None
            paths = self.warehouse.files(name, version)
            with self._tx() as s:
                ds = catalog.get_dataset(s, dataset_id)
                cols = catalog.columns(s, ds.id)
                all_sets = catalog.key_sets(s)
                result = analyse(
                    paths,
                    name=name,
                    privacy_unit=ds.privacy_unit,
                    privacy_unit_column=ds.privacy_unit_column,
                    row_count=ds.row_count or 0,
                    tags=list(ds.tags or []),
                    department=ds.org.name,
                    semantics={c.name: c.semantic for c in cols if c.semantic},
                    key_sets={
                        c.name: list(all_sets[c.key_set].values) for c in cols if c.key_set in all_sets
                    },
                    primary_key=key,
                    foreign_keys={c.name: c.joinable_to[0] for c in cols if c.joinable_to},
                    **key_set_inputs(cols, all_sets),
                )
                _sync_columns(s, ds, schema, result.findings, result.profiles)
                catalog.apply_proposal(s, ds, Grade(result.proposal.grade), result.proposal.reason_zh)
                ds.dummy_profile = result.dummy.to_dict()
                audit.record(s, actor, "dataset.reanalyse", f"dataset:{ds.id}", version=version)

    # -- pushes and compaction --------------------------------------------------------------
    def push(
        self,
        actor: Principal,
        dataset_id: int,
        payload: list[dict[str, Any]] | bytes,
        idempotency_key: str | None,
    ) -> tuple[bool, int]:
        """Store one pushed micro-batch; durable and readable when this returns.  (applied, rows).

        Validation runs here, in the caller's thread; the group committer then writes this push
        together with concurrent ones (one file, one fsync, one metadata transaction).
        """
        name, org_id, schema = self._push_target(dataset_id)
        authorize(actor, Permission.dataset_write, org_id=org_id, target=f"dataset:{dataset_id}")
        key = idempotency_key[:200] if idempotency_key else None
        batches = self.push_buffer.validate(payload, schema)
        rows = sum(b.num_rows for b in batches)
        pending = PendingPush(
            actor=actor,
            dataset_id=dataset_id,
            name=name,
            schema=schema,
            batches=batches,
            key=key or f"auto:{uuid.uuid4().hex}",
            explicit_key=key is not None,
            rows=rows,
        )
        applied = self.committer.submit(pending)
        return applied, rows if applied else 0

    def _push_target(self, dataset_id: int) -> tuple[str, int, TableSchema]:
        """(name, owning org, schema) of a dataset, cached briefly: feeds push many times a second."""
        hit = self._push_meta.get(dataset_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with self._read() as s:
            ds = catalog.get_dataset(s, dataset_id)
            if not ds.table_schema:
                raise ValidationFailed(
                    "该数据集还没有结构：请先上传一个文件或定义结构",
                    "This dataset has no schema yet: upload a file first",
                    reason="no_schema",
                )
            target = (ds.name, ds.org_id, TableSchema.from_json(ds.table_schema))
        self._push_meta[dataset_id] = (time.monotonic() + PUSH_META_TTL_S, target)
        return target

    def _fold_stream(
        self, actor: Principal, dataset_id: int, name: str, current: int | None, schema: TableSchema | None
    ) -> VersionFiles | None:
        """Compaction: fold pushed micro-batches into a new version (caller holds the lock)."""
        if schema is None or not self.warehouse.pending_stream(name):
            return None
        previous = self.warehouse.files(name, current) if current else None
        buffer = PushBuffer(self.warehouse, _NoSeen())
        compaction = buffer.compact(name, (current or 0) + 1, previous, schema)
        if compaction is None:
            return None
        try:
            self._record(
                actor,
                dataset_id,
                compaction.version,
                schema,
                mode="compaction",
                source="push",
                note="",
                key=None,
                analyse_data=False,
            )
        except BaseException:
            shutil.rmtree(self.warehouse.version_dir(name, compaction.version.version), ignore_errors=True)
            raise
        # the folded stream files are not deleted here: readers may have just listed them; the
        # warehouse's gc removes them a minute later (catalog maintenance runs it)
        return compaction.version

    def compact(self, actor: Principal, dataset_id: int) -> VersionFiles | None:
        with self.dataset_lock(dataset_id):
            with self._tx() as s:
                ds = catalog.get_dataset(s, dataset_id)
                name, current = ds.name, ds.current_version
                schema = TableSchema.from_json(ds.table_schema) if ds.table_schema else None
            return self._fold_stream(actor, dataset_id, name, current, schema)

    def compact_all(self, actor: Principal, *, min_files: int = 1) -> int:
        with self._tx() as s:
            targets = [(d.id, d.name) for d in s.execute(select(Dataset)).scalars() if d.table_schema]
        done = 0
        for dataset_id, name in targets:
            if len(self.warehouse.pending_stream(name)) >= min_files and self.compact(actor, dataset_id):
                done += 1
        return done

    # -- reading ----------------------------------------------------------------------------
    def read_paths(self, ds: Dataset, version: int | None = None) -> list[Path]:
        if ds.current_version is None:
            return []
        if version is not None and version != ds.current_version:
            if version < 1 or version > ds.current_version:
                raise NotFound(f"版本 {version} 不存在", f"Version {version} does not exist")
            return self.warehouse.read_paths(ds.name, version, include_stream=False)
        return self.warehouse.read_paths(ds.name, ds.current_version)

    def stream_rows(self, ds: Dataset) -> int:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in self.warehouse.pending_stream(ds.name))

    def recover(self, *, grace_s: float = 3600.0) -> int:
        """Drop versions no catalog row knows (a crash mid-commit) and stale uploads.

        ``grace_s`` spares directories touched recently: another process may be committing them.
        """
        with self._tx() as s:
            known = {
                (d.name, v.version)
                for v, d in s.execute(
                    select(DatasetVersion, Dataset).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                ).all()
            }
        with self._read() as s:
            names = {d.name: d.id for d in s.execute(select(Dataset)).scalars()}
        recover_hidden(self.warehouse, self._tx, names)  # before gc, which drops hidden leftovers
        report = self.warehouse.gc(known, grace_s=grace_s)
        now = time.time()
        if self.uploads_dir.exists():
            for folder in self.uploads_dir.iterdir():
                if now - folder.stat().st_mtime > UPLOAD_TTL_S:
                    shutil.rmtree(folder, ignore_errors=True)
        return len(report.removed)


class _NoSeen:
    def add_if_new(self, dataset_id: str, key: str) -> bool:  # compaction never pushes
        return True


def check_same_columns(expected: TableSchema, found: TableSchema) -> None:
    """A later upload must have the dataset's columns: name the first difference."""
    if expected.names == found.names:
        return
    missing = [c for c in expected.names if c not in found.names]
    extra = [c for c in found.names if c not in expected.names]
    column = (missing or extra or [""])[0]
    raise ValidationFailed(
        f"文件的列与数据集结构不一致：缺少 {missing or '无'}，多出 {extra or '无'}（顺序也须一致）",
        f"The file's columns differ from the dataset's schema: missing {missing or 'none'}, "
        f"unexpected {extra or 'none'} (order must match too)",
        reason="schema_change",
        column=column,
        missing=missing,
        unexpected=extra,
    )


def _copy_capped(stream: BinaryIO, dest: Path, cap: int) -> int:
    total = 0
    with dest.open("wb") as out:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
            if total > cap:
                raise TooLarge(
                    f"文件超过上限 {cap // (1 << 20)} MiB",
                    f"File exceeds the {cap // (1 << 20)} MiB limit",
                    reason="too_large",
                    limit=cap,
                )
            out.write(chunk)
    if total == 0:
        raise ValidationFailed("文件是空的", "The file is empty", reason="empty")
    return total


def _sync_columns(
    session: Session,
    ds: Dataset,
    schema: TableSchema,
    findings: list[Any],
    profiles: dict[str, dict[str, Any]],
) -> None:
    existing = {c.name: c for c in catalog.columns(session, ds.id)}
    by_col = {f.column: f for f in findings}
    for pos, spec in enumerate(schema.columns):
        col = existing.get(spec.name)
        if col is None:
            col = DatasetColumn(
                dataset_id=ds.id,
                position=pos,
                name=spec.name,
                type=spec.type,
                title="",
                tags=[],
                joinable_to=[],
                profile={},
                sensitive=False,
            )
            session.add(col)
        col.position, col.type = pos, spec.type
        finding = by_col.get(spec.name)
        if finding is not None:
            col.pii_kind, col.pii_confidence = str(finding.kind), round(finding.confidence, 3)
            col.pii_sample_count, col.pii_matched_count = finding.sample_count, finding.matched_count
            col.sensitive = True
        if spec.name == ds.privacy_unit_column:
            col.sensitive = True
        col.profile = profiles.get(spec.name, {})


def needs_tidy(layout: Layout, sample: Sample) -> bool:
    """Whether the file must be rewritten before the plain readers take it: the header is not one
    full row 1, the user skips rows, or rows seen at the start or end of the sheet are not data
    (a blank row is harmless only at the very end)."""
    if not layout.trivial or layout.user_skip:
        return True
    rows = [(n, c) for n, c in list(sample.head) + list(sample.tail) if n > layout.header_rows[-1]]
    seen_blank = False
    for n, cells in rows:
        reason = layout.skip_reason(n, cells)
        if reason is None:
            if seen_blank:
                return True
        elif reason == "blank":
            seen_blank = True
        else:
            return True
    return False


def suggest_names(layout: Layout, existing: TableSchema | None, titles: dict[str, str]) -> dict[str, str]:
    """Header text -> proposed column identifier.

    A dataset with data keeps its columns: a header that is a column's name or title maps to
    that column.  A new dataset gets pinyin identifiers for Chinese headers (出生日期 →
    ``chushengriqi``), ASCII identifiers as they are, and ``col_N`` for headers that were empty.
    """
    if existing is not None:
        names = set(existing.names)
        return {h: h if h in names else titles.get(h, h) for h in layout.names}
    texts = [f"col_{j + 1}" if j in layout.generated else h for j, h in enumerate(layout.names)]
    return dict(zip(layout.names, identifiers_for(texts), strict=True))


def _renamed(schema: TableSchema, suggested: dict[str, str] | None) -> TableSchema:
    """``schema`` with headers mapped to the existing dataset's column names (for the check)."""
    if not suggested:
        return schema
    return TableSchema(
        tuple(ColumnSpec(suggested.get(c.name, c.name), c.type, c.nullable) for c in schema.columns)
    )
