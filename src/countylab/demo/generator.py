"""Generate the demo county 青禾县: seed files for every department plus ``manifest.json``.

Same seed and size give byte-identical files (each table has its own random stream, CSVs are
written by Arrow with fixed formatting), so a manifest checksum identifies a demo county and
tests can pin it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from countylab.demo import feeds, names
from countylab.demo.care import care_table
from countylab.demo.catalog import CATALOG, DatasetMeta, meta
from countylab.demo.economy import enterprises_table, farmland_table
from countylab.demo.geography import Geography, build_geography
from countylab.demo.households import build_households
from countylab.demo.manifest import ColumnSpec, DatasetSpec, Manifest
from countylab.demo.people import households_table, residents_table
from countylab.demo.sampling import rng_for
from countylab.errors import BugError, UserError

SIZES = {"tiny": 1 / 150, "small": 0.1, "full": 1.0}
DEFAULT_AS_OF = date(2026, 10, 31)
GENERATOR_VERSION = "1"
_GBK_NOTE = "与 enterprises 内容相同，按中文版 Excel 的 GBK 编码导出。"
# rows at full size (residents follow from households: about 2.7 people each)
FULL = {"households": 110_000, "enterprises": 20_000, "plots": 20_000, "care": 60_000, "days": 30}

_TYPES = {
    pa.int64(): "int64",
    pa.float64(): "float64",
    pa.string(): "string",
    pa.date32(): "date",
    pa.timestamp("s"): "timestamp",
    pa.bool_(): "bool",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _csv_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(quoting_style="needed", batch_size=65536))
    return buf.getvalue()


def _spec(m: DatasetMeta, table: pa.Table, path: Path, encoding: str) -> DatasetSpec:
    if table.column_names != [c[0] for c in m.columns]:
        raise BugError(
            "演示数据列与目录不一致",
            "demo table columns differ from the catalog",
            dataset=m.name,
            columns=table.column_names,
        )
    columns = [
        ColumnSpec(name=c, type=_TYPES[table.schema.field(c).type], title_zh=t, semantic=s)
        for c, t, s in m.columns
    ]
    return DatasetSpec(
        name=m.name,
        file=path.name,
        format="csv",
        encoding=encoding,
        title_zh=m.title_zh,
        title_en=m.title_en,
        description_zh=m.description_zh,
        department=m.department[0],
        department_en=m.department[1],
        rows=table.num_rows,
        sha256=_sha256(path),
        columns=columns,
        privacy_unit=m.privacy_unit,
        privacy_unit_column=m.privacy_unit_column,
        suggested_grade=m.suggested_grade,
        update_frequency=m.update_frequency,
        primary_key=list(m.primary_key),
        key_sets=list(m.key_sets),
        tags=list(m.tags),
    )


def _geo_tables(geo: Geography, residents: pa.Table) -> tuple[pa.Table, pa.Table]:
    counts = pc.value_counts(residents.column("town_code")).to_pylist() if residents.num_rows else []
    per_town = {c["values"]: c["counts"] for c in counts}
    towns = pa.table(
        {
            "town_code": pa.array(geo.town_code),
            "town_name": pa.array(geo.town_name),
            "type": pa.array(geo.town_type),
            "terrain": pa.array(geo.terrain),
            "population": pa.array([per_town.get(c, 0) for c in geo.town_code], pa.int64()),
        }
    )
    villages = pa.table(
        {
            "village_code": pa.array(geo.village_code),
            "village_name": pa.array(geo.village_name),
            "town_code": pa.array(geo.town_code).take(pa.array(geo.village_town)),
            "type": pa.array(geo.village_type),
        }
    )
    return towns, villages


def resolve_scale(size: str, scale: float | None) -> float:
    """The scale factor for a named size, or an explicit ``scale`` (which wins)."""
    if scale is not None:
        if not 0 < scale <= 2:
            raise UserError("scale 须在 (0, 2] 之间", "scale must be in (0, 2]", reason="scale", value=scale)
        return float(scale)
    if size not in SIZES:
        raise UserError(f"未知规模：{size}", f"unknown size: {size}", reason="size", allowed=list(SIZES))
    return SIZES[size]


def generate_county(
    out_dir: Path,
    *,
    seed: int = 20261126,
    size: str = "full",
    scale: float | None = None,
    as_of: date = DEFAULT_AS_OF,
) -> Manifest:
    """Write the demo county's seed files and ``manifest.json`` into ``out_dir`` (created)."""
    factor = resolve_scale(size, scale)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def n(key: str) -> int:
        return max(1, round(FULL[key] * factor))

    geo = build_geography(rng_for(seed, "geography"))
    hh = build_households(rng_for(seed, "households"), geo, n("households"))
    households = households_table(geo, hh, rng_for(seed, "addresses"))
    residents = residents_table(geo, hh, households.column("address"), as_of, rng_for(seed, "residents"))
    towns, villages = _geo_tables(geo, residents)
    enterprises = enterprises_table(geo, residents, n("enterprises"), as_of, rng_for(seed, "enterprises"))
    plots = farmland_table(geo, households, n("plots"), as_of, rng_for(seed, "farmland"))
    care = care_table(geo, residents, n("care"), as_of, rng_for(seed, "care"))
    end = datetime.combine(as_of + timedelta(days=1), time())
    hours = feeds.history_hours(end, n("days"))
    traffic = feeds.traffic_table(rng_for(seed, "traffic"), hours, feeds.make_junctions(seed))
    air = feeds.air_quality_table(rng_for(seed, "air"), hours, feeds.make_stations(seed))

    tables = {
        "towns": towns,
        "villages": villages,
        "households": households,
        "residents": residents,
        "enterprises": enterprises,
        "farmland_plots": plots,
        "elderly_care_records": care,
        "traffic_counts": traffic,
        "air_quality": air,
    }
    specs: list[DatasetSpec] = []
    for m in CATALOG:
        data = _csv_bytes(tables[m.name])
        path = out_dir / f"{m.name}.csv"
        path.write_bytes(data)
        specs.append(_spec(m, tables[m.name], path, "utf-8"))
        if m.name == "enterprises":
            gbk_path = out_dir / "enterprises_gbk.csv"
            gbk_path.write_bytes(data.decode("utf-8").encode("gbk"))
            gbk = _spec(meta("enterprises"), enterprises, gbk_path, "gbk")
            specs.append(
                replace(
                    gbk,
                    name="enterprises_gbk",
                    title_zh=gbk.title_zh + "（GBK导出）",
                    title_en=gbk.title_en + " (GBK export)",
                    description_zh=gbk.description_zh + _GBK_NOTE,
                    tags=[*gbk.tags, "GBK"],
                )
            )
    manifest = Manifest(
        county_name=names.COUNTY_NAME,
        county_code=names.COUNTY_CODE,
        seed=seed,
        size=size if scale is None else "custom",
        scale=factor,
        as_of=as_of.isoformat(),
        generator_version=GENERATOR_VERSION,
        datasets=specs,
    )
    (out_dir / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return manifest


__all__ = ["SIZES", "generate_county", "resolve_scale"]
