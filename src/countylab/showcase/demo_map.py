"""Demo step: the synthetic boundaries of 青禾县 and where its feeds' stations and junctions stand.

Stored through the same functions an import uses (checked against the county's key sets,
permission-checked as the operator, audited), so the demo map is exactly what a county that
imported these files would have.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select

from countylab.demo.boundaries import synthetic_map
from countylab.identity import service as ids
from countylab.showcase.boundaries_import import (
    GoodFeature,
    RawFeature,
    check_features,
    store_boundaries,
    store_points,
)
from countylab.showcase.maps import known_codes
from countylab.storage.models import User

if TYPE_CHECKING:
    from countylab.demo_steps import DemoContext
    from countylab.lab import Lab

DEFAULT_SEED = 20261126


def _seed(lab: Lab) -> int:
    manifest = lab.settings.seed_dir / "manifest.json"
    if manifest.exists():
        return int(json.loads(manifest.read_text(encoding="utf-8")).get("seed", DEFAULT_SEED))
    return DEFAULT_SEED


def seed_boundaries(lab: Lab, ctx: DemoContext, progress: Callable[[str], None]) -> None:
    progress("drawing the county map / 生成县域地图边界")
    county = synthetic_map(_seed(lab))
    user_id = ctx.users.get("operator") or ctx.users["admin"]
    with lab.tx() as s:
        actor = ids.principal_for(s, s.execute(select(User).where(User.id == user_id)).scalar_one(), "system")
        for level, collection in (("town", county.towns), ("village", county.villages)):
            known = known_codes(s, level)
            raw = [
                RawFeature(i, dict(f["properties"]), f["geometry"])
                for i, f in enumerate(collection["features"], start=1)
            ]
            good: list[GoodFeature] = check_features(raw, level=level, known=known)
            store_boundaries(
                s,
                actor,
                level=level,
                features=good,
                source="demo",
                filename=f"synthetic-{level}.geojson",
                sha256=hashlib.sha256(json.dumps(collection, sort_keys=True).encode()).hexdigest(),
                code_property="code",
                known=known,
            )
        for layer, pts in county.points.items():
            store_points(s, actor, layer=layer, points=pts, source="demo")
