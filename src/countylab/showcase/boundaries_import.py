"""Import of a county's own town or village boundaries: GeoJSON or a zipped Shapefile.

The file is read whole and checked whole before anything is stored: every feature needs a code
that the county's key set knows (``towns.town_code`` / ``villages.village_code``), no code twice,
and a valid, non-empty Polygon or MultiPolygon in WGS84 longitude/latitude.  Every problem is
reported with the feature it belongs to (its position, code and name), all at once, so a clerk
fixes the file in one round instead of one error per upload.  Then the level's areas are
replaced in the caller's transaction: a bad file leaves no trace.

Projected coordinates (a ``.prj`` with ``PROJCS``, or numbers far outside ±180/±90) are refused
with a hint to reproject: the map is drawn in lon/lat and this module carries no projection
library.  CGCS2000 (the national geographic system) is accepted as WGS84: they differ by
centimetres.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import orjson
import shapefile
import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import delete
from sqlalchemy.orm import Session

from countylab import audit
from countylab.errors import ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission
from countylab.showcase.maps import LEVEL_KEY_SETS, LEVEL_NAMES, check_level, known_codes
from countylab.storage.map_models import MapArea, MapImport, MapPoint

#: how many problems one refusal lists (the rest are counted)
MAX_PROBLEMS = 20
_GRID = 1e-6  # stored coordinates rounded to 6 decimals (~0.1 m)
_ACCEPTED_GEOGCS = (
    "WGS_1984",
    "WGS 84",
    "WGS84",
    "CGCS2000",
    "CGCS_2000",
    "China_Geodetic_Coordinate_System_2000",
)
_ACCEPTED_CRS = ("CRS84", "4326", "4490")


@dataclass(frozen=True)
class RawFeature:
    index: int  # 1-based position in the file
    properties: dict[str, Any]
    geometry: dict[str, Any] | None


@dataclass
class ImportResult:
    import_id: int
    level: str
    features: int
    missing_codes: list[str] = field(default_factory=list)  # county areas the file does not draw
    bytes_display: int = 0


def _refuse(zh: str, en: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(zh, en, **details)


# -- reading -----------------------------------------------------------------------------------


def _utf8(data: bytes) -> bytes:
    """GeoJSON is UTF-8 by its RFC, but files saved by older Chinese GIS tools are often GBK."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gbk").encode("utf-8")
        except UnicodeDecodeError:
            return data
    return data


def read_geojson(data: bytes) -> list[RawFeature]:
    try:
        doc = orjson.loads(_utf8(data))
    except orjson.JSONDecodeError as e:
        raise _refuse(
            f"不是有效的 GeoJSON（JSON 解析失败：{e}）", f"Not valid GeoJSON (JSON error: {e})", reason="json"
        ) from None
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise _refuse(
            "GeoJSON 须是 FeatureCollection（含 features 数组）",
            "The GeoJSON must be a FeatureCollection with a features array",
            reason="not_feature_collection",
        )
    crs = doc.get("crs")
    if isinstance(crs, dict):
        name = str((crs.get("properties") or {}).get("name", ""))
        if name and not any(name.upper().endswith(c) for c in _ACCEPTED_CRS):
            raise _refuse(
                f"坐标系 {name} 不受支持：请转换为 WGS84 经纬度（EPSG:4326）后再导入",
                f"Coordinate system {name} is not supported: reproject to WGS84 lon/lat (EPSG:4326)",
                reason="crs",
                crs=name,
            )
    out = []
    for i, f in enumerate(doc["features"], start=1):
        if not isinstance(f, dict):
            f = {}
        props = f.get("properties") if isinstance(f.get("properties"), dict) else {}
        geom = f.get("geometry") if isinstance(f.get("geometry"), dict) else None
        out.append(RawFeature(i, dict(props or {}), geom))
    return out


def _check_prj(text: str) -> None:
    head = text.strip().upper()
    if head.startswith("PROJCS") or head.startswith("PROJCRS"):
        name = text.split('"')[1] if '"' in text else text[:40]
        raise _refuse(
            f"Shapefile 使用投影坐标系（{name}），无法直接导入：请转换为 WGS84 经纬度（EPSG:4326）后再导入",
            f"The Shapefile uses a projected coordinate system ({name}), which cannot be imported as is: "
            "reproject it to WGS84 lon/lat (EPSG:4326) first",
            reason="projected_prj",
            prj=name,
        )
    if head and not any(g.upper() in head for g in _ACCEPTED_GEOGCS):
        name = text.split('"')[1] if '"' in text else text[:40]
        raise _refuse(
            f"Shapefile 的坐标系 {name} 不受支持：请转换为 WGS84 或 CGCS2000 经纬度后再导入",
            f"The Shapefile's coordinate system {name} is not supported: "
            "convert to WGS84 or CGCS2000 lon/lat",
            reason="prj",
            prj=name,
        )


