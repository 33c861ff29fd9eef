"""The airlock's automatic disclosure checks, as a pluggable list.

Each entry of :data:`CHECKS` is a module with ``name``, ``applies_to(file)`` and
``run(file, context) -> CheckResult``; adding a rule means adding a module and listing it
here.  :func:`run_checks` runs every applicable check on every file.  If the file type check
fails, the content checks are skipped for that file: their parsers must never be pointed at
a disguised binary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from countylab.airlock.checks import (
    blobs,
    filetype,
    images,
    leakage_scan,
    library,
    pickles,
    pii_scan,
    recovery,
    table_format,
    table_sdc,
)
from countylab.airlock.checks.base import (
    Check,
    CheckContext,
    CheckResult,
    CheckStatus,
    FileKind,
    OcrEngine,
    OutputFile,
    TableSpec,
)

CHECKS: list[Check] = [
    filetype,
    pickles,
    library,
    table_format,
    table_sdc,
    pii_scan,
    leakage_scan,
    blobs,
    images,
]


@dataclass(frozen=True)
class FileReport:
    file: OutputFile
    results: tuple[CheckResult, ...]

    @property
    def status(self) -> CheckStatus:
        return max((r.status for r in self.results), key=lambda s: s.severity, default=CheckStatus.passed)

    @property
    def replacement(self) -> bytes | None:
        """Bytes the release must use instead of the file (the last check that cleaned it)."""
        cleaned = [r.replacement for r in self.results if r.replacement is not None]
        return cleaned[-1] if cleaned else None


def run_checks(
    files: Iterable[OutputFile], context: CheckContext, checks: list[Check] | None = None
) -> list[FileReport]:
    files = list(files)
    if not context.paths:  # checks that look across the request's files find them here
        context = replace(context, paths={f.name: f.path for f in files})
    reports: list[FileReport] = []
    for file in files:
        results: list[CheckResult] = []
        for check in CHECKS if checks is None else checks:
            if not check.applies_to(file):
                continue
            result = check.run(file, context)
            results.append(result)
            if check.name == filetype.name and result.status is CheckStatus.fail:
                break
        reports.append(FileReport(file, tuple(results)))
    if checks is None:  # request-level: suppressed cells recoverable from another file's totals
        across = recovery.cross_table([r.file for r in reports if r.status is not CheckStatus.fail], context)
        reports = [
            FileReport(r.file, (*r.results, across[r.file.name])) if r.file.name in across else r
            for r in reports
        ]
    return reports


def overall(reports: Iterable[FileReport]) -> CheckStatus:
    """The worst status over all files: any fail returns the request to the developer."""
    return max((r.status for r in reports), key=lambda s: s.severity, default=CheckStatus.passed)


__all__ = [
    "CHECKS",
    "Check",
    "CheckContext",
    "CheckResult",
    "CheckStatus",
    "FileKind",
    "FileReport",
    "OcrEngine",
    "OutputFile",
    "TableSpec",
    "overall",
    "run_checks",
]
