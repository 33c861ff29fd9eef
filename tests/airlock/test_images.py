from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from countylab.airlock.checks import CheckContext, CheckStatus, OutputFile, images, run_checks
from countylab.airlock.checks.ocr import find_tesseract

MakeFile = Callable[[str, bytes | str], OutputFile]


def _id() -> str:
    from countylab.identifiers import id_check_char

    body = "11010119900307123"
    return body + id_check_char(body)


def png_with_metadata() -> bytes:
    img = Image.new("RGB", (40, 20), "white")
    info = PngInfo()
    info.add_text("Author", "张伟 /home/zhangwei/secret")
    info.add_itxt("Comment", "身份证 " + _id())
    exif = Image.Exif()
    exif[0x013B] = "Zhang Wei"  # Artist
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info, exif=exif)
    return buf.getvalue() + b"trailing rows hidden after IEND"


def test_png_metadata_is_stripped_into_a_clean_copy(make_file: MakeFile) -> None:
    original = png_with_metadata()
    assert Image.open(io.BytesIO(original)).info.get("Author")
    result = images.run(make_file("chart.png", original), CheckContext())
    assert result.replacement is not None
    clean = Image.open(io.BytesIO(result.replacement))
    assert not getattr(clean, "text", {}) and not clean.getexif() and "exif" not in clean.info
    assert b"zhangwei" not in result.replacement and b"IEND" in result.replacement[-12:]
    assert clean.size == (40, 20)
    removed = result.details["metadata_removed"]
    assert {"iTXt:Author", "iTXt:Comment", "eXIf"} <= set(removed)
    assert any("after IEND" in r for r in removed)


def test_raster_without_ocr_needs_human_eyes(make_file: MakeFile) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (10, 10), "white").save(buf, format="PNG")
    result = images.run(make_file("plain.png", buf.getvalue()), CheckContext(ocr=None))
    assert result.status is CheckStatus.warn
    assert any("needs human eyes" in m for m in result.messages_en)


def test_ocr_text_is_scanned(make_file: MakeFile) -> None:
    def fake_ocr(png: bytes) -> str:
        Image.open(io.BytesIO(png)).verify()  # it gets the clean PNG
        return f"label\n{_id()}\n"

    buf = io.BytesIO()
    Image.new("RGB", (10, 10), "white").save(buf, format="PNG")
    result = images.run(make_file("p.png", buf.getvalue()), CheckContext(ocr=fake_ocr))
    assert result.status is CheckStatus.fail
    assert result.details["pii"][0]["kinds"] == ["id_number"]
    clean = images.run(
        make_file("q.png", buf.getvalue()), CheckContext(ocr=lambda png: "年份 人数\n2024 120")
    )
    assert clean.status is CheckStatus.passed


@pytest.mark.needs("tesseract")
def test_real_tesseract_reads_an_id_number_in_a_chart(make_file: MakeFile) -> None:
    ocr = find_tesseract("eng")
    assert ocr is not None
    img = Image.new("RGB", (900, 120), "white")
    ImageDraw.Draw(img).text((20, 30), _id(), fill="black", font=ImageFont.load_default(size=48))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    result = images.run(make_file("chart.png", buf.getvalue()), CheckContext(ocr=ocr))
    assert result.status is CheckStatus.fail, result.messages_en


SVG_HEAD = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<script>fetch('http://x')</script>", "script"),
        ('<rect onclick="alert(1)"/>', "script"),
        ('<image href="http://evil.example/p.png"/>', "external_ref"),
        ('<use xlink:href="other.svg#a"/>', "external_ref"),
        ('<rect style="fill:url(http://evil.example/a)"/>', "external_ref"),
        ("<style>@import url(http://evil.example/a.css);</style>", "external_ref"),
        ("<foreignObject><div>hi</div></foreignObject>", "foreign_object"),
    ],
)
def test_active_svg_fails(make_file: MakeFile, body: str, reason: str) -> None:
    result = images.run(make_file("c.svg", SVG_HEAD + body + "</svg>"), CheckContext())
    assert result.status is CheckStatus.fail
    assert reason in result.details["problems"]


def test_svg_with_entities_fails(make_file: MakeFile) -> None:
    svg = '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>'
    assert images.run(make_file("c.svg", svg), CheckContext()).details["problems"] == ["dtd"]


def test_svg_text_nodes_are_scanned(make_file: MakeFile) -> None:
    good = SVG_HEAD + '<rect fill="url(#g)"/><text x="1">人数</text><text>120</text></svg>'
    assert images.run(make_file("ok.svg", good), CheckContext()).status is CheckStatus.passed
    bad = SVG_HEAD + f"<text>患者 <tspan>{_id()}</tspan></text></svg>"
    result = images.run(make_file("bad.svg", bad), CheckContext())
    assert result.status is CheckStatus.fail
    assert result.details["pii"][0]["kinds"] == ["id_number"]


def test_pipeline_hands_back_the_clean_png(make_file: MakeFile) -> None:
    [report] = run_checks([make_file("chart.png", png_with_metadata())], CheckContext())
    assert report.replacement is not None and b"zhangwei" not in report.replacement
    assert report.status is CheckStatus.warn  # no OCR engine: human eyes
