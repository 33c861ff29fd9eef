"""Checks on names that come from outside: uploaded file names and column names.

An uploaded file name ends up in logs, in the catalog and sometimes in a temp path, so it is
checked once here instead of being trusted anywhere.  We *reject* rather than silently rewrite
names that try path traversal or carry control characters: a department that uploads
``../../etc/passwd`` deserves a clear refusal, not a quietly renamed file.
"""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

from countylab.errors import ValidationFailed

FORMATS = ("csv", "xlsx", "xls", "parquet", "jsonl")

_EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xls": "xls",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_WINDOWS_RESERVED = (
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)
MAX_NAME_BYTES = 255


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def safe_filename(name: str) -> str:
    """Return ``name`` normalised to NFC if it is a plain file name; raise otherwise.

    Refused: empty names, NUL and other control or format characters (they hide text in logs
    and terminals), path separators of either OS, ``.``/``..``, names starting with a dot
    (hidden files), Windows device names and names longer than 255 UTF-8 bytes.
    """
    normalised = unicodedata.normalize("NFC", name).strip()
    reason = None
    if not normalised:
        reason = "empty"
    elif "\x00" in normalised or _has_control(normalised):
        reason = "control_character"
    elif (
        "/" in normalised
        or "\\" in normalised
        or PurePosixPath(normalised).name != normalised
        or PureWindowsPath(normalised).name != normalised
    ):
        reason = "path_separator"
    elif normalised in (".", "..") or normalised.startswith("."):
        reason = "dot_name"
    elif normalised.split(".")[0].lower() in _WINDOWS_RESERVED:
        reason = "reserved_name"
    elif len(normalised.encode("utf-8")) > MAX_NAME_BYTES:
        reason = "too_long"
    if reason is not None:
        raise ValidationFailed(
            "文件名不合法：不能含有路径、控制字符或以点开头，且不超过 255 字节",
            "Invalid file name: it must not contain a path, control characters or start with a dot, "
            "and must be at most 255 bytes",
            reason=reason,
        )
    return normalised


def format_from_filename(name: str) -> str:
    """Map a (safe) file name to one of :data:`FORMATS` by its extension."""
    suffix = PurePosixPath(safe_filename(name)).suffix.lower()
    fmt = _EXTENSIONS.get(suffix)
    if fmt is None:
        raise ValidationFailed(
            f"不支持的文件类型“{suffix or '(无扩展名)'}”，请上传 CSV、XLSX、XLS、Parquet 或 JSON Lines 文件",
            f"Unsupported file type '{suffix or '(none)'}'; upload CSV, XLSX, XLS, Parquet or JSON Lines",
            reason="unsupported_format",
        )
    return fmt


def check_column_names(names: list[str]) -> list[str]:
    """Validate a header: non-empty, printable, at most 128 characters, unique ignoring case.

    Uniqueness ignores case because DuckDB, which reads the warehouse, folds identifier case:
    ``Name`` and ``name`` would be one column there.
    """
    seen: dict[str, int] = {}
    cleaned: list[str] = []
    for index, raw in enumerate(names):
        name = unicodedata.normalize("NFC", raw).strip()
        column_no = index + 1
        if not name:
            raise ValidationFailed(
                f"第 {column_no} 列的列名为空",
                f"Column {column_no} has an empty name",
                column=column_no,
                reason="empty_column_name",
            )
        if _has_control(name) or len(name) > 128:
            raise ValidationFailed(
                f"第 {column_no} 列的列名含有控制字符或超过 128 个字符",
                f"Column {column_no} name has control characters or is longer than 128 characters",
                column=column_no,
                reason="bad_column_name",
            )
        folded = name.casefold()
        if folded in seen:
            raise ValidationFailed(
                f"列名“{name}”重复（第 {seen[folded]} 列和第 {column_no} 列，不区分大小写）",
                f"Duplicate column name '{name}' (columns {seen[folded]} and {column_no}, ignoring case)",
                column=name,
                reason="duplicate_column",
            )
        seen[folded] = column_no
        cleaned.append(name)
    return cleaned
