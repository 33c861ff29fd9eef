"""Text, CSV and JSON: decoded once, normalised, shown whole, and rewritten from what was shown.

Normalisation (the released text is exactly the previewed text):

* one encoding: UTF-8 on the way out, whatever (UTF-8 or GB 18030) came in;
* line ends become ``\\n``; trailing spaces on a line are dropped (spaces a page never shows);
* control characters other than newline and tab, invisible format characters (zero-width
  spaces, bidi overrides, soft hyphens, variation selectors…), private-use and unassigned code
  points are removed, and the preview says how many; every space separator but the
  ideographic space becomes a plain space;
* characters that render as nothing although they are not format characters (the combining
  grapheme joiner, Hangul fillers, Mongolian and Khmer invisible marks, the blank braille
  pattern) are removed too: a name with one between every letter looks unchanged;
* full-width Latin letters and digits become ASCII, and a tab becomes spaces up to the next
  tab stop (in a text) or one space (in a cell): a choice that looks the same is no choice;
* Unicode NFC;
* a word that mixes Latin with look-alike Cyrillic or Greek letters refuses the file (rule
  ``mixed_script``), and so does a word written wholly or partly in look-alikes of Latin
  letters or digits from any other script (Unicode TR39 confusables: Cyrillic ``а``, Armenian
  ``օ``, mathematical ``𝐚``…; rule ``lookalike``): the choice between look-alikes is a
  channel no reader sees.  Greek small letters other than omicron stay allowed (statistics).

Encoded blobs (base64, hex) cannot be read by a person.  Runs of ``mark_chars`` or more are
marked on their line; a run of ``blob_chars`` (also when wrapped over consecutive lines) or
too many encoded characters in total refuse the file (rule ``encoded_blob``).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import unicodedata
from importlib import resources
from typing import Any

from countylab.airlock.render.model import Limits, Note, Refused, Rendering, Section

MAX_LINE = 10_000
BLOB_TOTAL = 1024  # encoded characters over the whole file
_B64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{16,}={0,2}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{16,}")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")
_LOOKALIKE_WORD = re.compile(r"\w*[\u0370-\u04ff]\w*")
_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")


def decode(data: bytes) -> str:
    """The text of ``data`` (UTF-8 with or without BOM, else GB 18030); refused otherwise."""
    if b"\x00" in data:
        raise Refused("binary", "文本中含二进制字节（NUL）", "the text holds binary bytes (NUL)")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Refused("encoding", "无法识别文本编码", "the text is neither UTF-8 nor GB 18030")


# Default-ignorable or blank code points that are not in a format category (Cf), so the
# category test below would keep them although no reader can see them.
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0")
_FULLWIDTH = {
    cp: cp - 0xFEE0
    for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
    for cp in range(r[0], r[1] + 1)
}
_GREEK_SMALL_ALLOWED = frozenset("αβγδεζηθικλμνξπρςστυφχψω")  # not ο: it is an o
_WORD = re.compile(r"\w+")


def _keep(ch: str) -> bool:
    if ch in "\n\t":
        return True
    if "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef":  # variation selectors
        return False
    if ch in _INVISIBLE:
        return False
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\U00020000" <= ch <= "\U0003134f"


@functools.lru_cache(maxsize=1)
def _han_lookalikes() -> frozenset[str]:
    """Letters of other scripts that TR39 lists as confusable with a Han character (katakana
    ロ for 口, カ for 力, ニ for 二, ー for 一…): in Chinese text a choice no reader sees."""
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8")
    table: dict[str, list[dict[str, str]]] = json.loads(raw)
    return frozenset(
        ch
        for ch, glyphs in table.items()
        if len(ch) == 1
        and not _is_han(ch)
        and unicodedata.category(ch)[0] == "L"
        and any(len(g["c"]) == 1 and _is_han(g["c"]) for g in glyphs)
    )


def _radicals_to_ideographs(text: str) -> str:
    """Kangxi and supplementary radicals (⼈ U+2F08) look exactly like their ideographs (人):
    they become the ideograph where Unicode names one."""
    if not any("\u2e80" <= ch <= "\u2fdf" for ch in text):
        return text
    return "".join(unicodedata.normalize("NFKC", ch) if "\u2e80" <= ch <= "\u2fdf" else ch for ch in text)


@functools.lru_cache(maxsize=1)
def _lookalikes() -> frozenset[str]:
    """Non-ASCII letters and digits that Unicode TR39 lists as confusable with an ASCII one."""
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8")
    table: dict[str, list[dict[str, str]]] = json.loads(raw)
    found: set[str] = set()
    for ch, glyphs in table.items():
        if len(ch) != 1 or ch.isascii() or ch in _GREEK_SMALL_ALLOWED:
            continue
        if "\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or ch >= "\U00020000":
            continue  # CJK: a Han character is never read as a Latin letter
        if unicodedata.category(ch)[0] not in "LN":
            continue
        if any(len(g["c"]) == 1 and g["c"].isascii() and g["c"].isalnum() for g in glyphs):
            found.add(ch)
    return frozenset(found)


def _no_lookalike_words(text: str) -> None:
    """A word that could be read as ASCII but holds a look-alike from another script."""
    lookalikes = _lookalikes()
    han_like = _han_lookalikes()
    if any(ch in han_like for ch in text):
        raise Refused(
            "lookalike",
            "文本中有与汉字形近的其他文字字符（如片假名“ロ”冒充“口”，可隐藏信息）",
            "the text holds characters that look like Chinese characters but are not "
            "(katakana ロ for 口…; a hidden channel)",
        )
    for m in _WORD.finditer(text):
        word = m.group(0)
        if word.isascii() or not any(ch in lookalikes for ch in word):
            continue
        readable_as_ascii = all(ch.isascii() or ch in lookalikes for ch in word)
        if readable_as_ascii or re.search(r"[A-Za-z0-9]", word):
            raise Refused(
                "lookalike",
                "文本中有用形近字母或数字（其他文字系统）写成的词（可隐藏信息）",
                "a word is written with look-alikes of Latin letters or digits from another script "
                "(a hidden channel)",
            )


def _space(ch: str) -> str:
    """Every space separator but the ideographic one becomes a plain space (no invisible choice)."""
    return " " if ch != "\u3000" and unicodedata.category(ch) == "Zs" else ch


def _no_mixed_scripts(text: str) -> None:
    """Latin letters mixed with look-alike Cyrillic or Greek ones in one word carry bits unseen."""
    for m in _LOOKALIKE_WORD.finditer(text):
        word = m.group(0)
        if re.search(r"[A-Za-z]", word) and re.search(r"[\u0370-\u03bb\u03bd-\u04ff]", word):
            raise Refused(
                "mixed_script",
                "文本中同一个词混用拉丁字母与形近的西里尔/希腊字母（可隐藏信息）",
                "a word mixes Latin letters with look-alike Cyrillic or Greek ones (a hidden channel)",
            )


def normalise(text: str) -> tuple[str, int]:
    """The normalised text and the number of characters removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    kept = _radicals_to_ideographs("".join(_space(ch) for ch in text if _keep(ch)).translate(_FULLWIDTH))
    removed = len(text) - len(kept)
    _no_mixed_scripts(kept)
    _no_lookalike_words(unicodedata.normalize("NFC", kept))  # compatibility ideographs folded first
    lines = [line.rstrip(" \t\u3000") for line in unicodedata.normalize("NFC", kept).split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    return ("\n".join(lines) + "\n") if lines else "", removed


def encoded_runs(text: str, limits: Limits) -> list[int]:
    """Lengths of encoded-looking runs (base64 or hex) of at least ``mark_chars`` characters."""
    runs: list[int] = []
    for m in _B64_RUN.finditer(text):
        run = m.group(0)
        mixed = (
            any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)
        )
        if len(run) >= limits.mark_chars and len(set(run)) >= 10 and mixed:  # not snake_case words
            runs.append(len(run))
    if not runs:
        for m in _HEX_RUN.finditer(text):
            run = m.group(0)
            if len(run) >= limits.mark_chars and not run.isdigit() and not run.isalpha():
                runs.append(len(run))
    return runs


