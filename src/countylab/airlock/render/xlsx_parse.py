"""A streaming, bounded reader of XLSX workbooks: every sheet, cell, comment, property and name.

Pure: ``bytes -> Workbook`` with :class:`~.model.Limits`.  The archive passes
:func:`~.zipguard.open_zip` first; each XML part is then fed to expat in chunks (never
built as a tree), DTDs and entity declarations are refused, and counting stops the parse as
soon as the workbook has more cells, rows or columns than allowed.  Parts the lab does not
understand (custom XML, VBA, embedded objects, images, external links…) refuse the file.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from posixpath import dirname, join, normpath
from typing import Any
from xml.parsers import expat

from countylab.airlock.render.model import Limits, Refused
from countylab.airlock.render.zipguard import open_zip

KNOWN_PARTS = re.compile(
    r"^(\[Content_Types\]\.xml|_rels/\.rels|docProps/(core|app|custom)\.xml"
    r"|xl/workbook\.xml|xl/_rels/workbook\.xml\.rels|xl/styles\.xml|xl/sharedStrings\.xml"
    r"|xl/theme/theme\d+\.xml|xl/calcChain\.xml|xl/worksheets/sheet\d+\.xml"
    r"|xl/worksheets/_rels/sheet\d+\.xml\.rels|xl/comments\d*\.xml|xl/comments/comment\d+\.xml"
    r"|xl/drawings/(vmlDrawing|commentsDrawing)\d+\.vml)$"
)
_SHEET_PARTS = frozenset(
    {
        "sheetPr", "dimension", "sheetViews", "sheetFormatPr", "cols", "sheetData", "pageMargins",
        "pageSetup", "printOptions", "headerFooter", "legacyDrawing", "ignoredErrors",
    }
)  # fmt: skip
Cell = tuple[str, str, str]  # (value text, type, formula)


@dataclass
class Sheet:
    name: str
    state: str
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)
    hidden_rows: set[int] = field(default_factory=set)
    hidden_cols: set[int] = field(default_factory=set)
    all_rows_hidden: bool = False
    comments: list[tuple[str, str, str]] = field(default_factory=list)  # (cell, author, text)
    dropped: set[str] = field(default_factory=set)  # sheet features not released


@dataclass
class Workbook:
    sheets: list[Sheet]
    members: list[str]
    properties: list[tuple[str, str, str]]  # (part, name, value)
    defined_names: list[tuple[str, str]]  # (name with scope/hidden marks, value)
    shared_phonetic: int = 0


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


def _refuse_dtd(*_: Any) -> None:
    raise Refused("xml_dtd", "XML 含 DOCTYPE/实体声明", "an XML part declares a DOCTYPE or entities")


def _parse(
    zf: zipfile.ZipFile,
    member: str,
    start: Callable[[str, dict[str, str]], None],
    end: Callable[[str], None] | None = None,
    text: Callable[[str], None] | None = None,
) -> None:
    p = expat.ParserCreate(namespace_separator=" ")
    p.StartDoctypeDeclHandler = _refuse_dtd
    p.EntityDeclHandler = _refuse_dtd
    p.StartElementHandler = lambda n, a: start(_local(n), {_local(k): v for k, v in a.items()})
    if end is not None:
        p.EndElementHandler = lambda n: end(_local(n))
    if text is not None:
        p.CharacterDataHandler = text
    try:
        with zf.open(member) as fh:
            while chunk := fh.read(1 << 16):
                p.Parse(chunk, False)
        p.Parse(b"", True)
    except (expat.ExpatError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise Refused(
            "unparsable", f"工作簿部件 {member} 无法解析", f"the part {member} does not parse"
        ) from exc


def _rels(zf: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type suffix, resolved target) of ``part``."""
    rels_name = join(dirname(part), "_rels", part.rsplit("/", 1)[-1] + ".rels")
    out: dict[str, tuple[str, str]] = {}
    if rels_name not in zf.namelist():
        return out

    def start(tag: str, a: dict[str, str]) -> None:
        if tag == "Relationship":
            if a.get("TargetMode") == "External":
                raise Refused(
                    "external_link", "工作簿引用外部资源", "the workbook references an external resource"
                )
            target = a.get("Target", "")
            resolved = target.lstrip("/") if target.startswith("/") else normpath(join(dirname(part), target))
            out[a.get("Id", "")] = (a.get("Type", "").rsplit("/", 1)[-1], resolved)

    _parse(zf, rels_name, start)
    return out