def read_shapefile_zip(data: bytes) -> list[RawFeature]:
    """Features of the one ``.shp`` in a zip (with its ``.shx``, ``.dbf``, optional ``.prj``/``.cpg``)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise _refuse("不是有效的 zip 文件", "Not a valid zip file", reason="zip") from None
    members = {n.lower(): n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n}
    shps = [n for n in members if n.endswith(".shp")]
    if len(shps) != 1:
        raise _refuse(
            f"zip 中须恰好有一个 .shp 文件（找到 {len(shps)} 个）",
            f"The zip must hold exactly one .shp file (found {len(shps)})",
            reason="shp_count",
        )
    stem = shps[0][:-4]
    missing = [ext for ext in (".shx", ".dbf") if stem + ext not in members]
    if missing:
        raise _refuse(
            f"缺少 Shapefile 组成文件：{'、'.join(missing)}",
            f"Shapefile parts missing from the zip: {', '.join(missing)}",
            reason="shp_parts",
            missing=missing,
        )

    def part(ext: str) -> bytes:
        return zf.read(members[stem + ext])

    if stem + ".prj" in members:
        _check_prj(part(".prj").decode("utf-8", "replace"))
    encoding = part(".cpg").decode("ascii", "replace").strip() if stem + ".cpg" in members else "utf-8"
    for enc in dict.fromkeys([encoding or "utf-8", "gbk"]):
        try:
            return _read_shp(part(".shp"), part(".shx"), part(".dbf"), enc)
        except UnicodeDecodeError:
            continue
        except shapefile.ShapefileException as e:
            raise _refuse(
                f"Shapefile 无法读取：{e}", f"The Shapefile cannot be read: {e}", reason="shp"
            ) from None
    raise _refuse(
        "Shapefile 属性表的编码无法识别（请附 .cpg 文件注明编码）",
        "The Shapefile's attribute table encoding is unknown (add a .cpg file naming it)",
        reason="encoding",
    )


def _read_shp(shp: bytes, shx: bytes, dbf: bytes, encoding: str) -> list[RawFeature]:
    with shapefile.Reader(
        shp=io.BytesIO(shp), shx=io.BytesIO(shx), dbf=io.BytesIO(dbf), encoding=encoding
    ) as r:
        out = []
        for i, sr in enumerate(r.iterShapeRecords(), start=1):
            props = sr.record.as_dict()
            geom = None if sr.shape.shapeType == shapefile.NULL else dict(sr.shape.__geo_interface__)
            out.append(RawFeature(i, {str(k): v for k, v in props.items()}, geom))
        return out


# -- checking ----------------------------------------------------------------------------------


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _coords_in_range(geom: dict[str, Any]) -> bool:
    def walk(c: Any) -> bool:
        if isinstance(c, list | tuple) and c and isinstance(c[0], int | float):
            return -180 <= float(c[0]) <= 180 and -90 <= float(c[1]) <= 90
        return all(walk(x) for x in c) if isinstance(c, list | tuple) else True

    return walk(geom.get("coordinates", []))


def _geometry_problem(geom: dict[str, Any] | None) -> tuple[str, str, str] | tuple[None, shapely.Geometry]:
    """``(reason, zh, en)`` of what is wrong with a geometry, or ``(None, shape)`` when it is good."""
    if geom is None:
        return ("empty", "没有几何图形", "no geometry")
    kind = geom.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        return (
            "wrong_type",
            f"几何类型为 {kind}，应为面（Polygon 或 MultiPolygon）",
            f"geometry type {kind}; a Polygon or MultiPolygon is needed",
        )
    try:
        in_range = _coords_in_range(geom)
        g = shape(geom)
    except (ValueError, TypeError, IndexError, AttributeError, shapely.errors.GEOSException) as e:
        return ("broken", f"几何图形无法解析（{e}）", f"geometry cannot be read ({e})")
    if not in_range:
        x0, y0, _, _ = g.bounds
        return (
            "coordinate_range",
            f"坐标超出经纬度范围（如 {x0:.0f}, {y0:.0f}）：可能是投影坐标，请转换为 WGS84 经纬度",
            f"coordinates out of the lon/lat range (e.g. {x0:.0f}, {y0:.0f}): projected? "
            "Reproject to WGS84 lon/lat",
        )
    if g.is_empty:
        return ("empty", "几何图形为空", "empty geometry")
    if not g.is_valid:
        why = shapely.is_valid_reason(g)
        zh = (
            "边界自相交"
            if why.startswith("Self-intersection") or why.startswith("Ring Self")
            else "几何图形无效"
        )
        return ("invalid", f"{zh}（{why}）", f"invalid geometry ({why})")
    if g.area == 0:
        return ("empty", "几何图形为空（面积为零）", "empty geometry (zero area)")
    return (None, g)


@dataclass(frozen=True)
class GoodFeature:
    code: str
    name: str
    geom: shapely.Geometry


def check_features(
    raw: list[RawFeature],
    *,
    level: str,
    known: dict[str, str],
    code_property: str = "code",
    name_property: str = "name",
) -> list[GoodFeature]:
    """The features, checked; one :class:`ValidationFailed` lists every bad one by position, code
    and name (``details["problems"]``: index, code, name, reason)."""
    if not raw:
        raise _refuse("文件中没有要素", "The file holds no features", reason="no_features")
    if not known:
        raise _refuse(
            f"本实验室还没有{LEVEL_NAMES[level][0]}代码集（{LEVEL_KEY_SETS[level]}），无法匹配边界",
            f"The lab has no {LEVEL_NAMES[level][1]} key set ({LEVEL_KEY_SETS[level]}) "
            "to match boundaries to",
            reason="no_key_set",
        )
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    good: list[GoodFeature] = []
    if not any(code_property in f.properties for f in raw):
        present = sorted({k for f in raw for k in f.properties})
        raise _refuse(
            f"要素属性中没有代码字段“{code_property}”（现有字段：{'、'.join(present[:12]) or '无'}）",
            f"No feature has the code property '{code_property}' (properties present: "
            f"{', '.join(present[:12]) or 'none'})",
            reason="code_property",
            properties=present,
        )

    def bad(f: RawFeature, code: str, name: str, reason: str, zh: str, en: str) -> None:
        problems.append({"index": f.index, "code": code, "name": name, "reason": reason, "zh": zh, "en": en})

    for f in raw:
        code = _text(f.properties.get(code_property))
        name = _text(f.properties.get(name_property)) or known.get(code, "")
        if not code:
            bad(f, code, name, "missing_code", f"缺少代码（{code_property}）", f"no code ({code_property})")
        elif code not in known:
            bad(
                f,
                code,
                name,
                "unknown_code",
                f"代码 {code} 不是本县的{LEVEL_NAMES[level][0]}代码",
                f"code {code} is not one of the county's {LEVEL_NAMES[level][1]} codes",
            )
        elif code in seen:
            bad(
                f,
                code,
                name,
                "duplicate_code",
                f"代码 {code} 与第 {seen[code]} 个要素重复",
                f"code {code} repeats feature {seen[code]}",
            )
        else:
            seen[code] = f.index
        checked = _geometry_problem(f.geometry)
        if checked[0] is not None:
            reason, zh, en = checked
            bad(f, code, name, reason, zh, en)
        elif not problems or problems[-1]["index"] != f.index:
            good.append(GoodFeature(code, name, checked[1]))
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)

        def who(p: dict[str, Any], lang: str) -> str:
            ident = " ".join(x for x in (p["code"], p["name"] and f"“{p['name']}”") if x)
            if lang == "zh":
                return f"第 {p['index']} 个要素" + (f"（{ident}）" if ident else "")
            return f"feature {p['index']}" + (f" ({ident})" if ident else "")

        zh = "；".join(f"{who(p, 'zh')}：{p['zh']}" for p in shown) + (
            f"；另有 {more} 处问题" if more else ""
        )
        en = "; ".join(f"{who(p, 'en')}: {p['en']}" for p in shown) + (
            f"; {more} more problems" if more else ""
        )
        raise ValidationFailed(
            f"边界文件未导入，{len(problems)} 处问题：{zh}",
            f"Boundary file not imported, {len(problems)} problem(s): {en}",
            reason="features",
            problems=[{k: v for k, v in p.items() if k not in ("zh", "en")} for p in problems[:200]],
            row=shown[0]["index"],
        )
    return good


def _display(geoms: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Simplified copies for the public map: shared borders simplified once (no slivers), to about
    1/1500 of the extent; a shape that would break keeps its full form."""
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    tol = max(x1 - x0, y1 - y0) / 1500
    try:
        simple = list(shapely.coverage_simplify(geoms, tol))
    except shapely.errors.GEOSException:
        simple = list(shapely.simplify(geoms, tol, preserve_topology=True))
    out = []
    for g, s in zip(geoms, simple, strict=True):
        s = shapely.set_precision(s, 1e-5)
        out.append(s if s.is_valid and not s.is_empty and s.geom_type in ("Polygon", "MultiPolygon") else g)
    return out


