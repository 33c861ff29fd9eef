"""What a file *is*, from its bytes, whatever its name says.

A developer (or malicious code in a job) can name any file ``result.csv``; what matters is the
content.  :func:`sniff` reads the magic numbers of the formats we refuse (executables,
archives, model weights, raw data containers) and of the formats we accept, and tells text
formats apart by parsing them.  Nothing here executes or unpickles anything: pickles are
recognised with :mod:`pickletools`, which only walks opcodes.
"""

from __future__ import annotations

import bz2
import io
import json
import lzma
import pickletools
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from countylab.airlock.checks.base import FileKind, OutputFile
from countylab.airlock.render.zipguard import is_tar


class Content(StrEnum):
    csv_or_text = "text"
    json = "json"
    svg = "svg"
    png = "png"
    jpeg = "jpeg"
    xlsx = "xlsx"
    model = "model"  # pickle, joblib, ONNX, PyTorch, safetensors, Keras/HDF5, NumPy arrays
    executable = "executable"
    archive = "archive"
    data = "data"  # Parquet, Arrow, SQLite…: raw tables never leave through the airlock
    binary = "binary"  # anything else that is not text


@dataclass(frozen=True)
class Sniffed:
    content: Content
    detail: str  # the precise format, e.g. "pickle", "ELF executable", "PyTorch checkpoint"
    text: str | None = None  # decoded text for text formats


MODEL_SUFFIXES = frozenset(
    {
        ".pkl",
        ".pickle",
        ".joblib",
        ".onnx",
        ".pt",
        ".pth",
        ".ckpt",
        ".safetensors",
        ".h5",
        ".keras",
        ".npy",
        ".npz",
        ".pb",
        ".tflite",
        ".cbm",
        ".lgb",
        ".xgb",
    }
)

_MAGIC: tuple[tuple[bytes, Content, str], ...] = (
    (b"\x7fELF", Content.executable, "ELF executable"),
    (b"MZ", Content.executable, "Windows executable"),
    (b"\xcf\xfa\xed\xfe", Content.executable, "Mach-O executable"),
    (b"\xca\xfe\xba\xbe", Content.executable, "Mach-O/Java class"),
    (b"#!", Content.executable, "script with a shebang"),
    (b"\x89PNG\r\n\x1a\n", Content.png, "PNG"),
    (b"\x89HDF\r\n\x1a\n", Content.model, "HDF5/Keras weights"),
    (b"\x93NUMPY", Content.model, "NumPy array"),
    (b"PAR1", Content.data, "Parquet"),
    (b"ARROW1", Content.data, "Arrow IPC"),
    (b"SQLite format 3\x00", Content.data, "SQLite database"),
    (b"\xff\xd8\xff", Content.jpeg, "JPEG"),
    (b"GIF8", Content.binary, "GIF"),
    (b"%PDF", Content.binary, "PDF"),
    (b"\xd0\xcf\x11\xe0", Content.binary, "OLE2 (xls/doc)"),
    (b"Rar!", Content.archive, "RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", Content.archive, "7z archive"),
)

_COMPRESSED: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
)


