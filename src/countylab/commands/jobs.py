"""``countylab run`` (a job folder on dummy data, locally) and ``countylab job …`` (the lab's queue)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from countylab.commands.remote import Token, Url, client, err, out

job_app = typer.Typer(
    help="Sandbox jobs on the lab: submit, status, logs, cancel, retry. 作业.", no_args_is_help=True
)

Folder = Annotated[Path, typer.Argument(help="Job folder holding countylab.yaml (default: here).")]
JobId = Annotated[int, typer.Argument(help="Job id.")]
FINISHED = ("succeeded", "failed", "killed", "cancelled")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.add_typer(job_app, name="job")


def _fetch_dummy(
    folder: Path, names: list[str], url: str | None, token: str | None, rows: int
) -> dict[str, Path]:
    from countylab.errors import NotFound
    from countylab.jobs.local import dummy_root

    staged: dict[str, Path] = {}
    with client(url, token) as c:
        for name in names:
            match = [d for d in c.datasets() if d.name == name]
            if not match:
                raise NotFound(f"实验室中没有数据集 {name}", f"the lab has no dataset {name}", dataset=name)
            dest = dummy_root(folder) / name
            dest.mkdir(parents=True, exist_ok=True)
            for old in dest.glob("*.parquet"):
                old.unlink()
            c.dummy_data(match[0].id, dest / "dummy.parquet", rows=rows, fmt="parquet")
            staged[name] = dest
            err.print(f"模拟数据 dummy data: {name} ({rows} rows) → {dest}")
    return staged


def run(
    folder: Folder = Path("."),
    dummy_dir: Annotated[
        Path | None,
        typer.Option("--dummy-dir", help="Folder with <dataset>.parquet or <dataset>/*.parquet dummy data."),
    ] = None,
    rows: Annotated[int, typer.Option(help="Rows of dummy data to fetch per dataset.")] = 1000,
    url: Url = None,
    token: Token = None,
) -> None:
    """Run a job folder here on dummy data, in the same sandbox as the server (本地试运行).

    Dummy data comes from the lab (--url/--token), a local folder (--dummy-dir), or what an
    earlier run left in .countylab/dummy/.  Outputs land in .countylab/outbox/<action>/.
    """
    import os

    from countylab.jobs.local import read_spec, run_local, spec_datasets, stage_from_dir, staged_dummy

    names = spec_datasets(read_spec(folder))
    if dummy_dir is not None:
        datasets = stage_from_dir(dummy_dir, folder, names)
    elif url or token or os.environ.get("COUNTYLAB_TOKEN"):
        datasets = _fetch_dummy(folder, names, url, token, rows)
    else:
        datasets = staged_dummy(folder, names)
    result = run_local(folder, datasets)
    if not result.sandboxed:
        err.print(
            "[yellow]警告 warning:[/] 本机无 bubblewrap，作业未经沙箱运行（仅限模拟数据）/ "
            "bubblewrap missing: ran WITHOUT the sandbox (dummy data only)"
        )
    table = Table("action 步骤", "state 状态", "exit", "cpu s", "wall s", "max RSS MB", "error")
    for a in result.outcome.actions:
        table.add_row(
            a.name,
            a.state,
            "" if a.exit_code is None else str(a.exit_code),
            f"{a.cpu_s:.2f}",
            f"{a.wall_s:.2f}",
            f"{a.max_rss_mb:.0f}",
            a.error,
        )
    out.print(table)
    out.print(f"输出区 outbox: {result.outbox}")
    if result.outcome.state.value != "succeeded":
        err.print(f"[red]✘[/] {result.outcome.state.value}: {result.outcome.error}")
        raise typer.Exit(1)
    out.print("[green]✔[/] succeeded 成功")


@job_app.command("submit")
def submit(
    folder: Folder = Path("."),
    project: Annotated[int, typer.Option("--project", help="Project id.")] = 0,
    name: Annotated[str, typer.Option(help="A name for the job.")] = "",
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the job has finished.")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Submit a folder's code (no data, no links, ≤ 20 MB) as a job of a project."""
    if not project:
        raise typer.BadParameter("--project is required / 需要 --project", param_hint="--project")
    with client(url, token) as c:
        job = c.submit_job(project, folder, name=name)
        out.print(f"[green]✔[/] job {job.id}: {job.state}")
        while wait and not job.finished:
            time.sleep(1.0)
            job = c.job(job.id)
        if wait:
            _print_job(job.to_json())
            if job.state != "succeeded":
                raise typer.Exit(1)


def _print_job(view: dict[str, object]) -> None:
    out.print_json(json.dumps(view, ensure_ascii=False, default=str))


@job_app.command("status")
def status(job_id: JobId, url: Url = None, token: Token = None) -> None:
    """A job's state, which lab limit stopped it and the lab's message (JSON).

    Exit codes, logs and exact metering are outputs: shown only to stewards, checkers and admins
    outside the project."""
    with client(url, token) as c:
        _print_job(c.job(job_id).to_json())


@job_app.command("list")
def list_jobs(
    project: Annotated[int | None, typer.Option("--project", help="Only this project.")] = None,
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Jobs of your projects, newest first."""
    with client(url, token) as c:
        items = c.jobs(project, state=state)
    table = Table("id", "project", "name", "state 状态", "stopped by 终止原因", "attempts")
    for j in items:
        table.add_row(str(j.id), str(j.project_id), j.name, j.state, j.stopped_by or "", str(j.attempts))
    out.print(table)


@job_app.command("cancel")
def cancel(job_id: JobId, url: Url = None, token: Token = None) -> None:
    """Cancel a job (a running one is killed at once)."""
    with client(url, token) as c:
        job = c.cancel_job(job_id)
    out.print(
        f"job {job.id}: {job.state}" + (" (cancel requested)" if job.raw.get("cancel_requested") else "")
    )


@job_app.command("retry")
def retry(job_id: JobId, url: Url = None, token: Token = None) -> None:
    """Queue a failed, killed or lost job again (a new attempt)."""
    with client(url, token) as c:
        job = c.retry_job(job_id)
    out.print(f"job {job.id}: {job.state}")


@job_app.command("logs")
def logs(job_id: JobId, url: Url = None, token: Token = None) -> None:
    """Logs are outputs: release them through the airlock, or debug with `countylab run` on dummy data."""
    with client(url, token) as c:
        info = c.job_logs_info(job_id)
    msg = info.get("message") or {}
    out.print(f"{msg.get('zh', '')}\n{msg.get('en', '')}", markup=False, highlight=False)
    out.print(
        "调试 debug:  countylab run <folder> --url … (模拟数据 dummy data)\n"
        "出域 release: countylab release create --job <id> --file logs --submit",
        markup=False,
        highlight=False,
    )
    for st in info.get("streams") or []:  # stewards, checkers and admins outside the project
        out.print(
            f"[bold]── {st['action']} · {st['stream']}[/] (withheld 已隐去 {st['withheld']}, "
            f"older lines omitted 省略 {st['omitted']})"
        )
        for line in st["lines"]:
            out.print(line, markup=False, highlight=False)
