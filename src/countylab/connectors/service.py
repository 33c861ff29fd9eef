"""Pull connectors: managing them and running one incremental sync.

A connector copies the rows of a department's database table that changed since its last
sync (``cursor_column > last_cursor``) into its dataset.  The rows are written to a temporary
Parquet file and committed through ``Ingestion.ingest_file`` with ``source="pull"``, so pulled
data passes the same validation, atomic versioning and classification as an upload.

A failed sync (source down, wrong password, table gone, schema changed…) is recorded as a
failed ``SyncRun`` with a Chinese/English message and changes nothing else: no version, the
cursor stays, the schedule goes on.  Connectors are managed by the dataset's department
providers and by admins (``catalog.authorize_write``); each change is audited.  The DSN holds a
password: it stays in the metadata database and never reaches an audit event, a log line, a run
record or an API response (use :func:`countylab.connectors.sources.mask_dsn` to show it).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from countylab import audit
from countylab.catalog import service as catalog
from countylab.catalog.ingestion import Ingestion
from countylab.connectors.sources import (
    PostgresSource,
    Source,
    check_identifier,
    decode_cursor,
    encode_cursor,
    parse_dsn,
    split_table,
)
from countylab.errors import Conflict, CountylabError, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal
from countylab.identity.roles import Role
from countylab.notify.hooks import connector_notice
from countylab.storage.catalog_models import Connector, SyncRun

log = logging.getLogger("countylab.connectors")

KINDS = ("postgresql",)
MIN_INTERVAL_S, MAX_INTERVAL_S = 60, 30 * 24 * 3600
EDITABLE = ("dsn", "source_table", "cursor_column", "key_columns", "interval_s", "enabled")
#: the scheduler acts as this principal; versions and audit events name it
SCHEDULER = Principal(user_id=None, username="scheduler", roles=frozenset(Role), via="system")


class SyncHost(Protocol):
    """What a sync needs from the lab (``countylab.lab.Lab`` satisfies it)."""

    @property
    def ingestion(self) -> Ingestion: ...

    def tx(self) -> AbstractContextManager[Session]: ...


SourceFactory = Callable[[Connector], Source]


def postgres_source(c: Connector) -> Source:
    return PostgresSource(c.dsn, c.source_table)


def _now() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time we store is UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


# -- managing connectors -------------------------------------------------------------------------


def get_connector(session: Session, connector_id: int) -> Connector:
    c = session.get(Connector, connector_id)
    if c is None:
        raise NotFound(f"连接器 {connector_id} 不存在", f"Connector {connector_id} not found")
    return c


def _authorized(session: Session, actor: Principal, connector_id: int) -> Connector:
    c = get_connector(session, connector_id)
    catalog.authorize_write(actor, catalog.get_dataset(session, c.dataset_id))
    return c


def _check(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "dsn" in out:
        out["dsn"] = str(out["dsn"]).strip()
        parse_dsn(out["dsn"])
    if "source_table" in out:
        out["source_table"] = ".".join(split_table(str(out["source_table"])))
    if "cursor_column" in out:
        out["cursor_column"] = check_identifier(str(out["cursor_column"]).strip(), "cursor_column")
    if "key_columns" in out:
        keys = out["key_columns"] or []
        if not isinstance(keys, list):
            raise ValidationFailed(
                "主键列须为列名列表", "key_columns must be a list of names", field="key_columns"
            )
        out["key_columns"] = [check_identifier(str(k).strip(), "key_columns") for k in keys if str(k).strip()]
    if "interval_s" in out:
        interval = out["interval_s"]
        if not isinstance(interval, int) or not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
            raise ValidationFailed(
                f"同步间隔须在 {MIN_INTERVAL_S} 秒到 30 天之间",
                f"The interval must be between {MIN_INTERVAL_S} s and 30 days",
                field="interval_s",
            )
    if "enabled" in out and not isinstance(out["enabled"], bool):
        raise ValidationFailed("enabled 须为真或假", "enabled must be true or false", field="enabled")
    return out


def list_connectors(session: Session, actor: Principal, dataset_id: int) -> list[Connector]:
    catalog.authorize_write(actor, catalog.get_dataset(session, dataset_id))
    return list(
        session.execute(
            select(Connector).where(Connector.dataset_id == dataset_id).order_by(Connector.id)
        ).scalars()
    )


def create_connector(
    session: Session,
    actor: Principal,
    dataset_id: int,
    *,
    dsn: str,
    source_table: str,
    cursor_column: str,
    key_columns: list[str] | None = None,
    interval_s: int = 300,
    enabled: bool = True,
    kind: str = "postgresql",
) -> Connector:
    ds = catalog.get_dataset(session, dataset_id)
    catalog.authorize_write(actor, ds)
    if kind not in KINDS:
        raise ValidationFailed(
            f"不支持的连接器类型：{kind}", f"Unsupported connector kind: {kind}", field="kind"
        )
    fields = _check(
        {
            "dsn": dsn,
            "source_table": source_table,
            "cursor_column": cursor_column,
            "key_columns": key_columns or [],
            "interval_s": interval_s,
            "enabled": enabled,
        }
    )
    c = Connector(
        dataset_id=ds.id,
        kind=kind,
        created_by=actor.user_id,
        last_cursor=None,
        next_run_at=_now() if enabled else None,
        **fields,
    )
    session.add(c)
    session.flush()
    audit.record(
        session,
        actor,
        "connector.create",
        f"connector:{c.id}",
        dataset=ds.id,
        kind=kind,
        source_table=c.source_table,
        cursor_column=c.cursor_column,
        key_columns=c.key_columns,
        interval_s=c.interval_s,
    )
    return c


def update_connector(
    session: Session, actor: Principal, connector_id: int, *, reset_cursor: bool = False, **fields: Any
) -> Connector:
    """Change settings; a new table or cursor column (or ``reset_cursor``) starts again from all rows."""
    c = _authorized(session, actor, connector_id)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(
            f"不能修改这些字段：{', '.join(sorted(unknown))}",
            f"These fields cannot be edited: {', '.join(sorted(unknown))}",
        )
    checked = _check(fields)
    changed = sorted(k for k, v in checked.items() if getattr(c, k) != v)
    for k in changed:
        setattr(c, k, checked[k])
    if reset_cursor or {"source_table", "cursor_column"} & set(changed):
        c.last_cursor = None
        reset_cursor = True
    if "enabled" in changed:
        c.next_run_at = _now() if c.enabled else None
    audit.record(
        session,
        actor,
        "connector.update",
        f"connector:{c.id}",
        dataset=c.dataset_id,
        fields=changed,
        reset_cursor=reset_cursor,
    )
    return c


def delete_connector(session: Session, actor: Principal, connector_id: int) -> None:
    c = _authorized(session, actor, connector_id)
    dataset_id = c.dataset_id
    session.execute(delete(SyncRun).where(SyncRun.connector_id == c.id))
    session.delete(c)
    audit.record(session, actor, "connector.delete", f"connector:{connector_id}", dataset=dataset_id)


def runs(session: Session, actor: Principal, connector_id: int, limit: int = 50) -> list[SyncRun]:
    _authorized(session, actor, connector_id)
    return list(
        session.execute(
            select(SyncRun)
            .where(SyncRun.connector_id == connector_id)
            .order_by(SyncRun.id.desc())
            .limit(limit)
        ).scalars()
    )


def last_runs(session: Session, connector_ids: list[int]) -> dict[int, SyncRun]:
    found: dict[int, SyncRun] = {}
    for r in session.execute(
        select(SyncRun).where(SyncRun.connector_id.in_(connector_ids)).order_by(SyncRun.id)
    ).scalars():
        found[r.connector_id] = r
    return found


def run_error(r: SyncRun) -> dict[str, str] | None:
    """A failed run's message as ``{"zh", "en", "reason"}``."""
    if not r.error:
        return None
    try:
        data = json.loads(r.error)
    except ValueError:
        return {"zh": r.error, "en": r.error, "reason": ""}
    return {k: str(data.get(k, "")) for k in ("zh", "en", "reason")}


