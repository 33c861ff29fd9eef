"""Which outbox files a release request takes, chosen by what the developer *declared*.

File names and sizes in an outbox are written by the job, and the job's code is not trusted:
a name can hold an ID number, a size can hold digits.  So the developer never browses the
outbox before review.  They choose files with **selectors** that say only what they already
know — what they wrote in ``countylab.yaml`` — and the lab expands them:

=====================  =========================================================================
selector               takes
=====================  =========================================================================
``*``                  every file of every action, except outputs declared ``kind: model``
                       (models are registered, never released) and the logs
``logs``               every action's ``logs/stdout.txt`` and ``logs/stderr.txt`` (logs are
                       outputs like any other)
``<action>/<path>``    an output declared in ``countylab.yaml`` (a folder takes every file in it),
                       or ``<action>/logs/stdout.txt`` / ``<action>/logs/stderr.txt``
=====================  =========================================================================

Anything else is refused *before* the outbox is looked at, so a refusal says nothing about
what the job wrote.  The developer learns only how many files were taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from countylab.airlock.outbox import OutboxEntry
from countylab.errors import ValidationFailed

ALL = "*"
LOGS = "logs"
LOG_FILES = ("logs/stdout.txt", "logs/stderr.txt")


@dataclass(frozen=True)
class Declared:
    """The outputs a job's spec declares, by ``<action>/<path>``, with their kinds."""

    actions: tuple[str, ...]
    outputs: dict[str, str]  # "<action>/<path>" -> kind

    @classmethod
    def of(cls, spec: dict[str, Any]) -> Declared:
        actions: dict[str, Any] = dict((spec or {}).get("actions") or {})
        outputs: dict[str, str] = {}
        for name, body in actions.items():
            for out in (body or {}).get("outputs") or []:
                path = str(out.get("path", "")).strip("/")
                if path:
                    outputs[f"{name}/{path}"] = str(out.get("kind", ""))
        return cls(tuple(actions), outputs)

    def models(self) -> list[str]:
        return [p for p, kind in self.outputs.items() if kind == "model"]

    def valid(self, selector: str) -> bool:
        if selector in (ALL, LOGS) or selector in self.outputs:
            return True
        action, _, rest = selector.partition("/")
        return action in self.actions and rest in LOG_FILES


def _under(name: str, path: str) -> bool:
    return name == path or name.startswith(path + "/")


def _is_log(name: str) -> bool:
    action, _, rest = name.partition("/")
    return bool(action) and rest in LOG_FILES


def check_selectors(declared: Declared, selectors: Sequence[str]) -> None:
    """Refuse selectors that are not declared (this looks at the spec only, never the outbox)."""
    for sel in selectors:
        if not declared.valid(sel):
            raise ValidationFailed(
                f"只能按 countylab.yaml 中声明的输出选择文件（*、logs 或“步骤/路径”）：{sel}",
                "choose files by what countylab.yaml declares (*, logs or <action>/<path>): " + sel,
                reason="undeclared_selector",
                selector=sel[:200],
            )


def expand(
    declared: Declared, entries: Sequence[OutboxEntry], selectors: Sequence[str]
) -> list[tuple[int, OutboxEntry]]:
    """``(index of the selector, entry)`` for every file the selectors take; a file taken by two
    selectors counts once, for the most specific (what the developer wrote about it applies)."""
    check_selectors(declared, selectors)
    models = declared.models()
    taken: dict[str, tuple[int, OutboxEntry]] = {}
    # the most specific selector wins: declared paths, then logs, then *
    order = sorted(range(len(selectors)), key=lambda i: (selectors[i] == ALL, selectors[i] == LOGS, i))
    for i in order:
        sel = selectors[i]
        for e in entries:
            if e.name in taken:
                continue
            if sel == ALL:
                hit = not _is_log(e.name) and not any(_under(e.name, m) for m in models)
            elif sel == LOGS:
                hit = _is_log(e.name)
            else:
                hit = _under(e.name, sel)
            if hit:
                taken[e.name] = (i, e)
    return sorted(taken.values(), key=lambda t: (t[0], t[1].name))
