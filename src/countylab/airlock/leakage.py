"""Row-level leakage scan: do released values appear verbatim in the source datasets?

A job can copy identifiers or whole rows into an output that looks like a harmless table.
Before release we compare every output cell (and every output row's tuple of sensitive
values) with the datasets the job was granted, without keeping those datasets in memory and
without keeping their values at all:

* :func:`build_index` streams the source Parquet files record batch by record batch
  (``ParquetFile.iter_batches``, only the named columns) and keeps, per normalised value, a
  64-bit keyed BLAKE2b hash: a sorted ``uint64`` NumPy array, 8 bytes per distinct value
  (plus 2 bytes naming its source column).  200,000 rows of three identifier columns cost
  about 6 MB; the rows themselves are never held beyond one batch.
* The hash is keyed with a fresh random salt per index, so the index cannot be used as a
  lookup table for guessing identifiers (ID numbers have little entropy).
* :func:`scan_table` and :func:`scan_text` hash output values the same way and probe with
  ``np.searchsorted``.  Reports carry counts and positions (line, column, source column),
  never the matched values.

A 64-bit hash collides by chance with probability about n/2⁶⁴ per probe, negligible here.
"""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from countylab.airlock.normalise import (
    cjk_pieces,
    foldable_pattern,
    identifier_forms,
    neighbours,
    skeleton,
    split_identifiers,
    strip_format,
    value_forms,
)

NORMALISATION = "2"  # bump when normalise() or the skeleton forms change: cached indexes are rebuilt
U64 = npt.NDArray[np.uint64]
_NULL = "\x00"
_SEP = "\x1f"
_DIGITS_WITH_SEPARATORS = re.compile(r"^\+?[0-9\s\-]+$")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_TOKEN_SPLIT = re.compile(r"[\s,;:|，。；：、（）()\[\]{}\"'<>=/\\]+")
_COMPACT_EVERY = 1_000_000


def normalise(value: object) -> str | None:
    """The comparable form of a value: NFKC, trimmed, lower-case, digit separators removed,
    integral floats written as integers (spreadsheets turn 13800000000 into 1.38e10)."""
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            value = int(value)
    text = unicodedata.normalize("NFKC", strip_format(str(value))).strip().lstrip("'").strip().lower()
    if _DIGITS_WITH_SEPARATORS.match(text):
        text = re.sub(r"[\s\-]", "", text)
        if text.startswith("+86") and len(text) == 14:
            text = text[3:]
    if _INTEGRAL_DECIMAL.match(text):
        text = text[:-2]
    return text or None


_INTEGRAL_DECIMAL = re.compile(r"^[0-9]+\.0$")
_ALL_DIGITS = re.compile(r"^[0-9]+$")