# -- running a sync -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    connector_id: int
    dataset_id: int
    run_id: int
    columns: list[str] | None  # the dataset's columns, or None before its first version
    cursor_column: str
    key_columns: list[str]
    after: Any


_running: set[tuple[int, int]] = set()
_running_guard = threading.Lock()


def _already_running() -> Conflict:
    return Conflict(
        "该连接器正在同步，请稍后再试", "This connector is already syncing; try again later", reason="running"
    )


@contextmanager
def _one_at_a_time(host: SyncHost, connector_id: int) -> Iterator[None]:
    """One sync per connector: among this process's threads (the set), and across processes and
    servers (the lab's named lock: a manual sync in one worker, the scheduler in the leader)."""
    token = (id(host.ingestion), connector_id)
    with _running_guard:
        if token in _running:
            raise _already_running()
        _running.add(token)
    try:
        locks = host.ingestion.cross_process
        if locks is None:
            yield
        else:
            with locks.hold(f"connector-{connector_id}", wait=False) as got:
                if not got:
                    raise _already_running()
                yield
    finally:
        with _running_guard:
            _running.discard(token)


def run_sync(
    host: SyncHost,
    actor: Principal,
    connector_id: int,
    *,
    trigger: str = "manual",
    source_factory: SourceFactory = postgres_source,
    max_rows: int = 200_000,
    batch_rows: int = 10_000,
) -> SyncRun:
    """Pull the rows changed since the last sync and commit them as one version (or record why not).

    Raises only for the caller's own mistakes (unknown connector, no permission, already running);
    anything the source or the data does wrong ends in a failed run, returned like a good one.
    """
    with _one_at_a_time(host, connector_id):
        with host.tx() as s:
            c = _authorized(s, actor, connector_id)
            ds = catalog.get_dataset(s, c.dataset_id)
            run = SyncRun(connector_id=c.id, started_at=_now(), status="running", rows=0, error="")
            s.add(run)
            s.flush()
            try:
                source: Source | None = source_factory(c)
                broken: CountylabError | None = None
            except CountylabError as exc:  # e.g. a stored DSN that no longer parses
                source, broken = None, exc
            plan = _Plan(
                c.id,
                c.dataset_id,
                run.id,
                [col["name"] for col in ds.table_schema["columns"]] if ds.table_schema else None,
                c.cursor_column,
                list(c.key_columns or []),
                decode_cursor(c.last_cursor),
            )
        try:
            if broken is not None or source is None:
                raise broken or ValidationFailed("无法建立数据源", "Cannot build the source")
            rows, version, last = _pull(host, actor, plan, source, max_rows=max_rows, batch_rows=batch_rows)
        except PermissionDenied:
            _finish(
                host,
                actor,
                plan,
                trigger,
                error=("没有写入该数据集的权限", "No permission to write the dataset", "permission"),
            )
            raise
        except CountylabError as exc:
            return _finish(
                host,
                actor,
                plan,
                trigger,
                error=(exc.message_zh, exc.message_en, str(exc.details.get("reason", exc.code))),
            )
        except Exception:  # noqa: BLE001 - a bug must not stop the scheduler; it is logged (no DSN in it)
            log.exception("connector %s: sync failed unexpectedly", connector_id)
            return _finish(
                host,
                actor,
                plan,
                trigger,
                error=("同步时发生内部错误", "Internal error during the sync", "internal"),
            )
        return _finish(
            host, actor, plan, trigger, rows=rows, version=version, last=last, more=rows >= max_rows
        )


