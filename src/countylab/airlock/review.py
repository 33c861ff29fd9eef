"""Who may check a release request, how votes are counted, and what each checker may see.

The rules (docs/reference/policy.md; like OpenSAFELY Airlock's independent review):

* a checker never reviews a request of a project they belong to, nor their own request;
* the number of independent checker approvals comes from the grade
  (:func:`countylab.policy.release_review`): one for 一般2级, two for 一般3–4级 and 重要数据,
  and 重要数据 also needs the security officer's vote;
* each person votes once; a vote beyond the slots the rule has is refused, so a third
  checker cannot tip a decision the first two made;
* checkers vote blind: until a checker has voted, other checkers' votes are hidden from them
  (:func:`visible_votes`), so the second review is independent of the first;
* any rejection rejects; otherwise any "return" returns the request to the developer;
  otherwise the request is approved once every slot holds an approval.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from countylab.errors import Conflict, PermissionDenied
from countylab.policy import ReviewRule


class VoteChoice(StrEnum):
    approve = "approve"
    reject = "reject"
    return_ = "return"  # ask the developer for changes


class VoterRole(StrEnum):
    checker = "checker"
    security_officer = "security_officer"


class Outcome(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    returned = "returned"


@dataclass(frozen=True)
class Vote:
    voter_id: str
    choice: VoteChoice
    role: VoterRole = VoterRole.checker
    comment: str = ""


@dataclass(frozen=True)
class VoteView:
    """A vote as one viewer may see it: ``hidden`` votes show only that they exist."""

    hidden: bool
    role: VoterRole
    voter_id: str | None = None
    choice: VoteChoice | None = None
    comment: str | None = None


def can_review(
    checker_user_id: str,
    checker_project_ids: Collection[str],
    request_project_id: str,
    *,
    requester_user_id: str | None = None,
) -> bool:
    """True when the checker is independent of the request: not in its project, not its author."""
    if request_project_id in checker_project_ids:
        return False
    return requester_user_id is None or checker_user_id != requester_user_id


def require_can_review(
    checker_user_id: str,
    checker_project_ids: Collection[str],
    request_project_id: str,
    *,
    requester_user_id: str | None = None,
) -> None:
    if not can_review(
        checker_user_id, checker_project_ids, request_project_id, requester_user_id=requester_user_id
    ):
        raise PermissionDenied(
            "审核员不能审核自己或本项目的出域申请",
            "a checker cannot review their own request or one from their own project",
            reason="not_independent",
        )


def decision(votes: Sequence[Vote], rule: ReviewRule) -> Outcome:
    """The outcome the votes so far reach under ``rule``."""
    if any(v.choice is VoteChoice.reject for v in votes):
        return Outcome.rejected
    if any(v.choice is VoteChoice.return_ for v in votes):
        return Outcome.returned
    approvals = [v for v in votes if v.choice is VoteChoice.approve]
    checkers = sum(1 for v in approvals if v.role is VoterRole.checker)
    officer = any(v.role is VoterRole.security_officer for v in approvals)
    if checkers >= rule.checkers and (officer or not rule.security_officer):
        return Outcome.approved
    return Outcome.pending


def record_vote(votes: Sequence[Vote], vote: Vote, rule: ReviewRule) -> tuple[Vote, ...]:
    """``votes`` with ``vote`` added; raises :class:`Conflict` for a repeated voter, a vote
    beyond the rule's slots, or a vote on a request already decided."""
    if any(v.voter_id == vote.voter_id for v in votes):
        raise Conflict("每人只能投票一次", "each person votes once", reason="already_voted")
    if decision(votes, rule) is not Outcome.pending:
        raise Conflict("该出域申请已有审核结论", "the release request is already decided", reason="decided")
    if vote.role is VoterRole.checker:
        taken = sum(1 for v in votes if v.role is VoterRole.checker)
        if taken >= rule.checkers:
            raise Conflict(
                f"该申请只需 {rule.checkers} 名审核员，已满",
                f"this request takes {rule.checkers} checker votes, and they are all cast",
                reason="slots_full",
            )
    elif not rule.security_officer:
        raise Conflict(
            "该申请不需要数据安全官审核",
            "this request does not take a security officer vote",
            reason="no_officer_slot",
        )
    elif any(v.role is VoterRole.security_officer for v in votes):
        raise Conflict("数据安全官已投票", "the security officer has already voted", reason="slots_full")
    return (*votes, vote)


def visible_votes(votes: Sequence[Vote], viewer_id: str, *, decided: bool = False) -> list[VoteView]:
    """What ``viewer_id`` may see: everything once the request is decided or the viewer has
    voted; before that, only that other votes exist (not who cast them, nor how)."""
    open_ = decided or any(v.voter_id == viewer_id for v in votes)
    return [
        VoteView(False, v.role, v.voter_id, v.choice, v.comment)
        if open_ or v.voter_id == viewer_id
        else VoteView(True, v.role)
        for v in votes
    ]
