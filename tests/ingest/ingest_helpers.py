"""Helpers shared by the ingest tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

from pathlib import Path


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with (size, inode): equal trees mean nothing was added or changed."""
    return {
        str(p.relative_to(root)): (p.stat().st_size if p.is_file() else 0, p.stat().st_ino)
        for p in sorted(root.rglob("*"))
    }


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path
