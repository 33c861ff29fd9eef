"""Rule (e): no pickle leaves, in any protocol, under any name.

A pickle is code: loading one runs whatever it names.  Protocols 2–5 start with ``\\x80``;
protocols 0 and 1 are (mostly) printable text such as ``cos\\nsystem\\n(S'…'\\ntR.``, which a
``.txt`` or ``.csv`` name hides well.  A file is refused when a pickle opcode stream parses
(:func:`pickletools.genops`) from its start, or from any place where a protocol header or
a protocol-0 opcode pattern appears, up to a STOP opcode.  Base64 inside text is decoded and
looked at too (:mod:`.blobs`).
"""

from __future__ import annotations

import pickletools
import re

from countylab.airlock.checks.base import CheckContext, CheckResult, CheckStatus, Findings, OutputFile

name = "pickle"

LIMIT = 16 * 2**20  # bytes looked at
MAX_STARTS = 500
# protocol ≥ 2 header; protocol 0/1 GLOBAL (c module\nname\n), INST, marks before values
_STARTS = re.compile(  # a lookahead, so overlapping candidates are all tried
    rb"(?=\x80[\x02-\x05]|[ci][A-Za-z_][\w.]*\n[\w.]+\n|\((?:dp|lp|S'|V|I\d|F\d|N)|[\]}\)]q\x00|\([\]})])"
)
_INTERESTING = frozenset({"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"})


def parses_as_pickle(data: bytes, start: int = 0) -> bool:
    """True when a pickle opcode stream runs from ``start`` to a STOP opcode and is more than
    a trivial constant (at least three opcodes, or one that calls or builds an object)."""
    ops = 0
    interesting = False
    try:
        for opcode, _arg, _pos in pickletools.genops(memoryview(data)[start:].tobytes()[:LIMIT]):
            if opcode.name == "STOP":
                return ops >= 3 or interesting
            ops += 1
            interesting = interesting or opcode.name in _INTERESTING
            if ops > 1_000_000:
                return True
    except Exception:  # noqa: BLE001 - any parse error: not a pickle from here
        return False
    return False


def find_pickle(data: bytes) -> int | None:
    """Offset of the first embedded pickle, or None."""
    data = data[:LIMIT]
    if parses_as_pickle(data):
        return 0
    for i, m in enumerate(_STARTS.finditer(data)):
        if i >= MAX_STARTS:
            break
        for start in {m.start(), max(0, m.start() - 1)}:
            if parses_as_pickle(data, start):
                return start
    return None


def applies_to(file: OutputFile) -> bool:
    return True


def run(file: OutputFile, context: CheckContext) -> CheckResult:
    found = Findings(name)
    if find_pickle(file.read(LIMIT)) is not None:
        found.details["reason"] = "pickle"
        found.add(
            CheckStatus.fail,
            "文件含 Python pickle（可执行代码）：不能出域",
            "the file holds a Python pickle (executable code): it cannot be released",
        )
    return found.result()
