"""``countylab doctor``: check this host and these settings before (or while) running a lab.

Thin: build the settings, run :func:`countylab.doctor.run_checks`, print.  Settings that do not
load are one failed check in the report, not an error that hides the host checks: the person
running the doctor wants every problem at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from countylab.config import Settings
from countylab.doctor import Report, run_checks

out = Console(highlight=False, soft_wrap=True)

MARKS = {"ok": "✔", "warn": "!", "fail": "✘"}


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def _lang() -> str:
    """The CLI's language rule (``countylab.cli.main``): COUNTYLAB_LANG, else LANG; en* → English."""
    chosen = os.environ.get("COUNTYLAB_LANG", "") or os.environ.get("LANG", "")
    return "en" if chosen.startswith("en") else "zh-CN"


def _load(data_dir: Path | None, config: Path | None) -> tuple[Settings | None, str]:
    kwargs: dict[str, object] = {}
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    if config is not None:
        kwargs["config_file"] = config
    try:
        return Settings(**kwargs), ""  # type: ignore[arg-type]
    except ValidationError as exc:
        return None, "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
        )
    except ValueError as exc:  # a TOML syntax error, a missing config file
        return None, " ".join(str(exc).split())


def _print(report: Report, lang: str) -> None:
    for check in report.checks:
        out.print(f"{MARKS[check.status]} {check.name}: {check.found(lang)}", markup=False)
        if check.status != "ok":
            label = "fix" if lang == "en" else "修复"
            out.print(f"    {label}: {check.fix(lang)}", markup=False)
    if report.ok:
        out.print("host ready" if lang == "en" else "主机已就绪", markup=False)
    else:
        failed = sum(c.status == "fail" for c in report.checks)
        out.print(
            f"{failed} required check(s) failed" if lang == "en" else f"{failed} 项必需检查未通过",
            markup=False,
        )


def doctor(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Lab data folder (default ./lab-data).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check this host: sandbox, cgroups, CJK fonts, Tesseract, disk, database, settings (exit 1 if any
    required check fails), each with how to fix it."""
    lang = _lang()
    settings, problem = _load(data_dir, config)
    report = run_checks(settings, problem)
    if as_json:
        print(json.dumps(report.as_dict(lang), ensure_ascii=False, indent=2))
    else:
        _print(report, lang)
    if not report.ok:
        raise typer.Exit(1)
