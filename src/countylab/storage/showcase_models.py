"""ORM tables of the public showcase (project stories), created by migration ``0019_showcase``."""

from __future__ import annotations
