"""countylab.output: the output library a job uses to write releasable results.

In the style of ACRO (tables, regressions and charts through one object that records what
each output is), but the checks run in the lab, not in the job: the job is not trusted.
Each output is written with a metadata sidecar (:mod:`countylab.output.sidecar`) that tells
the airlock which column is a count, which are group keys, and each cell's contributors::

    from countylab.output import Outputs

    out = Outputs()                                  # writes to $COUNTYLAB_OUTBOX (/outbox)
    out.crosstab("by_town.csv", df, index="town", columns="lives_alone")
    out.pivot_table("visits.csv", df, index=["age_band"], values="visits", aggfunc="mean")
    out.describe("ages.csv", df, ["age", "income"])
    out.ols("visits_ols.csv", df, y="visits", x=["age", "lives_alone"])
    out.model_summary("importance.csv", {"age": 0.6, "income": 0.4}, n_obs=len(train))
    out.bar_chart("visits.svg", "visits.csv", label="age_band", value="mean_visits")
    out.metrics("metrics.json", {"mae": 0.41}, n_obs=len(test))

Outputs written any other way are free-form: a checker reads them whole, and they are never
released automatically.  The package imports only the standard library, NumPy, pandas,
SciPy and scikit-learn (lazily: the lab imports the chart and sidecar modules without them), so
it runs inside the job sandbox.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from countylab.output import svg
from countylab.output.sidecar import FORMAT, SUFFIX, csv_bytes, sha256, sidecar_name, table_sidecar

__all__ = ["FORMAT", "SUFFIX", "Outputs"]


class Outputs:
    """Writes library outputs (CSV + sidecar, SVG + sidecar, JSON + sidecar) to ``outbox``."""

    def __init__(self, outbox: str | Path | None = None) -> None:
        self.outbox = Path(outbox if outbox is not None else os.environ.get("COUNTYLAB_OUTBOX", "/outbox"))
        self.written: list[str] = []

    def _path(self, name: str) -> Path:
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError("output names are relative paths inside the outbox")
        path = self.outbox / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _write(self, name: str, data: bytes, meta: dict[str, Any]) -> Path:
        path = self._path(name)
        path.write_bytes(data)
        self._path(sidecar_name(name)).write_text(json.dumps(meta, ensure_ascii=False, sort_keys=True))
        self.written.append(name)
        return path

    def _table(self, kind: str, name: str, built: tuple[list[str], list[list[Any]], dict[str, Any]]) -> Path:
        if not name.endswith(".csv"):
            raise ValueError("library tables are written as .csv")
        header, rows, fields = built
        data = csv_bytes(header, rows)
        return self._write(name, data, table_sidecar(kind=kind, file=Path(name).name, data=data, **fields))

    # -- tables -------------------------------------------------------------------------------
    def crosstab(
        self,
        name: str,
        df: Any,
        index: str | Sequence[str],
        columns: str,
        *,
        unit: str | None = None,
        margins: bool = True,
    ) -> Path:
        """Unit counts by ``index`` × the categories of ``columns``, with margins (合计)."""
        from countylab.output import tables

        return self._table("crosstab", name, tables.crosstab(df, index, columns, unit=unit, margins=margins))

    def pivot_table(
        self,
        name: str,
        df: Any,
        index: str | Sequence[str],
        values: str | Sequence[str],
        *,
        aggfunc: str | Sequence[str] = "mean",
        unit: str | None = None,
        count_column: str = "n",
    ) -> Path:
        """Per group: units and aggregates (mean, sum, median, std) of ``values``."""
        from countylab.output import tables

        built = tables.pivot_table(df, index, values, aggfunc=aggfunc, unit=unit, count_column=count_column)
        return self._table("pivot_table", name, built)

    def describe(self, name: str, df: Any, columns: Sequence[str]) -> Path:
        from countylab.output import tables

        return self._table("describe", name, tables.describe(df, columns))

    # -- regressions --------------------------------------------------------------------------
    def ols(self, name: str, df: Any, y: str, x: Sequence[str]) -> Path:
        from countylab.output import models

        return self._table("regression", name, models.ols(df, y, x))

    def logit(self, name: str, df: Any, y: str, x: Sequence[str]) -> Path:
        from countylab.output import models

        return self._table("regression", name, models.logit(df, y, x))

    def model_summary(
        self, name: str, values: Mapping[str, float], *, n_obs: int, label: str = "term", value: str = "value"
    ) -> Path:
        """Model-level statistics (feature importances, coefficients of any model), one row per
        term, each computed on the same ``n_obs`` training units (printed on every row)."""
        header = [label, value, "n_obs"]
        rows = [[str(k), float(v), int(n_obs)] for k, v in values.items()]
        cells = {value: {"n": int(n_obs)}, "n_obs": {"n": int(n_obs)}}
        fields = {
            "group_columns": [label],
            "count_columns": ["n_obs"],
            "statistic_columns": [value],
            "rows": [{"key": [r[0]], "cells": cells} for r in rows],
            "n_obs": int(n_obs),
        }
        return self._table("model_summary", name, (header, rows, fields))

    # -- charts and metrics -------------------------------------------------------------------
    def bar_chart(self, name: str, table: str, *, label: str, value: str, title: str = "") -> Path:
        """A bar chart of one column of a table this session wrote (read back from the file,
        so the chart shows exactly the table's cells)."""
        if table not in self.written:
            raise ValueError("charts are drawn from a table written by this Outputs session")
        if not name.endswith(".svg"):
            raise ValueError("charts are written as .svg")
        reader = csv.reader(io.StringIO((self.outbox / table).read_text("utf-8")))
        header = next(reader)
        body = [r for r in reader if r and r[0] != "合计"]
        li, vi = header.index(label), header.index(value)
        data = svg.bar_chart(title, [r[li] for r in body], [r[vi] for r in body])
        meta = {
            "format": FORMAT,
            "kind": "chart",
            "file": Path(name).name,
            "sha256": sha256(data),
            "source": table,
            "label": label,
            "value": value,
            "title": title,
        }
        return self._write(name, data, meta)

    def metrics(self, name: str, values: Mapping[str, float], *, n_obs: int) -> Path:
        """Model or summary metrics: a flat JSON object of numbers computed on ``n_obs`` units."""
        if not name.endswith(".json"):
            raise ValueError("metrics are written as .json")
        clean: dict[str, float] = {}
        for key, v in values.items():
            number = float(v)
            if not math.isfinite(number) or isinstance(v, bool):
                raise ValueError(f"metric {key!r} is not a finite number")
            clean[str(key)] = round(number, 6)
        data = (json.dumps(clean, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode()
        meta = {
            "format": FORMAT,
            "kind": "metrics",
            "file": Path(name).name,
            "sha256": sha256(data),
            "n_obs": int(n_obs),
        }
        return self._write(name, data, meta)
