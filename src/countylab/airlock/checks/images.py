"""Rule (e): images.  PNGs and JPEGs are released re-encoded; SVGs must be inert.

* PNG/JPEG: text chunks (tEXt/zTXt/iTXt), EXIF/XMP, ICC profiles, bytes after IEND and the low
  bits of the pixels can carry anything (a file path, a user name, a whole CSV).  Rather than
  judge them, the release always uses the image the lab re-encoded from quantised pixels
  (:mod:`countylab.airlock.render.raster`, ``CheckResult.replacement``); what was removed is
  listed for the checker.
* Text drawn in the pixels: with an OCR engine the text is scanned for identifiers and
  source values; without one the check warns "needs human eyes" — never a silent pass.
* SVG: scripts, event handlers, foreignObject and external references fail (:mod:`.svg`); its
  text nodes are scanned for identifiers here and for source values by the leakage scan; the
  release is the SVG the lab re-serialised (:mod:`countylab.airlock.render.svg`).
"""

from __future__ import annotations

import io

from PIL import Image

from countylab.airlock.checks.base import (
    CheckContext,
    CheckResult,
    CheckStatus,
    FileKind,
    Findings,
    OutputFile,
)
from countylab.airlock.checks.scan import pii_in_text, report_leakage, report_pii
from countylab.airlock.checks.sniff import file_kind, sniff_file
from countylab.airlock.checks.svg import inspect_svg
from countylab.airlock.leakage import scan_text
from countylab.airlock.render import Limits, Refused
from countylab.airlock.render.raster import render_raster

name = "images"

MAX_PIXELS = 40_000_000


def applies_to(file: OutputFile) -> bool:
    return file_kind(file) in (FileKind.png, FileKind.jpeg, FileKind.svg)


def clean_png(data: bytes) -> tuple[bytes, list[str]]:
    """The pixels of ``data`` re-encoded as a fresh PNG, and the metadata that was dropped."""
    return _clean(data, "png")


def _clean(data: bytes, kind: str) -> tuple[bytes, list[str]]:
    rendering = render_raster(data, Limits(max_pixels=MAX_PIXELS), kind)
    removed = [
        row[1] for sec in rendering.sections if sec.kind == "facts" for row in sec.rows if row[0] != "pixels"
    ]
    return rendering.regenerated, sorted(set(removed))


def _png_for_ocr(image: bytes) -> bytes:
    with Image.open(io.BytesIO(image)) as img:
        out = io.BytesIO()
        img.save(out, format="PNG")
        return out.getvalue()


def _run_raster(file: OutputFile, context: CheckContext, found: Findings, kind: str) -> bytes | None:
    try:
        clean, removed = _clean(file.read(), kind)
    except Refused as exc:
        found.add(CheckStatus.fail, f"{exc.zh}（规则 {exc.rule}）", f"{exc.en} (rule {exc.rule})")
        return None
    found.details["metadata_removed"] = removed
    if removed:
        found.add(
            CheckStatus.passed,
            f"已去除图片元数据（{len(removed)} 项），出域使用重新编码的副本",
            f"image metadata removed ({len(removed)} items): the release uses the re-encoded copy",
        )
    if context.ocr is None:
        found.add(
            CheckStatus.warn,
            "无文字识别引擎：图片中的文字需要人工查看",
            "no OCR engine: the text in this image needs human eyes",
        )
        return clean
    text = context.ocr(clean if kind == "png" else _png_for_ocr(clean))
    found.details["ocr_characters"] = len(text.strip())
    report_pii(pii_in_text(text), found, "图片文字中", "in the image text: ")
    if context.source_index is not None:
        report_leakage(scan_text(text, context.source_index), found, "图片文字中", "in the image text: ")
    return clean


def _run_svg(file: OutputFile, found: Findings) -> None:
    report = inspect_svg(sniff_file(file).text or "")
    for reason, zh, en in dict.fromkeys(report.problems):
        found.add(CheckStatus.fail, zh, en)
        found.details.setdefault("problems", []).append(reason)
    if report.embedded_images:
        found.add(
            CheckStatus.warn,
            f"SVG 内嵌 {report.embedded_images} 张位图：需要人工查看",
            f"the SVG embeds {report.embedded_images} raster images: they need human eyes",
        )
    report_pii(pii_in_text(report.text), found, "SVG 文字中", "in the SVG text: ")


def run(file: OutputFile, context: CheckContext) -> CheckResult:
    found = Findings(name)
    kind = file_kind(file)
    if kind in (FileKind.png, FileKind.jpeg):
        return found.result(_run_raster(file, context, found, "png" if kind is FileKind.png else "jpeg"))
    _run_svg(file, found)
    return found.result()
