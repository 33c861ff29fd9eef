"""Rule (f): encoded blobs inside text are decoded and scanned.

A log line or a table cell can carry ``MzMwMTAy…`` (base64) or ``333330…`` (hex) that decodes
to ID numbers, names or a pickle.  Every run of base64 (standard or URL-safe, 24 characters
or more) or hex (32 or more) is decoded, twice over at most (base64 of base64); decoded text is
scanned for personal information and source values like any text, and decoded bytes for
pickles.  A long run that decodes to nothing readable is an opaque blob: a checker must look.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from countylab.airlock.checks.base import (
    CheckContext,
    CheckResult,
    CheckStatus,
    FileKind,
    Findings,
    OutputFile,
)
from countylab.airlock.checks.pickles import find_pickle
from countylab.airlock.checks.scan import leakage_of_text, pii_in_text, report_pii
from countylab.airlock.checks.sniff import file_kind, sniff_file
from countylab.airlock.checks.tables import read_tables

name = "encoded_blobs"

_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]{2}){16,}(?![0-9A-Za-z])")
OPAQUE_LENGTH = 128  # encoded characters: shorter opaque runs (hashes, ids) are not flagged
MAX_BLOBS = 2000
_KINDS = (FileKind.csv, FileKind.xlsx, FileKind.text, FileKind.json, FileKind.svg)


def applies_to(file: OutputFile) -> bool:
    return file_kind(file) in _KINDS


def _decode(run: str) -> bytes | None:
    if re.fullmatch(r"[0-9a-fA-F]+", run) and len(run) % 2 == 0:
        try:
            return binascii.unhexlify(run)
        except binascii.Error:
            return None
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        if "-" in body or "_" in body:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _readable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return text if text and printable / len(text) >= 0.9 else None


def blobs(text: str, depth: int = 2) -> Iterator[tuple[str, bytes, str | None]]:
    """(encoded run, decoded bytes, decoded text or None) for every decodable run, and for
    runs inside decoded text up to ``depth`` levels."""
    seen = 0
    for pattern in (_HEX, _BASE64):
        for m in pattern.finditer(text):
            run = m.group(0)
            if pattern is _BASE64 and re.fullmatch(r"[0-9a-fA-F]+", run) and len(run) % 2 == 0:
                continue  # read as hex above
            data = _decode(run)
            if data is None or len(data) < 12:
                continue
            seen += 1
            if seen > MAX_BLOBS:
                return
            decoded = _readable(data)
            yield run, data, decoded
            if decoded is not None and depth > 1:
                yield from blobs(decoded, depth - 1)


def _text_of(file: OutputFile) -> str:
    if file_kind(file) is FileKind.xlsx:
        try:
            parsed = read_tables(file)
        except Exception:  # noqa: BLE001 - table_format reports why
            return ""
        if parsed is None:
            return ""
        return "\n".join(",".join(r) for t in parsed.tables for r in [t.header, *t.rows])
    return sniff_file(file).text or ""


def run(file: OutputFile, context: CheckContext) -> CheckResult:
    found = Findings(name)
    decoded_texts: list[str] = []
    pickles = opaque = count = 0
    for run_text, data, decoded in blobs(_text_of(file)):
        count += 1
        if find_pickle(data) is not None:
            pickles += 1
        elif decoded is not None:
            decoded_texts.append(decoded)
        elif len(run_text) >= OPAQUE_LENGTH:
            opaque += 1
    found.details["blobs"] = {"decoded": count, "pickles": pickles, "opaque": opaque}
    if pickles:
        found.add(
            CheckStatus.fail,
            f"有 {pickles} 段编码内容解码后是 Python pickle",
            f"{pickles} encoded blobs decode to a Python pickle",
        )
    if decoded_texts:
        inner = "\n".join(decoded_texts)
        report_pii(pii_in_text(inner), found, "编码内容解码后", "inside decoded blobs: ")
        if context.source_index is not None:
            leakage_of_text(inner, context.source_index, found)
    if opaque:
        found.add(
            CheckStatus.warn,
            f"有 {opaque} 段不透明的长编码内容：须由审核员确认",
            f"{opaque} long opaque encoded blobs: human review required",
        )
    return found.result()
