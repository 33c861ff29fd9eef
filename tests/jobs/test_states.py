"""The job state machine: the table, idempotence, refusals, and the diagram kept in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from countylab.errors import Conflict
from countylab.jobs import TRANSITIONS, JobState, check_transition

DOC = Path(__file__).resolve().parents[2] / "docs" / "explanation" / "job-states.md"


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(JobState)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("queued", "running"),
        ("running", "succeeded"),
        ("running", "lost"),
        ("lost", "queued"),
        ("failed", "queued"),
        ("killed", "queued"),
        ("queued", "cancelled"),
        ("pending", "queued"),
    ],
)
def test_allowed_moves(a: str, b: str) -> None:
    assert check_transition(a, b) is True


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("succeeded", "queued"),
        ("cancelled", "queued"),
        ("running", "queued"),
        ("queued", "succeeded"),
        ("failed", "cancelled"),
        ("pending", "running"),
        ("lost", "running"),
    ],
)
def test_illegal_moves_raise_conflict(a: str, b: str) -> None:
    with pytest.raises(Conflict) as info:
        check_transition(a, b)
    assert info.value.details == {"state": a, "target": b, "reason": "illegal_transition"}


@pytest.mark.parametrize("state", list(JobState))
def test_staying_put_is_a_no_op(state: JobState) -> None:
    assert check_transition(state, state) is False


def test_diagram_matches_the_table() -> None:
    arrows = re.findall(r"^\s+(\w+) --> (\w+)", DOC.read_text(), flags=re.M)
    drawn = {(a, b) for a, b in arrows if "[*]" not in (a, b)}
    table = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert drawn == table
