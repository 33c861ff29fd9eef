"""Attach the compute center to a lab: ``lab.jobs`` (a :class:`~countylab.jobs.center.JobsCenter`).

Cheap by design (it runs for every Lab, tests included): no threads, no sandbox probe.  The
dispatcher and its workers start with the lab's background work (``countylab serve``/``demo``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def attach(lab: Any) -> None:
    from countylab.jobs.center import JobsCenter

    center = JobsCenter(lab)
    lab.jobs = center
    lab.register_background("job-dispatcher", center.start, center.stop)


def outbox_files(lab: Any, job_id: int) -> list[Path]:
    """Regular files in the outbox of ``job_id``'s latest attempt, for the airlock.

    Layout: ``<data_dir>/jobs/outbox/<project_id>/<job_id>/attempt-<n>/<action>/…`` with each
    action's streams in ``logs/stdout.txt`` and ``logs/stderr.txt`` (see :mod:`countylab.jobs.center`).
    """
    files: list[Path] = lab.jobs.outbox_files(job_id)
    return files
