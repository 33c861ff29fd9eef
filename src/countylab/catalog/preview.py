"""Dataset previews: real rows only where the grade allows downloading rows (一般1级), otherwise
schema-faithful dummy rows, clearly labelled.  Also the dummy-data download for developers."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from countylab.catalog import service as catalog
from countylab.catalog.grading import Grade
from countylab.dummy import DUMMY_LABEL_EN, DUMMY_LABEL_ZH, ColumnProfile, DatasetProfile, generate
from countylab.errors import NotFound
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.policy import Action, decide

if TYPE_CHECKING:
    from countylab.lab import Lab


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
    lab: Lab, actor: Principal, dataset_id: int, rows: int, *, seed: int = 0
) -> tuple[pa.Table, str]:
    with lab.read() as s:
        ds = catalog.get_dataset(s, dataset_id)
        authorize(actor, Permission.dataset_read, target=f"dataset:{ds.id}")
        profile, name = _profile(ds), ds.name
    return generate(profile, rows, seed=seed), name


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
