from __future__ import annotations

import pytest

from countylab.errors import ValidationFailed
from countylab.ingest.names import check_column_names, format_from_filename, safe_filename


@pytest.mark.parametrize("name", ["户籍人口.csv", "data 2024.xlsx", "a.b.parquet", "x.jsonl"])
def test_plain_names_pass(name: str) -> None:
    assert safe_filename(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../../etc/passwd", "path_separator"),
        ("..\\..\\boot.ini", "path_separator"),
        ("/abs.csv", "path_separator"),
        ("..", "dot_name"),
        (".hidden.csv", "dot_name"),
        ("a\x00.csv", "control_character"),
        ("a\nb.csv", "control_character"),
        ("evil\u202etxt.csv", "control_character"),  # right-to-left override hides the real extension
        ("", "empty"),
        ("CON.csv", "reserved_name"),
        ("名" * 100 + ".csv", "too_long"),
    ],
)
def test_malicious_names_rejected(name: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        safe_filename(name)
    assert info.value.details["reason"] == reason
    assert "文件名" in info.value.message_zh and "file name" in info.value.message_en


def test_format_from_extension() -> None:
    assert format_from_filename("人口.CSV") == "csv"
    assert format_from_filename("a.ndjson") == "jsonl"
    with pytest.raises(ValidationFailed) as info:
        format_from_filename("a.exe")
    assert info.value.details["reason"] == "unsupported_format"


def test_column_names_unique_ignoring_case() -> None:
    assert check_column_names([" 姓名 ", "age"]) == ["姓名", "age"]
    with pytest.raises(ValidationFailed) as info:
        check_column_names(["Name", "name"])
    assert info.value.details["reason"] == "duplicate_column"
    with pytest.raises(ValidationFailed) as info:
        check_column_names(["a", ""])
    assert info.value.details["column"] == 2
