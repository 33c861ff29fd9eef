"""A file's rendering, built once and kept beside the stored file.

The automatic checks (run in a worker, outside any database transaction) build it; previews
and the release read it.  Entries are keyed by the SHA-256 of the file's bytes, so a changed
file is never served an old preview, and refusals are kept too, so a bomb is parsed once.
Writes are atomic (temporary file, then rename); an unwritable folder only costs a re-parse.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from countylab.airlock.render import render
from countylab.airlock.render.model import Limits, Refused, Rendering


def _folder(path: Path) -> Path:
    return path.with_name(path.name + ".render")


def _write(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(f"{dest.name}.{secrets.token_hex(8)}.part")  # unique per writer
    try:
        tmp.write_bytes(data)
        tmp.replace(dest)
    except OSError:
        tmp.unlink(missing_ok=True)


def rendering_for(path: Path, name: str, limits: Limits | None = None) -> Rendering:
    """The rendering of the file at ``path`` (shown as ``name``); raises :class:`Refused`."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    folder = _folder(path)
    meta, blob = folder / f"{sha}.json", folder / f"{sha}.bin"
    if meta.exists():
        try:
            saved = json.loads(meta.read_text(encoding="utf-8"))
            if "refused" in saved:
                r = saved["refused"]
                raise Refused(r["rule"], r["zh"], r["en"], **r.get("details", {}))
            regenerated = blob.read_bytes()
            if hashlib.sha256(regenerated).hexdigest() == saved["sha256"]:
                return Rendering.from_json(saved, regenerated)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt
    try:
        result = render(name, data, limits)
    except Refused as exc:
        refusal = {"rule": exc.rule, "zh": exc.zh, "en": exc.en, "details": exc.details}
        _store(folder, meta, json.dumps({"refused": refusal}, ensure_ascii=False).encode(), None, b"")
        raise
    _store(folder, meta, json.dumps(result.to_json(), ensure_ascii=False).encode(), blob, result.regenerated)
    return result


def _store(folder: Path, meta: Path, body: bytes, blob: Path | None, regenerated: bytes) -> None:
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return
    if blob is not None:
        _write(blob, regenerated)
    _write(meta, body)


def cached(path: Path) -> bool:
    """Whether the rendering of ``path`` (or its refusal) is already built."""
    if not path.exists():
        return False
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return (_folder(path) / f"{sha}.json").exists()