class _Text:
    """Collects character data inside chosen elements."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.on = 0

    def __call__(self, data: str) -> None:
        if self.on:
            self.parts.append(data)

    def take(self) -> str:
        s = "".join(self.parts)
        self.parts = []
        return s


def _shared_strings(zf: zipfile.ZipFile, limits: Limits) -> tuple[list[str], int]:
    strings: list[str] = []
    if "xl/sharedStrings.xml" not in zf.namelist():
        return strings, 0
    buf, depth = _Text(), {"rPh": 0}
    phonetic = [0]

    def start(tag: str, a: dict[str, str]) -> None:
        if tag == "rPh":
            depth["rPh"] += 1
            phonetic[0] += 1
        elif tag == "t" and not depth["rPh"]:
            buf.on += 1

    def end(tag: str) -> None:
        if tag == "rPh":
            depth["rPh"] -= 1
        elif tag == "t" and buf.on:
            buf.on -= 1
        elif tag == "si":
            strings.append(buf.take())
            if len(strings) > limits.max_cells:
                raise Refused("too_many_cells", "共享字符串过多", "too many shared strings")

    _parse(zf, "xl/sharedStrings.xml", start, end, buf)
    return strings, phonetic[0]


def col_index(ref: str) -> int:
    n = 0
    for ch in ref:
        if not ch.isalpha():
            break
        n = n * 26 + (ord(ch.upper()) - 64)
    return n


def col_letters(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def _tiny(size: str | None, below: float) -> bool:
    """A row height or column width too small to show anything: hidden in all but name."""
    try:
        return size is not None and float(size) < below
    except ValueError:
        return False


class _SheetReader:
    def __init__(self, sheet: Sheet, strings: list[str], limits: Limits, budget: list[int]) -> None:
        self.sheet, self.strings, self.limits, self.budget = sheet, strings, limits, budget
        self.text = _Text()
        self.depth = 0
        self.row = 0
        self.col = 0
        self.cell: dict[str, str] = {}
        self.value = self.formula = ""
        self.in_f = False

    def start(self, tag: str, a: dict[str, str]) -> None:
        self.depth += 1
        if self.depth == 2 and tag not in _SHEET_PARTS:
            self.sheet.dropped.add(tag)
        if tag == "row":
            self.row = int(a.get("r", self.row + 1))
            self.col = 0
            if a.get("hidden") in ("1", "true") or _tiny(a.get("ht"), 2.0):
                self.sheet.hidden_rows.add(self.row)
        elif tag == "c":
            ref = a.get("r", "")
            self.col = col_index(ref) if ref else self.col + 1
            self.cell = a
            self.value = self.formula = ""
            self.budget[0] += 1
            if self.budget[0] > self.limits.max_cells:
                raise Refused(
                    "too_many_cells",
                    f"工作簿超过 {self.limits.max_cells} 个单元格",
                    f"the workbook has more than {self.limits.max_cells} cells",
                )
            if self.row > self.limits.max_rows or self.col > self.limits.max_columns:
                raise Refused(
                    "xlsx_extent",
                    f"工作表“{self.sheet.name}”超出 {self.limits.max_rows} 行或 {self.limits.max_columns} 列",
                    f"sheet {self.sheet.name!r} is over {self.limits.max_rows} rows or "
                    f"{self.limits.max_columns} columns",
                )
        elif tag in ("v", "t", "f"):
            self.text.on += 1
            self.in_f = tag == "f"
        elif tag == "col" and (a.get("hidden") in ("1", "true") or _tiny(a.get("width"), 0.5)):
            lo, hi = int(a.get("min", "1")), int(a.get("max", "1"))
            self.sheet.hidden_cols.update(range(lo, min(hi, self.limits.max_columns) + 1))
        elif tag == "sheetFormatPr" and a.get("zeroHeight") in ("1", "true"):
            self.sheet.all_rows_hidden = True

    def end(self, tag: str) -> None:
        self.depth -= 1
        if tag in ("v", "t", "f"):
            self.text.on -= 1
            got = self.text.take()
            if tag == "f":
                self.formula = got
            else:
                self.value += got
        elif tag == "c":
            kind = self.cell.get("t", "n")
            value = self.value
            if kind == "s":
                i = int(value) if value.strip().isdigit() else -1
                value = self.strings[i] if 0 <= i < len(self.strings) else ""
            if value or self.formula:
                self.sheet.cells[(self.row, self.col)] = (value, kind, self.formula)


def _sheets(zf: zipfile.ZipFile) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(name, state, part) of each sheet in order, and the defined names."""
    rels = _rels(zf, "xl/workbook.xml")
    sheets: list[tuple[str, str, str]] = []
    names: list[tuple[str, str]] = []
    buf = _Text()
    current: list[str] = []

    def start(tag: str, a: dict[str, str]) -> None:
        if tag == "sheet":
            rel = rels.get(a.get("id", ""), ("", ""))
            if rel[0] != "worksheet":
                raise Refused(
                    "xlsx_extra_member",
                    f"工作簿含非数据表（{rel[0] or '未知'}）",
                    f"the workbook holds a sheet that is not a worksheet ({rel[0] or 'unknown'})",
                )
            sheets.append((a.get("name", ""), a.get("state", "visible"), rel[1]))
        elif tag == "definedName":
            flags = [f"sheet {a['localSheetId']}"] if "localSheetId" in a else []
            flags += ["hidden"] if a.get("hidden") in ("1", "true") else []
            current[:] = [a.get("name", "") + (f" ({', '.join(flags)})" if flags else "")]
            buf.on += 1

    def end(tag: str) -> None:
        if tag == "definedName":
            buf.on -= 1
            names.append((current[0], buf.take()))

    _parse(zf, "xl/workbook.xml", start, end, buf)
    return sheets, names


