"""Text, CSV and JSON: shown whole, normalised, rewritten from the parsed content."""

from __future__ import annotations

import base64

import pytest

from countylab.airlock.render import Limits, Refused, render
from countylab.airlock.render.pages import page_view
from countylab.airlock.render.text import neutralise, normalise


def test_csv_is_written_from_its_cells() -> None:
    r = render("t.csv", b'a,b\n"x, y",1\r\n  z  ,"2"\n')
    assert r.regenerated == b'a,b\n"x, y",1\nz,2\n'
    assert r.sections[0].rows == [["a", "b"], ["x, y", "1"], ["z", "2"]]
    assert r.sections[0].numbers == [1, 2, 3]


def test_gb18030_becomes_utf8() -> None:
    r = render("t.csv", "村,人数\n青禾村,40\n".encode("gb18030"))
    assert r.regenerated == "村,人数\n青禾村,40\n".encode()


def test_tsv_keeps_its_delimiter() -> None:
    assert render("t.tsv", b"a\tb\n1\t2\n").regenerated == b"a\tb\n1\t2\n"


@pytest.mark.parametrize(
    ("cell", "out"),
    [("=SUM(A1)", "'=SUM(A1)"), ("+cmd", "'+cmd"), ("-x", "'-x"), ("@a", "'@a"), ("-5", "-5"),
     ("+3.5", "+3.5"), ("-1e3", "-1e3"), ("12%", "12%"), ("ok", "ok")],
)  # fmt: skip
def test_formulas_are_neutralised_numbers_are_not(cell: str, out: str) -> None:
    assert neutralise(cell) == out


def test_formula_cells_in_a_csv_are_released_neutralised() -> None:
    r = render("t.csv", b'a,b\n=HYPERLINK("http://x"),-2\n')
    assert r.regenerated == b'a,b\n"\'=HYPERLINK(""http://x"")",-2\n'
    assert any(n.code == "formula_neutralised" for n in r.notes)


def test_unparsable_csv_is_refused() -> None:
    with pytest.raises(Refused) as err:
        render("t.csv", b'a,b\n"open,1\nx"y,2\n')
    assert err.value.rule == "unparsable"


def test_normalise_removes_controls_and_invisible_characters() -> None:
    text, removed = normalise("a\u200bb\u202e c \r\nd\x1b\x00e\t\n\n\n")
    assert text == "ab c\nde\n" and removed == 4


def test_text_is_shown_whole_in_pages() -> None:
    body = "".join(f"line {i}\n" for i in range(1, 1001))
    r = render("run.log", body.encode())
    assert r.regenerated == body.encode()
    pages = r.pages(200)
    assert len(pages) == 5
    last = page_view(r, 5, 200)["section"]["rows"]
    assert last[-1] == {"number": 1000, "cells": ["line 1000"], "mark": ""}
    shown = [row["cells"][0] for n in range(1, 6) for row in page_view(r, n, 200)["section"]["rows"]]
    assert "\n".join(shown) + "\n" == body


@pytest.mark.parametrize("wrap", [0, 64, 76])
def test_base64_blobs_are_refused_also_when_wrapped(wrap: int) -> None:
    blob = base64.b64encode(bytes(range(256)) * 2).decode()
    if wrap:
        blob = "\n".join(blob[i : i + wrap] for i in range(0, len(blob), wrap))
    with pytest.raises(Refused) as err:
        render("run.log", f"start\n{blob}\nend\n".encode())
    assert err.value.rule == "encoded_blob"


def test_short_encoded_runs_are_marked_not_refused() -> None:
    digest = "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    r = render("run.log", f"model saved\n{digest}\n".encode())
    assert r.sections[0].marks == {1: "encoded:64"}


def test_too_many_encoded_characters_in_total_are_refused() -> None:
    lines = "".join(
        f"{i} {'ab12CD34ef56GH78ij90KL12mn34OP56qr78ST90uv12WX34yz56AB78cd90EF'}\n" for i in range(20)
    )
    with pytest.raises(Refused) as err:
        render("run.log", lines.encode())
    assert err.value.rule == "encoded_blob"


def test_long_lines_and_binary_are_refused() -> None:
    with pytest.raises(Refused) as err:
        render("a.txt", ("x " * 20_000).encode())
    assert err.value.rule == "long_line"
    with pytest.raises(Refused) as err:
        render("a.txt", b"abc\x00def")
    assert err.value.rule == "binary"


def test_json_is_reformatted_and_duplicates_refused() -> None:
    r = render("m.json", b'{"rmse":1.5,"n":[1,2]}')
    assert r.regenerated == b'{\n  "rmse": 1.5,\n  "n": [\n    1,\n    2\n  ]\n}\n'
    with pytest.raises(Refused) as err:
        render("m.json", b'{"a": "hidden", "a": 1}')
    assert err.value.rule == "json_duplicate_key"
    with pytest.raises(Refused) as err:
        render("m.json", b"[" * 100_000 + b"]" * 100_000)
    assert err.value.rule == "unparsable"


@pytest.mark.parametrize(
    ("name", "data", "rule"),
    [
        ("a.pdf", b"%PDF-1.4", "unknown_format"),
        ("a.bin", b"\x01\x02", "unknown_format"),
        ("a.csv", b"PK\x03\x04" + b"\0" * 30, "archive"),
        ("a.xlsx", b"PK\x05\x06" + b"\0" * 18, "unparsable"),
    ],
)
def test_formats_without_a_complete_preview_are_refused(name: str, data: bytes, rule: str) -> None:
    with pytest.raises(Refused) as err:
        render(name, data)
    assert err.value.rule == rule


def test_size_limit() -> None:
    with pytest.raises(Refused) as err:
        render("a.txt", b"x\n" * 100, Limits(max_bytes=50))
    assert err.value.rule == "too_large"


def test_long_words_paths_and_numbers_are_not_encoded_data() -> None:
    text = (
        "feature_importance_permutation_mean_decrease_by_village_and_age_band\n"
        "/work/venv/lib/python3.11/site-packages/sklearn/linear_model/_base.py\n"
        "population 1234567890123456789012345678901234567890123\n"
    )
    r = render("run.log", text.encode())
    assert r.sections[0].marks == {}


def test_space_variants_and_variation_selectors_carry_nothing() -> None:
    text, removed = normalise("a\u00a0b\u2009c\u3000d\ufe0fe\U000e0101f\ue000\n")
    assert text == "a b c\u3000def\n" and removed == 3


@pytest.mark.parametrize("word", ["p\u0430ssword", "Ne\u03bfn", "\u0441at"])
def test_look_alike_letters_in_a_word_are_refused(word: str) -> None:
    with pytest.raises(Refused) as err:
        render("a.txt", f"ok {word}\n".encode())
    assert err.value.rule == "mixed_script"


def test_greek_and_cyrillic_words_and_micro_are_fine() -> None:
    r = render("a.txt", "took 35μs, α=0.05, Москва, λ\n".encode())
    assert r.regenerated.decode() == "took 35μs, α=0.05, Москва, λ\n"