# -- storing -----------------------------------------------------------------------------------


def store_boundaries(
    session: Session,
    actor: Principal,
    *,
    level: str,
    features: list[GoodFeature],
    source: str,
    filename: str,
    sha256: str,
    code_property: str,
    known: dict[str, str],
) -> ImportResult:
    geoms = [shapely.set_precision(f.geom, _GRID) for f in features]
    display = _display(geoms)
    imp = MapImport(
        level=level,
        source=source,
        filename=filename[:200],
        sha256=sha256,
        code_property=code_property,
        features=len(features),
        created_by=actor.user_id,
    )
    session.add(imp)
    session.flush()
    session.execute(delete(MapArea).where(MapArea.level == level))
    size = 0
    for f, g, d in zip(features, geoms, display, strict=True):
        disp = mapping(d)
        size += len(orjson.dumps(disp))
        session.add(
            MapArea(
                level=level,
                code=f.code,
                name=f.name[:100],
                import_id=imp.id,
                geometry=mapping(g),
                display=disp,
            )
        )
    missing = sorted(set(known) - {f.code for f in features})
    audit.record(
        session,
        actor,
        "map.import",
        f"map:{level}",
        source=source,
        filename=filename[:200],
        features=len(features),
        missing=len(missing),
        sha256=sha256,
    )
    session.flush()
    return ImportResult(imp.id, level, len(features), missing, size)


