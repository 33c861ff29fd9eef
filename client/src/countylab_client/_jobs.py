"""Client methods of the compute center (sandbox jobs, dummy data).

A mixin of :class:`countylab_client.Client`: methods reach the server through ``self._send``.
Code is sent as a tar.gz of the folder (:func:`pack_folder`): regular files only — a symbolic
link is refused here already, as the lab would refuse it — without the local run's
``.countylab/`` folder, caches and version-control folders.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from ._errors import CountylabClientError
from ._models import JSON, _int, _opt_int, _str

SKIP = frozenset({".countylab", ".git", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"})
MAX_CODE_BYTES = 20 * 1024 * 1024


def _refused(zh: str, en: str, code: str, path: str) -> CountylabClientError:
    return CountylabClientError(f"{zh} / {en}", code=code, details={"path": path})


def pack_folder(folder: str | Path, *, max_bytes: int = MAX_CODE_BYTES) -> bytes:
    """A reproducible tar.gz of ``folder``'s regular files (symlinks and special files refused)."""
    root = Path(folder)
    if not root.is_dir():
        raise _refused(f"不是目录：{root}", f"not a folder: {root}", "not_a_folder", str(root))
    buf = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP)
            for name in [*dirnames, *sorted(filenames)]:
                path = here / name
                rel = path.relative_to(root).as_posix()
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise _refused(
                        f"代码中不允许符号链接或特殊文件：{rel}",
                        f"symlinks and special files are not allowed in job code: {rel}",
                        "symlink",
                        rel,
                    )
                info = tarfile.TarInfo(rel)
                info.mtime = 0
                if stat.S_ISDIR(mode):
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    continue
                info.size, info.mode = path.stat().st_size, 0o644
                total += info.size
                if total > max_bytes:
                    raise _refused(
                        "代码超过 20 MB（数据请登记为数据集）",
                        "code exceeds 20 MB (register data as a dataset)",
                        "code_too_large",
                        rel,
                    )
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class Job:
    """A sandbox job (作业) as the lab shows it before review: its state, which lab limit stopped
    it (``stopped_by``) and the lab's own message.  ``exit_code``, ``error``, ``usage`` and
    ``attempt_list`` are filled only for stewards, checkers and admins outside the project: for a
    developer they are outputs of the job, released only through the airlock."""

    id: int
    project_id: int
    name: str
    state: str  # pending | queued | running | succeeded | failed | killed | cancelled | lost
    attempts: int
    exit_code: int | None
    error: str
    usage: Mapping[str, float] = field(default_factory=dict)
    stopped_by: str | None = None  # memory | time | cpu_time | pids | outbox_quota | seccomp | …
    message: Mapping[str, str] = field(default_factory=dict)  # the lab's own {"zh", "en"}
    attempt_list: tuple[Mapping[str, Any], ...] = ()
    #: CPU seconds used by the latest attempt: exact for oversight roles, a coarse bucket
    #: (60, 600, 3600 …: "at most") for project members, see ``cpu_coarse``
    cpu_s: float = 0.0
    cpu_coarse: bool = True
    duration_s: float | None = None  # started → finished (whole minutes for project members)
    #: the outputs ``countylab.yaml`` declares: ``{"action", "path", "kind", "selector"}``
    outputs: tuple[Mapping[str, str], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSON) -> Self:
        usage = data.get("usage")
        attempts = data.get("attempt_list")
        return cls(
            id=_int(data, "id"),
            project_id=_int(data, "project_id"),
            name=_str(data, "name", ""),
            state=_str(data, "state"),
            attempts=_int(data, "attempts"),
            exit_code=_opt_int(data, "exit_code"),
            error=_str(data, "error", ""),
            usage=dict(usage) if isinstance(usage, Mapping) else {},
            stopped_by=str(data["stopped_by"]) if data.get("stopped_by") else None,
            message=dict(msg) if isinstance(msg := data.get("message"), Mapping) else {},
            attempt_list=tuple(a for a in attempts if isinstance(a, Mapping))
            if isinstance(attempts, list)
            else (),
            cpu_s=float(data.get("cpu_s") or 0.0),
            cpu_coarse=bool(data.get("cpu_coarse", True)),
            duration_s=float(d) if isinstance(d := data.get("duration_s"), int | float) else None,
            outputs=tuple(o for o in outs if isinstance(o, Mapping))
            if isinstance(outs := data.get("outputs"), list)
            else (),
            raw=dict(data),
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed", "killed", "cancelled")

    @property
    def outcome(self) -> str:
        """One line for a list: the state and, when it did not succeed, the lab's reason
        (``failed: memory``); the lab's own sentence is in ``message``."""
        return f"{self.state}: {self.stopped_by}" if self.stopped_by else self.state


class JobsAPI:
    _send: Callable[..., Any]  # provided by Client

    def submit_job(
        self, project_id: int, code: str | Path | bytes, /, *, name: str = "", hold: bool = False
    ) -> Job:
        """Submit a folder (packed here), a ``.tar.gz``/``.zip`` file, or archive bytes as a job."""
        if isinstance(code, bytes):
            content, filename = code, "code.tar.gz"
        elif Path(code).is_dir():  # named after the folder: the job's default name starts with it
            content, filename = pack_folder(code), f"{Path(code).resolve().name}.tar.gz"
        else:
            content, filename = Path(code).read_bytes(), Path(code).name
        data = {"name": name, "hold": "1" if hold else ""}
        return Job.from_json(
            self._send(
                "POST",
                f"/api/projects/{int(project_id)}/jobs",
                files={"file": (filename, content)},
                data=data,
            )
        )

    def job(self, job_id: int, /) -> Job:
        return Job.from_json(self._send("GET", f"/api/jobs/{int(job_id)}"))

    def jobs(self, project_id: int | None = None, *, state: str | None = None) -> list[Job]:
        """Jobs of one project, or of all the caller's projects."""
        params = {"state": state} if state else None
        path = f"/api/projects/{int(project_id)}/jobs" if project_id is not None else "/api/jobs"
        return [Job.from_json(j) for j in self._send("GET", path, params=params)["items"]]

    def cancel_job(self, job_id: int, /) -> Job:
        return Job.from_json(self._send("POST", f"/api/jobs/{int(job_id)}/cancel"))

    def retry_job(self, job_id: int, /) -> Job:
        return Job.from_json(self._send("POST", f"/api/jobs/{int(job_id)}/retry"))

    def job_logs(self, job_id: int, /) -> list[dict[str, Any]]:
        """Logs are outputs: for a developer this is always ``[]`` (put the logs in a release
        request, or debug with ``countylab run`` on dummy data).  Stewards, checkers and admins
        outside the project get the leakage-scanned tail ``[{action, stream, lines, …}]``."""
        streams: list[dict[str, Any]] = self._send("GET", f"/api/jobs/{int(job_id)}/logs")["streams"]
        return streams

    def job_logs_info(self, job_id: int, /) -> dict[str, Any]:
        """The whole answer of the logs route, with the lab's explanation in ``message``."""
        result: dict[str, Any] = self._send("GET", f"/api/jobs/{int(job_id)}/logs")
        return result

    def job_usage(self, project_id: int, /) -> dict[str, Any]:
        """``{"usage": {...}, "quota": {...}, "since": ...}`` for the quota period."""
        result: dict[str, Any] = self._send("GET", f"/api/projects/{int(project_id)}/usage")
        return result

    def set_job_quota(self, project_id: int, /, **quota: Any) -> dict[str, Any]:
        """Stewards and admins: ``max_cpu``, ``max_memory_mb``, ``max_time_s``, ``cpu_seconds``…"""
        result: dict[str, Any] = self._send("PUT", f"/api/projects/{int(project_id)}/quota", body=quota)
        return result
