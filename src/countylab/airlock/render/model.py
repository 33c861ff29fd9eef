"""What a checker is shown and what leaves: the parsed model of one output file.

Every releasable format is parsed by a pure function ``bytes -> Rendering`` (no I/O, no
settings, bounded by :class:`Limits`), so the parsers are safe to run in a worker process.
A :class:`Rendering` holds two things built from the *same* parsed content:

* ``pages``: the complete preview, cut into pages (nothing is left off; hidden rows,
  comments, properties and removed parts are shown and marked);
* ``regenerated``: the bytes that are released, written by the lab from that content.

When a file cannot be fully shown or rewritten, the parser raises :class:`Refused` naming the
rule; such a file never leaves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

PAGE_LINES = 200
"""Lines of text (or rows of a table) on one preview page."""


@dataclass(frozen=True)
class Limits:
    """Bounds on every parse, so a small hostile file cannot become a large parse."""

    max_bytes: int = 64 * 2**20  # of the file itself
    max_text_lines: int = 500_000
    max_cells: int = 200_000  # table cells over a whole CSV or workbook
    max_columns: int = 500
    max_rows: int = 200_000  # highest row number in a sheet
    zip_entries: int = 200
    zip_total_bytes: int = 64 * 2**20  # uncompressed, from the central directory
    zip_ratio: int = 100  # uncompressed / compressed, for members over ``zip_ratio_floor``
    zip_ratio_floor: int = 2**20
    max_pixels: int = 40_000_000
    blob_chars: int = 100  # a base64 run this long cannot be read by a person: refused
    hex_chars: int = 129  # hex runs longer than a SHA-512 digest: refused
    mark_chars: int = 40  # shorter encoded-looking runs are marked in the preview


class Refused(Exception):  # noqa: N818 - a refusal, not a bug
    """This file cannot be fully previewed or regenerated, so it cannot be released."""

    def __init__(self, rule: str, zh: str, en: str, **details: Any) -> None:
        super().__init__(en)
        self.rule = rule
        self.zh = zh
        self.en = en
        self.details = details


@dataclass
class Section:
    """One part of the preview: a table (a sheet, a CSV), a text, a list of facts, an image."""

    kind: str  # "table" | "text" | "facts" | "image" | "source"
    title_zh: str
    title_en: str
    rows: list[list[str]] = field(default_factory=list)  # table rows, text lines, facts (k, v)
    numbers: list[int] = field(default_factory=list)  # the file's row/line number of each row
    marks: dict[int, str] = field(default_factory=dict)  # row index -> mark (hidden_row, blob…)
    header_marks: dict[int, str] = field(default_factory=dict)  # column index -> mark
    state: str = ""  # e.g. "hidden" for a hidden sheet; "" when nothing to say
    columns: list[str] = field(default_factory=list)  # column labels (A, B, …) of a sheet

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "rows": self.rows,
            "numbers": self.numbers,
            "marks": {str(k): v for k, v in self.marks.items()},
            "header_marks": {str(k): v for k, v in self.header_marks.items()},
            "state": self.state,
            "columns": self.columns,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Section:
        return cls(
            d["kind"],
            d["title_zh"],
            d["title_en"],
            [list(r) for r in d["rows"]],
            list(d["numbers"]),
            {int(k): v for k, v in d["marks"].items()},
            {int(k): v for k, v in d["header_marks"].items()},
            d.get("state", ""),
            list(d.get("columns", [])),
        )


@dataclass
class Note:
    """Something the checker must know: what was marked, made visible or not released."""

    code: str
    zh: str
    en: str


@dataclass
class Rendering:
    kind: str  # csv | text | json | xlsx | svg | png | jpeg
    media_type: str
    regenerated: bytes
    sections: list[Section]
    notes: list[Note] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.regenerated).hexdigest()

    def pages(self, page_lines: int = PAGE_LINES) -> list[tuple[int, int, int]]:
        """Every page as (section index, first row, end row); a section has at least one page."""
        out: list[tuple[int, int, int]] = []
        for i, sec in enumerate(self.sections):
            n = len(sec.rows)
            if sec.kind == "image" or n == 0:
                out.append((i, 0, n))
                continue
            out += [(i, a, min(a + page_lines, n)) for a in range(0, n, page_lines)]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "media_type": self.media_type,
            "sha256": self.sha256,
            "sections": [s.to_json() for s in self.sections],
            "notes": [{"code": n.code, "zh": n.zh, "en": n.en} for n in self.notes],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], regenerated: bytes) -> Rendering:
        return cls(
            d["kind"],
            d["media_type"],
            regenerated,
            [Section.from_json(s) for s in d["sections"]],
            [Note(n["code"], n["zh"], n["en"]) for n in d["notes"]],
        )
