from __future__ import annotations

from pathlib import Path

import pytest

from countylab.storage.warehouse import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "wh", row_group_rows=1000)