class BlobGuard:
    """Marks encoded runs row by row and refuses long or plentiful ones (also wrapped ones)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self.wrapped = 0  # encoded characters in the current run of consecutive encoded rows

    def row(self, cells: list[str], number: int) -> str:
        runs = [r for c in cells for r in encoded_runs(c, self.limits)]
        whole = bool(runs) and sum(runs) >= sum(len(c.strip()) for c in cells) - 2 * len(cells)
        self.wrapped = self.wrapped + sum(runs) if whole else sum(runs)
        self.total += sum(runs)
        longest = max([*runs, self.wrapped if whole else 0], default=0)
        if longest >= self.limits.blob_chars or self.total > BLOB_TOTAL:
            raise Refused(
                "encoded_blob",
                f"第 {number} 行附近含编码数据（base64/十六进制，{longest} 字符）：人工无法审读，不能出域",
                f"encoded data (base64/hex, {longest} characters) near line {number}: "
                "a person cannot read it, so it cannot be released",
                line=number,
            )
        return f"encoded:{','.join(map(str, runs))}" if runs else ""


def _text_section(text: str, limits: Limits, title: tuple[str, str]) -> Section:
    lines = text.split("\n")[:-1] if text else []
    if len(lines) > limits.max_text_lines:
        raise Refused(
            "too_many_lines",
            f"文本超过 {limits.max_text_lines} 行",
            f"the text has more than {limits.max_text_lines} lines",
        )
    guard = BlobGuard(limits)
    sec = Section("text", *title)
    for i, line in enumerate(lines):
        if len(line) > MAX_LINE:
            raise Refused(
                "long_line",
                f"第 {i + 1} 行超过 {MAX_LINE} 字符，无法审读",
                f"line {i + 1} is longer than {MAX_LINE} characters and cannot be read",
                line=i + 1,
            )
        sec.rows.append([line])
        sec.numbers.append(i + 1)
        mark = guard.row([line], i + 1)
        if mark:
            sec.marks[i] = mark
    return sec


def _removed_note(removed: int) -> list[Note]:
    if not removed:
        return []
    return [
        Note(
            "control_removed",
            f"已删除 {removed} 个控制字符或不可见格式字符（零宽空格等）",
            f"{removed} control or invisible format characters (zero-width spaces…) were removed",
        )
    ]


def render_text(data: bytes, limits: Limits) -> Rendering:
    text, removed = normalise(decode(data))
    text = "\n".join(line.expandtabs(8).rstrip(" ") for line in text.split("\n"))  # shown as spaces
    sec = _text_section(text, limits, ("全文", "Full text"))
    return Rendering("text", "text/plain; charset=utf-8", text.encode(), [sec], _removed_note(removed))


def neutralise(cell: str) -> str:
    """A cell no spreadsheet will run: a leading = + - @ is prefixed with ' unless it is a number."""
    if cell.startswith(_FORMULA_LEAD) and not _NUMBER.match(cell):
        return "'" + cell
    return cell