def import_boundaries(
    session: Session,
    actor: Principal,
    *,
    level: str,
    data: bytes,
    filename: str,
    code_property: str = "code",
    name_property: str = "name",
) -> ImportResult:
    """Check and store a boundary file for ``level`` (``showcase.manage``), all or nothing."""
    authorize(actor, Permission.showcase_manage, target=f"map:{level}")
    check_level(level)
    code_property = code_property.strip() or "code"
    is_zip = data[:4] == b"PK\x03\x04" or filename.lower().endswith(".zip")
    raw = read_shapefile_zip(data) if is_zip else read_geojson(data)
    known = known_codes(session, level)
    good = check_features(
        raw, level=level, known=known, code_property=code_property, name_property=name_property
    )
    return store_boundaries(
        session,
        actor,
        level=level,
        features=good,
        source="shapefile" if is_zip else "geojson",
        filename=filename,
        sha256=hashlib.sha256(data).hexdigest(),
        code_property=code_property,
        known=known,
    )


def store_points(
    session: Session, actor: Principal, *, layer: str, points: list[dict[str, Any]], source: str
) -> int:
    """Replace where an open-data layer's points stand (``{id, name, lon, lat}`` each)."""
    authorize(actor, Permission.showcase_manage, target=f"map:{layer}")
    for i, p in enumerate(points, start=1):
        lon, lat = float(p["lon"]), float(p["lat"])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not str(p.get("id", "")).strip():
            raise ValidationFailed(
                f"第 {i} 个点（{p.get('id', '')}）缺少编号或坐标超出经纬度范围",
                f"Point {i} ({p.get('id', '')}) has no id or lies outside the lon/lat range",
                row=i,
                reason="point",
            )
    session.execute(delete(MapPoint).where(MapPoint.layer == layer))
    for p in points:
        session.add(
            MapPoint(
                layer=layer,
                point_id=str(p["id"])[:40],
                name=str(p.get("name", ""))[:100],
                lon=float(p["lon"]),
                lat=float(p["lat"]),
            )
        )
    audit.record(session, actor, "map.points", f"map:{layer}", source=source, points=len(points))
    return len(points)
