"""ORM table of what changed between two rounds of a release request (出域申请的轮次变化).

Created by migration ``0013_usability``.  When a returned request is resubmitted, the lab
records, once, how the new round's files differ from the last round's (added, removed, changed
files; for tables the change of shape and the first changed cells) and the developer's reply to
each checker comment.  Checkers then review the change, not the whole request again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from countylab.storage.models import Base, utcnow


class ReleaseRoundChange(Base):
    __tablename__ = "release_round_changes"
    __table_args__ = (UniqueConstraint("request_id", "round", name="uq_release_round_change"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer)  # the new round; it is compared with round - 1
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # per file: status, diff
    replies: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # {comment_id, reply_id}
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
