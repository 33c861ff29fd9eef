"""Text encoding of uploaded CSV files.

County departments mostly export from Excel, whose "CSV" on a Chinese Windows is GBK (a subset
of GB18030); newer tools write UTF-8, sometimes with a byte-order mark.  Detection runs cheap,
exact checks first (BOM, strict UTF-8, strict GB18030 on a sample) and only asks
charset-normalizer, a statistical guesser, when both strict decodes fail — so the common
cases are decided by rules that cannot be fooled by an unlucky sample.

Arrow reads only UTF-8, so other encodings are transcoded in chunks into a temporary file:
memory stays bounded by the chunk size whatever the file size.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from countylab.errors import ValidationFailed

UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
GB18030 = "gb18030"
_CHUNK = 1 << 20


def _wrong_encoding(line: int | None = None) -> ValidationFailed:
    where_zh = f"第 {line} 行附近" if line is not None else ""
    where_en = f" near line {line}" if line is not None else ""
    return ValidationFailed(
        f"无法识别文件编码{where_zh}：请另存为 UTF-8 或 GBK 编码的 CSV",
        f"Cannot decode the file{where_en}: save it as UTF-8 or GBK encoded CSV",
        reason="encoding",
        row=line,
    )


def _decodes(sample: bytes, encoding: str, *, final: bool) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        decoder.decode(sample, final=final)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    """Return ``"utf-8"``, ``"utf-8-sig"`` or ``"gb18030"`` for the CSV at ``path``.

    Only the first ``sample_bytes`` are examined; a file whose encoding changes later fails
    while being read, with the line number (see :func:`transcode_to_utf8` and the readers).
    """
    with path.open("rb") as handle:
        sample = handle.read(sample_bytes)
        final = handle.read(1) == b""
    if sample.startswith(codecs.BOM_UTF8):
        return UTF8_BOM
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in sample:
        # UTF-16 "Unicode text" exports and binary files both carry NUL bytes.
        raise _wrong_encoding()
    if _decodes(sample, UTF8, final=final):
        return UTF8
    if _decodes(sample, GB18030, final=final):
        return GB18030
    return _fallback(sample)


def _fallback(sample: bytes) -> str:
    """Ask charset-normalizer; accept only Chinese encodings that GB18030 can read."""
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is not None and best.encoding.replace("_", "").lower() in ("gbk", "gb2312", "gb18030", "hz"):
        return GB18030
    raise _wrong_encoding()


def transcode_to_utf8(source: Path, encoding: str, target: Path) -> None:
    """Copy ``source`` to ``target`` re-encoded as UTF-8 without BOM, in bounded chunks.

    A decode error names the line where it happened so the provider can fix that row.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    lines_done = 1
    with source.open("rb") as src, target.open("wb") as dst:
        while True:
            chunk = src.read(_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise _wrong_encoding(lines_done + chunk.count(b"\n", 0, exc.start)) from None
            if text.startswith("\ufeff") and lines_done == 1 and dst.tell() == 0:
                text = text[1:]
            dst.write(text.encode(UTF8))
            lines_done += chunk.count(b"\n")
            if not chunk:
                break


def first_bad_utf8_line(path: Path) -> int | None:
    """Line number of the first line that is not valid UTF-8, for error messages."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode(UTF8)
            except UnicodeDecodeError:
                return number
    return None
