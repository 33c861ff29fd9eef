"""Ray executor: each attempt becomes a Ray task that runs the same sandbox on its node.

For the cluster tier (docs/explanation/architecture.md).  Ray schedules by the attempt's
largest action (``num_cpus``,
``num_gpus``, ``memory``); on the node, :func:`run_attempt` runs every action in the sandbox
exactly as the local executor does, with ``gpu_devices`` set to the GPUs Ray assigned there.
Code, outbox and dataset paths must be visible at the same place on every node (shared disk).
Ray is optional: importing this module does not import it; constructing the executor does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from countylab.jobs.attempt import AttemptOutcome, AttemptTicket, SandboxRunner, run_attempt
from countylab.jobs.states import JobState


def _run_on_node(ticket: AttemptTicket, runner_factory: Callable[[], SandboxRunner]) -> AttemptOutcome:
    import ray

    gpus = tuple(str(g) for g in ray.get_gpu_ids()) if ticket.gpus else ()
    return run_attempt(replace(ticket, gpu_devices=gpus), runner_factory(), threading.Event())


class RayExecutor:
    """Runs attempts as Ray tasks on the cluster ``ray.init`` connected to (the caller inits Ray).

    ``runner_factory``: a picklable callable building the runner on the node (e.g. the class
    :class:`~countylab.jobs.attempt.SandboxedRunner`).  ``max_in_flight`` bounds submitted tasks.
    """

    def __init__(self, runner_factory: Callable[[], SandboxRunner], *, max_in_flight: int = 8) -> None:
        import ray

        self._ray: Any = ray
        self._remote: Any = ray.remote(max_retries=0)(_run_on_node)
        self._factory = runner_factory
        self._max = max_in_flight
        self._pending: dict[Any, AttemptTicket] = {}
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def free_slots(self) -> int:
        with self._lock:
            return self._max - len(self._pending)

    def submit(self, ticket: AttemptTicket) -> None:
        ref = self._remote.options(
            num_cpus=ticket.cpu, num_gpus=ticket.gpus, memory=ticket.memory_mb * 1024 * 1024
        ).remote(ticket, self._factory)
        with self._lock:
            self._pending[ref] = ticket
        if self._callbacks:
            ref.future().add_done_callback(lambda _f: [cb() for cb in self._callbacks])

    def poll(self) -> list[AttemptOutcome]:
        with self._lock:
            refs = list(self._pending)
        if not refs:
            return []
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        outcomes = []
        for ref in ready:
            with self._lock:
                ticket = self._pending.pop(ref)
            try:
                outcomes.append(self._ray.get(ref))
            except self._ray.exceptions.TaskCancelledError:
                outcomes.append(AttemptOutcome(ticket.job_id, ticket.attempt, JobState.cancelled))
            except self._ray.exceptions.RayError as exc:
                outcomes.append(
                    AttemptOutcome(ticket.job_id, ticket.attempt, JobState.failed, error=str(exc)[:2000])
                )
        return outcomes

    def cancel(self, job_id: int) -> None:
        with self._lock:
            refs = [ref for ref, t in self._pending.items() if t.job_id == job_id]
        for ref in refs:
            self._ray.cancel(ref, force=True)  # kills the worker; bwrap --die-with-parent ends the job

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def shutdown(self) -> None:
        with self._lock:
            refs = list(self._pending)
        for ref in refs:
            self._ray.cancel(ref, force=True)
