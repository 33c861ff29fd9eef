"""Where pulled rows come from: a ``Source`` protocol and its PostgreSQL implementation.

A source answers two questions: which columns does the table have, and which rows changed
after a cursor value.  ``PostgresSource`` reads a department's table in a read-only,
repeatable-read transaction with a statement timeout, through a server-side cursor, so a large
table streams in batches instead of filling memory.  Table and column names only ever reach
SQL through ``psycopg.sql.Identifier``; values only as bound parameters.

Failures are translated into :class:`SourceError` with a Chinese and English message and a
machine-readable ``reason``.  They never carry the DSN, the password or raw error text from the
server (which can echo host names and user names into the lab's run history).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from countylab.errors import UserError, ValidationFailed

# libpq keywords a connector may set.  Everything else (passfile, sslkey, service, options…)
# would let a provider make the lab server read its own files or change session settings.
ALLOWED_DSN_KEYS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "sslmode",
        "connect_timeout",
        "application_name",
        "target_session_attrs",
    }
)
_IDENT = re.compile(r"^[^\W\d]\w{0,62}$")

# udt_name → Arrow type of the pulled column (anything else is read as text).
_ARROW: dict[str, pa.DataType] = {
    "int2": pa.int64(),
    "int4": pa.int64(),
    "int8": pa.int64(),
    "float4": pa.float64(),
    "float8": pa.float64(),
    "numeric": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us"),
}
CURSOR_TYPES = frozenset(
    {
        "int2",
        "int4",
        "int8",
        "numeric",
        "float4",
        "float8",
        "date",
        "timestamp",
        "timestamptz",
        "text",
        "varchar",
        "bpchar",
    }
)


class SourceError(UserError):
    """The source could not be read; ``details['reason']`` says why (unreachable, no_table…)."""

    code = "source_error"


@dataclass(frozen=True)
class SourceColumn:
    name: str
    type: str  # the source's own type name (udt_name for PostgreSQL)


@dataclass(frozen=True)
class Chunk:
    """One batch of changed rows, in cursor order, and the cursor value of its last row."""

    batch: pa.RecordBatch
    last_cursor: Any


class Source(Protocol):
    """A table that can be read incrementally by a monotonically growing cursor column."""

    def columns(self) -> list[SourceColumn]:
        """The table's columns in table order; SourceError(reason='no_table') if it is missing."""

    def read(
        self, columns: Sequence[str], cursor_column: str, after: Any, *, max_rows: int, batch_rows: int
    ) -> Iterator[Chunk]:
        """Rows with ``cursor_column > after`` (all rows when ``after`` is None), ordered by it.

        At most about ``max_rows`` rows: the read stops at a cursor boundary, so rows sharing one
        cursor value are never split between two syncs.
        """


# -- identifiers and DSNs ----------------------------------------------------------------------


def check_identifier(name: str, what: str = "column") -> str:
    if not _IDENT.match(name):
        raise ValidationFailed(
            f"名称“{name[:80]}”无效：须以字母开头，只含字母、数字和下划线（至多63位）",
            f"Invalid {what} name '{name[:80]}': letters, digits and _ only, "
            "starting with a letter (at most 63)",
            field=what,
            reason="bad_identifier",
        )
    return name


def split_table(table: str) -> tuple[str, str]:
    """``schema.table`` or ``table`` (schema ``public``), each part a plain identifier."""
    parts = table.strip().split(".")
    if len(parts) == 1:
        parts = ["public", parts[0]]
    if len(parts) != 2:
        raise ValidationFailed(
            "源表须写作“模式.表名”或“表名”",
            "The source table must be 'schema.table' or 'table'",
            field="source_table",
            reason="bad_identifier",
        )
    return check_identifier(parts[0], "source_table"), check_identifier(parts[1], "source_table")


def parse_dsn(dsn: str) -> dict[str, str]:
    """Parse a libpq DSN (URL or key=value) and refuse keywords outside ``ALLOWED_DSN_KEYS``."""
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.Error:
        raise ValidationFailed(
            "数据库连接串格式不正确",
            "The database connection string is malformed",
            field="dsn",
            reason="bad_dsn",
        ) from None
    bad = sorted(set(params) - ALLOWED_DSN_KEYS)
    if bad:
        raise ValidationFailed(
            f"连接串中不允许这些参数：{', '.join(bad)}",
            f"These connection parameters are not allowed: {', '.join(bad)}",
            field="dsn",
            reason="bad_dsn",
        )
    if not params.get("host") and not params.get("hostaddr"):
        raise ValidationFailed(
            "连接串须指定主机（host）",
            "The connection string must name a host",
            field="dsn",
            reason="bad_dsn",
        )
    return params


