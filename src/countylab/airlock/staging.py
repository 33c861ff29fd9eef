"""Copying a request's files happens before the write transaction, not inside it.

An outbox may hold up to :data:`~.service.MAX_FILES` files of up to
:data:`~.outbox.COPY_LIMIT` bytes each: copying and hashing them can take a while, and on the
embedded tier every write transaction holds the database's single write lock.  So entry points
use :meth:`StagingMixin.create_staged` and :meth:`StagingMixin.resubmit_staged`: a short *read*
checks permissions and expands the developer's selectors; the files are copied (with their
SHA-256) into a private staging folder with no transaction open; then a short write transaction
records the request and moves the copies into place with a rename.  Whatever happens, the
staging folder is removed afterwards.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from countylab.airlock.checks import library
from countylab.airlock.outbox import OutboxEntry, copy_into_store, list_outbox
from countylab.airlock.rounds import previous_choices
from countylab.airlock.selection import Declared, check_selectors, expand
from countylab.errors import ValidationFailed
from countylab.identity.access import Principal
from countylab.output.sidecar import SUFFIX
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.jobs_models import Job

if TYPE_CHECKING:
    from countylab.airlock.service import FileChoice

Tx = Callable[[], AbstractContextManager[Session]]
MAX_FILES = 50


@dataclass(frozen=True)
class StagedFile:
    name: str  # the path inside the outbox
    choice: int  # index of the selector that took it
    path: Path  # the staged copy
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Staged:
    job_id: int
    choices: tuple[FileChoice, ...]
    folder: Path
    files: tuple[StagedFile, ...]


def select_files(
    declared: Declared, entries: Sequence[OutboxEntry], choices: Sequence[FileChoice]
) -> list[tuple[int, OutboxEntry]]:
    """The files ``choices`` take (output library sidecars never leave: they are copied beside
    the file they describe, for the checks only)."""
    if not choices:
        raise ValidationFailed("请至少选择一项输出", "choose at least one output", reason="no_files")
    names = [c.name for c in choices]
    if len(set(names)) != len(names):
        raise ValidationFailed("选择重复", "a selector is repeated", reason="files")
    check_selectors(declared, names)  # before the outbox is looked at
    taken = [t for t in expand(declared, entries, names) if not library.is_sidecar(t[1].name)]
    if not taken or len(taken) > MAX_FILES:
        raise ValidationFailed(
            f"所选输出没有文件，或超过 {MAX_FILES} 个文件",
            f"the selection takes no file, or more than {MAX_FILES}",
            reason="files",
        )
    return taken


def copy_files(
    folder: Path, entries: Sequence[OutboxEntry], taken: Sequence[tuple[int, OutboxEntry]]
) -> list[StagedFile]:
    out: list[StagedFile] = []
    for n, (i, entry) in enumerate(taken):
        dest = folder / f"{n:02d}-{PurePosixPath(entry.name).name}"
        sha, size = copy_into_store(entry.path, dest)
        library.copy_sidecar(entries, entry.name, dest)
        out.append(StagedFile(entry.name, i, dest, sha, size))
    return out


class StagingMixin:
    store_dir: Path

    if TYPE_CHECKING:  # provided by the service

        def _job(self, s: Session, actor: Principal, job_id: int) -> Job: ...
        def _member(self, s: Session, actor: Principal, request_id: int) -> ReleaseRequest: ...
        def files(self, s: Session, req: ReleaseRequest) -> list[ReleaseFile]: ...
        def create(
            self,
            s: Session,
            actor: Principal,
            job_id: int,
            files: Sequence[FileChoice],
            *,
            title: str = "",
            note: str = "",
            staged: Staged | None = None,
        ) -> ReleaseRequest: ...
        def submit(self, s: Session, actor: Principal, request_id: int) -> ReleaseRequest: ...
        def resubmit(
            self,
            s: Session,
            actor: Principal,
            request_id: int,
            *,
            job_id: int | None = None,
            files: Sequence[FileChoice] | None = None,
            staged: Staged | None = None,
            replies: Mapping[int, str] | None = None,
        ) -> ReleaseRequest: ...

    def _staging(self) -> Path:
        folder = self.store_dir / "staging" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def stage(self, read: Tx, actor: Principal, job_id: int, choices: Sequence[FileChoice]) -> Staged:
        """Check, expand and copy, with no write transaction open."""
        with read() as s:
            job = self._job(s, actor, job_id)
            declared = Declared.of(job.spec)
            entries = list_outbox(s, job)
            taken = select_files(declared, entries, choices)
        folder = self._staging()
        try:
            files = copy_files(folder, entries, taken)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return Staged(job_id, tuple(choices), folder, tuple(files))

    def discard(self, staged: Staged | None) -> None:
        if staged is not None:
            shutil.rmtree(staged.folder, ignore_errors=True)

    def create_staged(
        self,
        tx: Tx,
        read: Tx,
        actor: Principal,
        job_id: int,
        choices: Sequence[FileChoice],
        *,
        title: str = "",
        note: str = "",
        submit: bool = False,
    ) -> int:
        """A new request (submitted if ``submit``), its files copied outside the transaction."""
        staged = self.stage(read, actor, job_id, choices)
        try:
            with tx() as s:
                req = self.create(s, actor, job_id, choices, title=title, note=note, staged=staged)
                if submit:
                    self.submit(s, actor, req.id)
                return req.id
        finally:
            self.discard(staged)

    def resubmit_staged(
        self,
        tx: Tx,
        read: Tx,
        actor: Principal,
        request_id: int,
        *,
        job_id: int | None = None,
        choices: Sequence[FileChoice] | None = None,
        replies: Mapping[int, str] | None = None,
    ) -> None:
        """Resubmit, the new round's files copied outside the transaction."""
        with read() as s:
            req = self._member(s, actor, request_id)
            use_job = job_id if job_id is not None else req.job_id
            use = list(choices) if choices else previous_choices(self.files(s, req))
        staged = self.stage(read, actor, use_job, use) if use else None
        try:
            with tx() as s:
                self.resubmit(s, actor, request_id, job_id=use_job, files=use, staged=staged, replies=replies)
        finally:
            self.discard(staged)

    def place(self, req: ReleaseRequest, staged: Staged) -> list[tuple[StagedFile, Path]]:
        """Move staged copies into the request's round folder (renames on one filesystem)."""
        dest_dir = self.store_dir / "requests" / str(req.id) / f"round-{req.round}"
        dest_dir.mkdir(parents=True, exist_ok=True)
        placed: list[tuple[StagedFile, Path]] = []
        for f in staged.files:
            dest = dest_dir / f.path.name
            f.path.replace(dest)
            side = Path(str(f.path) + SUFFIX)
            if side.exists():
                side.replace(Path(str(dest) + SUFFIX))
            placed.append((f, dest))
        return placed
