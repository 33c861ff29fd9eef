"""Meta-test examples of the county map's state-changing routes (boundary import, API and page).

setup() gives the World a town key set, so that a two-town GeoJSON is a good file."""

from __future__ import annotations

import json
from typing import Any

from countylab.catalog import service as catalog
from countylab.identity.access import SYSTEM
from tests.meta.example import Example

_TOWNS = {"330729001": "禾城街道", "330729101": "双溪镇"}
_GEOJSON = json.dumps(
    {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": code, "name": name},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [119.5 + k / 10, 29.0],
                            [119.6 + k / 10, 29.0],
                            [119.6 + k / 10, 29.1],
                            [119.5 + k / 10, 29.1],
                            [119.5 + k / 10, 29.0],
                        ]
                    ],
                },
            }
            for k, (code, name) in enumerate(_TOWNS.items())
        ],
    },
    ensure_ascii=False,
).encode()
FILE = ("towns.geojson", _GEOJSON)

EXAMPLES = {
    ("POST", "/api/maps/import"): Example("admin", {"level": "town"}, files=FILE),  # type: ignore[arg-type]
    ("POST", "/maps/import"): Example("admin", {"level": "town"}, files=FILE),  # type: ignore[arg-type]
}


def setup(world: Any) -> None:
    world.values["level"] = "town"  # /public/api/map/boundaries/{level}
    with world.lab.tx() as s:
        catalog.upsert_key_set(
            s, SYSTEM, name="towns.town_code", title="乡镇", values=list(_TOWNS), labels=_TOWNS
        )