def mask_dsn(dsn: str) -> str:
    """The DSN as key=value pairs with the password replaced: safe to show and to log."""
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.Error:
        return "***"
    if "password" in params:
        params["password"] = "***"  # noqa: S105 - the mask, not a password
    order = ["host", "hostaddr", "port", "dbname", "user", "password"]
    ordered = {k: params[k] for k in order if k in params} | {k: v for k, v in sorted(params.items())}
    return make_conninfo(**ordered)


# -- cursor values: stored as text, read back with their type ------------------------------------


def encode_cursor(value: Any) -> str:
    """``type:value`` text for ``Connector.last_cursor`` (readable in the UI, exact on read-back)."""
    if isinstance(value, bool):
        raise ValidationFailed(
            "游标列不能是布尔值", "A cursor column cannot be boolean", reason="bad_cursor_type"
        )
    if isinstance(value, int):
        return f"int:{value}"
    if isinstance(value, Decimal):
        return f"decimal:{value}"
    if isinstance(value, float):
        return f"float:{value!r}"
    if isinstance(value, datetime):
        return f"datetime:{value.isoformat()}"
    if isinstance(value, date):
        return f"date:{value.isoformat()}"
    if isinstance(value, str):
        return "str:" + value
    raise ValidationFailed(
        f"不支持的游标值类型：{type(value).__name__}",
        f"Unsupported cursor value type: {type(value).__name__}",
        reason="bad_cursor_type",
    )


def decode_cursor(text: str | None) -> Any:
    if text is None:
        return None
    kind, _, raw = text.partition(":")
    decoders: dict[str, Any] = {
        "int": int,
        "decimal": Decimal,
        "float": float,
        "str": str,
        "datetime": datetime.fromisoformat,
        "date": date.fromisoformat,
    }
    if kind not in decoders:
        raise ValueError(f"unknown cursor encoding {kind!r}")
    return decoders[kind](raw)


# -- PostgreSQL ----------------------------------------------------------------------------------


def _to_arrow(values: list[Any], udt: str) -> pa.Array:
    if udt == "numeric":
        values = [None if v is None else float(v) for v in values]
    elif udt == "timestamptz":  # normalised to UTC wall time, the warehouse's timestamp convention
        values = [None if v is None else v.astimezone(UTC).replace(tzinfo=None) for v in values]
    elif udt not in _ARROW:
        values = [None if v is None else _text(v) for v in values]
    return pa.array(values, type=_ARROW.get(udt, pa.string()))


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


