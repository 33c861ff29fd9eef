"""ORM table of failed-login counters (登录限流): one row per account name and per address.

Created by migration ``0008_login_throttle``.  The counters live in the metadata database, not
in a process's memory, because the lab runs several server processes (``serve --workers N``) on
one database: an attacker spreading guesses over the workers must meet one count.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base


class LoginThrottle(Base):
    __tablename__ = "login_throttle"
    # "account:<username as typed>" or "address:<client address>"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
