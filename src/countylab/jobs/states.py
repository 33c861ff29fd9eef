"""The job state machine: every state, every allowed move, in this one table.

A job (作业) is the queue's unit: one submission of a project's code folder and its
``countylab.yaml``.  Each time a worker claims it, a new *attempt* starts; the job's state is
the state of its latest attempt, plus the queue states before and between attempts.

Transitions are idempotent: asking for the state a job is already in is a no-op (so a repeated
cancel, or a completion reported twice, changes nothing), and any move missing from
:data:`TRANSITIONS` raises :class:`~countylab.errors.Conflict`.  ``docs/explanation/job-states.md``
draws this table; a test keeps the two in step.
"""

from __future__ import annotations

from enum import StrEnum

from countylab.errors import Conflict


class JobState(StrEnum):
    pending = "pending"  # stored and valid, held for admission (e.g. code approval)
    queued = "queued"  # waiting for a worker
    running = "running"  # claimed by one worker; an attempt is in progress
    succeeded = "succeeded"  # every action exited 0 and wrote its declared outputs
    failed = "failed"  # an action failed, an output was missing, or dispatch refused it
    killed = "killed"  # a limit stopped it: wall clock, CPU time or memory
    cancelled = "cancelled"  # a person cancelled it
    lost = "lost"  # its worker vanished (restart, crash); reconciliation decides what next

    @property
    def label_zh(self) -> str:
        return _LABELS[self]


_LABELS = {
    JobState.pending: "待准入",
    JobState.queued: "排队中",
    JobState.running: "运行中",
    JobState.succeeded: "已成功",
    JobState.failed: "已失败",
    JobState.killed: "超限终止",
    JobState.cancelled: "已取消",
    JobState.lost: "已丢失",
}

S = JobState

#: the only moves a job may make
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.pending: frozenset({S.queued, S.cancelled}),
    S.queued: frozenset({S.running, S.cancelled, S.failed}),  # failed: refused at dispatch (quota)
    S.running: frozenset({S.succeeded, S.failed, S.killed, S.cancelled, S.lost}),
    S.lost: frozenset({S.queued, S.failed}),  # requeued once by reconciliation, then failed
    S.failed: frozenset({S.queued}),  # retry: a new attempt
    S.killed: frozenset({S.queued}),  # retry: a new attempt
    S.succeeded: frozenset(),
    S.cancelled: frozenset(),
}

#: states in which nothing runs and nothing will run without a person acting
FINISHED = frozenset({S.succeeded, S.failed, S.killed, S.cancelled})
#: states a person may retry from
RETRYABLE = frozenset({S.failed, S.killed, S.lost})
#: states that hold a reservation against the project's quota
ACTIVE = frozenset({S.pending, S.queued, S.running, S.lost})


def check_transition(current: JobState | str, target: JobState | str) -> bool:
    """True when ``current`` → ``target`` is a real move; False when already there (a no-op).

    Raises :class:`Conflict` for a move the table does not allow.
    """
    cur, tgt = JobState(current), JobState(target)
    if cur is tgt:
        return False
    if tgt not in TRANSITIONS[cur]:
        raise Conflict(
            f"作业状态不能从“{cur.label_zh}”变为“{tgt.label_zh}”",
            f"a job cannot move from {cur.value} to {tgt.value}",
            state=cur.value,
            target=tgt.value,
            reason="illegal_transition",
        )
    return True
