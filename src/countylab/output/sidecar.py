"""The metadata sidecar the output library writes next to every output, and the lab reads.

One JSON file per output, named ``<output>.countylab.json``.  It says what the lab cannot
learn from the output itself: which column holds group keys, which holds unit counts, which
holds sums (whose dominance must be checked) and which holds other statistics; and for every
cell the number of contributing units and the largest absolute contributions.

The sidecar is written by the job, so the lab treats it as a claim: it checks the claim
against the output (same SHA-256, same rows and keys, counts that are non-negative integers
equal to the printed ones, margins that add up) and never lets it loosen a rule.  A sidecar
that does not fit makes the output free-form, read whole by a checker.  The sidecar itself
is never released (the top contributions are individual values).

This module is pure standard library: it runs inside the job sandbox and in the lab.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

FORMAT = "countylab.output/1"
SUFFIX = ".countylab.json"
KINDS = ("crosstab", "pivot_table", "describe", "regression", "model_summary", "chart", "metrics")
TOTAL_LABEL = "合计"
TOP_KEPT = 5  # largest contributions kept per cell: enough for p% and (n, k) with n ≤ 5


def sidecar_name(output_name: str) -> str:
    return output_name + SUFFIX


def is_sidecar(name: str) -> bool:
    return name.endswith(SUFFIX)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fmt(value: Any) -> str:
    """How the library writes one value into a CSV cell (and how the lab re-derives it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}" if abs(value) >= 1e6 or abs(value) < 1e-3 else f"{round(value, 4)}"
    text = str(value)
    if hasattr(value, "item"):  # numpy scalars
        return fmt(value.item())
    return text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Deterministic CSV (UTF-8, ``\\n``, minimal quoting), so the lab can re-derive it."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([str(h) for h in header])
    for row in rows:
        writer.writerow([fmt(v) for v in row])
    return buf.getvalue().encode("utf-8")


def cell_entry(contributions: Sequence[float]) -> dict[str, Any]:
    """``n`` units, ``total`` of |contribution| and the ``top`` largest |contributions|."""
    mags = sorted((abs(float(c)) for c in contributions if not math.isnan(float(c))), reverse=True)
    return {"n": len(mags), "total": float(sum(mags)), "top": [float(m) for m in mags[:TOP_KEPT]]}


def table_sidecar(
    *,
    kind: str,
    file: str,
    data: bytes,
    group_columns: Sequence[str],
    count_columns: Sequence[str] = (),
    magnitude_columns: Sequence[str] = (),
    statistic_columns: Sequence[str] = (),
    rows: Sequence[dict[str, Any]],
    n_obs: int,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "kind": kind,
        "file": file,
        "sha256": sha256(data),
        "group_columns": list(group_columns),
        "count_columns": list(count_columns),
        "magnitude_columns": list(magnitude_columns),
        "statistic_columns": list(statistic_columns),
        "rows": list(rows),
        "n_obs": int(n_obs),
        **extra,
    }
