"""Approved dummy profiles of every demo dataset, built the way the lab builds them.

The tiny demo county is written to a temporary folder, each CSV becomes Parquet with the
manifest's column types, the public key sets (with labels) are formed as the demo loader forms
them, and :func:`countylab.catalog.analysis.analyse` proposes each dataset's profile, so the tests
exercise the same profiling path as an upload, without a server or database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from countylab.catalog.analysis import KeySetInfo, analyse
from countylab.demo.generator import generate_county
from countylab.dummy import SEMANTICS, DatasetProfile
from countylab.dummy.profile import arrow_type

_NAME_COLUMN = {"towns.town_code": "town_name", "villages.village_code": "village_name"}


@dataclass(frozen=True)
class DemoCounty:
    profiles: dict[str, DatasetProfile]
    tables: dict[str, pa.Table]
    key_sets: dict[str, KeySetInfo]
    county_code: str
    county_name: str
    as_of: str


def build(out: Path, size: str = "tiny") -> DemoCounty:
    generate_county(out, size=size)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    specs = {d["name"]: d for d in manifest["datasets"] if d["name"] != "enterprises_gbk"}
    tables: dict[str, pa.Table] = {}
    for name, spec in specs.items():
        types = {c["name"]: arrow_type(c["type"]) for c in spec["columns"]}
        table = pacsv.read_csv(out / spec["file"], convert_options=pacsv.ConvertOptions(column_types=types))
        tables[name] = table
        pq.write_table(table, out / f"{name}.parquet")
    key_sets: dict[str, KeySetInfo] = {}
    for name, spec in specs.items():
        for ks in spec.get("key_sets") or []:
            set_name = ks["source"] or f"{name}.{ks['column']}"
            if ks["source"]:
                src, column = ks["source"].split(".")
                codes = [str(v) for v in tables[src].column(column).to_pylist()]
                label_col = _NAME_COLUMN.get(ks["source"])
                names = tables[src].column(label_col).to_pylist() if label_col else codes
                labels = dict(zip(codes, [str(n) for n in names], strict=True)) if label_col else {}
                key_sets[set_name] = KeySetInfo(sorted(set(codes)), labels)
            else:
                key_sets[set_name] = KeySetInfo([str(v) for v in ks["values"]], {})
    profiles: dict[str, DatasetProfile] = {}
    for name, spec in specs.items():
        semantics: dict[str, str] = {}
        foreign: dict[str, str] = {}
        for col in spec["columns"]:
            semantic = col["semantic"]
            if semantic.startswith("foreign_key:"):
                foreign[col["name"]] = semantic.split(":", 1)[1]
                semantic = "category"
            if semantic in SEMANTICS:  # as the demo loader keeps only the lab's vocabulary
                semantics[col["name"]] = semantic
        column_sets = {
            ks["column"]: key_sets[ks["source"] or f"{name}.{ks['column']}"]
            for ks in spec.get("key_sets") or []
        }
        result = analyse(
            [out / f"{name}.parquet"],
            name=name,
            privacy_unit=spec["privacy_unit"],
            privacy_unit_column=spec.get("privacy_unit_column"),
            row_count=tables[name].num_rows,
            tags=spec.get("tags", []),
            department=spec["department"],
            semantics=semantics,
            key_sets={c: ks.values for c, ks in column_sets.items()},
            key_set_labels={c: ks.labels for c, ks in column_sets.items() if ks.labels},
            catalog_key_sets=list(key_sets.values()),
            primary_key=spec.get("primary_key") or None,
            foreign_keys=foreign,
        )
        profiles[name] = result.dummy
    return DemoCounty(
        profiles, tables, key_sets, manifest["county_code"], manifest["county_name"], manifest["as_of"]
    )
