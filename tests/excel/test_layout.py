"""Header detection on real 花名册 layouts, as pure functions over the generated files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from countylab.errors import ValidationFailed
from countylab.ingest.idents import IDENTIFIER, identifier_from, identifiers_for
from countylab.ingest.layout import classify_row, describe, detect, parse_skip, read_sample
from countylab.ingest.tidy import tidy
from tests.excel.rosters import HEADERS, roster_csv_gbk, roster_empty_header_cell, roster_xlsx


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_xlsx_roster_two_row_header_and_skipped_rows(tmp_path):
    path = _write(tmp_path, "花名册.xlsx", roster_xlsx())
    sample = read_sample(path, "xlsx")
    layout = detect(sample)
    assert layout.sheet == "低保花名册"
    assert layout.header_rows == (3, 4)
    assert list(layout.names) == HEADERS
    view = describe(layout, sample)
    reasons = {r["row"]: r["reason"] for r in view["rows"] if r["role"] == "skip"}
    assert reasons == {1: "title", 2: "filing", 10: "total", 11: "blank", 12: "signature", 13: "note"}
    assert [r["row"] for r in view["rows"] if r["role"] == "data"] == [5, 6, 7, 8, 9]
    rowmap = tidy(path, "xlsx", layout, tmp_path / "t.csv")
    assert list(rowmap) == [5, 6, 7, 8, 9]
    text = (tmp_path / "t.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(HEADERS)
    assert text.splitlines()[1].startswith("1,张伟,男,330121195003021234,1950-03-02")


def test_gbk_csv_roster(tmp_path):
    path = _write(tmp_path, "花名册.csv", roster_csv_gbk())
    sample = read_sample(path, "csv")
    assert sample.encoding == "gb18030"
    layout = detect(sample)
    assert layout.header_rows == (3,) and list(layout.names) == HEADERS
    rowmap = tidy(path, "csv", layout, tmp_path / "t.csv")
    assert list(rowmap) == [4, 5, 6, 7, 8]


def test_empty_header_cell_gets_a_name_not_a_refusal(tmp_path):
    path = _write(tmp_path, "名单.xlsx", roster_empty_header_cell())
    layout = detect(read_sample(path, "xlsx"))
    assert layout.header_rows == (2,)
    assert list(layout.names) == ["序号", "姓名", "年龄", "列4", "发放金额"]
    assert layout.generated == (3,)


def test_user_chosen_header_row_and_skip_rows(tmp_path):
    path = _write(tmp_path, "花名册.xlsx", roster_xlsx())
    sample = read_sample(path, "xlsx")
    layout = detect(sample, header_row=4, skip_rows=parse_skip("6-7"))
    assert layout.header_rows == (4,) and not layout.detected
    assert layout.names[4:8] == ("出生日期", "年龄", "手机", "家庭住址")
    view = describe(layout, sample)
    assert {r["row"]: r["reason"] for r in view["rows"] if r["row"] in (3, 6, 7)} == {
        3: "before_header",
        6: "user",
        7: "user",
    }
    with pytest.raises(ValidationFailed) as err:
        detect(sample, header_row=400)
    assert "400" in err.value.message_zh


def test_plain_csv_keeps_row_one(tmp_path):
    path = _write(tmp_path, "p.csv", "town,note\n青禾镇,无\n城关街道,无\n".encode())
    layout = detect(read_sample(path, "csv"))
    assert layout.header_rows == (1,) and layout.trivial


def test_parse_skip_errors_are_bilingual():
    assert parse_skip("1-3，25、27") == {1, 2, 3, 25, 27}
    with pytest.raises(ValidationFailed) as err:
        parse_skip("a-b")
    assert "1-3, 25" in err.value.message_zh and "1-3, 25" in err.value.message_en


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (["合计", None, 3000], "total"),
        ([None, "小 计", 20], "total"),
        (["制表人：李明", None, "审核人：王芳"], "signature"),
        (["备注：按月发放"], "note"),
        ([None, None], "blank"),
        ([3, "合计委员会", 5], None),
        ([1, "张伟", "男"], None),
    ],
)
def test_classify_row(cells, reason):
    assert classify_row(cells) == reason


def test_identifiers_from_chinese():
    assert identifier_from("常住人口信息") == "changzhurenkouxinxi"
    assert identifier_from("出生日期", taken=["chushengriqi"]) == "chushengriqi_2"
    assert identifiers_for(["姓名", "姓名", "age", "col_4"]) == ["xingming", "xingming_2", "age", "col_4"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=6))
def test_identifiers_are_valid_and_distinct(texts):
    got = identifiers_for(texts)
    assert all(IDENTIFIER.match(g) for g in got)
    assert len({g.casefold() for g in got}) == len(got)
