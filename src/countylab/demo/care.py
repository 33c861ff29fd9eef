"""Home-based elderly care service records (居家养老服务记录, 民政局).

Only residents aged 60 or over receive services; those living alone and the very old are far
more likely to, and meal delivery (助餐) is by far the most frequent service — so the table
carries the skew a care-planning scenario expects to find.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from countylab.demo.geography import Geography
from countylab.demo.sampling import choice_by_group, join, prefixed_ids, take

SERVICE_TYPES = ("助餐", "助浴", "助洁", "助医", "助行", "探访", "康复护理")
_TYPE_P = np.array(
    [  # by age band 60-69, 70-79, 80+
        [0.50, 0.05, 0.15, 0.08, 0.04, 0.15, 0.03],
        [0.45, 0.08, 0.15, 0.11, 0.05, 0.11, 0.05],
        [0.38, 0.12, 0.14, 0.14, 0.06, 0.08, 0.08],
    ]
)
_DURATION = ((15, 30), (45, 90), (60, 120), (60, 180), (30, 90), (20, 60), (30, 60))  # minutes
_COST_PER_HOUR = (0.0, 50.0, 40.0, 45.0, 40.0, 0.0, 80.0)
_MEAL_COST = (10.0, 15.0)
WINDOW_DAYS = 92
COUNTY_PROVIDER = "青禾县颐康居家养老服务有限公司"


def care_table(
    geo: Geography, residents: pa.Table, target_rows: int, as_of: date, rng: np.random.Generator
) -> pa.Table:
    """About ``target_rows`` service records over the ``WINDOW_DAYS`` days ending on ``as_of``."""
    age = residents.column("age").to_numpy()
    alone = residents.column("lives_alone").to_numpy()
    elderly = np.flatnonzero(age >= 60)
    a = age[elderly]
    p_user = np.clip(0.12 + 0.20 * alone[elderly] + 0.25 * (a >= 80), 0, 0.9)
    user = elderly[rng.random(len(elderly)) < p_user]
    intensity = rng.gamma(1.5, 1.0, len(user)) * (1 + alone[user])
    lam = intensity / max(intensity.sum(), 1e-9) * target_rows
    counts = rng.poisson(lam)
    who = np.repeat(user, counts)
    n = len(who)
    band = np.clip((age[who] - 60) // 10, 0, 2)
    stype = choice_by_group(rng, band, _TYPE_P)
    lo = np.array([d[0] for d in _DURATION])[stype]
    hi = np.array([d[1] for d in _DURATION])[stype]
    duration = (np.rint(rng.uniform(lo, hi) / 5) * 5).astype(np.int64)
    cost = np.array(_COST_PER_HOUR)[stype] * duration / 60
    cost = np.where(stype == 0, rng.uniform(*_MEAL_COST, n), cost)
    cost = np.round(cost * 2) / 2

    # fewer visits on Sundays: draw a day, redraw once if it is a Sunday
    start = as_of - timedelta(days=WINDOW_DAYS - 1)
    day = rng.integers(0, WINDOW_DAYS, n)
    weekday = (start.weekday() + day) % 7
    day = np.where((weekday == 6) & (rng.random(n) < 0.6), rng.integers(0, WINDOW_DAYS, n), day)
    service_date = np.datetime64(start, "D") + day.astype("timedelta64[D]")

    village_code = residents.column("village_code").to_numpy(zero_copy_only=False)[who]
    town_idx = np.searchsorted(np.array(geo.town_code), np.array([v[:9] for v in village_code.tolist()]))
    village_idx = np.searchsorted(np.array(geo.village_code), village_code)
    provider_kind = choice_by_group(rng, np.zeros(n, dtype=np.int64), np.array([[0.5, 0.3, 0.2]]))
    town_centre = join(take(geo.town_name, town_idx), "居家养老服务中心")
    village_centre = join(take(geo.village_name, village_idx), "居家养老服务站")
    not_town = pc.if_else(pa.array(provider_kind == 1), pa.scalar(COUNTY_PROVIDER), village_centre)
    provider = pc.if_else(pa.array(provider_kind == 0), town_centre, not_town)

    order = np.lexsort((who, service_date))
    return pa.table(
        {
            "record_id": prefixed_ids("S", n, 8),
            "resident_id": residents.column("resident_id").take(pa.array(who[order])),
            "service_date": pa.array(service_date[order], pa.date32()),
            "service_type": take(SERVICE_TYPES, stype[order]),
            "duration_min": pa.array(duration[order]),
            "provider": provider.take(pa.array(order)),
            "cost_yuan": pa.array(cost[order]),
        }
    )