class PostgresSource:
    """One table of a department's PostgreSQL database, read-only."""

    def __init__(
        self, dsn: str, table: str, *, connect_timeout_s: int = 10, statement_timeout_s: float = 300.0
    ) -> None:
        self._params = parse_dsn(dsn)
        self.schema, self.table = split_table(table)
        self.connect_timeout_s = connect_timeout_s
        self.statement_timeout_s = statement_timeout_s

    def _connect(self) -> psycopg.Connection[Any]:
        params = dict(self._params)
        params.setdefault("connect_timeout", str(self.connect_timeout_s))
        params.setdefault("application_name", "countylab-connector")
        try:
            conn = psycopg.connect(make_conninfo(**params), autocommit=False)
        except psycopg.OperationalError as exc:
            raise _connect_error(exc) from None
        try:
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.execute(
                "SELECT set_config('statement_timeout', %s, true)",
                (str(int(self.statement_timeout_s * 1000)),),
            )
        except psycopg.Error as exc:
            conn.close()
            raise _query_error(exc) from None
        return conn

    def _columns(self, conn: psycopg.Connection[Any]) -> list[SourceColumn]:
        rows = conn.execute(
            "SELECT column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (self.schema, self.table),
        ).fetchall()
        if not rows:
            raise SourceError(
                f"源表 {self.schema}.{self.table} 不存在或无权读取",
                f"Source table {self.schema}.{self.table} does not exist or cannot be read",
                reason="no_table",
            )
        return [SourceColumn(str(name), str(udt)) for name, udt in rows]

    def columns(self) -> list[SourceColumn]:
        with self._session() as conn:
            return self._columns(conn)

    def read(
        self,
        columns: Sequence[str],
        cursor_column: str,
        after: Any,
        *,
        max_rows: int = 200_000,
        batch_rows: int = 10_000,
    ) -> Iterator[Chunk]:
        with self._session() as conn:
            found = {c.name: c.type for c in self._columns(conn)}
            if cursor_column not in found:
                raise SourceError(
                    f"游标列“{cursor_column}”不在源表中",
                    f"Cursor column '{cursor_column}' is not in the source table",
                    reason="no_cursor_column",
                    column=cursor_column,
                )
            if found[cursor_column] not in CURSOR_TYPES:
                raise SourceError(
                    f"游标列“{cursor_column}”的类型 {found[cursor_column]} 不能排序比较",
                    f"Cursor column '{cursor_column}' has type {found[cursor_column]}, "
                    "which cannot serve as a cursor",
                    reason="bad_cursor_type",
                    column=cursor_column,
                )
            missing = [c for c in columns if c not in found]
            if missing:
                raise SourceError(
                    f"源表结构已改变：缺少列 {', '.join(missing)}",
                    f"The source table's schema changed: missing columns {', '.join(missing)}",
                    reason="schema_change",
                    column=missing[0],
                    missing=missing,
                )
            table = sql.Identifier(self.schema, self.table)
            cur_col = sql.Identifier(cursor_column)
            where = sql.SQL("{} IS NOT NULL").format(cur_col)
            args: list[Any] = []
            if after is not None:
                where = sql.SQL("{} > %s").format(cur_col)
                args.append(after)
            # The max_rows-th cursor value bounds this sync; ties at the bound are all included.
            probe = sql.SQL("SELECT {c} FROM {t} WHERE {w} ORDER BY {c} OFFSET %s LIMIT 1").format(
                c=cur_col, t=table, w=where
            )
            bound = conn.execute(probe, [*args, max(max_rows - 1, 0)]).fetchone()
            if bound is not None:
                where = sql.SQL("{} AND {} <= %s").format(where, cur_col)
                args.append(bound[0])
            select_cols = [*columns, *([cursor_column] if cursor_column not in columns else [])]
            query = sql.SQL("SELECT {cols} FROM {t} WHERE {w} ORDER BY {c}").format(
                cols=sql.SQL(", ").join(sql.Identifier(c) for c in select_cols), t=table, w=where, c=cur_col
            )
            udts = [found[c] for c in columns]
            cursor_at = select_cols.index(cursor_column)
            with conn.cursor(name="countylab_pull") as cur:
                cur.itersize = batch_rows
                cur.execute(query, args)
                while rows := cur.fetchmany(batch_rows):
                    arrays = [_to_arrow([r[i] for r in rows], udt) for i, udt in enumerate(udts)]
                    yield Chunk(pa.RecordBatch.from_arrays(arrays, names=list(columns)), rows[-1][cursor_at])

    def _session(self) -> _Session:
        return _Session(self)


class _Session:
    """Connection context that turns server errors into SourceError and always rolls back."""

    def __init__(self, source: PostgresSource) -> None:
        self.source = source
        self.conn: psycopg.Connection[Any] | None = None

    def __enter__(self) -> psycopg.Connection[Any]:
        self.conn = self.source._connect()
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        assert self.conn is not None
        with contextlib.suppress(psycopg.Error):
            self.conn.rollback()
        self.conn.close()
        if isinstance(exc, psycopg.Error):
            raise _query_error(exc) from None


def _connect_error(exc: psycopg.OperationalError) -> SourceError:
    text = str(exc)
    if exc.sqlstate == "28P01" or "password authentication failed" in text or "no password supplied" in text:
        return SourceError(
            "无法登录源数据库：用户名或口令错误",
            "Cannot log in to the source database: wrong user name or password",
            reason="auth_failed",
        )
    if exc.sqlstate == "3D000" or "does not exist" in text:
        return SourceError("源数据库不存在", "The source database does not exist", reason="no_database")
    return SourceError(
        "无法连接源数据库：请检查主机、端口和网络",
        "Cannot reach the source database: check host, port and network",
        reason="unreachable",
    )


def _query_error(exc: psycopg.Error) -> SourceError:
    state = exc.sqlstate or ""
    if state == "57014":
        return SourceError("读取源表超时", "Reading the source table timed out", reason="timeout")
    if state in ("42P01", "3F000"):
        return SourceError(
            "源表不存在或无权读取", "The source table does not exist or cannot be read", reason="no_table"
        )
    if state == "42703":
        return SourceError(
            "源表结构已改变：某列不存在",
            "The source table's schema changed: a column is missing",
            reason="schema_change",
        )
    if state == "42501":
        return SourceError(
            "没有读取源表的权限", "No permission to read the source table", reason="no_privilege"
        )
    if state.startswith("08") or isinstance(exc, psycopg.OperationalError):
        return SourceError(
            "与源数据库的连接中断", "The connection to the source database was lost", reason="unreachable"
        )
    return SourceError(
        f"读取源表失败（SQLSTATE {state or '?'}）",
        f"Reading the source table failed (SQLSTATE {state or '?'})",
        reason="source_failed",
        sqlstate=state,
    )