def normalise_array(array: pa.Array) -> pa.Array:
    """:func:`normalise` over a whole Arrow column at once (the index build's hot path).
    Non-text columns fall back to the Python function value by value."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_integer(array.type):
        array = pc.cast(array, pa.string())
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return pa.array([normalise(v) for v in array.to_pylist()], type=pa.string())
    s = pc.utf8_normalize(pc.replace_substring_regex(array, r"\p{Cf}", ""), "NFKC")
    s = pc.utf8_trim_whitespace(pc.utf8_ltrim(pc.utf8_trim_whitespace(s), characters="'"))
    s = pc.utf8_lower(s)
    digits = pc.match_substring_regex(s, r"^\+?[0-9\s\-]+$")
    s = pc.if_else(digits, pc.replace_substring_regex(s, r"[\s\-]", ""), s)
    plus86 = pc.and_(pc.starts_with(s, "+86"), pc.equal(pc.utf8_length(s), 14))
    s = pc.if_else(plus86, pc.utf8_slice_codeunits(s, 3), s)
    integral = pc.match_substring_regex(s, r"^[0-9]+\.0$")
    s = pc.if_else(integral, pc.utf8_slice_codeunits(s, 0, -2), s)
    return pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s)


def _distinctive_mask(s: pa.Array) -> pa.Array:
    length = pc.utf8_length(s)
    cjk = pc.match_substring_regex(s, "[\u4e00-\u9fff]")
    digits = pc.match_substring_regex(s, "^[0-9]+$")
    need = pc.if_else(cjk, 2, pc.if_else(digits, 6, 4))
    return pc.fill_null(pc.greater_equal(length, need), False)


def distinctive(text: str) -> bool:
    """Values short enough to occur by chance (a count of 3, a code "A1") are not indexed."""
    if _CJK.search(text):
        return len(text) >= 2
    if _ALL_DIGITS.match(text):
        return len(text) >= 6
    return len(text) >= 4


def _hash(texts: Iterable[str], salt: bytes) -> U64:
    return np.fromiter(
        (int.from_bytes(blake2b(t.encode(), digest_size=8, key=salt).digest(), "little") for t in texts),
        dtype=np.uint64,
    )


def row_key(values: Sequence[str | None]) -> str:
    return _SEP.join(_NULL if v is None else v for v in values)


@dataclass(frozen=True)
class SourceIndex:
    """Hashes of source values; sorted so lookups are binary searches."""

    salt: bytes
    cell_hashes: U64
    cell_columns: npt.NDArray[np.uint16]  # index into column_names, aligned with cell_hashes
    column_names: tuple[str, ...]
    row_hashes: U64
    row_columns: tuple[str, ...]
    rows_indexed: int

    @property
    def nbytes(self) -> int:
        return int(self.cell_hashes.nbytes + self.cell_columns.nbytes + self.row_hashes.nbytes)

    def lookup(self, hashes: U64) -> npt.NDArray[np.int32]:
        """Source column index per hash, −1 where absent."""
        if len(self.cell_hashes) == 0:
            return np.full(len(hashes), -1, dtype=np.int32)
        pos = np.searchsorted(self.cell_hashes, hashes)
        pos = np.minimum(pos, len(self.cell_hashes) - 1)
        hit = self.cell_hashes[pos] == hashes
        return np.where(hit, self.cell_columns[pos].astype(np.int32), -1).astype(np.int32)

    def contains_rows(self, hashes: U64) -> npt.NDArray[np.bool_]:
        if len(self.row_hashes) == 0:
            return np.zeros(len(hashes), dtype=np.bool_)
        pos = np.minimum(np.searchsorted(self.row_hashes, hashes), len(self.row_hashes) - 1)
        return np.asarray(self.row_hashes[pos] == hashes, dtype=np.bool_)


def _compact(hashes: list[U64], cols: list[npt.NDArray[np.uint16]]) -> tuple[U64, npt.NDArray[np.uint16]]:
    h = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
    c = np.concatenate(cols) if cols else np.empty(0, dtype=np.uint16)
    uniq, first = np.unique(h, return_index=True)
    return uniq.astype(np.uint64), c[first]


def _skeletons(raw: pa.Array) -> list[str]:
    """Confusable skeletons of the values that have one different from their plain form (only
    values holding a character some look-alike folds onto are looked at, so the hot path
    stays in Arrow)."""
    if pa.types.is_dictionary(raw.type):
        raw = raw.dictionary_decode()
    if not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)):
        return []
    text = pc.utf8_normalize(pc.replace_substring_regex(raw, r"\p{Cf}", ""), "NFKC")
    mask = pc.fill_null(pc.match_substring_regex(text, foldable_pattern()), False)
    out: list[str] = []
    for value in pc.filter(text, mask).to_pylist():
        form = normalise(skeleton(value))
        if form is not None and form != normalise(value) and distinctive(form):
            out.append(form)
    return out


def build_index(
    sources: Iterable[str | Path],
    *,
    identifier_columns: Sequence[str],
    sensitive_columns: Sequence[str] = (),
    salt: bytes | None = None,
    batch_size: int = 65_536,
) -> SourceIndex:
    """Index ``identifier_columns`` (privacy-unit ids, ID numbers, phones, names) value by value
    and ``sensitive_columns`` as whole-row tuples, streaming each Parquet file in batches.
    A source that lacks some of the columns contributes the ones it has."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    names = tuple(dict.fromkeys(identifier_columns))
    cell_h: list[U64] = []
    cell_c: list[npt.NDArray[np.uint16]] = []
    row_h: list[U64] = []
    pending = 0
    rows = 0
    for source in sources:
        pf = pq.ParquetFile(source)
        present = set(pf.schema_arrow.names)
        wanted = [c for c in dict.fromkeys([*names, *sensitive_columns]) if c in present]
        if not wanted:
            continue
        row_cols = [c for c in sensitive_columns if c in present]
        for batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
            rows += batch.num_rows
            normalised = {c: normalise_array(batch.column(c)) for c in wanted}
            for ci, col in enumerate(names):
                if col not in normalised:
                    continue
                texts = pc.filter(normalised[col], _distinctive_mask(normalised[col])).to_pylist()
                texts += _skeletons(batch.column(col))
                cell_h.append(_hash(texts, salt))
                cell_c.append(np.full(len(texts), ci, dtype=np.uint16))
                pending += len(texts)
            if row_cols and len(row_cols) == len(sensitive_columns):
                parts = [pc.fill_null(normalised[c], _NULL) for c in row_cols]
                keys = pc.binary_join_element_wise(*parts, _SEP).to_pylist()
                row_h.append(_hash(keys, salt))
                pending += batch.num_rows
            if pending >= _COMPACT_EVERY:  # keep memory at distinct values, not rows seen
                h, c = _compact(cell_h, cell_c)
                cell_h, cell_c = [h], [c]
                row_h = [np.unique(np.concatenate(row_h))] if row_h else []
                pending = 0
    h, c = _compact(cell_h, cell_c)
    r = np.unique(np.concatenate(row_h)).astype(np.uint64) if row_h else np.empty(0, dtype=np.uint64)
    return SourceIndex(salt, h, c, names, r, tuple(sensitive_columns), rows)


@dataclass(frozen=True)
class CellMatch:
    line: int
    column: str  # output column, or "text" for free text
    source_column: str
    partial: bool = False  # matched a part of the cell (a name inside a sentence)


