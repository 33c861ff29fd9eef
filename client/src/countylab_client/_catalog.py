"""Client methods of the data catalog: register datasets, upload versions, grade, preview.

A mixin of :class:`countylab_client.Client`: methods reach the server through ``self._send``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._models import Dataset


def _id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    return value


class CatalogAPI:
    _send: Callable[..., Any]  # provided by Client

    def create_dataset(
        self,
        name: str,
        title: str,
        *,
        description: str = "",
        privacy_unit: str = "none",
        privacy_unit_column: str | None = None,
        tags: Sequence[str] = (),
        key_columns: Sequence[str] = (),
        update_frequency: str = "static",
        contact: str = "",
        org_id: int | None = None,
    ) -> Dataset:
        """Register a dataset of your department (数据集登记)."""
        body = {
            "name": name,
            "title": title,
            "description": description,
            "privacy_unit": privacy_unit,
            "privacy_unit_column": privacy_unit_column,
            "tags": list(tags),
            "key_columns": list(key_columns),
            "update_frequency": update_frequency,
            "contact": contact,
            "org_id": org_id,
        }
        return Dataset.from_json(self._send("POST", "/api/datasets", body=body))

    def update_dataset(self, dataset_id: int, /, **fields: Any) -> Dataset:
        return Dataset.from_json(
            self._send("PATCH", f"/api/datasets/{_id(dataset_id, 'dataset_id')}", body=fields)
        )

    def upload_file(
        self,
        dataset_id: int,
        path: str | Path,
        /,
        *,
        mode: str = "replace",
        key: Sequence[str] = (),
        note: str = "",
    ) -> dict[str, Any]:
        """Upload a CSV/XLSX/Parquet/JSONL file as the dataset's next immutable version."""
        p = Path(path)
        result: dict[str, Any] = self._send(
            "POST",
            f"/api/datasets/{_id(dataset_id, 'dataset_id')}/versions",
            files={"file": (p.name, p.read_bytes())},
            data={"mode": mode, "key": ",".join(key), "note": note},
        )
        return result

    def versions(self, dataset_id: int, /) -> list[dict[str, Any]]:
        data = self._send("GET", f"/api/datasets/{_id(dataset_id, 'dataset_id')}/versions")
        return list(data["items"])

    def set_grade(self, dataset_id: int, /, grade: str, *, reason: str = "") -> dict[str, Any]:
        """Security officer: confirm, raise or (with a reason) lower a dataset's grade."""
        result: dict[str, Any] = self._send(
            "PUT",
            f"/api/datasets/{_id(dataset_id, 'dataset_id')}/grade",
            body={"grade": grade, "reason": reason},
        )
        return result

    def preview(self, dataset_id: int, /, rows: int = 20) -> dict[str, Any]:
        """Rows to look at: real only for open (一般1级) data, otherwise labelled dummy rows."""
        result: dict[str, Any] = self._send(
            "GET", f"/api/datasets/{_id(dataset_id, 'dataset_id')}/preview", params={"rows": str(rows)}
        )
        return result

    def dummy_data(
        self,
        dataset_id: int,
        /,
        path: str | Path,
        *,
        rows: int = 1000,
        fmt: str = "csv",
        seed: int = 0,
        project_id: int | None = None,
    ) -> Path:
        """Download schema-faithful dummy data (模拟数据) to ``path``; never real rows.

        With ``project_id``: only the columns a sandbox job of that project will see (an
        authorisation may approve some columns only); a dataset the project's jobs cannot read
        is refused (:class:`PermissionDenied`)."""
        params = {"rows": str(rows), "format": fmt, "seed": str(seed)}
        if project_id is not None:
            params["project_id"] = str(_id(project_id, "project_id"))
        content: bytes = self._send(
            "GET", f"/api/datasets/{_id(dataset_id, 'dataset_id')}/dummy", params=params, raw=True
        )
        out = Path(path)
        out.write_bytes(content)
        return out
