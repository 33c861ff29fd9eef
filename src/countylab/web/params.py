"""Shared parameter types of the web routes: every integer a client sends is bounded.

Why: an unbounded ``int`` parameter lets a client send ``2**70`` (or ``-2**70``), which Python
accepts and the database driver cannot bind: an ``OverflowError`` on SQLite,
``NumericValueOutOfRange`` on PostgreSQL — a 500 instead of an answer.  With these types such a
request is a 422 before any route runs, and the bounds appear in the OpenAPI document (so
clients and the schema-driven tests of ``tests/schema/`` see them).

The bound is the range of the column the value meets.  Primary keys are ``INTEGER`` columns —
64-bit on SQLite but **32-bit on PostgreSQL** — so an id is at most ``ID_MAX = 2**31 - 1``
(the fuzz test found ``2**40`` passing an int64 bound and overflowing PostgreSQL).  Audit event
ids are ``BIGINT`` (``EventId``).  Ids start at 1, so ``0`` and negatives are refused too.
Whatever still reaches the database out of range is a 422 (``countylab.web.errors``).

==============  ==========================================  ===================================
type            where                                       example
==============  ==========================================  ===================================
``Id``          path parameters                             ``/api/jobs/{job_id}``
``QueryId``     optional id in the query string (or None)   ``?project=…``
``EventId``     optional audit event id (int64, or None)     ``?before_id=…``
``FormId``      id in an HTML form                          ``dataset_id`` of a grant form
``BodyId``      id in a JSON body (pydantic model field)    ``{"job_id": …}``
``Limit``       page sizes                                  ``?limit=…`` (1–1000)
``Offset``      page offsets                                ``?offset=…`` (0–int64)
``Page``        1-based page numbers                        ``?page=…``
``Seed``        random seeds in the query string            ``?seed=…`` (0–int64)
``Count``       non-negative counters stored in ``INTEGER``   ``interval_s``, ``daily_quota``
==============  ==========================================  ===================================
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Path, Query
from pydantic import Field

#: the largest value a signed 64-bit database integer holds (``BIGINT``)
INT64_MAX = 2**63 - 1
#: the largest value of an ``INTEGER`` column on PostgreSQL: every id and counter column
ID_MAX = 2**31 - 1
#: the most rows one list page returns
MAX_PAGE = 1000

Id = Annotated[int, Path(ge=1, le=ID_MAX)]
QueryId = Annotated[int | None, Query(ge=1, le=ID_MAX)]
EventId = Annotated[int | None, Query(ge=1, le=INT64_MAX)]
FormId = Annotated[int, Form(ge=1, le=ID_MAX)]
BodyId = Annotated[int, Field(ge=1, le=ID_MAX)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=INT64_MAX)]
Page = Annotated[int, Query(ge=1, le=INT64_MAX)]
Seed = Annotated[int, Query(ge=0, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=ID_MAX)]

#: ``responses=`` of a route that answers with a file of any type (airlock previews, downloads)
ANY_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the file (its own media type)",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}
