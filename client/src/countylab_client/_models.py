"""Typed, immutable views of the server's JSON.

``from_json`` reads only the fields it knows and ignores the rest, so a newer server can add
fields without breaking older clients.  A missing or mistyped *known* field raises
``CountylabClientError`` with code ``invalid_response`` instead of a bare ``KeyError`` deep in
user code.  ``to_json`` gives back the wire form; ``countylab_client.testing`` serves it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ._errors import CountylabClientError

if TYPE_CHECKING:
    import pandas as pd

JSON = Mapping[str, Any]


def _bad(key: str, expected: str, value: object) -> CountylabClientError:
    return CountylabClientError(
        f"服务器响应格式不正确：字段 {key!r} 应为 {expected}，实际为 {type(value).__name__} / "
        f"Unexpected server response: field {key!r} should be {expected}, got {type(value).__name__}",
        code="invalid_response",
        details={"field": key},
    )


def _get(data: JSON, key: str) -> Any:
    if not isinstance(data, Mapping):
        raise _bad(key, "a field of an object", data)
    if key not in data:
        raise CountylabClientError(
            f"服务器响应缺少字段 {key!r} / Server response is missing field {key!r}",
            code="invalid_response",
            details={"field": key},
        )
    return data[key]


def _int(data: JSON, key: str) -> int:
    value = _get(data, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, "int", value)
    return value


def _opt_int(data: JSON, key: str) -> int | None:
    return None if data.get(key) is None else _int(data, key)


def _float(data: JSON, key: str) -> float:
    value = _get(data, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(key, "number", value)
    return float(value)


def _str(data: JSON, key: str, default: str | None = None) -> str:
    if default is not None and data.get(key) is None:
        return default
    value = _get(data, key)
    if not isinstance(value, str):
        raise _bad(key, "str", value)
    return value


def _bool(data: JSON, key: str) -> bool:
    value = _get(data, key)
    if not isinstance(value, bool):
        raise _bad(key, "bool", value)
    return value


def _list(data: JSON, key: str, *, optional: bool = False) -> list[Any]:
    if optional and data.get(key) is None:
        return []
    value = _get(data, key)
    if not isinstance(value, list):
        raise _bad(key, "list", value)
    return value


def _str_tuple(data: JSON, key: str, *, optional: bool = False) -> tuple[str, ...]:
    values = _list(data, key, optional=optional)
    if not all(isinstance(v, str) for v in values):
        raise _bad(key, "list of str", values)
    return tuple(values)


@dataclass(frozen=True, slots=True)
class Org:
    """An organisation: a county department, an enterprise or a research institute."""

    id: int
    name: str
    kind: str  # "department" | "enterprise" | "research"

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        return cls(id=_int(data, "id"), name=_str(data, "name"), kind=_str(data, "kind"))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind}


@dataclass(frozen=True, slots=True)
class User:
    """The account behind the token (``Client.whoami``)."""

    id: int
    username: str
    display_name: str
    org: Org | None
    roles: tuple[str, ...]
    lang: str

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        org = data.get("org") if isinstance(data, Mapping) else None
        return cls(
            id=_int(data, "id"),
            username=_str(data, "username"),
            display_name=_str(data, "display_name"),
            org=None if org is None else Org.from_json(org),
            roles=_str_tuple(data, "roles"),
            lang=_str(data, "lang"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "org": None if self.org is None else self.org.to_json(),
            "roles": list(self.roles),
            "lang": self.lang,
        }


@dataclass(frozen=True, slots=True)
class ProjectMember:
    user_id: int
    username: str
    role: str

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        return cls(user_id=_int(data, "user_id"), username=_str(data, "username"), role=_str(data, "role"))

    def to_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "username": self.username, "role": self.role}


@dataclass(frozen=True, slots=True)
class ProjectDataset:
    """A dataset granted to a project."""

    dataset_id: int
    name: str

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        return cls(dataset_id=_int(data, "dataset_id"), name=_str(data, "name"))

    def to_json(self) -> dict[str, Any]:
        return {"dataset_id": self.dataset_id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    slug: str
    title: str
    description: str
    org_id: int | None
    status: str
    members: tuple[ProjectMember, ...] = ()
    datasets: tuple[ProjectDataset, ...] = ()

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        return cls(
            id=_int(data, "id"),
            slug=_str(data, "slug"),
            title=_str(data, "title"),
            description=_str(data, "description", default=""),
            org_id=_opt_int(data, "org_id"),
            status=_str(data, "status"),
            members=tuple(ProjectMember.from_json(m) for m in _list(data, "members", optional=True)),
            datasets=tuple(ProjectDataset.from_json(d) for d in _list(data, "datasets", optional=True)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "slug": self.slug,
            "title": self.title,
            "description": self.description,
            "org_id": self.org_id,
            "status": self.status,
            "members": [m.to_json() for m in self.members],
            "datasets": [d.to_json() for d in self.datasets],
        }


@dataclass(frozen=True, slots=True)
class DatasetColumn:
    name: str
    type: str
    tags: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        return cls(
            name=_str(data, "name"), type=_str(data, "type"), tags=_str_tuple(data, "tags", optional=True)
        )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "tags": list(self.tags)}


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    version: int
    row_count: int | None
    created_at: datetime

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        raw = _str(data, "created_at")
        try:
            created_at = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise _bad("created_at", "an ISO 8601 timestamp", raw) from exc
        return cls(
            version=_int(data, "version"), row_count=_opt_int(data, "row_count"), created_at=created_at
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "row_count": self.row_count,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Dataset:
    """A catalogued dataset.

    The list endpoint sends the summary fields only, so ``description``, ``columns`` and
    ``versions`` are empty there and filled by ``Client.dataset(id)``.
    """

    id: int
    name: str
    title: str
    department: str
    grade: str
    tags: tuple[str, ...] = ()
    org_id: int | None = None  # the owning department's id: what ``datasets(department=…)`` takes
    row_count: int | None = None
    current_version: int | None = None
    description: str = ""
    columns: tuple[DatasetColumn, ...] = ()
    versions: tuple[DatasetVersion, ...] = ()

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        return cls(
            id=_int(data, "id"),
            name=_str(data, "name"),
            title=_str(data, "title"),
            department=_str(data, "department"),
            grade=_str(data, "grade"),
            tags=_str_tuple(data, "tags", optional=True),
            org_id=_opt_int(data, "org_id"),
            row_count=_opt_int(data, "row_count"),
            current_version=_opt_int(data, "current_version"),
            description=_str(data, "description", default=""),
            columns=tuple(DatasetColumn.from_json(c) for c in _list(data, "columns", optional=True)),
            versions=tuple(DatasetVersion.from_json(v) for v in _list(data, "versions", optional=True)),
        )

    def to_json(self, *, detail: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "title": self.title,
            "department": self.department,
            "grade": self.grade,
            "tags": list(self.tags),
            "org_id": self.org_id,
            "row_count": self.row_count,
            "current_version": self.current_version,
        }
        if detail:
            out["description"] = self.description
            out["columns"] = [c.to_json() for c in self.columns]
            out["versions"] = [v.to_json() for v in self.versions]
        return out


@dataclass(frozen=True, slots=True)
class PushResult:
    """Outcome of ``Client.push_rows``.

    ``duplicate`` is true when the server had already applied a batch with this
    ``idempotency_key`` (e.g. the first attempt's response was lost); nothing was added twice.
    """

    accepted: int
    duplicate: bool
    idempotency_key: str

    @classmethod
    def from_json(cls, data: JSON, *, idempotency_key: str = "") -> Self:
        return cls(
            accepted=_int(data, "accepted"),
            duplicate=_bool(data, "duplicate"),
            idempotency_key=idempotency_key,
        )


def _interval(value: Any, key: str) -> tuple[float, float] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) == 2
    if ok and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        return (float(value[0]), float(value[1]))
    if ok and all(x is None for x in value):
        return None
    raise _bad(key, "[low, high] pairs", value)


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A DP query answer as sent by the server; ``Client.query`` turns it into a DataFrame.

    ``intervals[col][i]`` is the confidence interval of ``rows[i]``'s value in ``col`` (``None``
    where the server gave none).  Only noisy columns have intervals.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    epsilon_spent: float
    cached: bool
    budget_remaining: float
    intervals: Mapping[str, tuple[tuple[float, float] | None, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: the query's id on the server: ``to_excel``/``to_csv`` download its stored answer (free)
    query_id: int | None = None
    #: readable headers in the server's language (人数, 年龄合计 …), one per column
    headers: tuple[str, ...] = ()
    #: names of the codes of group columns linked to a public key set with labels (城关镇 …)
    names: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict)
    _fetch: Callable[[int, str], bytes] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        columns = _str_tuple(data, "columns")
        rows = tuple(tuple(row) if isinstance(row, list) else _raise_row(row) for row in _list(data, "rows"))
        if any(len(row) != len(columns) for row in rows):
            raise _bad("rows", f"rows of {len(columns)} values", rows)
        raw_intervals = data.get("intervals") or {}
        if not isinstance(raw_intervals, Mapping):
            raise _bad("intervals", "object", raw_intervals)
        intervals: dict[str, tuple[tuple[float, float] | None, ...]] = {}
        for col, pairs in raw_intervals.items():
            key = f"intervals.{col}"
            if not isinstance(pairs, list) or len(pairs) != len(rows):
                raise _bad(key, f"a list of {len(rows)} intervals", pairs)
            intervals[str(col)] = tuple(_interval(p, key) for p in pairs)
        return cls(
            columns=columns,
            rows=rows,
            intervals=intervals,
            epsilon_spent=_float(data, "epsilon_spent"),
            cached=_bool(data, "cached"),
            budget_remaining=_float(data, "budget_remaining"),
            notes=_str_tuple(data, "notes", optional=True),
            query_id=_query_id(data),
            headers=_display_headers(data, len(columns)),
            names=_display_names(data, columns, len(rows)),
        )

    def to_pandas(self, names: bool = False) -> pd.DataFrame:
        """The answer as a DataFrame (needs the ``pandas`` extra); see ``Client.query``.

        ``names=True`` adds a ``<col>_name`` column after each group column whose codes have
        names in a public key set (town and village names): public metadata, no budget."""
        from ._frames import to_dataframe

        df = to_dataframe(self)
        if names:
            for col, values in self.names.items():
                df.insert(list(df.columns).index(col) + 1, f"{col}_name", list(values))
        return df

    def to_excel(self, path: str | Path) -> Path:
        """Save the answer as XLSX as the lab exports it: readable headers, names beside codes,
        values rounded to their interval with its bounds, and the DP note (ε spent, interval
        level, rounding).  Downloads the stored answer: costs no privacy budget."""
        return self._save(path, "xlsx")

    def to_csv(self, path: str | Path) -> Path:
        """Save the answer as CSV (UTF-8 with BOM, opens cleanly in Excel and WPS); see ``to_excel``."""
        return self._save(path, "csv")

    def _save(self, path: str | Path, fmt: str) -> Path:
        if self._fetch is None or self.query_id is None:
            raise CountylabClientError(
                "此结果不是由 Client.query_result 取得的，无法下载 / this result did not come from "
                "Client.query_result, so it cannot be downloaded (use Client.download_answer)"
            )
        target = Path(path)
        target.write_bytes(self._fetch(self.query_id, fmt))
        return target

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "intervals": {
                c: [None if p is None else list(p) for p in ps] for c, ps in self.intervals.items()
            },
            "epsilon_spent": self.epsilon_spent,
            "cached": self.cached,
            "budget_remaining": self.budget_remaining,
            "notes": list(self.notes),
        }


def _query_id(data: JSON) -> int | None:
    value = data.get("query_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _display_headers(data: JSON, n: int) -> tuple[str, ...]:
    shown = data.get("display")
    heads = shown.get("headers") if isinstance(shown, Mapping) else None
    if isinstance(heads, list) and len(heads) == n and all(isinstance(h, str) for h in heads):
        return tuple(heads)
    return ()


def _display_names(data: JSON, columns: tuple[str, ...], n_rows: int) -> dict[str, tuple[str | None, ...]]:
    """Group column → the names of its codes, from the server's ``display`` block (if any)."""
    shown = data.get("display")
    grid = shown.get("names") if isinstance(shown, Mapping) else None
    if not isinstance(grid, list) or len(grid) != n_rows:
        return {}
    out: dict[str, tuple[str | None, ...]] = {}
    for c, col in enumerate(columns):
        values = [row[c] if isinstance(row, list) and len(row) == len(columns) else None for row in grid]
        if any(isinstance(v, str) for v in values):
            out[col] = tuple(v if isinstance(v, str) else None for v in values)
    return out


def _raise_row(row: object) -> tuple[Any, ...]:
    raise _bad("rows", "a list of lists", row)
