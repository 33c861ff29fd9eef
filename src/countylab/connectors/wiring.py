"""Attach the pull-connector scheduler to a lab (started with the server's background work)."""

from __future__ import annotations

from typing import Any


def attach(lab: Any) -> None:
    from countylab.connectors.scheduler import Scheduler

    scheduler = Scheduler(lab)
    lab.connector_scheduler = scheduler
    lab.register_background("connector-scheduler", scheduler.start, scheduler.stop)
