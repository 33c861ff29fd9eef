"""The release request (出域申请) state machine, written down in one table.

A release request moves a job's outbox files towards the developer.  Every move is an
*event* applied to the current *state*; :data:`TRANSITIONS` is the only place that says which
moves exist, and ``docs/explanation/release-states.md`` draws the same table.  Storage and
routes call :func:`transition` and never compare states themselves, so a new rule is added
here once and holds everywhere.

Transitions are idempotent where a retry is harmless: applying an event to the state that
event leads to (a double-clicked "approve", a repeated "withdraw", a retried "release" after a
lost response) returns that state unchanged instead of raising.  Everything else that is not
in the table raises :class:`~countylab.errors.Conflict`, because it means the caller's view
of the request is stale (another checker decided, the developer withdrew).
"""

from __future__ import annotations

from enum import StrEnum

from countylab.errors import Conflict


class ReleaseState(StrEnum):
    draft = "draft"  # 草稿: the developer is choosing outbox files
    submitted = "submitted"  # 已提交: automatic checks run
    under_review = "under_review"  # 审核中: checks passed; checkers vote
    returned = "returned"  # 已退回: needs changes (a check failed or a checker asked)
    rejected = "rejected"  # 已拒绝: final; nothing leaves
    approved = "approved"  # 已批准: enough approvals; waiting to be released
    released = "released"  # 已出域: files handed to the developer (only retract leaves it)
    withdrawn = "withdrawn"  # 已撤回: the developer gave up; final
    retracted = "retracted"  # 已撤展: a released result taken off display (steward/checker); final

    @property
    def label_zh(self) -> str:
        return _LABELS[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


class ReleaseEvent(StrEnum):
    submit = "submit"
    start_review = "start_review"  # automatic checks passed (no failing check)
    return_ = "return"  # a check failed, or a checker asks for changes
    reject = "reject"
    approve = "approve"
    release = "release"
    withdraw = "withdraw"
    resubmit = "resubmit"
    retract = "retract"  # take a released result off the showcase; its files stop downloading


_LABELS = {
    ReleaseState.draft: "草稿",
    ReleaseState.submitted: "已提交",
    ReleaseState.under_review: "审核中",
    ReleaseState.returned: "已退回",
    ReleaseState.rejected: "已拒绝",
    ReleaseState.approved: "已批准",
    ReleaseState.released: "已出域",
    ReleaseState.withdrawn: "已撤回",
    ReleaseState.retracted: "已撤展",
}

S, E = ReleaseState, ReleaseEvent

TRANSITIONS: dict[tuple[ReleaseState, ReleaseEvent], ReleaseState] = {
    (S.draft, E.submit): S.submitted,
    (S.submitted, E.start_review): S.under_review,
    (S.submitted, E.return_): S.returned,  # an automatic check failed
    (S.under_review, E.return_): S.returned,
    (S.under_review, E.reject): S.rejected,
    (S.under_review, E.approve): S.approved,
    (S.approved, E.release): S.released,
    (S.returned, E.resubmit): S.submitted,
    (S.draft, E.withdraw): S.withdrawn,
    (S.submitted, E.withdraw): S.withdrawn,
    (S.under_review, E.withdraw): S.withdrawn,
    (S.returned, E.withdraw): S.withdrawn,
    (S.released, E.retract): S.retracted,
}
"""Every legal move: (current state, event) → new state.  Nothing else is allowed."""

# released is final for the developer (the files are theirs) but may still be retracted from display
TERMINAL = frozenset({S.rejected, S.withdrawn, S.retracted})

# Events that lead to exactly one state; repeating one there is a harmless retry.  submit and
# resubmit both lead to "submitted", so a repeated click on either is a no-op there.
_IDEMPOTENT: dict[ReleaseEvent, ReleaseState] = {
    event: target
    for event in ReleaseEvent
    if len(targets := {t for (_, e), t in TRANSITIONS.items() if e is event}) == 1
    for target in targets
}


def transition(current: ReleaseState | str, event: ReleaseEvent | str) -> ReleaseState:
    """The state after ``event``; raises :class:`Conflict` for a move not in :data:`TRANSITIONS`."""
    state, ev = ReleaseState(current), ReleaseEvent(event)
    new = TRANSITIONS.get((state, ev))
    if new is not None:
        return new
    if _IDEMPOTENT.get(ev) is state:
        return state
    raise Conflict(
        f"出域申请当前为“{state.label_zh}”，不能执行“{ev.value}”",
        f"a release request in state {state.value!r} cannot {ev.value!r}",
        state=state.value,
        event=ev.value,
        reason="illegal_transition",
    )


def allowed_events(current: ReleaseState | str) -> list[ReleaseEvent]:
    """Events that move ``current`` somewhere (for buttons in the UI)."""
    state = ReleaseState(current)
    return [e for (s, e) in TRANSITIONS if s is state]
