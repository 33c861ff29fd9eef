"""Client methods for the county map (县域地图): boundary GeoJSON, the map's status, and the import
of a county's own town or village boundaries.

A mixin of :class:`countylab_client.Client`.  Results are plain dicts, as the API sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

_LEVELS = ("town", "village")


def _level(level: str) -> str:
    if level not in _LEVELS:
        raise ValueError(f"level must be 'town' or 'village', got {level!r}")
    return level


class MapsAPI:
    _send: Callable[..., Any]  # provided by Client

    def map_boundaries(self, level: str = "town") -> dict[str, Any]:
        """The boundaries of ``level`` as a GeoJSON FeatureCollection (simplified for display;
        properties ``code``, ``name``, ``level``).  Public: no login needed."""
        result: dict[str, Any] = self._send("GET", f"/public/api/map/boundaries/{_level(level)}")
        return result

    def map_status(self) -> dict[str, Any]:
        """Per level: areas drawn of the county's codes, codes not drawn, import history; points per
        open-data layer (operators and admins: ``showcase.manage``)."""
        result: dict[str, Any] = self._send("GET", "/api/maps")
        return result

    def import_map_boundaries(
        self,
        path: str | Path,
        /,
        *,
        level: str,
        code_property: str = "code",
        name_property: str = "name",
    ) -> dict[str, Any]:
        """Replace the boundaries of ``level`` with a GeoJSON FeatureCollection or a zipped
        Shapefile (WGS84 lon/lat), matched on ``code_property`` against the county's codes.  All or
        nothing: a bad file raises ``ValidationError`` whose ``details["problems"]`` name every bad
        feature (index, code, name, reason).  Returns ``features`` and ``missing_codes``."""
        p = Path(path)
        result: dict[str, Any] = self._send(
            "POST",
            "/api/maps/import",
            files={"file": (p.name, p.read_bytes())},
            data={"level": _level(level), "code_property": code_property, "name_property": name_property},
        )
        return result
