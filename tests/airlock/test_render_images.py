"""SVG re-serialised through an allow-list; PNG and JPEG re-encoded from quantised pixels."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from countylab.airlock.render import Limits, Refused, render

SECRET = "hidden-330102"
HEAD = (
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'width="100" height="50">'
)


def svg(body: str) -> bytes:
    return (HEAD + body + "</svg>").encode()


def test_sample_chart_keeps_its_drawing() -> None:
    body = (
        '<text x="10" y="22" font-size="15">Feature importance</text>'
        '<rect x="170" y="43" width="360.0" height="16" fill="#2f6fb0"/>'
        '<text x="162" y="55" text-anchor="end" font-size="12">age</text>'
    )
    r = render("c.svg", svg(body))
    root = ET.fromstring(r.regenerated)
    rect = root.find("{http://www.w3.org/2000/svg}rect")
    assert rect is not None and rect.attrib == {
        "x": "170", "y": "43", "width": "360", "height": "16", "fill": "#3377aa"
    }  # fmt: skip
    texts = [s for s in r.sections if s.title_en == "All text in the image"][0].rows
    assert [t[1] for t in texts] == ["Feature importance", "age"]
    assert r.sections[0].kind == "image" and r.sections[1].kind == "source"


@pytest.mark.parametrize(
    "hidden",
    [
        f"<!-- {SECRET} -->",
        f'<rect data-x="{SECRET}" x="1" y="1" width="1" height="1"/>',
        f"<metadata>{SECRET}</metadata>",
        f"<title>{SECRET}</title>",
        f"<desc>{SECRET}</desc>",
        f"<script>{SECRET}</script>",
        f'<foreignObject><p xmlns="http://www.w3.org/1999/xhtml">{SECRET}</p></foreignObject>',
        f'<image xlink:href="data:image/png;base64,{SECRET}" width="1" height="1"/>',
        f'<a href="http://x/{SECRET}"><rect x="1" y="1" width="1" height="1"/></a>',
        f'<rect onclick="{SECRET}" x="1" y="1" width="1" height="1"/>',
        f'<rect id="{SECRET}" x="1" y="1" width="1" height="1"/>',
        f'<rect class="{SECRET}" style="fill:red;-x-{SECRET}:1" x="1" y="1" width="1" height="1"/>',
        f"<style>/*{SECRET}*/</style>",
        f'<use href="http://x/{SECRET}#a"/>',
        f'<rect fill="url(http://x/{SECRET})" x="1" y="1" width="1" height="1"/>',
        f'<rect font-family="{SECRET}" x="1" y="1" width="1" height="1"/>',
        f'<rect transform="{SECRET}" x="1" y="1" width="1" height="1"/>',
        f'<g xmlns:i="http://ns.adobe.com/x" i:payload="{SECRET}"><i:blob>{SECRET}</i:blob></g>',
        f"<g>{SECRET}</g>",
        f"<?pi {SECRET}?>",
    ],
)
def test_hidden_svg_content_is_dropped(hidden: str) -> None:
    r = render("c.svg", svg(hidden + '<text x="1" y="9">可见</text>'))
    assert SECRET.encode() not in r.regenerated
    assert "可见" in r.regenerated.decode()


def test_references_follow_renamed_ids() -> None:
    body = (
        '<defs><clipPath id="clip-secret"><rect x="0" y="0" width="9" height="9"/></clipPath>'
        '<linearGradient id="grad"><stop offset="0.5" stop-color="#ffffff"/></linearGradient></defs>'
        '<rect clip-path="url(#clip-secret)" fill="url(#grad)" x="0" y="0" width="9" height="9"/>'
        '<use xlink:href="#grad"/>'
    )
    out = render("c.svg", svg(body)).regenerated.decode()
    assert 'clip-path="url(#i1)"' in out and 'fill="url(#i2)"' in out and 'href="#i2"' in out
    assert "secret" not in out


def test_numbers_are_rounded_and_colours_quantised() -> None:
    out = render("c.svg", svg('<path d="M10.123456 5L7.000001 3.5Z" stroke="rgb(13,14,255)"/>')).regenerated
    assert b'd="M10.1 5L7 3.5Z"' in out and b'stroke="#1111ff"' in out


def test_svg_with_entities_is_refused() -> None:
    with pytest.raises(Refused) as err:
        render("c.svg", b'<!DOCTYPE svg [<!ENTITY a "x">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>')
    assert err.value.rule == "xml_dtd"


def _noise(mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(1)
    channels = len(mode)
    return Image.fromarray(rng.integers(0, 256, size=(32, 32, channels), dtype=np.uint8).squeeze(), mode)


def test_png_low_bits_are_recomputed_and_metadata_dropped() -> None:
    info = PngInfo()
    info.add_text("k", SECRET)
    buf = io.BytesIO()
    img = _noise()
    img.save(buf, format="PNG", pnginfo=info)
    r = render("p.png", buf.getvalue() + SECRET.encode())
    out = np.asarray(Image.open(io.BytesIO(r.regenerated)))
    src = np.asarray(img).astype(int)
    levels = {round(round(v * 15 / 255) * 255 / 15) for v in range(256)}
    assert set(np.unique(out)) <= levels  # 16 levels: the four low bits carry nothing
    assert np.abs(out.astype(int) - src).max() <= 9
    assert SECRET.encode() not in r.regenerated
    removed = {row[1] for s in r.sections if s.kind == "facts" for row in s.rows}
    assert "tEXt:k" in removed and f"{len(SECRET)} bytes after IEND" in removed


def test_palette_and_animated_pngs_release_the_first_frame() -> None:
    frames = [Image.new("P", (8, 8), i) for i in (1, 2, 3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:])
    r = render("a.png", buf.getvalue())
    img = Image.open(io.BytesIO(r.regenerated))
    assert getattr(img, "n_frames", 1) == 1 and img.mode == "RGB"
    assert any(row[0] == "frames" for s in r.sections for row in s.rows)


def test_transparent_pixels_lose_their_colour() -> None:
    img = Image.new("RGBA", (4, 4), (200, 100, 50, 0))
    img.putpixel((0, 0), (200, 100, 50, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    out = np.asarray(Image.open(io.BytesIO(render("t.png", buf.getvalue()).regenerated)))
    assert out[1, 1].tolist() == [0, 0, 0, 0] and out[0, 0, 3] == 255


def test_jpeg_is_reencoded_without_exif() -> None:
    exif = Image.Exif()
    exif[0x013B] = SECRET
    buf = io.BytesIO()
    _noise().save(buf, format="JPEG", exif=exif, comment=SECRET.encode())
    r = render("p.jpg", buf.getvalue())
    assert SECRET.encode() not in r.regenerated and r.regenerated.startswith(b"\xff\xd8")
    assert not Image.open(io.BytesIO(r.regenerated)).getexif()
    removed = {row[1] for s in r.sections if s.kind == "facts" for row in s.rows}
    assert {"APP1", "COM (comment)"} <= removed


def test_pixel_bombs_and_garbage_are_refused() -> None:
    buf = io.BytesIO()
    Image.new("1", (3000, 3000)).save(buf, format="PNG")
    with pytest.raises(Refused) as err:
        render("b.png", buf.getvalue(), Limits(max_pixels=1_000_000))
    assert err.value.rule == "image_pixels"
    with pytest.raises(Refused) as err:
        render("b.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert err.value.rule == "image_undecodable"
