"""The witness: an append-only folder of signed checkpoints, one JSON line each, one file a day.

Why files and not a table: the threat is the database owner, so the record that convicts a
rewritten chain must live where that owner cannot write.  A folder can be mounted from
another host, made append-only (``chattr +a``), copied off-site or printed — each day is one
small text file (``checkpoints-YYYY-MM-DD.jsonl``).  A verifier needs only these lines and
the public key: every line carries its own signature, and links to the line before it
(``prev`` is the SHA-256 of that line's text), so a removed or reordered line is seen too.

Several server processes may write: appends take an exclusive ``flock`` on ``.lock`` in the
folder, read the newest line under it, and skip when the head has not moved, so two writers
never fork the sequence nor write the same checkpoint twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GENESIS_LINE = "0" * 64
FORMAT_VERSION = 1
_PREFIX = "checkpoints-"
_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: "event ``event_id`` of this lab's audit chain had hash ``head``"."""

    v: int
    seq: int  # position in the witness, 1, 2, …
    event_id: int  # 0 for an empty log (then head is the genesis hash)
    head: str
    count: int  # events in the log at that moment (ids are contiguous, so == event_id)
    ts: str  # ISO-8601 UTC
    key_id: str
    prev: str  # SHA-256 of the previous witness line's text
    sig: str = ""

    def body(self) -> bytes:
        """The signed bytes: every field but the signature, as canonical JSON."""
        fields = {k: v for k, v in asdict(self).items() if k != "sig"}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def line_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class WitnessLine:
    file: str
    lineno: int
    text: str
    checkpoint: Checkpoint | None
    error: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.lineno}"


def parse(text: str) -> Checkpoint:
    data: Any = json.loads(text)
    if not isinstance(data, dict) or set(data) != set(Checkpoint.__dataclass_fields__):
        raise ValueError("unexpected fields")
    cp = Checkpoint(**data)
    ints = (cp.v, cp.seq, cp.event_id, cp.count)
    strs = (cp.head, cp.ts, cp.key_id, cp.prev, cp.sig)
    if not all(type(i) is int for i in ints) or not all(isinstance(s, str) for s in strs):
        raise ValueError("wrong field types")
    return cp


class Witness:
    """The append-only checkpoint files in one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        names = (p for p in self.directory.iterdir() if p.name.startswith(_PREFIX))
        return sorted(p for p in names if p.suffix == _SUFFIX)

    def lines(self) -> Iterator[WitnessLine]:
        """Every line of every day in order; a line that does not parse is kept with its error."""
        for path in self.files():
            with path.open(encoding="utf-8", errors="replace") as fh:
                for lineno, raw in enumerate(fh, start=1):
                    text = raw.rstrip("\n")
                    if not text.strip():
                        continue
                    try:
                        yield WitnessLine(path.name, lineno, text, parse(text))
                    except (ValueError, TypeError) as exc:
                        yield WitnessLine(path.name, lineno, text, None, f"not a checkpoint line ({exc})")

    def last(self) -> WitnessLine | None:
        """The newest well-formed line (what the next checkpoint links to)."""
        for path in reversed(self.files()):
            found: WitnessLine | None = None
            with path.open(encoding="utf-8", errors="replace") as fh:
                for lineno, raw in enumerate(fh, start=1):
                    text = raw.rstrip("\n")
                    try:
                        found = WitnessLine(path.name, lineno, text, parse(text))
                    except (ValueError, TypeError):
                        continue
            if found is not None:
                return found
        return None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across processes on this host (and on NFSv4 mounts, which map flock to locks)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def append(self, checkpoint: Checkpoint) -> Path:
        """Append one line to the day's file (O_APPEND, fsync); call inside :meth:`locked`."""
        path = self.directory / f"{_PREFIX}{checkpoint.ts[:10]}{_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (checkpoint.line() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return path
