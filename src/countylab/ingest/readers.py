"""Streaming readers: one uploaded file in, validated Arrow record batches out.

Every format is read in bounded batches (Arrow's streaming CSV reader, openpyxl's read-only
mode, Parquet row groups, JSON Lines line by line), so memory does not grow with the file.
Text formats are read as strings and cast by :func:`countylab.ingest.schema.validate_batch`, so
all formats share one set of parsing rules and one way of naming the bad row.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from countylab.errors import TooLarge, ValidationFailed
from countylab.ingest.encoding import GB18030, detect_encoding, first_bad_utf8_line, transcode_to_utf8
from countylab.ingest.names import FORMATS, check_column_names
from countylab.ingest.schema import (
    ColumnSpec,
    InferredSchema,
    TableSchema,
    arrow_to_type_name,
    check_header,
    infer_from_batch,
    validate_batch,
)

_CSV_BLOCK = 8 << 20


def check_size(path: Path, max_bytes: int | None) -> int:
    """Refuse a file over ``max_bytes`` *before* reading any of it; also refuse empty files."""
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise TooLarge(
            f"文件过大：{size / 1e6:.1f} MB，上限 {max_bytes / 1e6:.1f} MB",
            f"File too large: {size / 1e6:.1f} MB, the limit is {max_bytes / 1e6:.1f} MB",
            reason="too_large",
            size=size,
            limit=max_bytes,
        )
    if size == 0:
        raise empty_file()
    return size


def empty_file() -> ValidationFailed:
    return ValidationFailed("文件为空：没有数据行", "The file is empty: it has no data rows", reason="empty")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValidationFailed(
            f"不支持的格式“{fmt}”", f"Unsupported format '{fmt}'", reason="unsupported_format"
        )


# ------------------------------------------------------------------------------ cell normalising


def cell_text(value: Any, *, row: int, column: str) -> str | None:
    """One spreadsheet or JSON cell as text, so it goes through the common parsing rules."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise ValidationFailed(
        f"第 {row} 行“{column}”列的值是嵌套结构或不支持的类型",
        f"Row {row}, column '{column}': nested or unsupported value",
        row=row,
        column=column,
        reason="nested_value",
    )


def _fast_columns(records: list[Any], names: list[str]) -> pa.RecordBatch | None:
    """The common case in C: flat dicts of str/int/float/bool/None with known keys.

    Columns come out typed as JSON gave them (strings, int64, double, bool); ``validate_batch``
    then casts each to the schema type with the same rules and row numbers as text input.
    Returns None whenever anything is unusual; the row-by-row path then finds and names it.
    """
    if not all(type(r) is dict for r in records) or not set().union(*records) <= set(names):
        return None
    arrays = {}
    for name in names:
        try:
            arr = pa.array([r.get(name) for r in records])
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            return None
        kind = arr.type
        if not (
            pa.types.is_null(kind)
            or pa.types.is_string(kind)
            or pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
        ):
            return None
        arrays[name] = arr
    return pa.RecordBatch.from_pydict(arrays)


def records_to_batch(records: list[dict[str, Any]], names: list[str], *, row_offset: int) -> pa.RecordBatch:
    """Dict rows (JSON Lines, pushed rows) to a string batch; unknown keys are a schema change."""
    fast = _fast_columns(records, names) if records else None
    if fast is not None:
        return fast
    wanted = set(names)
    columns: dict[str, list[str | None]] = {n: [] for n in names}
    for index, record in enumerate(records):
        row = row_offset + index + 1
        if not isinstance(record, dict):
            raise ValidationFailed(
                f"第 {row} 行不是 JSON 对象",
                f"Row {row} is not a JSON object",
                row=row,
                reason="not_an_object",
            )
        extra = [k for k in record if k not in wanted]
        if extra:
            raise ValidationFailed(
                f"第 {row} 行含有表结构中没有的列 {extra}",
                f"Row {row} has columns not in the schema: {extra}",
                row=row,
                column=str(extra[0]),
                reason="schema_changed",
            )
        for name in names:
            columns[name].append(cell_text(record.get(name), row=row, column=name))
    return pa.RecordBatch.from_pydict({n: pa.array(v, pa.string()) for n, v in columns.items()})


# ------------------------------------------------------------------------------------------- CSV


