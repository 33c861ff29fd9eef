"""SVG: re-serialised by the lab through an allow-list, shown as the image and its source.

Only drawing elements survive (shapes, paths, text, groups, gradients, clip paths, ``use``
of a local id); only presentation attributes survive, and their values are checked:

* numbers are rounded to one decimal (a tenth of a pixel) and kept within ±100,000, and colours
  keep 16 levels per channel, so digits and colours carry no low-order payload a checker cannot
  see;
* ids are renamed ``i1, i2…`` (references follow), fonts come from a short list;
* ``style`` declarations become attributes through the same allow-list.

Comments, processing instructions, ``<metadata>``, ``<title>``/``<desc>``, scripts, event
handlers, ``data-*`` and unknown namespaces, ``foreignObject``, embedded images and every
external reference are dropped; DOCTYPE and entity declarations refuse the file.  So is what
draws nothing: an element at opacity 0, a shape or text with neither fill nor stroke, and a
definition nothing refers to — the image would not show them, but their numbers would leave
in the source.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET  # noqa: S405 - DTDs are refused before parsing
from collections import Counter
from xml.sax.saxutils import escape, quoteattr

from countylab.airlock.render.model import Limits, Note, Refused, Rendering, Section
from countylab.airlock.render.text import BlobGuard, decode, normalise

SVG_NS = "http://www.w3.org/2000/svg"
ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
        "text", "tspan", "clipPath", "use", "linearGradient", "radialGradient", "stop",
    }
)  # fmt: skip
NUMERIC = frozenset(
    {
        "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy", "width", "height",
        "d", "points", "transform", "viewBox", "stroke-width", "font-size", "offset", "opacity",
        "fill-opacity", "stroke-opacity", "stop-opacity", "dx", "dy", "stroke-dasharray",
        "stroke-dashoffset", "stroke-miterlimit", "gradientTransform", "letter-spacing",
    }
)  # fmt: skip
COLOR = frozenset({"fill", "stroke", "stop-color"})
KEYWORD = {
    "fill-rule": {"nonzero", "evenodd"},
    "clip-rule": {"nonzero", "evenodd"},
    "stroke-linecap": {"butt", "round", "square"},
    "stroke-linejoin": {"miter", "round", "bevel"},
    "text-anchor": {"start", "middle", "end"},
    "dominant-baseline": {"auto", "middle", "central", "hanging", "alphabetic", "text-top"},
    "font-weight": {"normal", "bold", "bolder", "lighter", "100", "200", "300", "400", "500", "600", "700"},
    "font-style": {"normal", "italic", "oblique"},
    "gradientUnits": {"userSpaceOnUse", "objectBoundingBox"},
    "clipPathUnits": {"userSpaceOnUse", "objectBoundingBox"},
    "preserveAspectRatio": {"none", "xMidYMid meet", "xMidYMid", "xMinYMin meet", "xMidYMid slice"},
}
FONTS = frozenset(
    {
        "sans-serif", "serif", "monospace", "dejavu sans", "dejavu sans mono", "arial", "helvetica",
        "simhei", "simsun", "microsoft yahei", "noto sans cjk sc", "noto sans sc", "wenquanyi micro hei",
        "pingfang sc", "source han sans sc", "liberation sans", "times new roman",
    }
)  # fmt: skip
NAMED = frozenset(
    {
        "none", "black", "white", "red", "green", "blue", "gray", "grey", "orange", "yellow", "purple",
        "navy", "teal", "silver", "maroon", "olive", "lime", "aqua", "fuchsia", "transparent",
        "currentcolor",
    }
)  # fmt: skip
_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_REF = re.compile(r"^url\(\s*#([^)\s]+)\s*\)$")
_HEX = re.compile(r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGB = re.compile(r"^rgba?\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*(?:,\s*[\d.]+\s*)?\)$")
_DTD = re.compile(r"<!(DOCTYPE|ENTITY)", re.I)
_TEXTUAL = frozenset({"text", "tspan"})
_PATH = re.compile(r"^[MmLlHhVvCcSsQqTtAaZzeE0-9.,+\-\s]*$")
_TRANSFORM_CHARS = re.compile(r"^[A-Za-z0-9.,+\-\s()]*$")
_TRANSFORMS = frozenset({"matrix", "translate", "scale", "rotate", "skewX", "skewY"})
MAX_COORD = 100_000.0
_PLAIN = re.compile(r"^[-+0-9.,eE\s]*(%|px|pt|em)?$")
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def _round(match: re.Match[str]) -> str:
    v = round(float(match.group(0)), 1)
    if not math.isfinite(v):
        return "0"
    v = max(-MAX_COORD, min(MAX_COORD, v))  # far off the canvas is nowhere to hide digits
    return f"{v:.1f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def _color(value: str) -> str | None:
    v = value.strip().lower()
    if v in NAMED:
        return v
    m = _HEX.match(v)
    rgb: list[int] | None = None
    if m:
        h = m.group(1)
        h = "".join(c * 2 for c in h) if len(h) == 3 else h
        rgb = [int(h[i : i + 2], 16) for i in (0, 2, 4)]
    elif (m2 := _RGB.match(v)) is not None:
        rgb = [min(int(x), 255) for x in m2.groups()]
    if rgb is None:
        return None
    return "#" + "".join(f"{round(c / 17) * 17:02x}" for c in rgb)


class _Cleaner:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.ids: dict[str, str] = {}
        self.dropped_elements: Counter[str] = Counter()
        self.dropped_attributes: Counter[str] = Counter()
        self.texts: list[str] = []
        self.count = 0
        self.referenced: set[str] = set()

    def collect_ids(self, root: ET.Element) -> None:
        for el in root.iter():
            old = el.attrib.get("id")
            if old and old not in self.ids and _tag(el) in ELEMENTS:
                self.ids[old] = f"i{len(self.ids) + 1}"
            for value in el.attrib.values():
                self.referenced.update(_LOCAL_REF.findall(value))
                if value.strip().startswith("#"):
                    self.referenced.add(value.strip()[1:])

    def _used(self, el: ET.Element) -> bool:
        """``el`` or something inside it is referenced (a gradient, a clip path, a ``use``)."""
        return any(d.attrib.get("id") in self.referenced for d in el.iter())

    def _invisible(self, tag: str, el: ET.Element, attrs: dict[str, str], paint: dict[str, str]) -> bool:
        """Drawn with no ink at all: opacity 0, or neither fill nor stroke.  Such an element
        shows nothing in the image, yet its numbers would leave in the source."""
        if tag not in _PAINTED or "clip" in paint or self._used(el):
            return False
        if _zero(attrs.get("opacity")):
            return True
        if tag not in _SHAPES and tag not in _TEXTUAL:
            return False
        no_fill = (
            tag == "line"  # a line encloses no area: only its stroke draws
            or paint.get("fill", "black") in _NO_PAINT
            or _zero(paint.get("fill-opacity"))
        )
        no_stroke = (
            paint.get("stroke", "none") in _NO_PAINT
            or _zero(paint.get("stroke-opacity"))
            or _zero(paint.get("stroke-width"))
        )
        return no_fill and no_stroke

    def value(self, name: str, value: str) -> str | None:
        v = value.strip()
        if name == "href":
            return f"#{self.ids[v[1:]]}" if v.startswith("#") and v[1:] in self.ids else None
        if name == "clip-path" or (name in COLOR and v.startswith("url(")):
            m = _REF.match(v)
            return f"url(#{self.ids[m.group(1)]})" if m and m.group(1) in self.ids else None
        if name in COLOR:
            return _color(v)
        if name in NUMERIC:
            return _NUM.sub(_round, " ".join(v.split())) if _numeric_ok(name, v) else None
        if name in KEYWORD:
            return v if v in KEYWORD[name] else None
        if name == "font-family":
            fonts = [f.strip().strip("'\"").lower() for f in v.split(",")]
            kept = [f for f in fonts if f in FONTS]
            return ", ".join(kept) if kept else "sans-serif"
        return None

    def attributes(self, el: ET.Element) -> dict[str, str]:
        raw: dict[str, str] = {}
        dropped: list[str] = []
        for key, value in el.attrib.items():
            if key == XLINK_HREF:
                raw.setdefault("href", value)
            elif key.startswith("{"):
                dropped.append(_local(key))
            else:
                raw[key] = value
        for decl in raw.pop("style", "").split(";"):
            prop, _, val = decl.partition(":")
            if prop.strip() and val.strip():
                raw.setdefault(prop.strip(), val.strip())
        out: dict[str, str] = {}
        for name, value in raw.items():
            if name == "id":
                if value in self.ids:
                    out["id"] = self.ids[value]
                continue
            kept = self.value(name, value)
            if kept is None:
                dropped.append(name)
            else:
                out[name] = kept
        for name in dropped:
            self.dropped_attributes["data-*" if name.startswith("data-") else name] += 1
        return out

    def element(self, el: ET.Element, depth: int, inherited: dict[str, str] | None = None) -> str:
        self.count += 1
        if self.count > self.limits.max_cells:
            raise Refused("too_many_elements", "SVG 元素过多", "the SVG has too many elements")
        tag = _tag(el)
        attrs = self.attributes(el)
        if tag == "svg" and depth == 0:
            attrs["xmlns"] = SVG_NS
        paint = {**(inherited or {}), **{k: v for k, v in attrs.items() if k in _PAINT}}
        if tag == "clipPath":
            paint = {"clip": "1"}  # a clip path's shapes count by their geometry, not their ink
        if depth > 0 and self._invisible(tag, el, attrs, paint):
            self.dropped_elements[f"{tag} (invisible)"] += 1
            return ""
        children: list[str] = []
        textual = tag in _TEXTUAL
        if textual and el.text and _words(el.text):
            children.append(escape(_words(el.text)))
            self.texts.append(_words(el.text))
        for child in el:
            ctag = _tag(child)
            if tag == "defs" and ctag in ELEMENTS and not self._used(child):
                self.dropped_elements[f"{ctag} (unused definition)"] += 1
            elif ctag in ELEMENTS and (ctag != "svg") and (ctag != "tspan" or textual):
                drawn = self.element(child, depth + 1, paint)
                if drawn:
                    children.append(drawn)
            else:
                self.dropped_elements[ctag or "?"] += 1
            if textual and child.tail and _words(child.tail):
                children.append(escape(_words(child.tail)))
                self.texts.append(_words(child.tail))
        head = "<" + tag + "".join(f" {k}={quoteattr(v)}" for k, v in sorted(attrs.items()))
        if not children:
            return head + "/>"
        sep = "" if textual else "\n"
        return head + ">" + sep + sep.join(children) + sep + f"</{tag}>"


_SHAPES = frozenset({"path", "rect", "circle", "ellipse", "line", "polyline", "polygon"})
_PAINTED = _SHAPES | _TEXTUAL | {"g", "use"}
_PAINT = frozenset({"fill", "stroke", "fill-opacity", "stroke-opacity", "stroke-width"})
_NO_PAINT = frozenset({"none", "transparent"})
_LOCAL_REF = re.compile(r"url\(\s*#([^)\s]+)\s*\)")


def _zero(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return float(value.strip().rstrip("%")) <= 0
    except ValueError:
        return False


def _words(raw: str) -> str:
    """Text of the drawing as released: normalised like any text (no invisible characters, no
    look-alike words), and white space collapsed as SVG renders it."""
    return " ".join(normalise(raw)[0].split())


def _numeric_ok(name: str, value: str) -> bool:
    if name == "d":
        return _PATH.match(value) is not None
    if name.endswith("ransform"):
        return _TRANSFORM_CHARS.match(value) is not None and all(
            w in _TRANSFORMS for w in re.findall(r"[A-Za-df-z][A-Za-z]*", value)
        )
    return _PLAIN.match(value) is not None


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _tag(el: ET.Element) -> str:
    if not isinstance(el.tag, str):
        return ""
    ns, _, local = el.tag[1:].partition("}") if el.tag.startswith("{") else ("", "", el.tag)
    return local if ns == SVG_NS else f"{{{ns}}}{local}" if ns else local


def render_svg(data: bytes, limits: Limits) -> Rendering:
    text = decode(data)
    if _DTD.search(text):
        raise Refused("xml_dtd", "SVG 含 DOCTYPE/实体声明", "the SVG declares a DOCTYPE or entities")
    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        root = ET.fromstring(body)  # noqa: S314 - no DTD possible here, see above
    except ET.ParseError as exc:
        raise Refused("unparsable", "SVG 无法解析", "the SVG does not parse") from exc
    if _tag(root) != "svg":
        raise Refused("unparsable", "根元素不是 SVG", "the root element is not an SVG")
    cleaner = _Cleaner(limits)
    cleaner.collect_ids(root)
    source = cleaner.element(root, 0) + "\n"
    guard = BlobGuard(limits)
    for i, t in enumerate(cleaner.texts):
        guard.row([t], i + 1)
    src = Section("source", "SVG 源码（出域版本）", "SVG source (as released)")
    for i, line in enumerate(source.splitlines()):
        src.rows.append([line])
        src.numbers.append(i + 1)
    facts = Section("facts", "已删除的内容（不出域）", "Removed (not released)")
    comments = text.count("<!--")
    if comments:
        facts.rows.append(["comments", str(comments)])
    facts.rows += [[f"element <{k}>", str(n)] for k, n in sorted(cleaner.dropped_elements.items())]
    facts.rows += [[f"attribute {k}", str(n)] for k, n in sorted(cleaner.dropped_attributes.items())]
    texts = Section("facts", "图中全部文字", "All text in the image")
    texts.rows = [[str(i + 1), t] for i, t in enumerate(cleaner.texts)]
    image = Section("image", "图像（出域版本）", "Image (as released)")
    notes = [
        Note(
            "svg_rewritten",
            "SVG 已按白名单重写：注释、元数据、脚本、data-* 属性和外部引用已删除，数字和颜色已取整",
            "the SVG was rewritten through an allow-list: comments, metadata, scripts, data-* "
            "attributes and external references removed; numbers (0.1) and colours (16 levels) rounded",
        )
    ]
    return Rendering("svg", "image/svg+xml", source.encode(), [image, src, texts, facts], notes)
