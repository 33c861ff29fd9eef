"""Zip archives judged from their central directory, before a single member is inflated.

A zip bomb is small on disk and huge once inflated.  The central directory states every
member's compressed and uncompressed size; :func:`open_zip` refuses an archive whose member
count, total inflated size or compression ratio is over :class:`~.model.Limits`, and any
encrypted or duplicated member.  :mod:`zipfile` never inflates a member past the size its
directory states, so the checked numbers bound every later read.  Tar archives have no
directory to check cheaply and are recognised and refused by their header alone.
"""

from __future__ import annotations

import io
import zipfile

from countylab.airlock.render.model import Limits, Refused


def open_zip(data: bytes, limits: Limits) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise Refused("zip_damaged", "ZIP 结构损坏", "the ZIP structure is damaged") from exc
    if len(infos) > limits.zip_entries:
        raise Refused(
            "zip_entries",
            f"压缩包含 {len(infos)} 个成员，上限 {limits.zip_entries}",
            f"the archive has {len(infos)} members, the limit is {limits.zip_entries}",
            entries=len(infos),
        )
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise Refused("zip_duplicate", "压缩包含同名成员", "the archive repeats a member name")
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > limits.zip_total_bytes:
        raise Refused(
            "zip_size",
            f"解压后共 {total} 字节，上限 {limits.zip_total_bytes}",
            f"it inflates to {total} bytes, the limit is {limits.zip_total_bytes}",
            inflated=total,
        )
    for info in [*infos, None]:
        size, comp = (info.file_size, info.compress_size) if info else (total, packed)
        if size > limits.zip_ratio_floor and size > limits.zip_ratio * max(comp, 1):
            raise Refused(
                "zip_ratio",
                f"压缩比 {size // max(comp, 1)}:1 超过上限 {limits.zip_ratio}:1（疑似压缩炸弹）",
                f"compression ratio {size // max(comp, 1)}:1 is over {limits.zip_ratio}:1 (a zip bomb?)",
                ratio=size // max(comp, 1),
            )
        if info is not None and info.flag_bits & 0x1:
            raise Refused("zip_encrypted", "压缩包成员已加密", "an archive member is encrypted")
    return zf


def is_tar(data: bytes) -> bool:
    """A tar header: the ``ustar`` magic and a valid header checksum (so text never matches)."""
    if len(data) < 512 or data[257:262] != b"ustar":
        return False
    try:
        stated = int(data[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stated == sum(data[:148]) + 8 * 32 + sum(data[156:512])
