from __future__ import annotations

import pytest

from countylab.airlock.states import (
    TERMINAL,
    TRANSITIONS,
    allowed_events,
    transition,
)
from countylab.airlock.states import (
    ReleaseEvent as E,
)
from countylab.airlock.states import (
    ReleaseState as S,
)
from countylab.errors import Conflict

TABLE = [
    (S.draft, E.submit, S.submitted),
    (S.submitted, E.start_review, S.under_review),
    (S.submitted, E.return_, S.returned),
    (S.under_review, E.return_, S.returned),
    (S.under_review, E.reject, S.rejected),
    (S.under_review, E.approve, S.approved),
    (S.approved, E.release, S.released),
    (S.returned, E.resubmit, S.submitted),
    (S.draft, E.withdraw, S.withdrawn),
    (S.submitted, E.withdraw, S.withdrawn),
    (S.under_review, E.withdraw, S.withdrawn),
    (S.returned, E.withdraw, S.withdrawn),
    (S.released, E.retract, S.retracted),
]


def test_table_is_exactly_the_documented_machine() -> None:
    assert {(s, e): t for s, e, t in TABLE} == TRANSITIONS


@pytest.mark.parametrize(("state", "event", "new"), TABLE)
def test_legal_moves(state: S, event: E, new: S) -> None:
    assert transition(state, event) is new
    assert transition(state.value, event.value) is new


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.draft, E.approve),
        (S.draft, E.release),
        (S.submitted, E.approve),  # no approval before the checks pass
        (S.under_review, E.release),  # never released before approval
        (S.approved, E.withdraw),
        (S.rejected, E.resubmit),
        (S.rejected, E.approve),
        (S.released, E.withdraw),
        (S.withdrawn, E.submit),
        (S.approved, E.reject),
        (S.returned, E.approve),
        (S.retracted, E.release),  # a retracted result never comes back by itself
        (S.approved, E.retract),
    ],
)
def test_illegal_moves_conflict(state: S, event: E) -> None:
    with pytest.raises(Conflict) as info:
        transition(state, event)
    assert info.value.details["reason"] == "illegal_transition"


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.approved, E.approve),
        (S.released, E.release),
        (S.withdrawn, E.withdraw),
        (S.rejected, E.reject),
        (S.submitted, E.submit),
        (S.submitted, E.resubmit),
        (S.returned, E.return_),
        (S.under_review, E.start_review),
        (S.retracted, E.retract),
    ],
)
def test_retries_are_idempotent(state: S, event: E) -> None:
    assert transition(state, event) is state


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL:
        assert allowed_events(state) == []
    assert set(allowed_events(S.under_review)) == {E.return_, E.reject, E.approve, E.withdraw}


def test_unknown_names_are_rejected() -> None:
    with pytest.raises(ValueError):
        transition("draft", "teleport")


def test_docs_diagram_lists_every_transition() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs/explanation/release-states.md").read_text(encoding="utf-8")
    for (state, event), new in TRANSITIONS.items():
        assert f"{state.value} --> {new.value}: {event.value}" in doc
