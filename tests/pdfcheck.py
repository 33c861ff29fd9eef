"""Checks of printed PDFs shared by the agreement and brief tests: the first page as an image
(pypdfium2), its text read back by Tesseract (Chinese), and a measure of how much of an area
is drawn (a chart is there, not a blank box)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from countylab.airlock.checks.ocr import find_tesseract


def first_page_png(pdf: bytes, *, scale: float = 2.0) -> bytes:
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=scale).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def page_count(pdf: bytes) -> int:
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()


def ocr_text(png: bytes) -> str:
    """The text Tesseract reads on the image, spaces removed (it puts spaces between CJK glyphs)."""
    engine = find_tesseract("chi_sim+eng")
    assert engine is not None, "Tesseract with chi_sim is needed (tests/capabilities.py: tesseract)"
    return "".join(engine(png).split())


def inked_share(png: bytes, box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)) -> float:
    """Share of non-white pixels inside ``box`` (fractions of width/height: left, top, right, bottom)."""
    image = Image.open(io.BytesIO(png)).convert("L")
    w, h = image.size
    crop = image.crop((int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)))
    pixels = np.asarray(crop)
    return float((pixels < 200).mean()) if pixels.size else 0.0


def colours(png: bytes) -> int:
    """How many distinct colours the page holds (a chart adds colours a text page has not)."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB").resize((300, 424)))
    return len(np.unique(image.reshape(-1, 3), axis=0))
