"""XLSX: every sheet, hidden rows and columns, comments, properties and names are shown; the
release is a values-only workbook; zip bombs are refused from the central directory."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.workbook.defined_name import DefinedName

from countylab.airlock.render import Limits, Refused, render
from countylab.airlock.render.zipguard import open_zip

SECRET = "hidden-330102"


def book(build: Any = None) -> bytes:
    wb = Workbook()
    wb.active.title = "表"
    for row in (["village", "residents"], ["青禾村", 40], ["东岭村", 41.5]):
        wb.active.append(row)
    if build is not None:
        build(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def facts(r: Any) -> dict[str, str]:
    return {row[0]: row[1] for s in r.sections if s.kind == "facts" for row in s.rows}


def test_values_survive_and_nothing_else() -> None:
    def extra(wb: Any) -> None:
        wb.active["A2"].comment = Comment(SECRET + "-comment", "dev")
        wb.properties.keywords = SECRET + "-keywords"
        wb.defined_names.add(DefinedName("n", attr_text=f'"{SECRET}-name"'))
        wb.active["C1"] = "=1+1"

    r = render("t.xlsx", book(extra))
    shown = facts(r)
    assert shown["comment: 表!A2 (dev)"] == SECRET + "-comment"
    assert shown["property: docProps/core.xml keywords"] == SECRET + "-keywords"
    assert shown["defined name: n"] == f'"{SECRET}-name"'
    assert shown["formula: 表!C1"] == "=1+1"
    with zipfile.ZipFile(io.BytesIO(r.regenerated)) as z:
        everything = b"".join(z.read(n) for n in z.namelist())
        assert not [n for n in z.namelist() if "comment" in n or "drawing" in n]
    assert SECRET.encode() not in everything and b"<f>" not in everything
    ws = load_workbook(io.BytesIO(r.regenerated)).active
    assert [list(row) for row in ws.values] == [["village", "residents"], ["青禾村", 40], ["东岭村", 41.5]]
    assert render("t.xlsx", book(extra)).regenerated == r.regenerated  # deterministic bytes


def test_hidden_rows_columns_and_sheets_are_marked_and_released_visible() -> None:
    def hide(wb: Any) -> None:
        wb.active.row_dimensions[3].hidden = True
        wb.active.column_dimensions["B"].hidden = True
        other = wb.create_sheet("raw")
        other.append([SECRET])
        other.sheet_state = "veryHidden"

    r = render("t.xlsx", book(hide))
    first, raw = r.sections[0], r.sections[1]
    assert first.marks == {2: "hidden_row"} and first.header_marks == {1: "hidden_col"}
    assert raw.state == "veryHidden" and raw.rows == [[SECRET]]
    assert any(n.code == "hidden_made_visible" for n in r.notes)
    wb = load_workbook(io.BytesIO(r.regenerated))
    assert [ws.sheet_state for ws in wb.worksheets] == ["visible", "visible"]
    assert not any(d.hidden for d in wb.active.row_dimensions.values())
    assert not any(d.hidden for d in wb.active.column_dimensions.values())


def test_text_cells_are_neutralised_and_shown_as_released() -> None:
    def cells(wb: Any) -> None:
        wb.active["A4"] = "@cmd"
        wb.active["A4"].data_type = "s"

    r = render("t.xlsx", book(cells))
    assert r.sections[0].rows[3][0] == "'@cmd"
    assert load_workbook(io.BytesIO(r.regenerated)).active["A4"].value == "'@cmd"


def _with(data: bytes, member: str, body: bytes, *, drop: str = "") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename not in (member, drop):
                dst.writestr(info.filename, src.read(info.filename))
        dst.writestr(member, body)
    return out.getvalue()


@pytest.mark.parametrize("member", ["customXml/item1.xml", "xl/vbaProject.bin", "xl/embeddings/x.bin"])
def test_extra_members_are_refused_and_named(member: str) -> None:
    with pytest.raises(Refused) as err:
        render("t.xlsx", _with(book(), member, SECRET.encode()))
    assert err.value.rule == "xlsx_extra_member" and member in err.value.en


def test_dtd_in_a_part_is_refused() -> None:
    with zipfile.ZipFile(io.BytesIO(book())) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + sheet.split(b"?>")[-1]
    with pytest.raises(Refused) as err:
        render("t.xlsx", _with(book(), "xl/worksheets/sheet1.xml", evil))
    assert err.value.rule == "xml_dtd"


def _bomb(cells: int) -> bytes:
    row = "<c><v>1</v></c>" * 100
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        + f"<row>{row}</row>" * (cells // 100)
        + "</sheetData></worksheet>"
    ).encode()
    return _with(book(), "xl/worksheets/sheet1.xml", sheet)


def _garbled(data: bytes, member: str) -> bytes:
    """The archive with ``member``'s compressed bytes overwritten: it can be judged only from the
    central directory, and any attempt to inflate it fails."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(member)
    start = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[start + 26 : start + 30])
    body = start + 30 + name_len + extra_len
    out = bytearray(data)
    out[body : body + info.compress_size] = b"\xff" * info.compress_size  # a reserved deflate block
    return bytes(out)


