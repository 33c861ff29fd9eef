"""The shape every automatic disclosure check shares.

A check is a module (or any object) with a ``name``, ``applies_to(file)`` and
``run(file, context)``; :data:`countylab.airlock.checks.CHECKS` lists them in order.  Checks
never raise for a bad output file: they return a failing :class:`CheckResult` with the
reason, so a checker reads every problem at once instead of one per submission.

:class:`CheckContext` carries what the checks cannot learn from the file: the SDC rules of
the dataset's grade, which columns are counts or sums, per-cell contributions, the source
hash index for the leakage scan and an OCR engine.  It is built by the service layer from
the job, its grants and :mod:`countylab.policy`; the checks read no settings themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from countylab.privacy.sdc import SdcRules

if TYPE_CHECKING:
    from countylab.airlock.leakage import SourceIndex


class CheckStatus(StrEnum):
    passed = "pass"
    warn = "warn"  # a checker must look at it; does not block on its own
    fail = "fail"  # blocks the release until the developer fixes the output

    @property
    def severity(self) -> int:
        return {"pass": 0, "warn": 1, "fail": 2}[self.value]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one file.  ``details`` hold positions and counts, never the
    disclosive values themselves, so results can be shown to the developer and logged.
    ``replacement``: bytes the release must use instead of the original (a cleaned image)."""

    check: str
    status: CheckStatus
    messages_zh: tuple[str, ...] = ()
    messages_en: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    replacement: bytes | None = None


class FileKind(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    png = "png"
    svg = "svg"
    text = "text"  # .txt and .log
    json = "json"
    jpeg = "jpeg"  # .jpg and .jpeg: released re-encoded, without EXIF


@dataclass(frozen=True)
class OutputFile:
    """One file from a job's outbox.  ``name`` is its path inside the outbox (shown to people);
    ``path`` is where it lies on disk now."""

    name: str
    path: Path

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def read(self, limit: int | None = None) -> bytes:
        with self.path.open("rb") as fh:
            return fh.read() if limit is None else fh.read(limit)


@dataclass(frozen=True)
class TableSpec:
    """What the developer declared about one output table (all optional).

    ``count_columns``: frequency columns (units per cell).  ``magnitude_columns``: sums whose
    dominance must be checked.  ``contributions``: per-cell unit contributions keyed by
    (0-based data row, column), computed in the sandbox next to the table.
    """

    count_columns: tuple[str, ...] = ()
    magnitude_columns: tuple[str, ...] = ()
    contributions: Mapping[tuple[int, str], Sequence[float]] = field(default_factory=dict)
    # The output library's metadata sidecar (:mod:`countylab.output.sidecar`), as the job wrote
    # it: a claim the checks verify against the file (:mod:`.declared`), never trusted to loosen.
    sidecar: Mapping[str, Any] | None = None


class OcrEngine(Protocol):
    def __call__(self, image_png: bytes, /) -> str: ...


DEFAULT_SIZE_CAPS: Mapping[FileKind, int] = {
    FileKind.csv: 50 * 2**20,
    FileKind.xlsx: 20 * 2**20,
    FileKind.png: 10 * 2**20,
    FileKind.svg: 5 * 2**20,
    FileKind.text: 10 * 2**20,
    FileKind.json: 10 * 2**20,
    FileKind.jpeg: 10 * 2**20,
}


@dataclass(frozen=True)
class CheckContext:
    sdc: SdcRules = field(default_factory=SdcRules)
    tables: Mapping[str, TableSpec] = field(default_factory=dict)  # by OutputFile.name
    source_index: SourceIndex | None = None
    ocr: OcrEngine | None = None
    size_caps: Mapping[FileKind, int] = field(default_factory=lambda: dict(DEFAULT_SIZE_CAPS))
    # Every file of the request by OutputFile.name: checks that look across files (a chart
    # drawn from a table, recovery of a cell from another table's total) find them here.
    paths: Mapping[str, Path] = field(default_factory=dict)

    def table_spec(self, file: OutputFile) -> TableSpec:
        return self.tables.get(file.name, TableSpec())


class Check(Protocol):
    @property
    def name(self) -> str: ...

    def applies_to(self, file: OutputFile) -> bool: ...

    def run(self, file: OutputFile, context: CheckContext) -> CheckResult: ...


class Findings:
    """Collects messages while a check runs and turns them into one :class:`CheckResult`."""

    def __init__(self, check: str) -> None:
        self.check = check
        self.status = CheckStatus.passed
        self.zh: list[str] = []
        self.en: list[str] = []
        self.details: dict[str, Any] = {}

    def add(self, status: CheckStatus, zh: str, en: str) -> None:
        if status.severity > self.status.severity:
            self.status = status
        self.zh.append(zh)
        self.en.append(en)

    def result(self, replacement: bytes | None = None) -> CheckResult:
        return CheckResult(
            self.check, self.status, tuple(self.zh), tuple(self.en), dict(self.details), replacement
        )
