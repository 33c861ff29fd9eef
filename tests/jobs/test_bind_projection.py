"""A dataset approved for some columns is bound for jobs as files holding only those columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from countylab.jobs.granted import bind_folder, bind_projection

APPROVED = frozenset({"town_code", "AGE"})  # the catalog's spelling may differ in case


def _parts(tmp_path: Path) -> list[Path]:
    files = []
    for i in range(2):
        frame = pd.DataFrame(
            {
                "resident_id": [f"R{i}{n}" for n in range(50)],
                "income": [1000 + n for n in range(50)],
                "town_code": ["T01"] * 50,
                "age": list(range(50)),
            }
        )
        path = tmp_path / f"part-{i}.parquet"
        frame.to_parquet(path)  # pandas writes metadata naming every column
        files.append(path)
    assert b"income" in files[0].read_bytes()
    return files


def test_only_the_approved_columns_and_every_row_are_bound(tmp_path: Path) -> None:
    files = _parts(tmp_path)
    folder = bind_projection(tmp_path / "bind", "residents", 3, files, APPROVED)
    bound = sorted(folder.glob("*.parquet"))
    assert len(bound) == 2
    for f in bound:
        assert pq.ParquetFile(f).schema_arrow.names == ["town_code", "age"]
        raw = f.read_bytes()
        assert b"income" not in raw and b"resident_id" not in raw  # not even in the schema metadata
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in bound) == 100
    assert pq.read_table(bound[0]).column("age").to_pylist() == list(range(50))


def test_built_once_per_version_and_column_set_and_apart_from_the_whole_folder(tmp_path: Path) -> None:
    files = _parts(tmp_path)
    root = tmp_path / "bind"
    first = bind_projection(root, "residents", 3, files, APPROVED)
    assert bind_projection(root, "residents", 3, files, frozenset({"age", "town_code"})) == first
    assert bind_projection(root, "residents", 3, files, frozenset({"age"})) != first
    whole = bind_folder(root, "residents", 3, files)
    assert whole != first and "income" in pq.ParquetFile(next(whole.glob("*.parquet"))).schema_arrow.names
    assert not list((root / "residents").glob(".tmp-*"))  # no staging left behind
