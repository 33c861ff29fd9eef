"""Loads the demo county's seed files into the catalog through the ordinary ingestion path,
as its departments would, and pushes the live traffic and air-quality feeds while the demo runs."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from countylab.catalog import service as catalog
from countylab.dummy import SEMANTICS
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM, Principal
from countylab.lab import Lab
from countylab.storage.catalog_models import DatasetColumn
from countylab.storage.models import Org, User

log = logging.getLogger("countylab.demo")

SKIP = {"enterprises_gbk"}  # same rows as `enterprises`; kept in seed/ to try a GBK upload by hand
DEPARTMENT_ORG = {
    "民政局": "县民政局",
    "公安局": "县公安局",
    "农业农村局": "县农业农村局",
    "卫健委": "县卫健委",
    "交通运输局": "县交通运输局",
    "生态环境局": "县生态环境局",
    "市场监管局": "县市场监管局",
}
#: steward-set clamping bounds for measures (DP contribution bounding; never taken from the data)
BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("residents", "age"): (0, 110),
    ("residents", "income"): (0, 300_000),
    ("households", "household_size"): (1, 12),
    ("towns", "population"): (0, 200_000),
    ("enterprises", "employees"): (0, 2_000),
    ("enterprises", "revenue"): (0, 100_000),
    ("farmland_plots", "area_mu"): (0, 50),
    ("farmland_plots", "yield_kg_per_mu"): (0, 3_000),
    ("elderly_care_records", "duration_min"): (0, 240),
    ("elderly_care_records", "cost_yuan"): (0, 500),
    ("traffic_counts", "vehicles"): (0, 5_000),
    ("traffic_counts", "avg_speed_kmh"): (0, 120),
    ("air_quality", "pm25"): (0, 500),
    ("air_quality", "pm10"): (0, 600),
    ("air_quality", "no2"): (0, 400),
    ("air_quality", "o3"): (0, 400),
    ("air_quality", "aqi"): (0, 500),
}
MAX_ROWS_PER_UNIT = {"elderly_care_records": 20, "farmland_plots": 10}


def load_catalog(lab: Lab, seed_dir: Path, steward: Principal, progress: Callable[[str], None]) -> None:
    manifest = json.loads((seed_dir / "manifest.json").read_text(encoding="utf-8"))
    files = {d["name"]: d for d in manifest["datasets"] if d["name"] not in SKIP}
    with lab.tx() as s:
        orgs = {o.name: o.id for o in s.execute(select(Org)).scalars()}
        for dept in {d["department"] for d in files.values()}:
            full = DEPARTMENT_ORG.get(dept, "县" + dept)
            if full not in orgs:
                orgs[full] = ids.create_org(s, SYSTEM, name=full, kind="department").id
    for spec in files.values():
        progress(f"ingesting {spec['name']} ({spec['rows']:,} rows) / 导入 {spec['title_zh']}")
        _load_one(
            lab, seed_dir, spec, orgs[DEPARTMENT_ORG.get(spec["department"], "县" + spec["department"])]
        )
    _key_sets(lab, files, seed_dir)
    for spec in files.values():
        with lab.tx() as s:
            dataset_id = catalog.get_by_name(s, spec["name"]).id
        lab.ingestion.reanalyse(SYSTEM, dataset_id)  # now with key sets and joins: realistic dummy data
        _steward_metadata(lab, spec, steward)


def _load_one(lab: Lab, seed_dir: Path, spec: dict[str, Any], org_id: int) -> None:
    with lab.tx() as s:
        ds = catalog.create_dataset(
            s,
            SYSTEM,
            name=spec["name"],
            title=spec["title_zh"],
            org_id=org_id,
            description=spec.get("description_zh", ""),
            contact=f"{spec['department']}信息科",
            update_frequency=spec.get("update_frequency", "static"),
            privacy_unit=spec["privacy_unit"],
            privacy_unit_column=spec.get("privacy_unit_column"),
            tags=spec.get("tags", []),
            key_columns=spec.get("primary_key") or [],
        )
        ds.dp_max_rows_per_unit = MAX_ROWS_PER_UNIT.get(spec["name"], 1)
        dataset_id = ds.id
    types = {c["name"]: c["type"] for c in spec["columns"]}
    lab.ingestion.ingest_file(
        SYSTEM,
        dataset_id,
        seed_dir / spec["file"],
        mode="replace",
        schema_override=types,
        note="演示县初始数据 / demo county seed",
        source="upload",
    )
    with lab.tx() as s:
        for col in s.execute(select(DatasetColumn).where(DatasetColumn.dataset_id == dataset_id)).scalars():
            meta = next((c for c in spec["columns"] if c["name"] == col.name), None)
            if meta is None:
                continue
            col.title = meta.get("title_zh", "")
            semantic = meta.get("semantic") or ""
            if semantic.startswith("foreign_key:"):
                col.joinable_to = [semantic.split(":", 1)[1]]
                semantic = "category"
            col.semantic = semantic if semantic in SEMANTICS else col.semantic


def _key_sets(lab: Lab, files: dict[str, dict[str, Any]], seed_dir: Path) -> None:
    import pyarrow.csv as pacsv

    with lab.tx() as s:
        for spec in files.values():
            for ks in spec.get("key_sets") or []:
                name = ks["source"] or f"{spec['name']}.{ks['column']}"
                values = ks.get("values")
                if values is None and ks["source"]:
                    src, column = ks["source"].split(".")
                    table = pacsv.read_csv(
                        seed_dir / files[src]["file"],
                        convert_options=pacsv.ConvertOptions(column_types={column: "string"}),
                    )
                    values = sorted(set(table.column(column).to_pylist()))
                catalog.upsert_key_set(
                    s,
                    SYSTEM,
                    name=name,
                    title=name,
                    values=values or [],
                    source=ks["source"],
                    labels=_key_labels(seed_dir, files, ks["source"]),
                )
                ds = catalog.get_by_name(s, spec["name"])
                for col in catalog.columns(s, ds.id):
                    if col.name == ks["column"]:
                        col.key_set = name


def _key_labels(seed_dir: Path, files: dict[str, dict[str, Any]], source: str | None) -> dict[str, str]:
    """Names of a key set's codes from its source table: ``towns.town_code`` → ``town_name``.

    Public metadata (the county's own town and village names), so an answer can show 城关镇
    beside 330729001 at no privacy cost."""
    import pyarrow.csv as pacsv

    if not source or not source.endswith("_code"):
        return {}
    src, column = source.split(".")
    name_column = column.removesuffix("_code") + "_name"
    if src not in files or name_column not in {c["name"] for c in files[src]["columns"]}:
        return {}
    table = pacsv.read_csv(
        seed_dir / files[src]["file"],
        convert_options=pacsv.ConvertOptions(
            column_types={column: "string", name_column: "string"}, include_columns=[column, name_column]
        ),
    )
    codes, names = table.column(column).to_pylist(), table.column(name_column).to_pylist()
    return {str(c): str(n) for c, n in zip(codes, names, strict=True) if c is not None and n is not None}


def _steward_metadata(lab: Lab, spec: dict[str, Any], steward: Principal) -> None:
    """The security officer sets bounds and confirms the manifest's grade (as they would by hand)."""
    with lab.tx() as s:
        ds = catalog.get_by_name(s, spec["name"])
        for col in catalog.columns(s, ds.id):
            bounds = BOUNDS.get((spec["name"], col.name))
            if bounds:
                catalog.set_column(s, steward, ds.id, col.name, lower=bounds[0], upper=bounds[1])
        target = spec["suggested_grade"]
        from countylab.catalog.grading import Grade

        reason = ds.grade_reason
        if Grade(target).rank < Grade(ds.grade).rank:
            reason = f"演示县：按部门目录定级为{Grade(target).label_zh}（数据安全官复核）"
        catalog.set_grade(s, steward, ds.id, target, reason)
        ds.dummy_profile_approved = True


def steward_principal(lab: Lab, username: str = "steward") -> Principal:
    with lab.tx() as s:
        user = s.execute(select(User).where(User.username == username)).scalar_one()
        return ids.principal_for(s, user, "system")


class LiveFeeds:
    """Pushes the next hour of traffic counts and air-quality readings every ``period_s`` seconds.

    It pushes as :func:`~countylab.catalog.push_summary.feed_principal`, so the pushes are audited
    as one ``dataset.push_summary`` per dataset per ``push_summary_period_s``
    (see ``catalog/push_summary.py``), not one event each.
    """

    def __init__(self, lab: Lab, period_s: float = 5.0, compact_every: int | None = None) -> None:
        self.lab, self.period_s = lab, period_s
        self.compact_every = compact_every or max(1, round(600 / period_s))  # pushes between folds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start pushing; first summarise what a killed earlier run pushed but never summarised."""
        from countylab.catalog.push_summary import recover_unsummarised

        summaries = self.lab.ingestion.committer.summaries
        with self.lab.tx() as s:
            for name in ("traffic_counts", "air_quality"):
                recover_unsummarised(s, catalog.get_by_name(s, name).id, period_s=summaries.period_s)
        self._thread = threading.Thread(target=self._run, name="countylab-demo-feeds", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop pushing and audit the open period's pushes now (nothing waits for the next push)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.lab.ingestion.committer.flush_summaries()

    def _run(self) -> None:
        from countylab.catalog.push_summary import feed_principal
        from countylab.demo import feeds

        junctions, stations = feeds.make_junctions(20261126), feeds.make_stations(20261126)
        feed = feed_principal()  # audited as one summary per dataset per period
        with self.lab.tx() as s:
            traffic = catalog.get_by_name(s, "traffic_counts").id
            air = catalog.get_by_name(s, "air_quality").id
        hour = datetime.now().replace(minute=0, second=0, microsecond=0)
        pushes = 0
        while not self._stop.wait(self.period_s):
            hour += timedelta(hours=1)
            key = hour.strftime("%Y%m%d%H")
            for dataset_id, rows in (
                (traffic, feeds.traffic_batch(int(key), hour, junctions)),
                (air, feeds.air_quality_batch(int(key), hour, stations)),
            ):
                payload = [
                    {k: (v.isoformat(sep=" ") if isinstance(v, datetime) else v) for k, v in r.items()}
                    for r in rows
                ]
                try:
                    self.lab.ingestion.push(feed, dataset_id, payload, f"demo-feed-{key}")
                except Exception:  # noqa: BLE001 - a feed hiccup must not stop the demo
                    log.warning("demo feed push failed", exc_info=True)
            pushes += 1
            if pushes % self.compact_every == 0:
                # folding the stream into a version is housekeeping, audited as one
                # dataset.version.push per dataset; every 6 pushes it crowded the audit log
                # (94 events in 25 minutes), so the demo folds about every 10 minutes
                self.lab.ingestion.compact_all(SYSTEM, min_files=self.compact_every)
