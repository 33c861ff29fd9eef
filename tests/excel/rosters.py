"""Realistic county 花名册 files, built with openpyxl the way clerks lay them out in WPS/Excel."""

from __future__ import annotations

import datetime as dt
import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

PEOPLE = [
    ("张伟", "男", "330121195003021234", dt.date(1950, 3, 2), 76, "13800138001", "城关镇东街1号", 650.5),
    ("王芳", "女", "33012119480715222X", dt.date(1948, 7, 15), 78, "13800138002", "城关镇西街8号", 720.0),
    ("李娜", "女", "330121196201093346", dt.date(1962, 1, 9), 64, None, "青禾镇南村3组", 580.0),
    ("赵强", "男", "330121195511304451", dt.date(1955, 11, 30), 71, "13800138004", "青禾镇北村1组", 610.25),
    ("陈英", "女", "330121194409125562", dt.date(1944, 9, 12), 82, "13800138005", "城关镇东街22号", 800.0),
]
TITLE = "青禾县城关镇2026年城乡低保对象花名册"
HEADERS = ["序号", "姓名", "性别", "公民身份号码", "出生日期", "年龄", "手机", "家庭住址", "保障金额（元）"]


def roster_xlsx(people: list[tuple] | None = None, *, bad_date_at: int | None = None) -> bytes:
    """Title merged over the columns, a 填报单位 row, a two-row header (基本情况 and 联系方式 are
    groups), the data, a 合计 row, a blank row, a 制表人/审核人 row and a note."""
    people = PEOPLE if people is None else people
    wb = Workbook()
    ws = wb.active
    ws.title = "低保花名册"
    ws["A1"] = TITLE
    ws.merge_cells("A1:I1")
    ws["A1"].font = Font(bold=True, size=16)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws["A2"] = "填报单位：城关镇民政办（盖章）"
    ws["G2"] = "填报日期：2026年11月30日"
    for col, text in zip("ABCD", ["序号", "姓名", "性别", "公民身份号码"], strict=True):
        ws[f"{col}3"] = text
        ws.merge_cells(f"{col}3:{col}4")
    ws["E3"] = "基本情况"
    ws.merge_cells("E3:F3")
    ws["E4"], ws["F4"] = "出生日期", "年龄"
    ws["G3"] = "联系方式"
    ws.merge_cells("G3:H3")
    ws["G4"], ws["H4"] = "手机", "家庭住址"
    ws["I3"] = "保障金额（元）"
    ws.merge_cells("I3:I4")
    row = 5
    for i, p in enumerate(people, start=1):
        name, sex, idno, born, age, phone, addr, amount = p
        ws.append([i, name, sex, idno, "1962年13月" if bad_date_at == i else born, age, phone, addr, amount])
        ws.cell(row=row, column=5).number_format = "yyyy-mm-dd"
        row += 1
    ws.append(["合计", None, None, None, None, None, None, None, sum(p[7] for p in people)])
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=8)
    ws.append([])
    ws.append(["制表人：李明", None, None, "审核人：王芳", None, None, "联系电话：0571-1234567"])
    ws.append(["备注：保障金额按月发放"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def roster_csv_gbk() -> bytes:
    """The same roster as WPS exports it to CSV on a Chinese Windows: GBK, title and footer rows."""
    lines = [
        TITLE + ",,,,,,,,",
        "填报单位：城关镇民政办,,,,,,填报日期：2026-11-30,,",
        ",".join(HEADERS),
    ]
    for i, (name, sex, idno, born, age, phone, addr, amount) in enumerate(PEOPLE, start=1):
        lines.append(f"{i},{name},{sex},{idno},{born.isoformat()},{age},{phone or ''},{addr},{amount}")
    lines += [f"合计,,,,,,,,{sum(p[7] for p in PEOPLE)}", ",,,,,,,,", "制表人：李明,,,审核人：王芳,,,,,"]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def roster_empty_header_cell() -> bytes:
    """A one-row header with one empty header cell over real data (the 备注 column nobody named)."""
    wb = Workbook()
    ws = wb.active
    ws.append(["2026年高龄津贴发放名单"])
    ws.append(["序号", "姓名", "年龄", None, "发放金额"])
    for i, (name, _, _, _, age, _, _, amount) in enumerate(PEOPLE, start=1):
        ws.append([i, name, age, "已核实" if i % 2 else "待核实", amount])
    ws.append(["小计", None, None, None, 100])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def roster_xls() -> bytes:
    """The roster as an Excel 97–2003 .xls (WPS's default in many offices), written by xlwt:
    merged title, 填报单位 row, two-row header, dates as date cells, 合计 and 制表人 rows."""
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("低保花名册")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    ws.write_merge(0, 0, 0, 8, TITLE)
    ws.write(1, 0, "填报单位：城关镇民政办（盖章）")
    ws.write(1, 6, "填报日期：2026年11月30日")
    for col, text in enumerate(["序号", "姓名", "性别", "公民身份号码"]):
        ws.write_merge(2, 3, col, col, text)
    ws.write_merge(2, 2, 4, 5, "基本情况")
    ws.write(3, 4, "出生日期")
    ws.write(3, 5, "年龄")
    ws.write_merge(2, 2, 6, 7, "联系方式")
    ws.write(3, 6, "手机")
    ws.write(3, 7, "家庭住址")
    ws.write_merge(2, 3, 8, 8, "保障金额（元）")
    for i, (name, sex, idno, born, age, phone, addr, amount) in enumerate(PEOPLE, start=1):
        r = 3 + i
        for col, value in enumerate([i, name, sex, idno, None, age, phone, addr, amount]):
            if value is not None:
                ws.write(r, col, value)
        ws.write(r, 4, born, date_style)
    r = 4 + len(PEOPLE)
    ws.write_merge(r, r, 0, 7, "合计")
    ws.write(r, 8, sum(p[7] for p in PEOPLE))
    ws.write(r + 2, 0, "制表人：李明")
    ws.write(r + 2, 3, "审核人：王芳")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
