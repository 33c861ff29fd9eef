"""What a DP (or SDC) query returns to the caller."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from countylab.errors import UserError

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


class QueryFailed(UserError):
    """Anything that went wrong while a charged query ran: one type, one fixed message.

    Why one: an error raised while the data is read can depend on the data (a timeout, memory,
    an engine error).  Its kind, message and details would then describe the rows, so every
    such failure is reported the same way, with nothing in it that came from the data.  The
    original exception is kept as ``__cause__`` for the server log, never for the analyst.
    """

    code = "query_failed"

    def __init__(self) -> None:
        super().__init__(
            "查询执行失败（已计入隐私预算）。失败原因不会显示，因为它可能与数据有关。",
            "the query failed while it ran (the privacy budget was charged). The reason is not "
            "shown because it could depend on the data.",
        )
