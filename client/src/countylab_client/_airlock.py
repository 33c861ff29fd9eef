"""Client methods of the airlock (出域申请) and the model registry (模型).

A mixin of :class:`countylab_client.Client`: methods reach the server through ``self._send``.
The views are tolerant frozen dataclasses: unknown fields are ignored, known ones are checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from ._errors import CountylabClientError


def _id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    return value


def _need(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise CountylabClientError(
            f"服务器响应格式不正确：字段 {key!r} / Unexpected server response: field {key!r}",
            code="invalid_response",
            details={"field": key},
        )
    return value


@dataclass(frozen=True)
class ReleaseRequest:
    """A release request (出域申请) as its viewer may see it."""

    id: int
    state: str
    title: str = ""
    grade: str = ""
    project: str | None = None
    checks_status: str | None = None
    files: tuple[Mapping[str, Any], ...] = ()
    votes: tuple[Mapping[str, Any], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            _need(data, "id", int),
            _need(data, "state", str),
            str(data.get("title") or ""),
            str(data.get("grade") or ""),
            data.get("project"),
            data.get("checks_status"),
            tuple(data.get("files") or ()),
            tuple(data.get("votes") or ()),
            dict(data),
        )


@dataclass(frozen=True)
class ReleasedFile:
    id: int
    name: str
    released_sha256: str
    released_bytes: int = 0
    request_id: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        request = data.get("request") or {}
        return cls(
            _need(data, "id", int),
            _need(data, "name", str),
            _need(data, "released_sha256", str),
            int(data.get("released_bytes") or 0),
            request.get("id") if isinstance(request, Mapping) else None,
        )


@dataclass(frozen=True)
class ModelField:
    """One named input of a model (its card's input schema): what to send, and what is allowed.

    ``categories`` are the words a caller writes (a town's name); the lab maps them to codes and
    does any one-hot or other encoding itself."""

    name: str
    title: str
    type: str  # number | integer | boolean | category | text
    allowed: str  # in words, as the lab's error messages say it
    example: Any = None
    categories: tuple[str, ...] = ()
    lower: float | None = None
    upper: float | None = None
    encoding: str = "raw"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            _need(data, "name", str),
            str(data.get("title") or ""),
            str(data.get("type") or ""),
            str(data.get("allowed_en") or ""),
            data.get("example"),
            tuple(str(c.get("label") or c.get("code")) for c in data.get("categories") or []),
            data.get("lower"),
            data.get("upper"),
            str(data.get("encoding") or "raw"),
        )


@dataclass(frozen=True)
class Model:
    """A registered model's card and state (never its weights).

    ``model.schema`` lists its named input fields; ``model.predict({"town": "城关镇", "age": 82})``
    returns one prediction, ``model.predict([{...}, {...}])`` a list."""

    id: int
    name: str
    state: str
    format: str = ""
    card: Mapping[str, Any] = field(default_factory=dict)
    rate_per_minute: int = 0
    daily_quota: int = 0
    _api: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], api: Any = None) -> Self:
        return cls(
            _need(data, "id", int),
            _need(data, "name", str),
            _need(data, "state", str),
            str(data.get("format") or ""),
            dict(data.get("card") or {}),
            int(data.get("rate_per_minute") or 0),
            int(data.get("daily_quota") or 0),
            api,
        )

    @property
    def schema(self) -> list[ModelField]:
        """The named input fields (empty for a model called with positional rows)."""
        raw = self.card.get("input_schema") or {}
        fields = raw.get("fields") if isinstance(raw, Mapping) else None
        return [ModelField.from_json(f) for f in fields or []]

    def example(self) -> dict[str, Any]:
        """A record that passes the schema (first category, middle of each range)."""
        return {f.name: f.example for f in self.schema}

    def predict(self, records: Mapping[str, Any] | Sequence[Mapping[str, Any] | Sequence[Any]]) -> Any:
        if self._api is None:
            raise RuntimeError("this Model was not fetched through a Client; use client.predict(id, rows)")
        if isinstance(records, Mapping):
            return self._api.predict(self.id, [records])[0]
        return self._api.predict(self.id, records)


def file_entry(
    name: str,
    *,
    description: str = "",
    controls: str = "",
    count_columns: Sequence[str] = (),
    filter: str = "",
) -> dict[str, Any]:
    """One file of a release request, for :meth:`AirlockAPI.create_release`."""
    return {
        "name": name,
        "description": description,
        "controls": controls,
        "count_columns": list(count_columns),
        "filter": filter,
    }


class AirlockAPI:
    _send: Callable[..., Any]  # provided by Client

    def outbox(self, job_id: int, /) -> dict[str, Any]:
        """What may be selected from a job's outbox: ``{"selectors": [...], "counts": {...}}``.

        Selectors are ``*`` (every output but models and logs), ``logs``, and the outputs the
        job's countylab.yaml declares (``<action>/<path>``); counts say how many files each
        takes.  File names and sizes are written by the job and are never shown before review."""
        data: dict[str, Any] = self._send("GET", f"/api/airlock/jobs/{_id(job_id, 'job_id')}/outbox")
        return data

    def create_release(
        self,
        job_id: int,
        files: Sequence[str | Mapping[str, Any]],
        *,
        title: str = "",
        note: str = "",
        submit: bool = False,
    ) -> ReleaseRequest:
        """Create a release request from selectors (``"*"``, ``"logs"``, ``"<action>/<path>"`` as
        declared in countylab.yaml, or :func:`file_entry` dicts); the lab copies the files."""
        entries = [file_entry(f) if isinstance(f, str) else dict(f) for f in files]
        body = {
            "job_id": _id(job_id, "job_id"),
            "files": entries,
            "title": title,
            "note": note,
            "submit": submit,
        }
        return ReleaseRequest.from_json(self._send("POST", "/api/airlock/requests", body=body))

    def release(self, request_id: int, /) -> ReleaseRequest:
        return ReleaseRequest.from_json(
            self._send("GET", f"/api/airlock/requests/{_id(request_id, 'request_id')}")
        )

    def releases(self, scope: str = "mine") -> list[ReleaseRequest]:
        """``mine`` (your projects), ``queue`` (checkers), ``all`` (stewards, admins)."""
        data = self._send("GET", "/api/airlock/requests", params={"scope": scope})
        return [ReleaseRequest.from_json(d) for d in data.get("items") or []]

    def _action(self, request_id: int, action: str, body: Any = None) -> ReleaseRequest:
        path = f"/api/airlock/requests/{_id(request_id, 'request_id')}/{action}"
        return ReleaseRequest.from_json(self._send("POST", path, body=body))

    def submit_release(self, request_id: int, /) -> ReleaseRequest:
        return self._action(request_id, "submit")

    def resubmit_release(
        self,
        request_id: int,
        /,
        *,
        job_id: int | None = None,
        files: Sequence[str | Mapping[str, Any]] | None = None,
        replies: Mapping[int, str] | None = None,
    ) -> ReleaseRequest:
        """Send a returned request back as the next round: ``files`` (selectors) drop files or
        add other declared outputs, ``job_id`` takes a newer job of the same project, ``replies``
        answer the checkers' comments (comment id → text).  ``request.raw["changes"]`` then says
        what changed since the last round."""
        entries = [file_entry(f) if isinstance(f, str) else dict(f) for f in files] if files else None
        body = {
            "job_id": job_id,
            "files": entries,
            "replies": {str(k): v for k, v in (replies or {}).items()},
        }
        return self._action(request_id, "resubmit", body)

    def withdraw_release(self, request_id: int, /) -> ReleaseRequest:
        return self._action(request_id, "withdraw")

    def vote_release(
        self, request_id: int, /, choice: str, comment: str = "", *, role: str | None = None
    ) -> ReleaseRequest:
        """A checker's vote: ``approve``, ``reject`` or ``return`` (with a reason)."""
        return self._action(request_id, "votes", {"choice": choice, "comment": comment, "role": role})

    def comment_release(self, request_id: int, /, body: str, *, file_id: int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._send(
            "POST",
            f"/api/airlock/requests/{_id(request_id, 'request_id')}/comments",
            body={"body": body, "file_id": file_id},
        )
        return result

    def released_files(self) -> list[ReleasedFile]:
        data = self._send("GET", "/api/airlock/released")
        return [ReleasedFile.from_json(d) for d in data.get("items") or []]

    def download_release_file(self, file_id: int, /, to: str | Path | None = None) -> bytes:
        """The released bytes (the server has recorded their SHA-256); written to ``to`` if given."""
        data: bytes = self._send("GET", f"/api/airlock/files/{_id(file_id, 'file_id')}/download", raw=True)
        if to is not None:
            Path(to).write_bytes(data)
        return data

    # -- models ---------------------------------------------------------------------------------
    def register_model(
        self,
        job_id: int,
        file: str,
        name: str,
        *,
        inputs: Sequence[str] = (),
        outputs: Sequence[str | Mapping[str, Any]],
        target: str | None = None,
        description: str = "",
        metrics_file_id: int | None = None,
    ) -> Model:
        """Register a model file from a job's outbox with its model card (it never leaves).

        ``outputs`` are typed: ``"visits:number:0..50:2"`` or ``"risk:category:low|high"`` (or
        the same as dicts); ``target`` names the training dataset's column the model predicts,
        which the lab's memorisation tests use before a checker may approve the model.
        """
        body = {
            "job_id": _id(job_id, "job_id"),
            "file": file,
            "name": name,
            "inputs": list(inputs),
            "outputs": [o if isinstance(o, str) else dict(o) for o in outputs],
            "target": target,
            "description": description,
            "metrics_file_id": metrics_file_id,
        }
        return Model.from_json(self._send("POST", "/api/models", body=body), self)

    def models(self) -> list[Model]:
        return [Model.from_json(d, self) for d in self._send("GET", "/api/models").get("items") or []]

    def model(self, model_id: int, /) -> Model:
        return Model.from_json(self._send("GET", f"/api/models/{_id(model_id, 'model_id')}"), self)

    def assess_model(self, model_id: int, /) -> dict[str, Any]:
        """Run the lab's memorisation tests on a pending model (checkers and stewards)."""
        data: dict[str, Any] = self._send("POST", f"/api/models/{_id(model_id, 'model_id')}/assessment")
        return dict(data.get("assessment") or {})

    def decide_model(
        self,
        model_id: int,
        /,
        approve: bool,
        *,
        note: str = "",
        rate_per_minute: int | None = None,
        daily_quota: int | None = None,
    ) -> Model:
        body = {
            "approve": approve,
            "note": note,
            "rate_per_minute": rate_per_minute,
            "daily_quota": daily_quota,
        }
        return Model.from_json(
            self._send("POST", f"/api/models/{_id(model_id, 'model_id')}/decision", body=body), self
        )

    def predict(
        self, model_id: int, rows: Mapping[str, Any] | Sequence[Sequence[Any] | Mapping[str, Any]]
    ) -> list[Any]:
        """Predictions of an approved model, computed in-domain (rate-limited, audited).

        Rows are named records (``{"town": "城关镇", "age": 82}``; see ``model.schema``) or, for
        models registered with plain columns, positional lists.  One record may be passed bare."""
        if isinstance(rows, Mapping):
            rows = [rows]
        data = self._send(
            "POST",
            f"/api/models/{_id(model_id, 'model_id')}/predict",
            body={"rows": [list(r) if not isinstance(r, Mapping) else dict(r) for r in rows]},
        )
        return list(data.get("predictions") or [])
