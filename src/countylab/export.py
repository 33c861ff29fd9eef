"""Tables out as files that WPS and Excel open cleanly: CSV with a BOM, and XLSX.

Why both: county staff double-click downloads.  Excel reads a BOM-less UTF-8 CSV as the local
code page (GBK on a Chinese Windows), which turns every Chinese character into mojibake; the BOM
makes it read UTF-8.  XLSX keeps types (numbers stay numbers, dates stay dates), so sums and
filters work without "convert to number".

Formula injection (CSV/DDE injection, OWASP): a cell whose text starts with ``=``, ``+``, ``-``
or ``@`` (or a tab/CR that Excel strips before looking) is run as a formula when the file is
opened.  Residents' data is text typed by other people, so every *text* cell is guarded:

* XLSX: the cell is written as a string with a leading apostrophe character ``'`` in the value
  ONLY when it would otherwise look like a formula.  openpyxl writes a plain inline string and
  never a formula for ``data_type="s"``, but Excel/WPS re-evaluate a string cell when a user
  edits it, and LibreOffice may on import; the apostrophe is the convention spreadsheet users
  know ("text, not formula") and is visible, so nobody mistakes the value.
* CSV: the same leading apostrophe.  A tab prefix (another common guard) is invisible and
  breaks exact matching after a round-trip; the apostrophe is visible and greppable.

Numbers are never guarded: ``-3`` is a number cell (XLSX) or an unquoted number (CSV), not
text.  Header texts are guarded too (a column title may come from an uploaded file).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pyarrow as pa

__all__ = [
    "FORMULA_PREFIXES",
    "content_disposition",
    "guard_text",
    "safe_filename",
    "table_to_csv",
    "table_to_xlsx",
]

#: Leading characters that make Excel/WPS/LibreOffice treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_BOM = "\ufeff"
BEIJING = ZoneInfo("Asia/Shanghai")
_MAX_WIDTH = 60
_MIN_WIDTH = 6


def guard_text(value: str) -> str:
    """Return ``value`` with a leading apostrophe if a spreadsheet would run it as a formula."""
    if value and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _header_texts(table: pa.Table, headers: dict[str, str] | None) -> list[str]:
    names = list(table.column_names)
    return [guard_text((headers or {}).get(n) or n) for n in names]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        # repr gives the shortest round-tripping text; never "1e+16"-style surprises for
        # ordinary magnitudes because Excel reads both.
        return repr(value) if value == value else ""
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, dt.datetime):
        return _wall_clock(value).isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return guard_text(str(value))


def _wall_clock(value: dt.datetime) -> dt.datetime:
    """Times are stored in UTC and shown in Beijing time; the file says so in no cell, because
    Excel has no time zones: a zone-aware value becomes its Asia/Shanghai wall-clock time."""
    return value.astimezone(BEIJING).replace(tzinfo=None) if value.tzinfo else value


def table_to_csv(table: pa.Table, headers: dict[str, str] | None = None) -> bytes:
    """Encode ``table`` as RFC 4180 CSV: UTF-8 with BOM, CRLF line ends, minimal quoting.

    ``headers`` maps column name -> display title (e.g. the Chinese title); missing names keep
    the column name.  Booleans are written 是/否 in both languages (what the Chinese UI shows);
    callers that need ``true``/``false`` should cast first.
    """
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(_header_texts(table, headers))
    for row in _rows(table):
        writer.writerow([_csv_cell(v) for v in row])
    return (_BOM + buf.getvalue()).encode("utf-8")


def _rows(table: pa.Table) -> Iterable[tuple[Any, ...]]:
    cols = [table.column(i) for i in range(table.num_columns)]
    for batch_start in range(0, table.num_rows, 10_000):
        chunk = [c.slice(batch_start, 10_000).to_pylist() for c in cols]
        yield from zip(*chunk, strict=True)


def _display_width(text: str) -> int:
    """Columns a text occupies in a spreadsheet: CJK (wide) characters count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _xlsx_cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, decimal.Decimal):
        # Excel has only doubles; a Decimal with ≤15 significant digits survives exactly.
        return float(value) if len(value.as_tuple().digits) <= 15 else str(value)
    if isinstance(value, dt.datetime):
        return _wall_clock(value)
    if isinstance(value, (dt.date, dt.time)):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return _xml_safe(guard_text(str(value)))


