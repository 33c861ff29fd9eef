"""The PDF printer: Chinese text comes out readable, and a document cannot reach outside."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from countylab.errors import UserError
from countylab.pdf import render_pdf
from tests.pdfcheck import first_page_png, inked_share, ocr_text, page_count


@pytest.mark.needs("tesseract")
def test_chinese_text_and_an_image_are_printed() -> None:
    square = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 30, 30)).save(square, format="PNG")
    pdf = render_pdf(
        "<h1>数据授权使用协议</h1><p>青禾县民政局</p><img src='asset:chart.png' style='width:60mm'>",
        assets={"chart.png": (square.getvalue(), "image/png")},
    )
    assert pdf.startswith(b"%PDF") and page_count(pdf) == 1
    png = first_page_png(pdf)
    text = ocr_text(png)
    assert "数据授权使用协议" in text and "民政局" in text
    assert inked_share(png, (0.0, 0.1, 1.0, 0.6)) > 0.02  # the red square is drawn


@pytest.mark.parametrize(
    "src",
    ["file:///etc/passwd", "http://127.0.0.1:1/x.png", "https://example.com/x.css", "x.png", "asset:missing"],
)
def test_a_document_cannot_fetch_anything_outside(src: str) -> None:
    with pytest.raises(UserError) as refused:
        render_pdf(f"<p>x</p><img src='{src}'>")
    assert "outside resources" in str(refused.value.message_en)
    with pytest.raises(UserError):
        render_pdf(f"<style>@import url('{src}');</style><p>x</p>")
