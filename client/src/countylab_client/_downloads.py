"""Client methods for dataset downloads as files people open in WPS/Excel (XLSX, CSV with BOM).

A mixin of :class:`countylab_client.Client`.  ``download_dummy`` works for every dataset you
may read; ``download_rows`` only for data confirmed open (一般1级), as on the dataset page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

_FORMATS = ("xlsx", "csv")


def _check(dataset_id: object, format: str, headers: str) -> int:
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, int):
        raise TypeError(f"dataset_id must be an int, got {type(dataset_id).__name__}")
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    if headers not in ("", "title", "name"):
        raise ValueError("headers must be 'title' (column titles), 'name' (column names) or ''")
    return dataset_id


class DownloadsAPI:
    _send: Callable[..., Any]  # provided by Client

    def _download(
        self, kind: str, dataset_id: int, path: str | Path, format: str, rows: int, headers: str, seed: int
    ) -> Path:
        did = _check(dataset_id, format, headers)
        params = {"kind": kind, "format": format, "rows": str(rows), "seed": str(seed)}
        if headers:
            params["headers"] = headers
        content: bytes = self._send("GET", f"/api/datasets/{did}/download", params=params, raw=True)
        out = Path(path)
        out.write_bytes(content)
        return out

    def download_dummy(
        self,
        dataset_id: int,
        /,
        path: str | Path,
        *,
        format: str = "xlsx",
        rows: int = 1000,
        headers: str = "",
        seed: int = 0,
    ) -> Path:
        """Save dummy data (模拟数据) of a dataset as XLSX or CSV (UTF-8 with BOM) at ``path``.

        ``headers="title"`` gives the columns' Chinese titles, ``"name"`` their identifiers; the
        default follows the client's language (titles in Chinese, names in English).
        """
        return self._download("dummy", dataset_id, path, format, rows, headers, seed)

    def download_rows(
        self,
        dataset_id: int,
        /,
        path: str | Path,
        *,
        format: str = "xlsx",
        rows: int = 100_000,
        headers: str = "",
    ) -> Path:
        """Save the real rows of an open (一般1级, confirmed) dataset; refused (403) otherwise."""
        return self._download("rows", dataset_id, path, format, rows, headers, 0)
