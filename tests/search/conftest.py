"""The demo county's catalog, loaded once per session as ``countylab demo --size tiny`` loads it
(generated seed files through the ordinary ingestion path, then the steward's metadata)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from countylab.demo import generate_county
from countylab.demolab import load_catalog, steward_principal
from countylab.lab import Lab
from tests.support import build_lab, create_user


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("search-demo")
    generate_county(root / "seed", size="tiny")
    lab = build_lab(root)
    create_user(lab, "steward", ["steward"], org="县大数据中心", kind="platform")
    load_catalog(lab, root / "seed", steward_principal(lab), lambda _msg: None)
    yield lab
    lab.close()
