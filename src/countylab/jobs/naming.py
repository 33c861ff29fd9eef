"""How a job is called in lists: people tell ten runs of ``train`` apart by what they did.

A job's name is, in this order: what the person typed (``--name``, the form's name field); the
spec's ``name:``/``title:``; else the submitted folder's name and the entry script of the first
action (``elder-care: train.py``).  The folder name arrives as the archive's file name (the SDK
names the archive after the folder); a bare ``code.tar.gz`` or inline code has none, and then the
entry script alone is the name.  Never the bare action word: "train" tells nobody anything.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from countylab.jobs.spec import JobSpec

MAX_NAME = 200
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".archive")
GENERIC_SOURCES = frozenset({"", "code", "archive", "upload", "job", "."})
INTERPRETERS = frozenset(
    {"python", "python3", "python3.11", "python3.12", "rscript", "bash", "sh", "julia", "node"}
)


def source_name(filename: str | None) -> str:
    """The folder name an archive's file name stands for (``elder-care.tar.gz`` → ``elder-care``);
    '' for the generic names tools give archives (``code.tar.gz``)."""
    base = PurePosixPath(str(filename or "").replace("\\", "/")).name.strip()
    low = base.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if low.endswith(suffix):
            base = base[: -len(suffix)]
            break
    base = " ".join(base.split())[:80]
    return "" if base.lower() in GENERIC_SOURCES else base


def entry_script(spec: JobSpec) -> str:
    """What the first action runs, as a person would name it: ``python train.py`` → ``train.py``,
    ``python -m pkg.main`` → ``pkg.main``, ``./run.sh`` → ``run.sh``; else the action's name."""
    if not spec.actions:
        return ""
    first = spec.actions[0]
    argv = list(first.argv)
    if argv and PurePosixPath(argv[0]).name.lower() in INTERPRETERS:
        rest = argv[1:]
        for i, arg in enumerate(rest):
            if arg == "-m" and i + 1 < len(rest):
                return rest[i + 1]
            if not arg.startswith("-"):
                return PurePosixPath(arg).name
        return PurePosixPath(argv[0]).name
    if argv:
        return PurePosixPath(argv[0]).name
    return first.name


def job_name(spec: JobSpec, explicit: str = "", source: str = "") -> str:
    """The name a job is listed under (see the module's docstring for the order)."""
    for candidate in (explicit, spec.title):
        text = " ".join(str(candidate or "").split())
        if text:
            return text[:MAX_NAME]
    script = entry_script(spec)
    folder = source_name(source)
    if folder and script:
        return f"{folder}: {script}"[:MAX_NAME]
    return (folder or script or "job")[:MAX_NAME]