def _comments(zf: zipfile.ZipFile, part: str, sheet: Sheet) -> None:
    authors: list[str] = []
    buf = _Text()
    ref = [""]

    def start(tag: str, a: dict[str, str]) -> None:
        if tag == "author":
            buf.on += 1
        elif tag == "comment":
            ref[0] = a.get("ref", "") + "\x00" + a.get("authorId", "")
        elif tag == "t":
            buf.on += 1

    def end(tag: str) -> None:
        if tag == "author":
            buf.on -= 1
            authors.append(buf.take())
        elif tag == "t":
            buf.on -= 1
        elif tag == "comment":
            cell, _, author = ref[0].partition("\x00")
            i = int(author) if author.isdigit() else -1
            sheet.comments.append((cell, authors[i] if 0 <= i < len(authors) else "", buf.take()))

    _parse(zf, part, start, end, buf)


def _properties(zf: zipfile.ZipFile) -> list[tuple[str, str, str]]:
    """Every text value in the document properties, labelled by its element path."""
    found: list[tuple[str, str, str]] = []
    for part in ("docProps/core.xml", "docProps/app.xml", "docProps/custom.xml"):
        if part not in zf.namelist():
            continue
        buf, stack = _Text(), list[str]()

        def start(tag: str, a: dict[str, str], stack: list[str] = stack, buf: _Text = buf) -> None:
            stack.append(f"{tag}[{a['name']}]" if "name" in a else tag)
            buf.on += 1

        def end(tag: str, stack: list[str] = stack, buf: _Text = buf, part: str = part) -> None:
            buf.on -= 1
            value = buf.take().strip()
            if value:
                found.append((part, "/".join(stack[1:]), value))
            stack.pop()

        _parse(zf, part, start, end, buf)
    return found


def read_workbook(data: bytes, limits: Limits) -> Workbook:
    zf = open_zip(data, limits)
    members = zf.namelist()
    extra = [m for m in members if not m.endswith("/") and not KNOWN_PARTS.match(m)]
    if extra:
        raise Refused(
            "xlsx_extra_member",
            f"工作簿含无法预览的部件：{', '.join(extra[:10])}",
            f"the workbook holds parts that cannot be previewed: {', '.join(extra[:10])}",
            members=extra[:50],
        )
    if "xl/workbook.xml" not in members:
        raise Refused("unparsable", "不是有效的工作簿", "not a valid workbook")
    strings, phonetic = _shared_strings(zf, limits)
    order, names = _sheets(zf)
    budget = [0]
    sheets: list[Sheet] = []
    for name, state, part in order:
        if part not in members:
            raise Refused("unparsable", f"缺少工作表部件 {part}", f"the sheet part {part} is missing")
        sheet = Sheet(name, state)
        reader = _SheetReader(sheet, strings, limits, budget)
        _parse(zf, part, reader.start, reader.end, reader.text)
        for kind, target in _rels(zf, part).values():
            if kind == "comments":
                _comments(zf, target, sheet)
            elif kind not in ("vmlDrawing", "printerSettings"):
                sheet.dropped.add(kind)
        sheets.append(sheet)
    return Workbook(sheets, members, _properties(zf), names, phonetic)
