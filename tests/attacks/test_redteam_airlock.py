"""Red team against the airlock's regeneration: variants the hidden-content suite did not cover.

Every case is a real release request through the API, read page by page by two independent
checkers, approved and downloaded (:func:`tests.attacks.hidden_content_lab.attempt`).  The
property is the airlock's promise: what leaves is what a person was shown.  A character that
renders as nothing, or a choice between two glyphs that look the same, is a channel no
checker sees; such files are either rewritten without the choice or refused with the rule.

Findings fixed here (issue 10, item 3):

* invisible characters outside the format category (U+034F combining grapheme joiner, Hangul
  fillers, Mongolian/Khmer invisible marks, the blank braille pattern) survived normalisation;
* SVG text was never normalised at all (a zero-width space inside ``<text>`` left as-is);
* JSON escapes (``\\u200b``, ``\\u0430``) decoded after normalisation and were released raw;
* whole words in look-alike letters (Cyrillic ``а`` standing alone, Armenian ``օ`` inside a
  Latin word, mathematical bold letters) passed the mixed-script rule;
* a tab and the spaces up to the next tab stop look the same in a preview; full-width digits
  look like ASCII ones.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.airlock_e2e.conftest import World, xlsx_bytes
from tests.attacks.hidden_content_lab import Outcome, attempt, hidden_content_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from hidden_content_world(tmp_path_factory)


# Characters that render as nothing (or as a blank) but are not Unicode format characters.
INVISIBLE = ["\u034f", "\u115f", "\u1160", "\u17b4", "\u180b", "\u2800", "\u3164", "\uffa0"]


def _book(cell: str) -> bytes:
    def build(wb: Any) -> None:
        wb.active.append(["village", "note"])
        wb.active.append(["青禾村", cell])

    return xlsx_bytes(build)


def _svg(text: str) -> bytes:
    body = text.replace("&", "&amp;").replace("<", "&lt;")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        f'<text x="10" y="50">{body}</text></svg>'
    ).encode()


def _json_escaped(text: str) -> bytes:
    return json.dumps({"note": text}, ensure_ascii=True).encode()  # every non-ASCII as \\uXXXX


CARRIERS: dict[str, Callable[[str], tuple[str, bytes]]] = {
    "txt": lambda t: ("notes.txt", f"结果说明 {t}\n".encode()),
    "csv": lambda t: ("t.csv", f"village,note\n青禾村,{t}\n".encode()),
    "xlsx": lambda t: ("t.xlsx", _book(t)),
    "svg": lambda t: ("chart.svg", _svg(t)),
    "json": lambda t: ("m.json", _json_escaped(t)),
}


def _released_text(out: Outcome, name: str) -> str:
    data = out.downloads[name]
    if name.endswith(".xlsx"):
        import io
        import zipfile

        z = zipfile.ZipFile(io.BytesIO(data))
        return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return data.decode()


def _refused(out: Outcome, name: str, *rules: str) -> None:
    assert out.state == "returned" and not out.downloads, out.state
    assert out.rules(name) & set(rules), out.rules(name)


# -- invisible characters ---------------------------------------------------------------------
@pytest.mark.parametrize("carrier", sorted(CARRIERS))
@pytest.mark.parametrize("mark", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_characters_never_leave(lab_world: World, carrier: str, mark: str) -> None:
    # one bit per gap between letters: a mark or none; the page shows "ZHANGWEI" either way
    payload = "".join(ch + (mark if i % 2 else "") for i, ch in enumerate("ZHANGWEI"))
    name, data = CARRIERS[carrier](payload)
    out = attempt(lab_world, {name: data})
    assert out.state == "released", out.request
    released = _released_text(out, name)
    assert mark not in released
    assert "ZHANGWEI" in released  # the visible text still leaves


def test_zero_width_space_inside_svg_text_never_leaves(lab_world: World) -> None:
    out = attempt(lab_world, {"chart.svg": _svg("人\u200b数\u200d")})
    released = out.downloads["chart.svg"].decode()
    assert "人数" in released
    assert not any(unicodedata.category(ch) == "Cf" for ch in released)


@pytest.mark.parametrize(
    "escape", ["\u200b", "\u202e", "\U000e0041", "\u00ad"], ids=lambda c: f"U+{ord(c):04X}"
)
def test_json_escapes_are_normalised_like_raw_text(lab_world: World, escape: str) -> None:
    out = attempt(lab_world, {"m.json": _json_escaped(f"Z{escape}H{escape}ANG")})
    released = out.downloads["m.json"].decode()
    assert escape not in released and json.loads(released) == {"note": "ZHANG"}


# -- look-alike letters -----------------------------------------------------------------------
LOOKALIKE_TEXTS = {
    "cyrillic_word_alone": "the rate is а ratio",  # Cyrillic а as a whole word
    "cyrillic_word": "сор",  # every letter Cyrillic, reads as Latin "cop"
    "armenian_in_latin": "hellօ world",  # Armenian օ inside a Latin word
    "math_bold": "𝐚ge group",  # mathematical bold a (NFC keeps it)
    "greek_omicron_word": "ο",  # Greek small omicron alone
    "katakana_for_han": "人ロ 40",  # katakana ロ for 口 (人口: population)
    "katakana_ka_for_han": "劳动カ",  # katakana カ for 力
}


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
@pytest.mark.parametrize("case", sorted(LOOKALIKE_TEXTS))
def test_words_in_lookalike_letters_are_refused(lab_world: World, carrier: str, case: str) -> None:
    name, data = CARRIERS[carrier](LOOKALIKE_TEXTS[case])
    _refused(attempt(lab_world, {name: data}), name, "lookalike")


@pytest.mark.parametrize(
    "text",
    ["模型 χ2 检验 p<0.05", "σ = 1.2, μ = 3", "二〇二三年 发病率 α=0.05", "Москва и область"],
)
def test_honest_text_with_greek_symbols_cjk_and_russian_is_released(lab_world: World, text: str) -> None:
    out = attempt(lab_world, {"notes.txt": f"{text}\n".encode()})
    assert out.state == "released", out.request
    assert out.downloads["notes.txt"].decode() == f"{text}\n"


# -- choices that look the same ---------------------------------------------------------------
def test_tab_or_spaces_to_the_tab_stop_leave_as_the_same_spaces(lab_world: World) -> None:
    tab = attempt(lab_world, {"a.txt": b"ab\tc\n"})
    spaces = attempt(lab_world, {"a.txt": b"ab      c\n"})
    assert tab.downloads["a.txt"] == spaces.downloads["a.txt"] == b"ab      c\n"


@pytest.mark.parametrize("carrier", ["csv", "xlsx"])
def test_tab_inside_a_cell_leaves_as_a_space(lab_world: World, carrier: str) -> None:
    name, data = CARRIERS[carrier]('"a\tb"' if carrier == "csv" else "a\tb")
    out = attempt(lab_world, {name: data})
    released = _released_text(out, name)
    assert "\t" not in released and "a b" in released


def test_fullwidth_digits_leave_as_ascii(lab_world: World) -> None:
    out = attempt(lab_world, {"notes.txt": "人数 １２３ 人，ＡＢ组\n".encode()})
    assert out.downloads["notes.txt"].decode() == "人数 123 人，AB组\n"


# -- images: opacity -----------------------------------------------------------------------------
def _png(pixels: list[tuple[int, int, int, int]]) -> bytes:
    import io

    from PIL import Image

    img = Image.new("RGBA", (len(pixels), 4), (255, 255, 255, 255))
    for x, px in enumerate(pixels):
        img.putpixel((x, 0), px)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _rgba(data: bytes) -> Any:
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).astype(int)


PAYLOAD_BYTES = b"330102195001011234ZHANGWEI"


@pytest.mark.parametrize("alpha", [1, 4, 60, 127])
def test_nearly_transparent_pixels_carry_no_colour(lab_world: World, alpha: int) -> None:
    # each pixel is (almost) invisible on the page, yet held three payload bytes in its colour
    raw = PAYLOAD_BYTES + b"\0" * (-len(PAYLOAD_BYTES) % 3)
    pixels = [(raw[i], raw[i + 1], raw[i + 2], alpha) for i in range(0, len(raw), 3)]
    out = attempt(lab_world, {"chart.png": _png(pixels)})
    rgba = _rgba(out.downloads["chart.png"])
    assert not rgba[0, : len(pixels)].any()  # transparent black: nothing to read


@pytest.mark.parametrize("alpha", [128, 200, 251, 254])
def test_opacity_levels_that_look_alike_leave_as_one(lab_world: World, alpha: int) -> None:
    out = attempt(lab_world, {"chart.png": _png([(40, 80, 120, alpha), (40, 80, 120, 255)])})
    rgba = _rgba(out.downloads["chart.png"])
    assert rgba[0, 0].tolist() == rgba[0, 1].tolist() and rgba[0, 0, 3] == 255


# -- XLSX sheet names --------------------------------------------------------------------------
def _titled(title: str) -> bytes:
    def build(wb: Any) -> None:
        wb.active.title = title
        wb.active.append(["village", "residents"])
        wb.active.append(["青禾村", 40])

    return xlsx_bytes(build)


@pytest.mark.parametrize("mark", ["\u200b", "\u034f", "\u3164", "\u2800"], ids=lambda c: f"U+{ord(c):04X}")
def test_sheet_names_carry_no_invisible_characters(lab_world: World, mark: str) -> None:
    out = attempt(lab_world, {"t.xlsx": _titled(f"R{mark}e{mark}sults")})
    released = _released_text(out, "t.xlsx")
    assert mark not in released and 'name="Results"' in released
    assert "Results" in out.preview_text("t.xlsx") or any(
        "Results" in page["section"]["title_en"] for page in out.previews["t.xlsx"]
    )


def test_sheet_name_in_lookalike_letters_is_refused(lab_world: World) -> None:
    _refused(
        attempt(lab_world, {"t.xlsx": _titled("Rеsults")}), "t.xlsx", "lookalike", "mixed_script"
    )  # Cyrillic е


# -- SVG: elements that draw nothing -----------------------------------------------------------
SVG_HIDDEN = {
    "opacity_zero": '<rect x="3301" y="219" width="5001" height="1011" opacity="0"/>',
    "no_fill_no_stroke": '<path d="M3301 219 L5001 1011" fill="none" stroke="none"/>',
    "inherited_no_paint": '<g fill="none"><circle cx="3301" cy="219" r="5001"/></g>',
    "zero_stroke_width": '<line x1="3301" y1="219" x2="5001" y2="1011" stroke="red" stroke-width="0"/>',
    "transparent_text": '<text x="3301" y="219" fill-opacity="0">5001</text>',
    "unused_definition": '<defs><path id="p" d="M3301 219 L5001 1011"/></defs>',
    "group_opacity_zero": '<g opacity="0"><rect x="3301" y="219" width="5001" height="1011" fill="red"/></g>',
}


@pytest.mark.parametrize("case", sorted(SVG_HIDDEN))
def test_svg_elements_that_draw_nothing_do_not_leave(lab_world: World, case: str) -> None:
    body = SVG_HIDDEN[case] + '<rect x="10" y="10" width="20" height="20" fill="#336699"/>'
    data = f'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">{body}</svg>'.encode()
    out = attempt(lab_world, {"chart.svg": data})
    released = out.downloads["chart.svg"].decode()
    assert "3301" not in released and "5001" not in released, released
    assert 'fill="#336699"' in released  # the visible square still leaves (colour quantised)
    assert "invisible" in out.preview_text("chart.svg") or "unused" in out.preview_text("chart.svg")


def test_svg_definitions_in_use_and_clip_paths_are_kept(lab_world: World) -> None:
    body = (
        '<defs><clipPath id="c"><rect width="50" height="50" fill="none"/></clipPath>'
        '<path id="m" d="M0 0 L4 4" stroke="black"/></defs>'
        '<rect x="1" y="1" width="90" height="90" fill="red" clip-path="url(#c)"/>'
        '<use href="#m" x="20" y="20"/>'
    )
    data = f'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">{body}</svg>'.encode()
    released = attempt(lab_world, {"chart.svg": data}).downloads["chart.svg"].decode()
    assert '<rect fill="none" height="50" width="50"/>' in released
    assert 'd="M0 0 L4 4"' in released and 'href="#i2"' in released


@pytest.mark.parametrize("carrier", ["txt", "csv", "svg"])
def test_kangxi_radicals_leave_as_the_ideographs_they_look_like(lab_world: World, carrier: str) -> None:
    name, data = CARRIERS[carrier]("⼈口 40")  # U+2F08 KANGXI RADICAL MAN, then 口
    out = attempt(lab_world, {name: data})
    released = _released_text(out, name)
    assert "\u2f08" not in released and "人口 40" in released
