"""export.py: the files open in the tools county staff use, with Chinese intact and no formulas."""

from __future__ import annotations

import csv
import datetime as dt
import io
from urllib.parse import unquote

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from countylab.export import content_disposition, guard_text, table_to_csv, table_to_xlsx


def _table() -> pa.Table:
    return pa.table(
        {
            "xm": pa.array(["张三", "=SUM(A1)", None, '李"四,\n']),
            "nl": pa.array([34, -3, None, 0], pa.int64()),
            "je": pa.array([12.5, None, 0.1, -7.25]),
            "csrq": pa.array([dt.date(1990, 1, 2), dt.date(2000, 12, 31), None, dt.date(1958, 6, 1)]),
            "sf": pa.array([True, False, None, True]),
        }
    )


HEADERS = {"xm": "姓名", "nl": "年龄", "je": "金额", "csrq": "出生日期"}


def test_csv_has_bom_crlf_and_chinese_headers() -> None:
    data = table_to_csv(_table(), HEADERS)
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.split("\r\n")[0] == "姓名,年龄,金额,出生日期,sf"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1] == ["张三", "34", "12.5", "1990-01-02", "是"]
    assert rows[2][0] == "'=SUM(A1)" and rows[2][1] == "-3"  # text guarded, numbers not
    assert rows[3] == ["", "", "0.1", "", ""]
    assert rows[4][0] == '李"四,\n'  # RFC 4180 quoting round-trips


def test_xlsx_typed_cells_frozen_bold_header_title_and_notes() -> None:
    data = table_to_xlsx(
        _table(),
        HEADERS,
        sheet="常住人口",
        title="常住人口信息（模拟数据）",
        notes=["模拟数据，不含真实个人信息"],
    )
    wb = load_workbook(io.BytesIO(data))
    ws = wb["常住人口"]
    assert ws["A1"].value == "常住人口信息（模拟数据）"
    assert [c.value for c in ws[2]] == ["姓名", "年龄", "金额", "出生日期", "sf"]
    assert ws["A2"].font.bold and ws.freeze_panes == "A3"
    assert ws["A3"].value == "张三" and ws["B3"].value == 34 and ws["C3"].value == 12.5
    assert ws["D3"].value == dt.datetime(1990, 1, 2) and ws["D3"].is_date
    assert ws["A4"].value == "'=SUM(A1)" and ws["A4"].data_type == "s"
    assert ws["B4"].value == -3
    assert ws["E3"].value is True
    assert ws.cell(row=8, column=1).value == "模拟数据，不含真实个人信息"
    assert ws.column_dimensions["D"].width >= 10


def test_content_disposition_chinese_name() -> None:
    value = content_disposition("常住人口信息-模拟数据-2026-12-05.xlsx")
    assert value.startswith('attachment; filename="')
    assert value.isascii()
    star = value.split("filename*=UTF-8''")[1]
    assert unquote(star) == "常住人口信息-模拟数据-2026-12-05.xlsx"
    assert "/" not in unquote(content_disposition("a/b:c.csv").split("''")[1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=1, max_size=8))
def test_text_round_trips_both_formats(values: list[str | None]) -> None:
    """Any text (Chinese, quotes, newlines) comes back as written, apart from the formula guard."""
    table = pa.table({"列": pa.array(values, pa.string())})
    expected = [guard_text(v) if v else None for v in values]
    rows = list(csv.reader(io.StringIO(table_to_csv(table).decode("utf-8-sig"), newline="")))
    assert [r[0] if r else "" for r in rows[1:]] == [e or "" for e in expected]
    ws = load_workbook(io.BytesIO(table_to_xlsx(table))).active
    assert ws is not None
    got = [ws.cell(row=i + 2, column=1).value for i in range(len(values))]
    # openpyxl drops characters XML cannot hold; compare only where the text is XML-safe
    for g, e in zip(got, expected, strict=True):
        e = e.replace("\r\n", "\n").replace("\r", "\n") if e else e
        if e is None or e == "":
            assert g in (None, "")
        elif all(ch in "\t\n" or ord(ch) >= 32 for ch in e):
            assert g == e
        else:
            assert isinstance(g, str) and "\ufffd" in g
