"""Fixtures for the dummy-data tests."""

from __future__ import annotations

import pytest

from countylab.dummy import DatasetProfile
from tests.dummy.dummy_profiles import care_profile, households_profile, residents_profile


@pytest.fixture
def family() -> list[DatasetProfile]:
    # Deliberately children first: generate_related must sort them.
    return [care_profile(), residents_profile(), households_profile()]
