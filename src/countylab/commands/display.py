"""How CLI commands show codes and times to people: names in the user's language, Beijing time.

The CLI speaks Chinese by default (county staff); ``COUNTYLAB_LANG=en`` (or an English ``LANG``
such as ``en_US.UTF-8``) switches to English.  ``--json`` output never goes through here: it
keeps codes and ISO UTC times, which is what scripts compare.  This is an entry point, so it
may read the environment; the words come from :mod:`countylab.labels`, shared with the web UI.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime

from rich.console import Console

from countylab import labels
from countylab.i18n import normalise

#: columns of CLI output that goes to a file, a pipe or a CI log instead of a terminal
PIPED_WIDTH = 160


def console(*, stderr: bool = False) -> Console:
    """The CLI's rich console.  On a terminal it follows the terminal's width; written to a file,
    a pipe or a CI log it is :data:`PIPED_WIDTH` columns instead of rich's 80, so a town's name
    and code, or a saved file's path, are not cut or folded where nobody resizes a window.
    ``COLUMNS`` still wins."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    wide = piped and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, width=PIPED_WIDTH if wide else None)


def lang() -> str:
    """``COUNTYLAB_LANG`` first, then ``LANG``/``LC_ALL``; Chinese unless one of them says English."""
    for var in ("COUNTYLAB_LANG", "LC_ALL", "LANG"):
        value = os.environ.get(var, "").strip()
        if value and value.upper() not in ("C", "POSIX") and not value.upper().startswith("C."):
            return normalise(value)
    return "zh-CN"


def name(kind: str, code: object) -> str:
    """A code of ``kind`` (grade, job_state, release_state, …) as people say it."""
    return labels.label(kind, code, lang()) if code not in (None, "") else ""


def grade(code: object) -> str:
    return name("grade", code)


def when(value: str | datetime | None, fmt: str = "minute") -> str:
    """A stored UTC time in Beijing time (``2026-12-05 20:14``); '' for none."""
    return labels.bjtime(value, fmt) if value else ""