def _csv_header(path: Path, encoding: str) -> list[str]:
    with path.open("r", encoding=encoding, newline="", errors="strict") as handle:
        try:
            header = next(csv.reader(handle), None)
        except UnicodeDecodeError:
            raise ValidationFailed(
                "无法识别文件编码：请另存为 UTF-8 或 GBK 编码的 CSV",
                "Cannot decode the file: save it as UTF-8 or GBK encoded CSV",
                reason="encoding",
                row=1,
            ) from None
    if not header or all(not h.strip() for h in header):
        raise empty_file()
    return check_column_names(header)


def _ragged_error(path: Path, expected: int) -> ValidationFailed:
    """Locate the first record with the wrong number of fields (slow path, errors only)."""
    line = None
    got = None
    with path.open("r", encoding="utf-8-sig", newline="", errors="replace") as handle:
        reader = csv.reader(handle)
        for record in reader:
            if len(record) != expected and record:
                line, got = reader.line_num, len(record)
                break
    return ragged_row_error(line, got, expected)


def ragged_row_error(line: int | None, got: int | None, expected: int) -> ValidationFailed:
    return ValidationFailed(
        f"第 {line} 行的字段数为 {got}，应为 {expected}（列数不齐）",
        f"Line {line} has {got} fields, expected {expected} (ragged row)",
        row=line,
        reason="ragged_row",
        expected=expected,
        got=got,
    )


def _csv_string_batches(path: Path, names: list[str]) -> Iterator[pa.RecordBatch]:
    """Arrow's streaming CSV reader over a UTF-8 file, every column as string."""
    ragged: list[int] = []

    def on_invalid(row: Any) -> str:
        ragged.append(int(row.actual_columns))
        return "error"

    try:
        reader = pa_csv.open_csv(
            str(path),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, block_size=_CSV_BLOCK),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        yield from reader
    except pa.ArrowInvalid as exc:
        if ragged:
            raise _ragged_error(path, len(names)) from None
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            line = first_bad_utf8_line(path)
            raise ValidationFailed(
                f"第 {line} 行附近的编码无效：文件中混有非 UTF-8 文本",
                f"Invalid encoding near line {line}: the file mixes non-UTF-8 text",
                row=line,
                reason="encoding",
            ) from None
        raise ValidationFailed(
            "CSV 文件无法解析", "The CSV file cannot be parsed", reason="parse_error"
        ) from None


# Schema types whose text Arrow's CSV converter parses exactly as ``validate_batch`` would (same
# parsers; numbers trimmed of spaces and tabs).  Whatever it refuses (other spacing, empty-but-blank
# cells, other date spellings) ends the typed read, and the string path decides from that row on.
_CSV_TYPED = {"int64": pa.int64(), "float64": pa.float64(), "date": pa.date32(), "string": pa.string()}


def _csv_typed_batches(path: Path, names: list[str], schema: TableSchema) -> Iterator[pa.RecordBatch]:
    """Arrow's CSV reader converting the columns it parses like validation does, in parallel C++.

    Why: reading every column as text and casting afterwards made file ingest read and convert
    each value twice (about 40% of a 10M-row CSV ingest, issue 11).  Columns of other types stay
    text for ``validate_batch``; ``validate_batch`` passes already-typed columns through.  On the
    first value Arrow refuses, the file is read again as text and the rows already delivered are
    skipped, so errors keep their row numbers and messages.
    """
    types = {c.name: _CSV_TYPED.get(c.type, pa.string()) for c in schema.columns}
    done = 0
    try:
        reader = pa_csv.open_csv(
            str(path),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, block_size=_CSV_BLOCK),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=types,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        for batch in reader:
            yield batch
            done += batch.num_rows
        return
    except pa.ArrowInvalid:
        pass  # a value (or a ragged row, bad encoding) to name: the string path finds it
    skip = done
    for batch in _csv_string_batches(path, names):
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        yield batch.slice(skip) if skip else batch
        skip = 0


