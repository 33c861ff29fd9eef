"""A member removed from a project stops acting in it at once, on every server.

Principals (roles, memberships) are cached for a few seconds in each server process, so a removal
made by another process or at the console does not reach that cache at once.  Spending, running
and releasing therefore read the membership row in their own transaction: a principal object from
before the removal (what a stale cache would hold) is refused.  The DP variant is in
``test_dp_cache.py``; these are the job and budget-top-up variants.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from countylab.errors import PermissionDenied
from countylab.identity import projects as prj
from countylab.identity.access import SYSTEM
from countylab.lab import Lab
from countylab.privacy import topups
from tests.jobs.jobs_helpers import code_folder, developer, service
from tests.support import create_user


def _remove(lab: Lab, project_id: int, user_id: int | None) -> None:
    """The console removes the member (an owner needs a co-owner first: never the last owner)."""
    create_user(lab, f"co{project_id}", ["developer"])
    with lab.tx() as s:
        prj.add_member(s, SYSTEM, project_id, username=f"co{project_id}", role="owner")
        prj.remove_member(s, SYSTEM, project_id, user_id or 0)


def test_a_removed_member_cannot_submit_code_with_a_stale_principal(lab: Lab, tmp_path: Path) -> None:
    stale, pid = developer(lab, "dev", "p1")
    svc = service(lab, tmp_path)
    with lab.tx() as s:
        svc.submit(s, stale, pid, code_folder(tmp_path))  # a member: accepted
    _remove(lab, pid, stale.user_id)
    with pytest.raises(PermissionDenied) as info, lab.tx() as s:
        svc.submit(s, stale, pid, code_folder(tmp_path, "again"))
    assert info.value.details["reason"] == "project_member"


def test_a_removed_member_cannot_ask_for_more_budget_with_a_stale_principal(lab: Lab) -> None:
    stale, pid = developer(lab, "dev2", "p2")
    _remove(lab, pid, stale.user_id)
    with pytest.raises(PermissionDenied) as info, lab.tx() as s:
        topups.request_topup(s, stale, pid, 1, epsilon=0.5, reason="more please")
    assert info.value.details["reason"] == "project_member"
