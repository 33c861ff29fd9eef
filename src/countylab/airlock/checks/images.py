"""Rule (e): images.  PNGs are re-encoded without metadata; SVGs must be inert.

* PNG: text chunks (tEXt/zTXt/iTXt), EXIF, ICC profiles and bytes after IEND can carry
  anything (a file path, a user name, a whole CSV).  Rather than judge them, the release
  always uses a clean copy re-encoded from the pixels by Pillow (``CheckResult.replacement``);
  what was removed is listed for the checker.
* PNG text drawn in the pixels: with an OCR engine the text is scanned for identifiers and
  source values; without one the check warns "needs human eyes" — never a silent pass.
* SVG: scripts, event handlers, foreignObject and external references fail (:mod:`.svg`); its
  text nodes are scanned for identifiers here and for source values by the leakage scan.
"""

from __future__ import annotations

import io
import warnings

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

name = "images"

MAX_PIXELS = 40_000_000
_BENIGN_INFO = frozenset({"dpi", "gamma", "transparency", "aspect"})


def applies_to(file: OutputFile) -> bool:
    return file_kind(file) in (FileKind.png, FileKind.svg)


def clean_png(data: bytes) -> tuple[bytes, list[str]]:
    """The pixels of ``data`` re-encoded as a fresh PNG, and the metadata that was dropped."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise ValueError(f"{img.width}×{img.height} pixels")
        img.load()
    removed = [str(k) for k in img.info if k not in _BENIGN_INFO]
    if img.getexif():
        removed.append("exif")
    iend = data.find(b"IEND\xaeB`\x82")  # the IEND chunk with its fixed CRC
    if iend >= 0 and len(data) > iend + 8:
        removed.append(f"{len(data) - iend - 8} bytes after IEND")
    pixels: Image.Image = img
    if pixels.mode not in ("1", "L", "LA", "RGB", "RGBA"):
        pixels = pixels.convert("RGBA")
    fresh = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    fresh.save(out, format="PNG")
    return out.getvalue(), sorted(set(removed))


def _run_png(file: OutputFile, context: CheckContext, found: Findings) -> bytes | None:
    try:
        clean, removed = clean_png(file.read())
    except Exception as exc:  # noqa: BLE001 - an image Pillow cannot decode does not leave
        found.add(CheckStatus.fail, f"无法解码图片：{exc}", f"the image cannot be decoded: {exc}")
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
    text = context.ocr(clean)
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
    if file_kind(file) is FileKind.png:
        return found.result(_run_png(file, context, found))
    _run_svg(file, found)
    return found.result()
