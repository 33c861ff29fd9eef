"""ORM tables of county map boundaries (towns and villages) and point layers, created by migration
``0017_county_maps``.
"""

from __future__ import annotations
