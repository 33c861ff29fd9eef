"""``bench/dp_query.py --quick`` runs end to end and reports every figure issue 9 asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_benchmark_reports_like_for_like_figures(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dp_query.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,  # a spill into the working directory would show up here
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in (
        "dp_vs_raw_duckdb",
        "dp_vs_raw_duckdb_padded",
        "dp_vs_raw_parquet",
        "prepare_vs_duckdb_copy",
        "worker_peak_mb",
        "append",
        "growth",
        "rows_100m_ok",
        "speedup_vs_smartnoise",
        "speedup_vs_opendp_polars",
        "mre_ratio_vs_smartnoise",
    ):
        assert key in out, key
    size = out["sizes"]["20000"]
    assert size["raw_same_layout_ms"] > 0 and size["dp_ms"] > 0 and size["prepare_s"] > 0
    assert size["append_ms"] > 0 and size["append_rows"] == 100
    assert size["spilled_outside_data_dir"] is False
    assert 0 < size["worker_peak_mb"] < 2000
    assert out["mre"] < 1.0  # the noisy answers are answers, not garbage
    assert not (tmp_path / ".tmp").exists()
