"""Composite primary keys that are unique by construction, however few rows are asked for.

Drawing each key column on its own and redrawing collisions fails when the key space is
barely larger than the row count: ten farmland rows keyed by (plot, year) with two years need
five plots used twice each, and random redraws rarely find that. Here each key column gets a
pool of distinct values (all of a category list; just enough fresh keys otherwise), the pools'
product is at least the row count, and the rows are distinct cells of that product chosen
without replacement, in key order (P000001/2025, P000001/2026, P000002/2025, …).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from countylab.dummy.profile import ColumnProfile
from countylab.errors import ValidationFailed

_SALT_POOL = 300
_MAX_CELLS = 50_000_000

Draw = Callable[[Any, ColumnProfile, int, np.random.Generator, dict[str, np.ndarray], bool], np.ndarray]


def unique_key_rows(job: Any, draw: Draw) -> dict[str, np.ndarray]:
    """Values of every primary-key column for ``job.rows`` rows, no two rows alike.

    Returns ``{}`` when a pool cannot be formed (the caller then redraws collisions instead).
    """
    profile, n = job.profile, job.rows
    key_columns = [profile.column(name) for name in profile.primary_key or []]
    fixed: dict[str, np.ndarray] = {}
    for col in key_columns:
        if col.categories and col.weights_by_age is None:
            fixed[col.name] = np.unique(_category_pool(col))
    open_columns = [c for c in key_columns if c.name not in fixed]
    known = math.prod(len(v) for v in fixed.values()) if fixed else 1
    needed = max(1, math.ceil(n / known))
    pools: dict[str, np.ndarray] = dict(fixed)
    for i, col in enumerate(open_columns):
        remaining = len(open_columns) - i
        size = max(1, math.ceil(needed ** (1 / remaining)))
        try:
            pool = draw(job, col, size, job.rng(col.name, _SALT_POOL), {}, True)
        except ValidationFailed:
            return {}
        pools[col.name] = np.sort(pool)
        needed = max(1, math.ceil(needed / size))
    sizes = [len(pools[c.name]) for c in key_columns]
    cells = math.prod(sizes)
    if cells < n or cells > _MAX_CELLS:
        return {}
    chosen = np.sort(job.rng("__primary_key__", _SALT_POOL).choice(cells, size=n, replace=False))
    out: dict[str, np.ndarray] = {}
    for col, size in zip(reversed(key_columns), reversed(sizes), strict=True):
        out[col.name] = pools[col.name][chosen % size]
        chosen = chosen // size
    return out


def _category_pool(col: ColumnProfile) -> np.ndarray:
    from countylab.dummy.columns import category_choices

    return category_choices(col)
