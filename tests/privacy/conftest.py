"""Real Parquet files in tmp_path and engines over them (in-process runner, no time padding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from countylab.privacy.engine import DPEngine
from countylab.privacy.spec import ColumnKind, ColumnPolicy, EngineSettings, SandboxLimits, TableSpec

TOWNS = ("城关镇", "东关镇", "西河乡", "南山乡", "北坡乡")


def make_residents(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "pid": np.arange(n, dtype=np.int64),
            "id_number": [f"3301{i:014d}" for i in range(n)],
            "town": rng.choice(TOWNS[:4], n),  # 北坡乡 is a public key with no rows
            "village": rng.choice([f"v{i}" for i in range(3)], n),
            "income": np.round(rng.lognormal(10, 0.8, n), 2),
            "age": rng.integers(0, 100, n),
            "hid": rng.integers(0, n // 3, n),
        }
    )
    df.loc[0, "village"] = "rare"  # one resident alone in a village: the rare-key probe
    df.loc[1, "income"] = 9_000_000.0  # an outlier far above the steward's bound
    return df


def residents_spec(path: Path, version: str = "v1", k: int = 1) -> TableSpec:
    return TableSpec(
        name="residents",
        paths=(str(path),),
        privacy_unit="pid",
        max_rows_per_unit=k,
        version=version,
        columns={
            "pid": ColumnPolicy(ColumnKind.IDENTIFIER),
            "id_number": ColumnPolicy(ColumnKind.IDENTIFIER),
            "town": ColumnPolicy(ColumnKind.CATEGORY, public_keys=TOWNS),
            "village": ColumnPolicy(ColumnKind.CATEGORY),
            "income": ColumnPolicy(ColumnKind.NUMERIC, 0.0, 200_000.0),
            "age": ColumnPolicy(ColumnKind.NUMERIC, 0.0, 100.0),
            "hid": ColumnPolicy(ColumnKind.CATEGORY, joinable_to=("households.hid",)),
        },
    )


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dp")
    res = make_residents(3000)
    res.to_parquet(d / "residents.parquet")
    # The same 3000 residents plus one unit with 40 rows: contribution bounding must cut it to k.
    heavy = pd.concat(
        [res, pd.DataFrame({**{c: [res.iloc[5][c]] * 40 for c in res.columns}, "pid": [99_999] * 40})],
        ignore_index=True,
    )
    heavy.to_parquet(d / "heavy.parquet")
    hh = pd.DataFrame({"hid": np.arange(1000), "hsize": np.random.default_rng(1).integers(1, 7, 1000)})
    pd.concat([hh, hh.head(5)]).to_parquet(d / "households.parquet")  # duplicate keys: must be deduplicated
    return d


def households_spec(path: Path) -> TableSpec:
    return TableSpec(
        "households",
        (str(path),),
        None,
        1,
        {
            "hid": ColumnPolicy(ColumnKind.CATEGORY, unique=True),
            "hsize": ColumnPolicy(ColumnKind.NUMERIC, 1.0, 10.0),
        },
        "h1",
    )


def engine_for(
    *specs: TableSpec, bucket: float = 0.0, timeout_s: float = 10.0, max_rows: int = 1000
) -> DPEngine:
    limits = SandboxLimits(memory_limit="512MB", threads=1, timeout_s=timeout_s, max_result_rows=max_rows)
    return DPEngine(list(specs), EngineSettings(limits=limits, time_bucket_s=bucket))


@pytest.fixture(scope="session")
def engine(data_dir: Path) -> DPEngine:
    return engine_for(
        residents_spec(data_dir / "residents.parquet"), households_spec(data_dir / "households.parquet")
    )


@pytest.fixture(scope="session")
def residents_df(data_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "residents.parquet")
