"""A leakage-scanned tail of a job's logs, for oversight roles only.

Logs are outputs (docs/explanation/security-model.md): a job can ``print`` rows as easily as
write them to a file, so ``stdout``/``stderr`` go to the outbox and follow the airlock like any other file.  A
developer never sees log text before a release (:mod:`countylab.jobs.facts`: they get the
state, the limit that stopped the job and the lab's message).  Stewards, checkers and admins
outside the project may look at the **last lines** of each stream, and even they only after an
automatic leakage scan has withheld every line that

* holds a value that looks like personal information, by the catalog's own detectors
  (:func:`countylab.airlock.checks.scan.pii_in_text`, i.e. :func:`countylab.catalog.pii.match_kinds`:
  ID numbers, mobiles, bank cards, USCCs, names, addresses…), or
* holds a value that appears in an identifier column of the datasets the job read
  (:func:`countylab.airlock.leakage.scan_text` against a salted index of those columns).

A withheld line is replaced by a marker.  The full logs stay in the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from countylab.airlock.checks.scan import pii_in_text
from countylab.airlock.leakage import SourceIndex, scan_text

WITHHELD = "[已隐去：疑似个人信息或源数据 / withheld: looks like personal or source data]"
MAX_LINES = 200
MAX_LINE_CHARS = 400
MAX_TAIL_BYTES = 256 * 1024


@dataclass(frozen=True)
class ScannedLog:
    """One stream of one action, as the developer may see it."""

    action: str
    stream: str  # stdout | stderr
    lines: list[str] = field(default_factory=list)
    withheld: int = 0  # lines replaced by WITHHELD
    omitted: int = 0  # older lines not shown (only the tail is)

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "stream": self.stream,
            "lines": self.lines,
            "withheld": self.withheld,
            "omitted": self.omitted,
        }


def _tail(path: Path) -> tuple[str, int]:
    """The last MAX_LINES lines of ``path`` and how many lines came before them."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - MAX_TAIL_BYTES))
        data = fh.read()
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if size > MAX_TAIL_BYTES and lines:
        lines = lines[1:]  # the first line was cut in the middle
    shown = lines[-MAX_LINES:]
    omitted = len(lines) - len(shown) + (1 if size > MAX_TAIL_BYTES else 0)
    return "\n".join(shown), omitted


def scan_log(text: str, index: SourceIndex | None) -> tuple[list[str], int]:
    """Lines of ``text`` with every suspicious line replaced by :data:`WITHHELD`."""
    lines = [line[:MAX_LINE_CHARS] for line in text.splitlines()]
    flagged = {hit.line for hit in pii_in_text(text)}
    if index is not None:
        report = scan_text(text, index)
        flagged |= {m.line for m in report.cell_matches}
    shown = [WITHHELD if n in flagged else line for n, line in enumerate(lines, start=1)]
    return shown, sum(1 for n in range(1, len(lines) + 1) if n in flagged)


def scan_log_file(path: Path, action: str, stream: str, index: SourceIndex | None) -> ScannedLog:
    if not path.is_file() or path.is_symlink():
        return ScannedLog(action, stream)
    text, omitted = _tail(path)
    lines, withheld = scan_log(text, index)
    return ScannedLog(action, stream, lines, withheld, omitted)