def _pull(
    host: SyncHost, actor: Principal, plan: _Plan, source: Source, *, max_rows: int, batch_rows: int
) -> tuple[int, int | None, Any]:
    columns = plan.columns if plan.columns is not None else [c.name for c in source.columns()]
    folder = Path(tempfile.mkdtemp(prefix="pull-", dir=host.ingestion.warehouse.scratch_dir))
    try:
        path = folder / "pull.parquet"
        rows, last = 0, plan.after
        writer: pq.ParquetWriter | None = None
        try:
            for chunk in source.read(
                columns, plan.cursor_column, plan.after, max_rows=max_rows, batch_rows=batch_rows
            ):
                if writer is None:
                    writer = pq.ParquetWriter(path, chunk.batch.schema)
                writer.write_batch(chunk.batch)
                rows, last = rows + chunk.batch.num_rows, chunk.last_cursor
        finally:
            if writer is not None:
                writer.close()
        if rows == 0:
            return 0, None, plan.after
        encode_cursor(last)  # refuse an unstorable cursor before committing a version
        mode = "upsert" if plan.key_columns else "append"
        version = host.ingestion.ingest_file(
            actor,
            plan.dataset_id,
            path,
            fmt="parquet",
            mode=mode,
            key=plan.key_columns or None,
            source="pull",
            note=f"connector {plan.connector_id}",
        )
        return rows, version.version, last
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _finish(
    host: SyncHost,
    actor: Principal,
    plan: _Plan,
    trigger: str,
    *,
    rows: int = 0,
    version: int | None = None,
    last: Any = None,
    more: bool = False,
    error: tuple[str, str, str] | None = None,
) -> SyncRun:
    with host.tx() as s:
        run = s.get(SyncRun, plan.run_id)
        c = s.get(Connector, plan.connector_id)
        assert run is not None
        run.finished_at = _now()
        if error is None:
            run.status, run.rows, run.version = "succeeded", rows, version
            if c is not None and rows:
                c.last_cursor = encode_cursor(last)
                if more and c.enabled:  # more rows are waiting: catch up at the next tick
                    c.next_run_at = _now()
        else:
            run.status = "failed"
            run.error = json.dumps({"zh": error[0], "en": error[1], "reason": error[2]}, ensure_ascii=False)
            connector_notice(s, run, {"zh": error[0], "en": error[1]})
        audit.append(
            s,
            actor_id=actor.user_id,
            actor=actor.username,
            action="connector.sync",
            target=f"connector:{plan.connector_id}",
            outcome="ok" if error is None else "failed",
            details={
                "dataset": plan.dataset_id,
                "run": plan.run_id,
                "trigger": trigger,
                "rows": rows,
                "version": version,
                "status": run.status,
                **({"reason": error[2]} if error else {}),
            },
        )
        s.flush()
        s.expunge(run)
        return run


