"""``Client``: one method per server endpoint, each a thin parse → request → model step.

All HTTP goes through ``_send`` so that authentication, the language header, mapping of
httpx failures to ``TransportError`` and of error responses to the exception hierarchy happen
in exactly one place.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from datetime import time as dt_time
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx

from ._agreements import AgreementsAPI
from ._airlock import AirlockAPI
from ._approvals import ApprovalsAPI
from ._catalog import CatalogAPI
from ._downloads import DownloadsAPI
from ._errors import CountylabClientError, TransportError, error_from_response
from ._frames import require_pandas
from ._jobs import JobsAPI
from ._maps import MapsAPI
from ._models import Dataset, Project, PushResult, QueryResult, User
from ._notify import NotifyAPI
from ._operations import OperationsAPI
from ._query import QueryAPI
from ._showcase import ShowcaseAPI
from ._version import __version__

if TYPE_CHECKING:
    import pandas as pd


def _msg(lang: str, zh: str, en: str) -> str:
    return en if lang.lower().startswith("en") else zh


def _check_id(value: object, what: str) -> int:
    # Ids are interpolated into the URL path: refuse anything but a real int so that a string
    # such as "3/../admin" can never reach another route.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    return value


def _json_default(value: object) -> object:
    """Encode the non-JSON values that rows read from files or databases commonly hold."""
    if isinstance(value, datetime | date | dt_time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _clean_row(row: object, index: int) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise TypeError(f"rows[{index}] must be a mapping of column name to value, got {type(row).__name__}")
    # NaN is how pandas spells "missing"; JSON has no NaN, the server expects null.
    return {str(k): (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


class Client(
    CatalogAPI,
    DownloadsAPI,
    QueryAPI,
    JobsAPI,
    AirlockAPI,
    NotifyAPI,
    OperationsAPI,
    ApprovalsAPI,
    MapsAPI,
    ShowcaseAPI,
    AgreementsAPI,
):
    """Synchronous client for a countylab server.

    ``transport`` lets tests plug in ``countylab_client.testing.FakeServer().transport`` (or any
    ``httpx.MockTransport``).  ``push_rows`` retries transport failures ``max_retries`` times,
    sleeping ``retry_backoff * 2**attempt`` seconds between tries.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        lang: str = "zh-CN",
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
    ) -> None:
        if not token:
            raise ValueError("token must be a non-empty API token (clk_...)")
        if max_retries < 0 or retry_backoff < 0:
            raise ValueError("max_retries and retry_backoff must not be negative")
        self.url = url
        self.lang = lang
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self._http = httpx.Client(
            base_url=url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept-Language": lang,
                "Accept": "application/json",
                "User-Agent": f"countylab-client/{__version__}",
            },
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:  # never show the token
        return f"<countylab_client.Client url={self.url!r} lang={self.lang!r}>"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        files: Mapping[str, tuple[str, bytes]] | None = None,
        data: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """One request.  ``body`` is sent as JSON; ``files``/``data`` as multipart; ``raw`` returns bytes."""
        content = None
        headers = {}
        if body is not None:
            content = json.dumps(body, default=_json_default, ensure_ascii=False, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        if files is not None or data is not None:
            request = self._http.build_request(method, path, params=params, files=files, data=data)
        else:
            request = self._http.build_request(method, path, params=params, content=content, headers=headers)
        url = str(request.url)
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise TransportError(
                _msg(
                    self.lang,
                    f"无法连接 countylab 服务器 {url}：{type(exc).__name__}: {exc}",
                    f"Could not reach the countylab server at {url}: {type(exc).__name__}: {exc}",
                ),
                url=url,
                code="timeout" if isinstance(exc, httpx.TimeoutException) else "transport_error",
            ) from exc
        if not response.is_success:
            raise error_from_response(response)
        if raw:
            return response.content
        try:
            return response.json()
        except ValueError as exc:
            raise CountylabClientError(
                _msg(self.lang, f"服务器返回的不是 JSON：{url}", f"The server did not return JSON: {url}"),
                status_code=response.status_code,
                code="invalid_response",
                details={"url": url},
            ) from exc

    def _items(self, data: Any) -> list[Any]:
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise CountylabClientError(
                _msg(self.lang, "服务器响应缺少 items 列表", "Server response lacks an 'items' list"),
                code="invalid_response",
            )
        return items

    # -- endpoints --------------------------------------------------------------------------

    def whoami(self) -> User:
        """The user this token belongs to, with organisation and roles."""
        return User.from_json(self._send("GET", "/api/whoami"))

    def projects(self) -> list[Project]:
        """Projects the caller can see."""
        return [Project.from_json(p) for p in self._items(self._send("GET", "/api/projects"))]

    def project(self, project_id: int, /) -> Project:
        return Project.from_json(self._send("GET", f"/api/projects/{_check_id(project_id, 'project_id')}"))

    def datasets(
        self,
        q: str | None = None,
        *,
        department: int | None = None,
        grade: str | None = None,
        tag: str | None = None,
    ) -> list[Dataset]:
        """Search the catalogue; filters left as ``None`` are not sent.

        ``department`` is the owning department's organisation id (``Dataset.org_id``, or
        ``whoami().org.id`` for your own), not its name: names are not unique across counties.
        """
        dept = None if department is None else str(_check_id(department, "department"))
        filters = {"q": q, "department": dept, "grade": grade, "tag": tag}
        params = {k: v for k, v in filters.items() if v is not None}
        return [Dataset.from_json(d) for d in self._items(self._send("GET", "/api/datasets", params=params))]

    def dataset(self, dataset_id: int, /) -> Dataset:
        """One dataset with description, columns and versions."""
        return Dataset.from_json(self._send("GET", f"/api/datasets/{_check_id(dataset_id, 'dataset_id')}"))

    def push_rows(
        self,
        dataset_id: int,
        rows: Iterable[Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> PushResult:
        """Append rows to a dataset, applied at most once.

        Every retry after a transport failure re-sends the *same* idempotency key, so if the
        first attempt reached the server and only its response was lost, the server answers
        ``duplicate=True`` instead of adding the batch twice.  HTTP error responses are not
        retried: the server gave a definite answer.
        """
        path = f"/api/datasets/{_check_id(dataset_id, 'dataset_id')}/rows"
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        body = {"rows": [_clean_row(r, i) for i, r in enumerate(rows)], "idempotency_key": key}
        attempt = 0
        while True:
            try:
                data = self._send("POST", path, body=body)
            except TransportError:
                if attempt >= self.max_retries:
                    raise
                if self.retry_backoff:
                    time.sleep(self.retry_backoff * 2**attempt)
                attempt += 1
                continue
            return PushResult.from_json(data, idempotency_key=key)

    def query_result(self, sql: str, *, epsilon: float, project_id: int) -> QueryResult:
        """Run a DP query and return the server's answer without pandas.

        Not retried: each answered query may spend privacy budget (``epsilon``).
        """
        body = {"sql": sql, "epsilon": float(epsilon), "project_id": _check_id(project_id, "project_id")}
        result = QueryResult.from_json(self._send("POST", "/api/query", body=body))
        return dataclasses.replace(result, _fetch=self._answer_bytes)

    def query(self, sql: str, *, epsilon: float, project_id: int) -> pd.DataFrame:
        """Run a DP query; one DataFrame column per result column plus ``<col>_ci_low``/``_ci_high``.

        ``df.attrs`` holds ``epsilon_spent``, ``cached``, ``budget_remaining`` and ``notes``.
        pandas is checked *before* the request so a missing extra never wastes budget.
        """
        require_pandas()
        return self.query_result(sql, epsilon=epsilon, project_id=project_id).to_pandas()
