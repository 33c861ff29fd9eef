"""Shared parameter types of the web routes: every integer a client sends is bounded.

Why: the metadata database stores ids and counters as 64-bit integers.  An unbounded ``int``
parameter lets a client send ``2**70`` (or ``-2**70``), which Python accepts and the database
driver cannot bind: an ``OverflowError`` on SQLite, ``NumericValueOutOfRange`` on PostgreSQL —
a 500 instead of an answer.  With these types such a request is a 422 before any route runs,
and the bounds appear in the OpenAPI document (so clients and schema-driven tests see them).

Ids start at 1 (every table's primary key does), so ``0`` and negatives are refused too.

==============  ==========================================  ===================================
type            where                                       example
==============  ==========================================  ===================================
``Id``          path parameters                             ``/api/jobs/{job_id}``
``QueryId``     optional id in the query string (or None)   ``?before_id=…``
``FormId``      id in an HTML form                          ``dataset_id`` of a grant form
``BodyId``      id in a JSON body (pydantic model field)    ``{"job_id": …}``
``Limit``       page sizes                                  ``?limit=…`` (1–1000)
``Offset``      page offsets                                ``?offset=…`` (0–int64)
``Page``        1-based page numbers                        ``?page=…``
``Seed``        random seeds in the query string            ``?seed=…`` (0–int64)
``Count``       other non-negative counters in a body       ``interval_s``, ``priority``
==============  ==========================================  ===================================
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Query
from pydantic import Field

#: the largest value a signed 64-bit database integer holds
INT64_MAX = 2**63 - 1
#: the most rows one list page returns
MAX_PAGE = 1000

Id = Annotated[int, Path(ge=1, le=INT64_MAX)]
QueryId = Annotated[int | None, Query(ge=1, le=INT64_MAX)]
FormId = Annotated[int, Form(ge=1, le=INT64_MAX)]
BodyId = Annotated[int, Field(ge=1, le=INT64_MAX)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=INT64_MAX)]
Page = Annotated[int, Query(ge=1, le=INT64_MAX)]
Seed = Annotated[int, Query(ge=0, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