def _looks_like_pickle(data: bytes) -> bool:
    """True when the bytes are one complete pickle opcode stream (walked, never loaded)."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    if not data or chr(data[0]) not in "(]}cIFSVNl)\x80K":
        return False
    try:
        last = None
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(data[: 4 * 2**20])):
            last = opcode.name
        return last == "STOP"
    except Exception:  # noqa: BLE001 - anything malformed is simply not a pickle
        return False


def _decompressed_head(data: bytes, kind: str) -> bytes:
    try:
        if kind == "gzip":
            return zlib.decompressobj(wbits=31).decompress(data[: 2**16], 64)
        if kind == "zlib":
            return zlib.decompressobj().decompress(data[: 2**16], 64)
        if kind == "bzip2":
            return bz2.BZ2Decompressor().decompress(data[: 2**16], 64)
        return lzma.LZMADecompressor().decompress(data[: 2**16], 64)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError):
        return b""


def _is_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    (header_len,) = struct.unpack("<Q", data[:8])
    return (
        2 <= header_len <= len(data) - 8
        and data[8:9] == b"{"
        and b'"dtype"' in data[8 : 8 + min(header_len, 4096)]
    )


def _is_onnx(data: bytes) -> bool:
    # ModelProto: field 1 (ir_version, varint) comes first; producers name themselves early.
    return len(data) > 3 and data[0] == 0x08 and data[1] < 0x20 and data[2] in (0x12, 0x1A, 0x22, 0x3A, 0x42)


def _sniff_zip(data: bytes) -> Sniffed:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return Sniffed(Content.archive, "damaged ZIP archive")
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return Sniffed(Content.model, "PyTorch checkpoint")
    if any(n.endswith(".npy") for n in names) and all(n.endswith(".npy") for n in names):
        return Sniffed(Content.model, "NumPy .npz arrays")
    if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
        return Sniffed(Content.xlsx, "Excel workbook")
    return Sniffed(Content.archive, "ZIP archive")


_SVG_ROOT = re.compile(r"^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*(?:<!DOCTYPE[^>]*>\s*)?<svg[\s>]", re.S)


def _decode(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def sniff(data: bytes) -> Sniffed:
    """Classify the whole content of a file (the caller has already capped its size)."""
    for magic, content, detail in _MAGIC:
        if data.startswith(magic):
            return Sniffed(content, detail)
    if is_tar(data):  # refused by its header alone: its entries are never walked
        return Sniffed(Content.archive, "tar archive")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return _sniff_zip(data)
    if _looks_like_pickle(data):
        return Sniffed(Content.model, "pickle")
    for magic, kind in _COMPRESSED:
        if data.startswith(magic):
            if _looks_like_pickle(_decompressed_head(data, kind)):
                return Sniffed(Content.model, f"{kind}-compressed pickle (joblib)")
            return Sniffed(Content.archive, f"{kind}-compressed data")
    if _is_safetensors(data):
        return Sniffed(Content.model, "safetensors")
    if _is_onnx(data):
        return Sniffed(Content.model, "ONNX")
    text = _decode(data)
    if text is None:
        return Sniffed(Content.binary, "unrecognised binary")
    if _SVG_ROOT.match(text):
        return Sniffed(Content.svg, "SVG", text)
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            json.loads(text)
            return Sniffed(Content.json, "JSON", text)
        except ValueError:
            pass
    return Sniffed(Content.csv_or_text, "text", text)


# ---------------------------------------------------------------------------------------------
# content + name → the kind of output the other checks handle

HEAD_LIMIT = 64 * 2**20
"""Bytes read to sniff a file; larger files are sniffed on their head and fail the size cap."""

# Which contents each allowed name suffix may hold.  A mismatch (an XLSX named .png, a pickle
# named .csv) fails: a checker must never be shown something other than what the name says.
SUFFIX_CONTENT: dict[str, tuple[FileKind, frozenset[Content]]] = {
    ".csv": (FileKind.csv, frozenset({Content.csv_or_text})),
    ".tsv": (FileKind.csv, frozenset({Content.csv_or_text})),
    ".xlsx": (FileKind.xlsx, frozenset({Content.xlsx})),
    ".png": (FileKind.png, frozenset({Content.png})),
    ".jpg": (FileKind.jpeg, frozenset({Content.jpeg})),
    ".jpeg": (FileKind.jpeg, frozenset({Content.jpeg})),
    ".svg": (FileKind.svg, frozenset({Content.svg})),
    ".txt": (FileKind.text, frozenset({Content.csv_or_text, Content.json})),
    ".log": (FileKind.text, frozenset({Content.csv_or_text, Content.json})),
    ".json": (FileKind.json, frozenset({Content.json})),
}


@lru_cache(maxsize=16)
def _sniff_path(path: str, size: int, mtime_ns: int) -> Sniffed:
    with open(path, "rb") as fh:
        return sniff(fh.read(HEAD_LIMIT))


def sniff_file(file: OutputFile) -> Sniffed:
    """:func:`sniff` of a file on disk, cached while the file is unchanged."""
    st = file.path.stat()
    return _sniff_path(str(file.path), st.st_size, st.st_mtime_ns)


def file_kind(file: OutputFile) -> FileKind | None:
    """The allowed kind of ``file`` when its content matches its name, else None."""
    allowed = SUFFIX_CONTENT.get(file.suffix)
    if allowed is None:
        return None
    kind, contents = allowed
    return kind if sniff_file(file).content in contents else None
