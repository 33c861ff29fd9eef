"""SVG safety: no scripts, no external references, and the text it shows.

SVG is XML that browsers execute: ``<script>``, ``on…`` handlers, ``<foreignObject>`` HTML and
external ``href``/``url()`` references all either run code or phone home when the developer
opens the file, so each fails.  DOCTYPE and entity declarations are refused before parsing,
which also rules out entity-expansion and external-entity attacks on the parser.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 - DTDs are refused before parsing (see _DTD)
from dataclasses import dataclass, field

_DTD = re.compile(r"<!(DOCTYPE|ENTITY)", re.I)
_EXTERNAL_URL = re.compile(r"url\(\s*['\"]?\s*(?!#|data:image/)", re.I)
_IMPORT = re.compile(r"@import", re.I)


@dataclass
class SvgReport:
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (reason, zh, en)
    embedded_images: int = 0
    text: str = ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def inspect_svg(text: str) -> SvgReport:
    report = SvgReport()
    if _DTD.search(text):
        report.problems.append(("dtd", "SVG 含 DOCTYPE/实体声明", "the SVG declares a DOCTYPE or entities"))
        return report
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD possible here, see above
    except ET.ParseError as exc:
        report.problems.append(("unparsable", f"SVG 无法解析：{exc}", f"the SVG does not parse: {exc}"))
        return report
    texts: list[str] = []
    for el in root.iter():
        tag = _local(el.tag) if isinstance(el.tag, str) else ""
        if tag == "script":
            report.problems.append(("script", "SVG 含脚本", "the SVG contains a script"))
        if tag == "foreignObject":
            report.problems.append(
                ("foreign_object", "SVG 含 foreignObject", "the SVG contains a foreignObject")
            )
        if tag == "style" and el.text and (_IMPORT.search(el.text) or _EXTERNAL_URL.search(el.text)):
            report.problems.append(
                ("external_ref", "SVG 样式引用外部资源", "the SVG style loads an external resource")
            )
        for attr, value in el.attrib.items():
            name = _local(attr)
            if name.lower().startswith("on"):
                report.problems.append(
                    ("script", f"SVG 含事件处理属性 {name}", f"the SVG has an event handler {name}")
                )
            elif name == "href":
                v = value.strip()
                if v.startswith("data:image/"):
                    report.embedded_images += 1
                elif not v.startswith("#"):
                    report.problems.append(
                        ("external_ref", "SVG 引用外部资源", "the SVG references an external resource")
                    )
            elif _EXTERNAL_URL.search(value) or (name == "style" and _IMPORT.search(value)):
                report.problems.append(
                    ("external_ref", "SVG 引用外部资源", "the SVG references an external resource")
                )
        if el.text and el.text.strip() and tag != "style":
            texts.append(el.text.strip())
        if el.tail and el.tail.strip():
            texts.append(el.tail.strip())
    report.text = "\n".join(texts)
    return report