def _csv_batches(path: Path, schema: TableSchema | None, tmp_dir: Path | None) -> Iterator[pa.RecordBatch]:
    encoding = detect_encoding(path)
    names = _csv_header(path, encoding)
    if schema is not None:
        check_header(names, schema)
    read = (
        _csv_string_batches
        if schema is None
        else lambda source, names: _csv_typed_batches(source, names, schema)  # noqa: E731
    )
    if encoding != GB18030:
        yield from read(path, names)
        return
    fd, tmp_name = tempfile.mkstemp(prefix="transcode-", suffix=".csv", dir=tmp_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        transcode_to_utf8(path, encoding, tmp)
        yield from read(tmp, names)
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ XLSX


def _xlsx_batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a non-xlsx or broken zip
        raise ValidationFailed(
            "XLSX 文件无法打开或已损坏", "The XLSX file cannot be opened or is damaged", reason="corrupt_file"
        ) from None
    try:
        yield from _sheet_batches(book.worksheets[0].iter_rows(values_only=True), batch_rows)
    finally:
        book.close()


def _xls_batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Excel 97–2003 (.xls, still WPS's default in many offices), read with xlrd."""
    from countylab.ingest.layout import sheet_rows

    _, rows = sheet_rows(path, "xls")
    yield from _sheet_batches((cells for _, cells in rows), batch_rows)


def _sheet_batches(rows: Iterator[Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Rows of cell values (header first) to string batches, as the file holds them."""
    header_cells = list(next(rows, ()))
    while header_cells and header_cells[-1] is None:
        header_cells.pop()
    if not header_cells:
        raise empty_file()
    names = check_column_names(["" if h is None else str(h) for h in header_cells])
    width = len(names)
    pending: list[dict[str, Any]] = []
    offset = 0
    for sheet_row, cells in enumerate(rows, start=2):
        if all(c is None for c in cells):
            continue
        if any(c is not None for c in cells[width:]):
            raise ValidationFailed(
                f"第 {sheet_row} 行在表头之外还有数据（列数不齐）",
                f"Sheet row {sheet_row} has cells beyond the header (ragged row)",
                row=sheet_row,
                reason="ragged_row",
                expected=width,
            )
        pending.append(dict(zip(names, cells[:width], strict=False)))
        if len(pending) >= batch_rows:
            yield records_to_batch(pending, names, row_offset=offset)
            offset += len(pending)
            pending = []
    if pending or not offset:
        yield records_to_batch(pending, names, row_offset=offset)


# ----------------------------------------------------------------------------------- JSON Lines


def _jsonl_batches(path: Path, schema: TableSchema | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    names: list[str] | None = schema.names if schema is not None else None
    pending: list[dict[str, Any]] = []
    offset = 0
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8-sig" if line_no == 1 else "utf-8"))
            except UnicodeDecodeError:
                raise ValidationFailed(
                    f"第 {line_no} 行不是 UTF-8 编码",
                    f"Line {line_no} is not UTF-8",
                    row=line_no,
                    reason="encoding",
                ) from None
            except json.JSONDecodeError:
                raise ValidationFailed(
                    f"第 {line_no} 行不是有效的 JSON",
                    f"Line {line_no} is not valid JSON",
                    row=line_no,
                    reason="bad_json",
                ) from None
            if names is None:
                if not isinstance(record, dict) or not record:
                    raise ValidationFailed(
                        "第 1 行应为非空的 JSON 对象",
                        "Line 1 must be a non-empty JSON object",
                        row=line_no,
                        reason="not_an_object",
                    )
                names = check_column_names(list(record))
            pending.append(record)
            if len(pending) >= batch_rows:
                yield records_to_batch(pending, names, row_offset=offset)
                offset += len(pending)
                pending = []
    if names is None:
        raise empty_file()
    if pending or not offset:
        yield records_to_batch(pending, names, row_offset=offset)


# --------------------------------------------------------------------------------------- Parquet


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError):
        raise ValidationFailed(
            "Parquet 文件无法打开或已损坏",
            "The Parquet file cannot be opened or is damaged",
            reason="corrupt_file",
        ) from None


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    source = _parquet_file(path)
    check_column_names(source.schema_arrow.names)
    try:
        yield from source.iter_batches(batch_size=batch_rows)
    except (pa.ArrowInvalid, OSError):
        raise ValidationFailed(
            "Parquet 文件已损坏", "The Parquet file is damaged", reason="corrupt_file"
        ) from None


# ----------------------------------------------------------------------------------- public API


def raw_batches(
    path: Path,
    fmt: str,
    schema: TableSchema | None = None,
    *,
    batch_rows: int = 65536,
    tmp_dir: Path | None = None,
) -> Iterator[pa.RecordBatch]:
    """Unvalidated batches as the file holds them (text formats: strings; a CSV read with a
    schema may have columns already converted exactly as validation would convert them)."""
    _check_format(fmt)
    if fmt == "csv":
        return _csv_batches(path, schema, tmp_dir)
    if fmt == "xlsx":
        return _xlsx_batches(path, batch_rows)
    if fmt == "xls":
        return _xls_batches(path, batch_rows)
    if fmt == "jsonl":
        return _jsonl_batches(path, schema, batch_rows)
    return _parquet_batches(path, batch_rows)


def open_batches(
    path: Path,
    fmt: str,
    schema: TableSchema | None,
    *,
    batch_rows: int = 65536,
    max_bytes: int | None = None,
    tmp_dir: Path | None = None,
) -> Iterator[pa.RecordBatch]:
    """Validated batches of ``path`` cast to ``schema`` (inferred first when ``None``).

    Raises :class:`TooLarge` before reading when the file exceeds ``max_bytes`` and
    :class:`ValidationFailed` (row/column/reason in ``details``) for bad content; an upload with
    a header but no data rows is refused as empty.  ``tmp_dir`` holds transcoded copies of
    GBK files; pass a directory that crash clean-up covers (e.g. the warehouse staging dir).
    """
    _check_format(fmt)
    check_size(path, max_bytes)
    if schema is None:
        schema = infer_schema(path, fmt, tmp_dir=tmp_dir).schema
    return _validated(raw_batches(path, fmt, schema, batch_rows=batch_rows, tmp_dir=tmp_dir), schema)


def _validated(batches: Iterator[pa.RecordBatch], schema: TableSchema) -> Iterator[pa.RecordBatch]:
    offset = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        yield validate_batch(batch, schema, row_offset=offset)
        offset += batch.num_rows
    if not offset:
        raise empty_file()


def infer_schema(
    path: Path,
    fmt: str,
    *,
    sample_rows: int = 10000,
    max_bytes: int | None = None,
    tmp_dir: Path | None = None,
) -> InferredSchema:
    """Propose a schema from the first ``sample_rows`` rows, for the provider to confirm."""
    _check_format(fmt)
    check_size(path, max_bytes)
    encoding = detect_encoding(path) if fmt == "csv" else None
    if fmt == "parquet":
        source = _parquet_file(path)
        names = check_column_names(source.schema_arrow.names)
        schema = TableSchema(
            tuple(
                ColumnSpec(n, arrow_to_type_name(source.schema_arrow.field(i).type))
                for i, n in enumerate(names)
            )
        )
        sample = next(source.iter_batches(batch_size=min(sample_rows, 20)), None)
        rows = sample.num_rows if sample is not None else 0
        preview_batch = sample
    else:
        if fmt == "csv":
            assert encoding is not None
            preview_batch = _csv_sample(path, encoding, sample_rows)
        else:
            batches = raw_batches(path, fmt, batch_rows=sample_rows, tmp_dir=tmp_dir)
            preview_batch = next(iter(batches))
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        rows = preview_batch.num_rows
        schema = infer_from_batch(preview_batch)
    if not rows or preview_batch is None:
        raise empty_file()
    preview = [
        {k: None if v is None else str(v) for k, v in r.items()}
        for r in preview_batch.slice(0, 10).to_pylist()
    ]
    return InferredSchema(schema, rows, encoding, preview)


def _csv_sample(path: Path, encoding: str, sample_rows: int) -> pa.RecordBatch:
    """First rows via the stdlib reader: no need to transcode a whole GBK file to propose types."""
    names = _csv_header(path, encoding)
    columns: list[list[str | None]] = [[] for _ in names]
    with path.open("r", encoding=encoding, newline="", errors="strict") as handle:
        reader = csv.reader(handle)
        next(reader)
        try:
            for record in reader:
                if not record:
                    continue
                if len(record) != len(names):
                    raise ragged_row_error(reader.line_num, len(record), len(names))
                for column, value in zip(columns, record, strict=True):
                    column.append(value if value != "" else None)
                if len(columns[0]) >= sample_rows:
                    break
        except UnicodeDecodeError:
            raise ValidationFailed(
                f"第 {reader.line_num + 1} 行附近的编码无效",
                f"Invalid encoding near line {reader.line_num + 1}",
                row=reader.line_num + 1,
                reason="encoding",
            ) from None
    return pa.RecordBatch.from_pydict(
        {n: pa.array(c, pa.string()) for n, c in zip(names, columns, strict=True)}
    )
