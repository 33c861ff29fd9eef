"""The compute center (算力中心): job specs, the job state machine, the queue and executors.

A developer submits a code folder with ``countylab.yaml`` (:mod:`.spec`, :mod:`.validate`);
:class:`JobService` stores the code and queues the job; a :class:`Dispatcher` claims jobs from
the metadata database (:mod:`.queue`) and hands each attempt to an :class:`Executor` — local
worker threads (:class:`LocalExecutor`) or a Ray cluster (:mod:`.ray_executor`) — which runs
every action inside the sandbox.  States and transitions: :mod:`.states`.
"""

from countylab.jobs.attempt import (
    ActionResult,
    AttemptOutcome,
    AttemptTicket,
    SandboxedRunner,
    SandboxRunner,
    UnsandboxedRunner,
    run_attempt,
)
from countylab.jobs.codestore import CodeLimits, StoredCode, store_code
from countylab.jobs.dispatch import DatasetPaths, Dispatcher, new_worker_id
from countylab.jobs.executors import Executor, LocalExecutor
from countylab.jobs.quotas import UsageTotals
from countylab.jobs.service import JobService
from countylab.jobs.spec import Action, JobSpec, Output, OutputKind, Resources, parse_spec
from countylab.jobs.states import TRANSITIONS, JobState, check_transition
from countylab.jobs.validate import Quota, topological_order, validate_spec

__all__ = [
    "TRANSITIONS",
    "Action",
    "ActionResult",
    "AttemptOutcome",
    "AttemptTicket",
    "CodeLimits",
    "DatasetPaths",
    "Dispatcher",
    "Executor",
    "JobService",
    "JobSpec",
    "JobState",
    "LocalExecutor",
    "Output",
    "OutputKind",
    "Quota",
    "Resources",
    "SandboxRunner",
    "SandboxedRunner",
    "StoredCode",
    "UnsandboxedRunner",
    "UsageTotals",
    "check_transition",
    "new_worker_id",
    "parse_spec",
    "run_attempt",
    "store_code",
    "topological_order",
    "validate_spec",
]
