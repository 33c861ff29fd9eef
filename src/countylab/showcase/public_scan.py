"""The privacy scan of the public pages: what no public page may hold, and a crawler to look.

:func:`forbidden_values` reads the demo seed files (the raw registers the demo lab ingested) and
collects what would trace a page back to a person: identifiers (ID numbers, phone numbers,
resident, household and enterprise ids, credit codes), people's names, and distinctive raw values
of every dataset that is not open (strings of two or more CJK characters in name and address
columns, numbers with five or more significant digits).  Values that also occur in an open
dataset (a village's name, a town's population) are public already and are left out.
:func:`scan` crawls every public GET route of the app and its links, HTML and JSON, and reports
each forbidden value found, with the page.  Generic patterns (an ID number with a valid check
digit, a mobile number) are looked for as well, whatever the seed holds.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_CJK = re.compile(r"[\u4e00-\u9fff]")
_ID18 = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_LINK = re.compile(r"""(?:href|src)=["'](/public[^"'#?]*)""")

IDENTIFIER_COLUMNS = ("id_number", "mobile", "phone", "resident_id", "household_id", "credit_code", "uscc")
TEXT_COLUMNS = ("name", "address", "legal", "contact", "head")


@dataclass(frozen=True)
class Finding:
    url: str
    kind: str  # identifier | name | text | number | pattern
    value: str
    source: str  # dataset.column, or the pattern's name


def _significant(text: str) -> int:
    digits = text.lstrip("+-").replace(".", "").lstrip("0")
    if "." not in text:
        digits = digits.rstrip("0")
    return len(digits)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def forbidden_values(seed_dir: Path, open_datasets: Iterable[str]) -> dict[str, tuple[str, str]]:
    """value → (kind, dataset.column) for every non-open seed file in ``seed_dir``."""
    opened = set(open_datasets)
    public: set[str] = set()
    tables: list[tuple[str, list[str], list[list[str]]]] = []
    for path in sorted(seed_dir.glob("*.csv")):
        name = path.stem
        base = name.removesuffix("_gbk")
        encoding = "gbk" if name.endswith("_gbk") else "utf-8-sig"
        with path.open(encoding=encoding, newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            continue
        if base in opened:
            public.update(cell.strip() for r in rows[1:] for cell in r)
        else:
            tables.append((base, rows[0], rows[1:]))
    found: dict[str, tuple[str, str]] = {}
    for dataset, header, rows in tables:
        for j, column in enumerate(header):
            col = column.lower()
            ident = any(k in col for k in IDENTIFIER_COLUMNS)
            text = any(k in col for k in TEXT_COLUMNS)
            for r in rows:
                if j >= len(r):
                    continue
                value = r[j].strip()
                if not value or value in public:
                    continue
                where = f"{dataset}.{column}"
                if ident and len(value) >= 6:
                    found.setdefault(value, ("identifier", where))
                elif text and len(_CJK.findall(value)) >= 2:
                    found.setdefault(value, ("name" if col == "name" else "text", where))
                elif _is_number(value) and _significant(value) >= 5:
                    found.setdefault(value, ("number", where))
    return found


def find(text: str, forbidden: dict[str, tuple[str, str]], url: str) -> list[Finding]:
    out: list[Finding] = []
    for value, (kind, source) in forbidden.items():
        if kind == "number":
            if re.search(rf"(?<![\d.]){re.escape(value)}(?![\d])", text):
                out.append(Finding(url, kind, value, source))
        elif value in text:
            out.append(Finding(url, kind, value, source))
    for pattern, label in ((_ID18, "id_number"), (_MOBILE, "mobile")):
        for m in pattern.finditer(text):
            if label == "id_number" and not _valid_id(m.group(0)):
                continue
            out.append(Finding(url, "pattern", m.group(0), label))
    return out


def _valid_id(text: str) -> bool:
    from countylab.identifiers import is_valid_id_number

    return is_valid_id_number(text)


def crawl(get: Callable[[str], tuple[int, str]], start: Iterable[str], limit: int = 2000) -> dict[str, str]:
    """Every page reachable from ``start`` through links under /public: url → body (2xx only)."""
    seen: dict[str, str] = {}
    queue = deque(start)
    visited: set[str] = set()
    while queue and len(visited) < limit:
        url = queue.popleft()
        if url in visited or url.startswith("/public/static"):
            continue
        visited.add(url)
        status, body = get(url)
        if status >= 300:
            continue
        seen[url] = body
        for link in _LINK.findall(body):
            if link not in visited:
                queue.append(link)
    return seen


def scan(pages: dict[str, str], forbidden: dict[str, tuple[str, str]]) -> list[Finding]:
    return [f for url, body in pages.items() for f in find(body, forbidden, url)]
