"""A read-only unit of work sees one snapshot on both backends, even while others write.

Found by bench/chaos.py on PostgreSQL: ``audit verify`` walked the chain, then read its head in a
later statement; under READ COMMITTED events appended in between made the head "not match the
last event" and a live lab reported a truncated (tampered) chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from countylab import audit
from countylab.audit.log import check_segment
from countylab.lab import Lab
from countylab.storage.models import AuditEvent, AuditHead
from tests.conftest import _pg_database
from tests.support import build_lab


@pytest.fixture(params=["sqlite", "postgresql"])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    if request.param == "sqlite":
        built = build_lab(tmp_path)
        yield built
        built.close()
    else:
        for url in _pg_database():
            built = build_lab(tmp_path, url)
            yield built
            built.close()


def _append(lab: Lab, n: int) -> None:
    for i in range(n):
        with lab.tx() as s:
            audit.record(s, None, "test.event", f"n:{i}")


def test_the_chain_walk_and_its_head_agree_while_events_are_appended(lab: Lab) -> None:
    _append(lab, 3)
    with lab.read() as s:
        walked = check_segment(s, after_id=0, after_hash=audit.log.GENESIS, upto_id=None)
        _append(lab, 2)  # committed by other units of work between the walk and the head
        head = s.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
        count = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        assert walked.ok and head.last_id == walked.events == count
        assert head.last_hash == walked.last_hash
        assert audit.log.verify(s).ok
    with lab.read() as s:  # a new unit of work sees them
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == count + 2
