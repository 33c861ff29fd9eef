"""Shared demo counties: generated once per session (tiny for most checks, small for distributions)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from countylab.demo import Manifest, generate_county


class County:
    """A generated county on disk with its manifest and CSVs read as strings (codes keep zeros)."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest
        self._cache: dict[str, pd.DataFrame] = {}

    def df(self, name: str) -> pd.DataFrame:
        if name not in self._cache:
            spec = self.manifest.dataset(name)
            self._cache[name] = pd.read_csv(
                self.root / spec.file, dtype=str, keep_default_na=False, encoding=spec.encoding
            )
        return self._cache[name]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> County:
    root = tmp_path_factory.mktemp("tiny")
    return County(root, generate_county(root, size="tiny"))


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> County:
    root = tmp_path_factory.mktemp("small")
    return County(root, generate_county(root, size="small", seed=7))