def render_csv(data: bytes, limits: Limits, delimiter: str = ",") -> Rendering:
    text, removed = normalise(decode(data))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    sec = Section("table", "表格", "Table")
    guard = BlobGuard(limits)
    cells = neutralised = 0
    try:
        for row in reader:
            clean = [neutralise(" ".join(c.split("\t")).strip()) for c in row]
            neutralised += sum(
                1 for a, b in zip(row, clean, strict=True) if b.startswith("'") and a.strip() != b
            )
            cells += len(clean)
            if cells > limits.max_cells or len(clean) > limits.max_columns:
                raise Refused(
                    "too_many_cells",
                    f"表格超过 {limits.max_cells} 个单元格或 {limits.max_columns} 列",
                    f"the table has more than {limits.max_cells} cells or {limits.max_columns} columns",
                )
            if any(len(c) > MAX_LINE for c in clean):
                raise Refused(
                    "long_cell",
                    f"第 {reader.line_num} 行有超过 {MAX_LINE} 字符的单元格",
                    f"line {reader.line_num} has a cell longer than {MAX_LINE} characters",
                    line=reader.line_num,
                )
            mark = guard.row(clean, reader.line_num)
            if mark:
                sec.marks[len(sec.rows)] = mark
            sec.rows.append(clean)
            sec.numbers.append(reader.line_num)
    except csv.Error as exc:
        raise Refused(
            "unparsable",
            f"CSV 第 {reader.line_num} 行无法解析",
            f"the CSV does not parse at line {reader.line_num}",
            line=reader.line_num,
        ) from exc
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(sec.rows)
    notes = _removed_note(removed)
    if neutralised:
        notes.append(
            Note(
                "formula_neutralised",
                f"{neutralised} 个以 = + - @ 开头的单元格已加前缀 '，出域文件不会执行公式",
                f"{neutralised} cells starting with = + - @ were prefixed with ': no formula runs",
            )
        )
    return Rendering("csv", "text/csv; charset=utf-8", out.getvalue().encode(), [sec], notes)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Refused(
            "json_duplicate_key",
            "JSON 对象含重复键（只有一个值可见）",
            "a JSON object repeats a key (only one value would be visible)",
        )
    return dict(pairs)


def render_json(data: bytes, limits: Limits) -> Rendering:
    text, removed = normalise(decode(data))
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise Refused("unparsable", "JSON 无法解析", "the JSON does not parse") from exc
    try:
        pretty = json.dumps(value, ensure_ascii=False, indent=2) + "\n"
    except (ValueError, RecursionError) as exc:
        raise Refused("unparsable", "JSON 嵌套过深", "the JSON is nested too deeply") from exc
    # ``\\u200b`` or ``\\u0430`` escapes decode to characters the first pass never saw: the
    # re-serialised text is normalised again (removals inside strings keep the JSON valid).
    pretty, removed_escaped = normalise(pretty)
    removed += removed_escaped
    sec = _text_section(pretty, limits, ("全文（已重新排版）", "Full text (reformatted)"))
    return Rendering("json", "application/json", pretty.encode(), [sec], _removed_note(removed))