@dataclass(frozen=True)
class LeakageReport:
    """Positions of output values that equal source values; the values themselves are not kept."""

    cell_matches: tuple[CellMatch, ...]
    row_matches: tuple[int, ...]  # lines of output rows equal to a source row (sensitive columns)
    cells_scanned: int
    rows_scanned: int

    @property
    def exact_matches(self) -> tuple[CellMatch, ...]:
        return tuple(m for m in self.cell_matches if not m.partial)


def _probe(index: SourceIndex, candidates: list[tuple[str, int, str, bool]]) -> list[CellMatch]:
    """candidates: (normalised text, line, column, partial)."""
    if not candidates:
        return []
    hits = index.lookup(_hash((c[0] for c in candidates), index.salt))
    return [
        CellMatch(line, column, index.column_names[int(src)], partial)
        for (_, line, column, partial), src in zip(candidates, hits.tolist(), strict=True)
        if src >= 0
    ]


def _cell_candidates(value: object, line: int, column: str) -> list[tuple[str, int, str, bool]]:
    """Exact candidates (the value, its skeleton, identifiers hidden inside it) and partial ones
    (Chinese pieces: a name inside a longer cell)."""
    if value is None:
        return []
    try:
        found = _value_candidates(value)
    except TypeError:  # an unhashable cell value: read it as text
        found = _value_candidates(str(value))
    return [(t, line, column, partial) for t, partial in found]


@functools.lru_cache(maxsize=65_536)  # tables repeat their values
def _value_candidates(value: object) -> tuple[tuple[str, bool], ...]:
    raw = str(value)
    whole = normalise(value)
    exact = {whole} if whole else set()
    exact |= {n for f in value_forms(raw) if (n := normalise(f)) is not None}
    exact |= identifier_forms(raw)
    out = [(t, False) for t in exact if distinctive(t)]
    out += [(t, True) for t in cjk_pieces(raw) - exact if distinctive(t)]
    return tuple(out)


def scan_table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    lines: Sequence[int],
    index: SourceIndex,
    column_map: Mapping[str, str] | None = None,
) -> LeakageReport:
    """Scan every cell, and each row's tuple of the index's sensitive columns when the output
    has all of them (matched by name, case-insensitively, or through ``column_map`` from
    source column to output column)."""
    candidates: list[tuple[str, int, str, bool]] = []
    for row, line in zip(rows, lines, strict=True):
        for col, value in zip(header, row, strict=True):
            candidates += _cell_candidates(value, line, col)
        cells = [str(v) for v in row]  # values split over adjacent cells
        candidates += [(t, line, "row", False) for t in split_identifiers(cells)]
        for joined in neighbours(cells):
            candidates += [(t, line, "row", True) for t in cjk_pieces(joined) if distinctive(t)]
    lowered = {h.lower(): i for i, h in enumerate(header)}
    mapping = column_map or {}
    positions = [lowered.get(mapping.get(c, c).lower()) for c in index.row_columns]
    row_lines: list[int] = []
    if index.row_columns and all(p is not None for p in positions):
        idx = [p for p in positions if p is not None]
        keys = [row_key([normalise(row[i]) for i in idx]) for row in rows]
        found = index.contains_rows(_hash(keys, index.salt))
        row_lines = [line for line, hit in zip(lines, found.tolist(), strict=True) if hit]
    return LeakageReport(
        tuple(_dedupe(_probe(index, candidates))), tuple(row_lines), len(candidates), len(rows)
    )


def _dedupe(matches: list[CellMatch]) -> list[CellMatch]:
    """One match per (line, column, source column); a match found only by joining adjacent
    cells ("row") is kept when no single cell of that line matched the same source column."""
    seen: set[tuple[int, str, str]] = set()
    in_cells = {(m.line, m.source_column) for m in matches if m.column != "row"}
    out: list[CellMatch] = []
    for m in sorted(matches, key=lambda m: m.partial):  # exact before partial
        key = (m.line, m.column, m.source_column)
        if key in seen or (m.column == "row" and (m.line, m.source_column) in in_cells):
            continue
        seen.add(key)
        out.append(m)
    return out


def scan_text(text: str, index: SourceIndex) -> LeakageReport:
    """Scan free text (logs, SVG text nodes, OCR output): whole tokens exactly, and the 2–4
    character pieces of Chinese runs as partial matches (names are written without spaces)."""
    candidates: list[tuple[str, int, str, bool]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        exact: set[str] = set(identifier_forms(line))
        for form in {strip_format(line), skeleton(line)}:
            for token in _TOKEN_SPLIT.split(form):
                t = normalise(token)
                if t is not None and distinctive(t):
                    exact.add(t)
        candidates += [(t, line_no, "text", False) for t in exact if distinctive(t)]
        candidates += [(t, line_no, "text", True) for t in cjk_pieces(line) - exact if distinctive(t)]
    return LeakageReport(tuple(_probe(index, candidates)), (), len(candidates), 0)
