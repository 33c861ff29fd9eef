"""What the detectors look at: every form a value can be disguised in, brought back to one.

A hostile job writes an ID number with dots, with look-alike letters, with a zero-width space,
split over two cells, or with its digits spelled as letters.  The detectors (PII patterns and
the source leakage scan) therefore never match raw text.  They match the forms made here
(the table in ``docs/explanation/detectors.md`` lists them):

1. **format characters** (Unicode category Cf: zero-width spaces and joiners, bidi marks, the
   BOM, soft hyphens) are dropped;
2. **NFKC** folds full-width digits and letters, ligatures and circled digits;
3. the **confusable skeleton** (Unicode TR39, data from ``confusable-homoglyphs``, which ships
   ``confusables.txt`` as JSON) maps every look-alike to one representative (a digit where
   the class has one: Cyrillic О and Latin O read as 0, І / l / | as 1);
4. **separators** (spaces, dots, dashes, underscores, slashes, colons, commas) between digits
   are removed, so ``330.102 1950-0101-1234`` is one number;
5. **windows**: every 18-character (ID number) and 11-digit (mobile) stretch inside a longer
   run of digits is a candidate, so a prefix glued to an ID number does not hide it;
6. **letter substitutions** (a→0 … j→9, k→0 … t→9, leetspeak o→0 i→1 z→2 e→3 a→4 s→5 g→6
   t→7 b→8 q→9) and **digit shifts** (each digit + k mod 10, and the digits reversed) are
   tried on tokens of exactly 18 characters (not on windows of longer runs: hashes would
   match by chance); a result counts only if it passes the ID number's check character,
   birth date and province code, which keeps random strings from matching.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from importlib import resources

from countylab.identifiers import is_valid_id_number

_SEPARATORS = re.compile(r"(?<=[0-9])[\s.\-_·,/:：，。、]+(?=[0-9x])")
_ID_WINDOW = re.compile(r"(?=([0-9]{17}[0-9x]))")
_MOBILE_WINDOW = re.compile(r"(?<![0-9])(?=(1[3-9][0-9]{9}))")
# long runs mixing letters and digits (hashes, base64): mobile-shaped windows inside them would
# match by chance (ID numbers, with their check character, would not); such runs are decoded
# and scanned by the encoded-blob check instead
_BLOB = re.compile(r"[0-9a-z+/=_-]*(?:[a-z][0-9]+|[0-9][a-z]+){4,}[0-9a-z+/=_-]*")
_DIGIT_OR_18 = re.compile(r"[0-9]|(?<![0-9a-z])[0-9a-z]{18}(?![0-9a-z])")
_TOKEN_18 = re.compile(r"(?<![0-9a-z])[0-9a-z]{18}(?![0-9a-z])")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_SUBSTITUTIONS = (
    str.maketrans("abcdefghij", "0123456789"),
    str.maketrans("klmnopqrst", "0123456789"),
    str.maketrans("oilzeasgtbq", "01123456789"),
)
_SHIFTS = tuple(
    str.maketrans("0123456789", "".join(str((d + k) % 10) for d in range(10))) for k in range(1, 10)
)
_PROVINCES = frozenset(  # GB/T 2260 province-level codes: the first two digits of an ID number
    f"{n}"
    for n in (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50)
    + (51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 91)
)


@functools.lru_cache(maxsize=1)
def _format_chars() -> dict[int, None]:
    return {c: None for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"}


def strip_format(text: str) -> str:
    """Drop format characters (Cf): zero-width spaces and joiners, bidi marks, BOM, soft hyphen."""
    return text if text.isascii() else text.translate(_format_chars())


@functools.lru_cache(maxsize=1)
def _representatives() -> dict[str, str]:
    """Character → representative of its TR39 confusable class (single characters only)."""
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8")
    data: dict[str, list[dict[str, str]]] = json.loads(raw)
    parent: dict[str, str] = {}

    def find(ch: str) -> str:
        while parent.setdefault(ch, ch) != ch:
            parent[ch] = parent[parent[ch]]
            ch = parent[ch]
        return ch

    for key, homoglyphs in data.items():
        key = strip_format(key)
        for h in homoglyphs:
            other = strip_format(h.get("c", ""))
            if len(key) == 1 and len(other) == 1:
                parent[find(key)] = find(other)
    classes: dict[str, list[str]] = {}
    for ch in list(parent):
        classes.setdefault(find(ch), []).append(ch)

    def rank(ch: str) -> tuple[int, str]:
        return (0 if ch.isascii() and ch.isdigit() else 1 if ch.isascii() and ch.isalnum() else 2, ch)

    reps: dict[str, str] = {}
    for members in classes.values():
        best = min(members, key=rank)
        for ch in members:
            if ch != best:
                reps[ch] = best
    return reps


@functools.lru_cache(maxsize=1)
def foldable_pattern() -> str:
    """A regular expression (RE2 and Python) matching text that has a confusable skeleton
    different from itself: any character outside ASCII and CJK, or an ASCII look-alike."""
    ascii_folds = sorted(ch for ch in _representatives() if ch.isascii())
    return "[^\\x00-\\x7f\u4e00-\u9fff]|[" + "".join(re.escape(c) for c in ascii_folds) + "]"


def plain(text: str) -> str:
    """Format characters dropped, NFKC, lower case."""
    return unicodedata.normalize("NFKC", strip_format(text)).lower()


@functools.lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    return {ord(k): v for k, v in _representatives().items()}


def skeleton(text: str) -> str:
    """:func:`plain`, then every confusable character replaced by its class representative."""
    table = _table()
    return unicodedata.normalize("NFKC", strip_format(text)).translate(table).lower().translate(table)


def compact(text: str) -> str:
    """Separators between digits removed (``text`` already lower-cased)."""
    return _SEPARATORS.sub("", text)


def _plausible_id(value: str) -> bool:
    return value[:2] in _PROVINCES and is_valid_id_number(value)


def _substituted(token: str) -> Iterator[str]:
    if any(c.isalpha() for c in token[:17]):
        for table in _SUBSTITUTIONS:
            yield token.translate(table)
    elif token[:17].isdigit():
        for table in _SHIFTS:
            yield token[:17].translate(table) + token[17:].translate(table)
            yield token[:17].translate(table) + token[17:]
        yield token[::-1]
        yield token[:17][::-1] + token[17]


@functools.lru_cache(maxsize=65_536)
def identifier_forms(text: str) -> frozenset[str]:
    """Candidate ID numbers and mobiles hidden anywhere in ``text`` (normalised, lower case)."""
    out: set[str] = set()
    for form in {plain(text), skeleton(text)}:
        if not _DIGIT_OR_18.search(form):
            continue
        joined = compact(form)
        out.update(m.group(1) for m in _ID_WINDOW.finditer(joined))  # check character: precise
        out.update(m.group(1) for m in _MOBILE_WINDOW.finditer(compact(_BLOB.sub(" ", form))))
        for token in _TOKEN_18.findall(joined):  # an 18-character token on its own
            for variant in _substituted(token):
                if _plausible_id(variant.upper()):
                    out.add(variant)
    return frozenset(out)


@functools.lru_cache(maxsize=65_536)
def value_forms(text: str) -> frozenset[str]:
    """The whole value in its plain and skeleton forms (for exact comparisons)."""
    return frozenset(f.strip() for f in (plain(text), skeleton(text)) if f.strip())


@functools.lru_cache(maxsize=65_536)
def cjk_pieces(text: str) -> frozenset[str]:
    """2–4 character pieces of Chinese runs (names are written without spaces)."""
    out: set[str] = set()
    for run in _CJK_RUN.findall(plain(text)):
        for size in (2, 3, 4):
            out.update(run[i : i + size] for i in range(len(run) - size + 1))
    return frozenset(out)


def neighbours(cells: Iterable[str], width: int = 3) -> list[str]:
    """Adjacent cells of one row joined (2 and up to ``width`` at a time): an ID number split
    across cells is whole again."""
    row = [plain(c) for c in cells]
    joined: list[str] = []
    for size in range(2, width + 1):
        joined += ["".join(row[i : i + size]) for i in range(len(row) - size + 1)]
    return joined


def split_identifiers(cells: Iterable[str], *, statistics: bool = False) -> set[str]:
    """Identifiers written across adjacent cells of one row.  ID numbers (checked by their
    check character) may sit anywhere in the joined cells; a mobile only counts when the
    joined cells are exactly that number, since runs of ordinary counts side by side would
    otherwise read as phone numbers."""
    row = list(cells)
    out: set[str] = set()
    for size in range(2, 4):
        for i in range(len(row) - size + 1):
            window = row[i : i + size]
            joined = "".join(plain(c) for c in window)
            if sum(map(str.isalnum, joined)) < 11:  # too short to hold a mobile, let alone an ID
                continue
            # A statistic with a fractional part ("2.3333") is rarely a piece of a phone number:
            # 15 residents beside means 2.333 and 2.1234 read as 15233321234.  Such a mobile is
            # returned only with ``statistics=True``, and the scan makes it a warning (a person
            # looks) instead of a refusal.  ID numbers, which carry a check character, are
            # looked for everywhere and always refuse.
            fractional = any(_DECIMAL.match(plain(c).strip()) for c in window)
            whole = {compact(plain(joined)), compact(skeleton(joined))}
            if statistics:  # only the doubtful ones: mobiles made with a fractional cell
                if fractional:
                    out.update(f for f in identifier_forms(joined) if len(f) != 18 and f in whole)
                continue
            out.update(f for f in identifier_forms(joined) if len(f) == 18 or (f in whole and not fractional))
    return out


_DECIMAL = re.compile(r"^[-+]?\d*\.\d+$")
