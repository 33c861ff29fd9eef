from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

from openpyxl import Workbook

from countylab.airlock.checks import CheckContext, CheckStatus, OutputFile, run_checks, table_format

MakeFile = Callable[[str, bytes | str], OutputFile]


def workbook(hidden: bool = False, formula: bool = False) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "结果"
    ws.append(["村", "人数"])
    ws.append(["东村", 120])
    ws.append(["西村", 85])
    if formula:
        ws.append(["合计", "=SUM(B2:B3)"])
    if hidden:
        secret = wb.create_sheet("明细")
        secret.append(["姓名", "身份证号"])
        secret.sheet_state = "hidden"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr(name, content)
    return buf.getvalue()


def reasons(result_details: dict[str, object]) -> set[str]:
    problems = result_details["problems"]
    assert isinstance(problems, list)
    return {p["reason"] for p in problems}


def test_clean_csv_and_xlsx_pass(make_file: MakeFile) -> None:
    for f in (make_file("t.csv", '村,人数\n东村,120\n"西村, 北",85\n'), make_file("t.xlsx", workbook())):
        result = table_format.run(f, CheckContext())
        assert result.status is CheckStatus.passed, result.messages_en


def test_malformed_csv_row_fails_with_its_line(make_file: MakeFile) -> None:
    result = table_format.run(
        make_file("t.csv", "村,人数\n东村,120\n西村,85,extra\n南村,230\n"), CheckContext()
    )
    assert result.status is CheckStatus.fail
    assert result.details["problems"] == [{"reason": "malformed_row", "line": 3, "sheet": None, "cell": None}]
    assert any("line 3" in m for m in result.messages_en)


def test_broken_quote_fails(make_file: MakeFile) -> None:
    result = table_format.run(make_file("t.csv", '村,人数\n东村,120\n"西村,85\n'), CheckContext())
    assert result.status is CheckStatus.fail


def test_hidden_sheet_fails(make_file: MakeFile) -> None:
    result = table_format.run(make_file("t.xlsx", workbook(hidden=True)), CheckContext())
    assert result.status is CheckStatus.fail
    assert reasons(dict(result.details)) == {"hidden_sheet"}
    assert any("明细" in m for m in result.messages_zh)


def test_formula_fails_with_its_cell(make_file: MakeFile) -> None:
    result = table_format.run(make_file("t.xlsx", workbook(formula=True)), CheckContext())
    assert result.status is CheckStatus.fail
    assert result.details["problems"][0]["cell"] == "B4"


def test_macros_and_external_links_fail(make_file: MakeFile) -> None:
    macro = with_member(workbook(), "xl/vbaProject.bin", b"\xd0\xcf\x11\xe0")
    link = with_member(workbook(), "xl/externalLinks/externalLink1.xml", b"<externalLink/>")
    assert reasons(dict(table_format.run(make_file("m.xlsx", macro), CheckContext()).details)) == {"macro"}
    assert reasons(dict(table_format.run(make_file("l.xlsx", link), CheckContext()).details)) == {
        "external_link"
    }


def test_disguised_file_skips_content_checks(make_file: MakeFile) -> None:
    import pickle

    [report] = run_checks([make_file("model.csv", pickle.dumps([1]))], CheckContext())
    assert [r.check for r in report.results] == ["file_type"]
    assert report.status is CheckStatus.fail