def test_a_million_cell_zip_bomb_is_refused_from_the_directory() -> None:
    data = _bomb(1_000_000)
    assert len(data) < 100_000
    with pytest.raises(Refused) as err:
        render("t.xlsx", data)
    assert err.value.rule == "zip_ratio"
    # from the directory, before inflating anything: a bomb whose sheet cannot be inflated at all
    # gets the same refusal (not a decompression error)
    garbled = _garbled(data, "xl/worksheets/sheet1.xml")
    with pytest.raises((zipfile.BadZipFile, zlib.error)), zipfile.ZipFile(io.BytesIO(garbled)) as zf:
        zf.read("xl/worksheets/sheet1.xml")
    with pytest.raises(Refused) as err:
        render("t.xlsx", garbled)
    assert err.value.rule == "zip_ratio"


def test_cell_cap_stops_a_parse_that_passes_the_ratio() -> None:
    with pytest.raises(Refused) as err:
        render("t.xlsx", _bomb(300_000), Limits(zip_ratio=10**6))
    assert err.value.rule == "too_many_cells"


def test_zip_directory_limits() -> None:
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as z:
        for i in range(300):
            z.writestr(f"f{i}", b"")
    with pytest.raises(Refused) as err:
        open_zip(many.getvalue(), Limits())
    assert err.value.rule == "zip_entries"
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a", b"0" * 3_000_000)
    with pytest.raises(Refused) as err:
        open_zip(big.getvalue(), Limits(zip_total_bytes=2_000_000))
    assert err.value.rule == "zip_size"
    with pytest.raises(Refused) as err:
        open_zip(big.getvalue(), Limits())
    assert err.value.rule == "zip_ratio"


def test_many_comments_are_paged_like_everything_else() -> None:
    from countylab.airlock.render.pages import page_view

    def comments(wb: Any) -> None:
        for r in range(1, 301):
            wb.active.cell(row=r + 3, column=1, value=r).comment = Comment(f"note {r}", "dev")

    rendering = render("t.xlsx", book(comments))
    pages = [page_view(rendering, n) for n in range(1, len(rendering.pages()) + 1)]
    facts_rows = [
        row["cells"] for p in pages if p["section"]["kind"] == "facts" for row in p["section"]["rows"]
    ]
    assert sum(1 for k, _ in facts_rows if k.startswith("comment:")) == 300
    assert max(len(p["section"]["rows"]) for p in pages) <= 200


def test_rows_and_columns_too_small_to_see_are_marked_hidden() -> None:
    def squeeze(wb: Any) -> None:
        wb.active.row_dimensions[2].height = 0.5
        wb.active.column_dimensions["B"].width = 0.1

    r = render("t.xlsx", book(squeeze))
    assert r.sections[0].marks == {1: "hidden_row"} and r.sections[0].header_marks == {1: "hidden_col"}
