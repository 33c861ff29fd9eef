"""ORM table of live server processes (服务器进程): identity and heartbeat.

Created by migration ``0009_server_heartbeats``.  Several server processes (``serve --workers
N``, several hosts) share one metadata database; each writes its row at start and beats it every
few seconds.  A job whose ``worker_id`` names a process with a fresh beat is left alone by
everyone else; one whose process stopped beating (killed, host gone) is recovered once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base


class LabServer(Base):
    __tablename__ = "lab_servers"
    # the process's worker id: "<host>:<pid>:<random>", new at every process start
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # set while this process holds the lab's leadership (runs the singleton services)
    leading_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # set on a clean stop: its jobs may be recovered at once, without waiting for the beat to age
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