def _xml_safe(text: str) -> str:
    """XLSX (XML 1.0) cannot hold most C0 control characters; show each as U+FFFD, not crash.

    Line breaks become ``\n``, the one Excel shows inside a cell (XML readers turn a bare CR
    into LF anyway, so writing it unchanged would not round-trip)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return str(ILLEGAL_CHARACTERS_RE.sub("\ufffd", text))


def _number_format(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_timestamp(arrow_type):
        return "yyyy-mm-dd hh:mm:ss"
    if pa.types.is_date(arrow_type):
        return "yyyy-mm-dd"
    if pa.types.is_time(arrow_type):
        return "hh:mm:ss"
    if pa.types.is_integer(arrow_type):
        return "0"
    return None


def table_to_xlsx(
    table: pa.Table,
    headers: dict[str, str] | None = None,
    sheet: str = "数据",
    title: str | None = None,
    notes: Sequence[str] | None = None,
) -> bytes:
    """Encode ``table`` as one XLSX worksheet with typed cells.

    Layout, top to bottom: an optional bold ``title`` row (merged across the columns), the bold
    header row (frozen, with an autofilter so users can sort and filter at once), the data, then
    one blank row and the ``notes`` lines (e.g. "模拟数据，不含真实个人信息").  Column widths follow
    the longest of header and the first 1,000 values, with CJK counted double.
    """
    # openpyxl is imported lazily: it is heavy and only downloads need it.  Write-only mode
    # streams rows to the file: about three times faster than building the sheet in memory.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_sheet_title(sheet))
    ncols = table.num_columns
    header_texts = [_xml_safe(h) for h in _header_texts(table, headers)]
    widths = [_display_width(h) for h in header_texts]
    for row in _rows(table.slice(0, 1000)):  # widths must be set before any row is written
        for j, value in enumerate(row):
            v = _xlsx_cell(value)
            if v is not None:
                widths[j] = max(widths[j], _display_width(_width_text(v)))
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = min(max(w + 2, _MIN_WIDTH), _MAX_WIDTH)
    header_row = 2 if title else 1
    last_data = header_row + table.num_rows
    if ncols:
        ws.freeze_panes = f"A{header_row + 1}"
        ws.auto_filter.ref = f"A{header_row}:{get_column_letter(ncols)}{last_data}"
    if title:
        cell = WriteOnlyCell(ws, value=_xml_safe(guard_text(title)))
        cell.font = Font(bold=True, size=14)
        ws.append([cell])
        if ncols > 1:
            ws.merged_cells.add(f"A1:{get_column_letter(ncols)}1")
    bold = Font(bold=True)
    header_cells = []
    for text in header_texts:
        cell = WriteOnlyCell(ws, value=text)
        cell.data_type = "s"
        cell.font = bold
        header_cells.append(cell)
    ws.append(header_cells)
    # Strings never start with "=" here (guard_text), so openpyxl types them as text, not formulas;
    # dates and datetimes get openpyxl's date formats, numbers stay numbers.
    for row in _rows(table):
        ws.append([_xlsx_cell(v) for v in row])
    if notes:
        ws.append([])
        grey = Font(italic=True, color="666666")
        for line in notes:
            cell = WriteOnlyCell(ws, value=_xml_safe(guard_text(str(line))))
            cell.data_type = "s"
            cell.font = grey
            ws.append([cell])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _width_text(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return "0000-00-00 00:00:00"
    if isinstance(v, (dt.date, dt.time)):
        return "0000-00-00"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _sheet_title(name: str) -> str:
    """Excel sheet names: at most 31 characters, none of ``[]:*?/\\``."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in name).strip("'") or "Sheet1"
    return cleaned[:31]


def safe_filename(name: str) -> str:
    """Make ``name`` safe as a download file name on Windows, keeping Chinese characters."""
    cleaned = "".join("_" if (ch in '<>:"/\\|?*' or ord(ch) < 32) else ch for ch in name)
    cleaned = cleaned.strip(" .") or "download"
    return cleaned[:150]


def content_disposition(filename: str, inline: bool = False) -> str:
    """A ``Content-Disposition`` value that every browser reads, Chinese names included.

    RFC 6266/5987: ``filename=`` carries an ASCII fallback (non-ASCII replaced by ``_``) for old
    clients; ``filename*=UTF-8''…`` carries the real name percent-encoded, which browsers prefer.
    """
    name = safe_filename(filename)
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%' else "_" for ch in name)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
