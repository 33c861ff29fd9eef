"""What a DP (or SDC) query returns to the caller."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

Interval = tuple[float, float] | None


@dataclass(frozen=True)
class DPResult:
    """Released rows, a confidence interval per noisy cell, and what the answer cost.

    ``intervals[r][c]`` is the (lower, upper) 95% interval of cell (r, c) from the noise
    distribution, or ``None`` for group keys, exact SDC cells and quantiles.  ``suppressed``
    lists cells withheld by SDC rules with the reason; DP partition selection hides rare keys
    silently (naming them would reveal them).
    """

    columns: list[str]
    rows: list[tuple[Any, ...]]
    intervals: list[tuple[Interval, ...]]
    epsilon_spent: float
    delta_spent: float
    suppressed: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""

    def to_dataframe(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.columns)

    def to_json(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v if isinstance(v, int | float | str | bool) or v is None else str(v)

        return {
            "columns": list(self.columns),
            "rows": [[clean(v) for v in r] for r in self.rows],
            "intervals": [[list(i) if i is not None else None for i in r] for r in self.intervals],
            "epsilon_spent": self.epsilon_spent,
            "delta_spent": self.delta_spent,
            "suppressed": list(self.suppressed),
            "notes": list(self.notes),
            "fingerprint": self.fingerprint,
        }
