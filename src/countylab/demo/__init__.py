"""The demo county 青禾县: deterministic synthetic seed data for every department.

``generate_county`` writes the seed files and their manifest; ``feeds`` produces the live
hourly rows the demo server pushes while it runs.
"""

from countylab.demo.generator import SIZES, generate_county
from countylab.demo.manifest import ColumnSpec, DatasetSpec, KeySet, Manifest

__all__ = ["SIZES", "ColumnSpec", "DatasetSpec", "KeySet", "Manifest", "generate_county"]
