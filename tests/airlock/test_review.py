from __future__ import annotations

import pytest

from countylab.airlock.review import (
    Outcome,
    Vote,
    VoteChoice,
    VoterRole,
    can_review,
    decision,
    record_vote,
    require_can_review,
    visible_votes,
)
from countylab.catalog.grading import Grade
from countylab.errors import Conflict, PermissionDenied
from countylab.policy import release_review

TWO = release_review(Grade.general_3)
IMPORTANT = release_review(Grade.important)
ONE = release_review(Grade.general_2)


def approve(who: str, role: VoterRole = VoterRole.checker) -> Vote:
    return Vote(who, VoteChoice.approve, role)


def test_no_review_of_own_project_or_own_request() -> None:
    assert can_review("c1", {"p9"}, "p1", requester_user_id="dev")
    assert not can_review("c1", {"p1", "p9"}, "p1", requester_user_id="dev")
    assert not can_review("dev", set(), "p1", requester_user_id="dev")
    with pytest.raises(PermissionDenied):
        require_can_review("c1", ["p1"], "p1")


def test_two_independent_approvals_for_personal_data() -> None:
    votes = record_vote((), approve("a"), TWO)
    assert decision(votes, TWO) is Outcome.pending
    votes = record_vote(votes, approve("b"), TWO)
    assert decision(votes, TWO) is Outcome.approved


def test_one_approval_for_general_2() -> None:
    assert decision(record_vote((), approve("a"), ONE), ONE) is Outcome.approved


def test_important_data_also_needs_the_security_officer() -> None:
    votes = record_vote(record_vote((), approve("a"), IMPORTANT), approve("b"), IMPORTANT)
    assert decision(votes, IMPORTANT) is Outcome.pending
    votes = record_vote(votes, approve("so", VoterRole.security_officer), IMPORTANT)
    assert decision(votes, IMPORTANT) is Outcome.approved


def test_third_checker_vote_is_refused() -> None:
    votes = record_vote((), approve("a"), IMPORTANT)
    votes = record_vote(votes, approve("b"), IMPORTANT)
    with pytest.raises(Conflict) as info:
        record_vote(votes, Vote("c", VoteChoice.reject), IMPORTANT)
    assert info.value.details["reason"] == "slots_full"


def test_a_checker_cannot_vote_twice_even_as_officer() -> None:
    votes = record_vote((), approve("a"), IMPORTANT)
    with pytest.raises(Conflict):
        record_vote(votes, Vote("a", VoteChoice.reject), IMPORTANT)
    with pytest.raises(Conflict):
        record_vote(votes, approve("a", VoterRole.security_officer), IMPORTANT)


def test_officer_vote_refused_where_the_rule_has_none() -> None:
    with pytest.raises(Conflict):
        record_vote((), approve("so", VoterRole.security_officer), TWO)


def test_rejection_and_return_decide_at_once() -> None:
    rejected = record_vote((), Vote("a", VoteChoice.reject), TWO)
    assert decision(rejected, TWO) is Outcome.rejected
    with pytest.raises(Conflict) as info:
        record_vote(rejected, approve("b"), TWO)
    assert info.value.details["reason"] == "decided"
    returned = record_vote((), Vote("a", VoteChoice.return_), TWO)
    assert decision(returned, TWO) is Outcome.returned


def test_automatic_only_grade_needs_no_vote() -> None:
    rule = release_review(Grade.general_1)
    assert decision((), rule) is Outcome.approved
    with pytest.raises(Conflict):
        record_vote((), approve("a"), rule)


def test_votes_hidden_until_the_viewer_has_voted() -> None:
    votes = record_vote((), Vote("a", VoteChoice.reject, comment="small cells"), IMPORTANT)
    before = visible_votes(votes, "b")
    assert [v.hidden for v in before] == [True]
    assert before[0].choice is None and before[0].voter_id is None and before[0].comment is None
    assert visible_votes(votes, "a")[0].choice is VoteChoice.reject  # one's own vote
    votes2 = (Vote("a", VoteChoice.approve), Vote("b", VoteChoice.approve))
    seen = visible_votes(votes2, "b")
    assert [v.choice for v in seen] == [VoteChoice.approve, VoteChoice.approve]
    assert all(not v.hidden for v in visible_votes(votes, "dev", decided=True))
