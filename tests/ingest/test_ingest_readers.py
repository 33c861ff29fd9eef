from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from countylab.errors import TooLarge, ValidationFailed
from countylab.ingest import ColumnSpec, TableSchema, infer_schema, open_batches
from countylab.ingest.readers import check_size
from tests.ingest.ingest_helpers import write

CSV = (
    "身份证号,姓名,出生日期,户人数,收入,参保,登记时间\n"
    "110101199003077777,张三,1990/3/7,3,1200.5,是,2024-01-02 08:30:00\n"
    "11010119850101001X,李四,1985-01-01,,800,否,2024/01/03 09:00:00\n"
    "110101200001010011,王五,2000-01-01,1,,是,\n"
)
EXPECTED_TYPES = ["string", "string", "date", "int64", "float64", "bool", "timestamp"]


def table(path: Path, fmt: str, schema: TableSchema | None = None) -> pa.Table:
    return pa.Table.from_batches(list(open_batches(path, fmt, schema, batch_rows=2)))


def check_rows(result: pa.Table) -> None:
    assert result.num_rows == 3
    assert result.column("姓名").to_pylist() == ["张三", "李四", "王五"]
    assert result.column("出生日期").to_pylist()[0] == dt.date(1990, 3, 7)
    assert result.column("户人数").to_pylist() == [3, None, 1]
    assert result.column("参保").to_pylist() == [True, False, True]
    assert result.column("登记时间").to_pylist()[1] == dt.datetime(2024, 1, 3, 9, 0)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_in_each_encoding(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / "p.csv", CSV, encoding)
    inferred = infer_schema(path, "csv")
    assert [c.type for c in inferred.schema.columns] == EXPECTED_TYPES
    assert inferred.schema.names[0] == "身份证号"  # no BOM left in the first name
    assert inferred.encoding == {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "gbk": "gb18030"}[encoding]
    assert inferred.preview[0]["姓名"] == "张三"
    check_rows(table(path, "csv", inferred.schema))


