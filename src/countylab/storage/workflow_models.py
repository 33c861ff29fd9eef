"""ORM tables of the approval workflow (steps, deadlines, public notice, objections), created by
migration ``0015_approval_workflow``.
"""

from __future__ import annotations