# -- scheduling support -----------------------------------------------------------------------


def due_connectors(session: Session, now: datetime) -> list[tuple[int, datetime]]:
    rows = session.execute(
        select(Connector.id, Connector.next_run_at)
        .where(Connector.enabled.is_(True), Connector.next_run_at.is_not(None), Connector.next_run_at <= now)
        .order_by(Connector.next_run_at)
    ).all()
    return [(cid, at) for cid, at in rows if at is not None]


def claim(session: Session, connector_id: int, seen_next_run_at: datetime, now: datetime) -> bool:
    """Move a due connector's next run one interval ahead; False if another worker moved it first."""
    c = session.get(Connector, connector_id)
    if c is None:
        return False
    result = session.execute(
        update(Connector)
        .where(Connector.id == connector_id, Connector.next_run_at == seen_next_run_at)
        .values(next_run_at=now + timedelta(seconds=c.interval_s))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def fail_interrupted(session: Session) -> int:
    """At start-up: runs left ``running`` by a crash are marked failed (their versions never committed)."""
    stale = list(session.execute(select(SyncRun).where(SyncRun.status == "running")).scalars())
    for r in stale:
        r.status, r.finished_at = "failed", _now()
        r.error = json.dumps(
            {
                "zh": "同步被中断（服务重启）",
                "en": "The sync was interrupted (restart)",
                "reason": "interrupted",
            },
            ensure_ascii=False,
        )
    return len(stale)