def test_gbk_temp_copy_is_removed(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", CSV, "gbk")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    list(open_batches(path, "csv", None, tmp_dir=scratch))
    assert list(scratch.iterdir()) == []


def test_xlsx(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["身份证号", "姓名", "出生日期", "户人数", "收入", "参保", "登记时间"])
    sheet.append(["110101199003077777", "张三", dt.datetime(1990, 3, 7), 3, 1200.5, "是", "2024-01-02 08:30"])
    sheet.append(["11010119850101001X", "李四", dt.date(1985, 1, 1), None, 800, False, "2024/01/03 09:00:00"])
    sheet.append([None] * 7)  # Excel's trailing empty rows are skipped
    sheet.append(["110101200001010011", "王五", "2000-01-01", 1.0, None, True, None])
    path = tmp_path / "p.xlsx"
    book.save(path)
    inferred = infer_schema(path, "xlsx")
    assert [c.type for c in inferred.schema.columns] == EXPECTED_TYPES
    check_rows(table(path, "xlsx", inferred.schema))


def test_parquet_and_jsonl(tmp_path: Path) -> None:
    source = pa.table(
        {"id": pa.array([1, 2, 3], pa.int32()), "v": [1.5, None, 2.0], "d": pa.array([0, 1, 2], pa.date32())}
    )
    pq.write_table(source, tmp_path / "p.parquet")
    inferred = infer_schema(tmp_path / "p.parquet", "parquet")
    assert [c.type for c in inferred.schema.columns] == ["int64", "float64", "date"]
    got = table(tmp_path / "p.parquet", "parquet", inferred.schema)
    assert got.column("id").type == pa.int64() and got.column("v").to_pylist() == [1.5, None, 2.0]

    lines = [
        {"id": 1, "名称": "甲", "ok": True},
        {"id": 2, "名称": None},
        {"ok": False, "id": 3, "名称": "丙"},
    ]
    path = write(tmp_path / "p.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in lines) + "\n\n")
    inferred = infer_schema(path, "jsonl")
    assert [c.type for c in inferred.schema.columns] == ["int64", "string", "bool"]
    got = table(path, "jsonl", inferred.schema)
    assert got.to_pylist()[1] == {"id": 2, "名称": None, "ok": None}


def test_inference_keeps_identifiers_as_text(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "code,phone,n\n0012,13800138000123456,5\n0100,13900139000123456,6\n")
    assert [c.type for c in infer_schema(path, "csv").schema.columns] == ["string", "string", "int64"]


def test_schema_override_and_json_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "code,n\n12,5\n13,6\n")
    schema = infer_schema(path, "csv").schema.override(types={"code": "string"}, nullable={"n": False})
    assert TableSchema.from_json(json.loads(json.dumps(schema.to_json()))) == schema
    result = table(path, "csv", schema)
    assert result.column("code").to_pylist() == ["12", "13"]
    with pytest.raises(ValidationFailed):
        schema.override(types={"nope": "string"})
    with pytest.raises(ValidationFailed):
        schema.override(types={"code": "varchar"})


SCHEMA = TableSchema((ColumnSpec("id", "int64"), ColumnSpec("name", "string"), ColumnSpec("d", "date")))


def error_of(
    path: Path, fmt: str = "csv", schema: TableSchema | None = SCHEMA, **kw: object
) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        list(open_batches(path, fmt, schema, **kw))  # type: ignore[arg-type]
    return info.value


def test_type_mismatch_names_row_and_column_not_value(tmp_path: Path) -> None:
    body = "".join(f"{i},n{i},2024-01-01\n" for i in range(1, 200))
    path = write(tmp_path / "p.csv", "id,name,d\n" + body + "12x34secret,z,2024-01-01\n")
    error = error_of(path, batch_rows=7)
    assert error.details == {"row": 200, "column": "id", "reason": "type_mismatch", "expected": "int64"}
    assert "12x34secret" not in error.message_zh + error.message_en
    assert "第 200 行" in error.message_zh and "Row 200" in error.message_en


def test_bad_date_located(tmp_path: Path) -> None:
    error = error_of(write(tmp_path / "p.csv", "id,name,d\n1,a,2024-01-01\n2,b,2024-13-45\n"))
    assert (error.details["row"], error.details["column"], error.details["expected"]) == (2, "d", "date")


def test_ragged_row_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", 'id,name,d\n1,"a\nb",2024-01-01\n2,b\n3,c,2024-01-01\n')
    error = error_of(path)
    assert error.details["reason"] == "ragged_row"
    assert error.details["row"] == 4  # physical line: the quoted value spans lines 2-3


def test_changed_schema(tmp_path: Path) -> None:
    error = error_of(write(tmp_path / "p.csv", "id,name,phone\n1,a,1\n"))
    assert error.details["reason"] == "schema_changed"
    assert error.details["missing"] == ["d"] and error.details["extra"] == ["phone"]
    reordered = write(tmp_path / "q.csv", "d,id,name\n2024-01-01,1,a\n")
    assert pa.Table.from_batches(list(open_batches(reordered, "csv", SCHEMA))).schema.names == SCHEMA.names


@pytest.mark.parametrize("content", ["", "id,name,d\n", "\n\n"])
def test_empty_files(tmp_path: Path, content: str) -> None:
    assert error_of(write(tmp_path / "p.csv", content)).details["reason"] == "empty"


def test_empty_jsonl(tmp_path: Path) -> None:
    assert error_of(write(tmp_path / "p.jsonl", "\n \n"), "jsonl").details["reason"] == "empty"


def test_size_cap_refuses_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:  # sparse: 5 GB apparent size, no data written
        handle.truncate(5 * 1024**3)
    with pytest.raises(TooLarge) as info:
        list(open_batches(path, "csv", SCHEMA, max_bytes=2 * 1024**3))
    assert info.value.details["limit"] == 2 * 1024**3
    assert check_size(tmp_path / "huge.csv", None) == 5 * 1024**3


def test_mixed_encoding_after_sample(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    ascii_part = "id,name,d\n" + "1,a,2024-01-01\n" * 80_000  # > the 1 MiB detection sample
    path.write_bytes(ascii_part.encode() + "2,张三,2024-01-01\n".encode("gbk"))
    error = error_of(path)
    assert error.details["reason"] == "encoding" and error.details["row"] == 80_002


@pytest.mark.parametrize(
    ("fmt", "content", "reason"),
    [
        ("jsonl", '{"id": 1, "name": "a", "d": "2024-01-01"}\n{"id": 2, "name": {"x": 1}}\n', "nested_value"),
        ("jsonl", '{"id": 1}\n{not json\n', "bad_json"),
        ("jsonl", '{"id": 1, "name": "a", "d": null, "extra": 1}\n', "schema_changed"),
        ("jsonl", "[1, 2]\n", "not_an_object"),
        ("parquet", "not parquet at all", "corrupt_file"),
        ("xlsx", "not a zip", "corrupt_file"),
    ],
)
def test_bad_jsonl_parquet_xlsx(tmp_path: Path, fmt: str, content: str, reason: str) -> None:
    assert error_of(write(tmp_path / f"p.{fmt}", content), fmt).details["reason"] == reason


def test_text_kept_as_written_numbers_trimmed(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", 'id,name,d\n" 12 ", 张三 ,2024-01-01\n')
    assert table(path, "csv", SCHEMA).to_pylist()[0] == {"id": 12, "name": " 张三 ", "d": dt.date(2024, 1, 1)}
