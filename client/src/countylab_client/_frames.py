"""Turn query answers into pandas DataFrames, importing pandas only when asked.

The SDK must stay usable (and cheap to import) with httpx alone, so pandas is an optional
extra.  ``require_pandas`` is called *before* a query is sent: a missing pandas must not cost
the analyst privacy budget for an answer they then cannot see.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ._models import QueryResult

INSTALL_HINT = "pip install 'countylab-client[pandas]'"


def require_pandas() -> ModuleType:
    """Import pandas or raise an ImportError that says how to install it."""
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            f"此方法返回 pandas DataFrame，但未安装 pandas。请运行：{INSTALL_HINT} / "
            f"This method returns a pandas DataFrame but pandas is not installed. Run: {INSTALL_HINT}",
            name="pandas",
        ) from exc


def frame_column_names(result: QueryResult) -> list[str]:
    """Result columns, each noisy column followed by ``<col>_ci_low`` and ``<col>_ci_high``.

    Intervals for a column the result does not list are appended at the end rather than
    dropped, so no information the server sent is lost.
    """
    names: list[str] = []
    for col in result.columns:
        names.append(col)
        if col in result.intervals:
            names += [f"{col}_ci_low", f"{col}_ci_high"]
    for col in result.intervals:
        if col not in result.columns:
            names += [f"{col}_ci_low", f"{col}_ci_high"]
    return names


def _frame_rows(result: QueryResult) -> list[list[Any]]:
    extra = [c for c in result.intervals if c not in result.columns]
    out: list[list[Any]] = []
    for i, row in enumerate(result.rows):
        values: list[Any] = []
        for col, value in zip(result.columns, row, strict=True):
            values.append(value)
            if col in result.intervals:
                values += _bounds(result, col, i)
        for col in extra:
            values += _bounds(result, col, i)
        out.append(values)
    return out


def _bounds(result: QueryResult, col: str, i: int) -> list[float | None]:
    pair = result.intervals[col][i]
    return [None, None] if pair is None else [pair[0], pair[1]]


def to_dataframe(result: QueryResult) -> pd.DataFrame:
    """Build the DataFrame; query metadata goes into ``df.attrs`` so it travels with the data."""
    pandas = require_pandas()
    frame = pandas.DataFrame(_frame_rows(result), columns=frame_column_names(result))
    frame.attrs.update(
        {
            "epsilon_spent": result.epsilon_spent,
            "cached": result.cached,
            "budget_remaining": result.budget_remaining,
            "notes": list(result.notes),
        }
    )
    return frame
