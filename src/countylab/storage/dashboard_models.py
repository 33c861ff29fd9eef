"""ORM tables of dashboards, their widgets, the showcase budget's cached DP metrics and publication
approvals, created by migration ``0018_dashboards``.
"""

from __future__ import annotations
