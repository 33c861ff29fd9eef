"""``countylab run`` (a job folder on dummy data, locally) and ``countylab job …`` (the lab's queue)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from countylab.commands.local_state import resolve_token, resolve_url, running_server
from countylab.commands.remote import Token, Url, cli_lang, client, err, out

if TYPE_CHECKING:
    from countylab_client import Client, Job

job_app = typer.Typer(
    help="Sandbox jobs on the lab: submit, status, logs, cancel, retry. 作业.", no_args_is_help=True
)

Folder = Annotated[Path, typer.Argument(help="Job folder holding countylab.yaml (default: here).")]
JobId = Annotated[int, typer.Argument(help="Job id.")]
FINISHED = ("succeeded", "failed", "killed", "cancelled")
STATES = ("pending", "queued", "running", "succeeded", "failed", "killed", "cancelled", "lost")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.add_typer(job_app, name="job")


def _project_id(c: Client, project: str) -> int:
    """``--project`` as an id (digits) or a slug of a project the caller can see."""
    if project.isdigit() and int(project) > 0:
        return int(project)
    match = [p.id for p in c.projects() if p.slug == project]
    if not match:
        raise _usage_error(
            f"没有标识为 {project} 的项目（或您不是其成员）；--project 取项目编号或标识",
            f"no project with the slug {project} (or you are not a member); --project takes an id or a slug",
        )
    return match[0]


def _fetch_dummy(
    folder: Path, names: list[str], url: str | None, token: str | None, rows: int, project: str | None = None
) -> dict[str, Path]:
    """Dummy data of each dataset from the lab; for a project, only the columns its jobs see."""
    from countylab.errors import NotFound
    from countylab.jobs.local import dummy_root

    staged: dict[str, Path] = {}
    with client(url, token) as c:
        project_id = _project_id(c, project) if project else None
        if project_id is None:
            err.print(_t()("jobs.dummy_hint"), markup=False, highlight=False, soft_wrap=True)
        for name in names:
            match = [d for d in c.datasets() if d.name == name]
            if not match:
                raise NotFound(f"实验室中没有数据集 {name}", f"the lab has no dataset {name}", dataset=name)
            dest = dummy_root(folder) / name
            dest.mkdir(parents=True, exist_ok=True)
            part = dest / "dummy.parquet.part"  # a refusal leaves the earlier dummy data in place
            c.dummy_data(match[0].id, part, rows=rows, fmt="parquet", project_id=project_id)
            for old in dest.glob("*.parquet"):
                old.unlink()
            part.rename(dest / "dummy.parquet")
            staged[name] = dest
            scope = f", project {project_id}" if project_id is not None else ""
            err.print(f"模拟数据 dummy data: {name} ({rows} rows{scope}) → {dest}")
    return staged


def run(
    folder: Folder = Path("."),
    dummy_dir: Annotated[
        Path | None,
        typer.Option("--dummy-dir", help="Folder with <dataset>.parquet or <dataset>/*.parquet dummy data."),
    ] = None,
    rows: Annotated[int, typer.Option(help="Rows of dummy data to fetch per dataset.")] = 1000,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="Project id or slug: fetch only the columns that project's jobs will see.",
        ),
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Run a job folder here on dummy data, in the same sandbox as the server (本地试运行).

    Dummy data comes from the lab (--url/--token, or the running lab you logged in to with
    `countylab login`), a local folder (--dummy-dir), or what an earlier run left in
    .countylab/dummy/.  With --project, the lab's dummy data has exactly the columns a job of
    that project will see (an authorisation may approve some columns only).  Outputs land in
    .countylab/outbox/<action>/.
    """
    import os

    from countylab.jobs.local import read_spec, run_local, spec_datasets, stage_from_dir, staged_dummy

    check_folder(folder)
    if project and dummy_dir is not None:
        raise _usage_error(
            "--project 从实验室获取该项目的模拟数据，--dummy-dir 使用本地文件：二者只能选一",
            "--project fetches the project's dummy data from the lab, --dummy-dir uses local files: "
            "give one of them",
        )
    names = spec_datasets(read_spec(folder))
    if dummy_dir is not None:
        datasets = stage_from_dir(dummy_dir, folder, names)
    elif (
        url
        or token
        or project  # a project's columns come from the lab
        or os.environ.get("COUNTYLAB_TOKEN")
        or (running_server() and resolve_token(None, resolve_url(None)))
    ):
        datasets = _fetch_dummy(folder, names, url, token, rows, project)
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


def _usage_error(zh: str, en: str) -> typer.Exit:
    """A wrong argument: one line on stderr in the user's language, exit code 2, no traceback."""
    err.print(f"error: {en if cli_lang() == 'en' else zh}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(2)


def check_folder(folder: Path) -> None:
    """Refuse a missing folder or a spec that cannot be read before anything is packed or sent."""
    from countylab.errors import CountylabError
    from countylab.jobs.local import read_spec

    if not folder.is_dir():
        what_zh, what_en = (
            ("不是文件夹", "is not a folder") if folder.exists() else ("不存在", "does not exist")
        )
        raise _usage_error(f"作业文件夹{what_zh}：{folder}", f"the job folder {what_en}: {folder}")
    try:
        read_spec(folder)
    except CountylabError as exc:
        raise _usage_error(exc.message("zh-CN"), exc.message("en")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _usage_error(
            f"无法读取 {folder / 'countylab.yaml'}：{exc}", f"cannot read {folder / 'countylab.yaml'}: {exc}"
        ) from None


@job_app.command("submit")
def submit(
    folder: Folder = Path("."),
    project: Annotated[int, typer.Option("--project", help="Project id.")] = 0,
    name: Annotated[
        str,
        typer.Option(
            help="A name for the job (default: name/title in countylab.yaml, else '<folder>: <script>')."
        ),
    ] = "",
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the job has finished.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON (for scripts).")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Submit a folder's code (no data, no links, ≤ 20 MB) as a job of a project."""
    if not project:
        raise _usage_error("需要 --project（项目编号）", "--project (the project id) is required")
    check_folder(folder)
    with client(url, token) as c:
        job = c.submit_job(project, folder, name=name)
        if not as_json:
            out.print(
                f"[green]✔[/] {_t()('jobs.job')} {job.id} · {job.name}: {_state(job.state)}", highlight=False
            )
        started = time.monotonic()
        while wait and not job.finished:
            time.sleep(1.0)
            job = c.job(job.id)
            if not as_json and time.monotonic() - started > 5:
                err.print(f"  … {_state(job.state)} ({time.monotonic() - started:.0f} s)", highlight=False)
                started = time.monotonic()
        if as_json:
            _print_job(job.to_json())
        elif wait:
            print_summary(job)
        if wait and job.state != "succeeded":
            raise typer.Exit(1)


def _t() -> Callable[..., str]:
    from countylab.i18n import translator

    return translator(cli_lang())


def _state(state: str) -> str:
    return str(_t()(f"jobs.state.{state}"))


def cpu_text(job: Job) -> str:
    """``12.3 s`` for oversight roles, ``≤ 60 s`` for project members (a coarse bucket)."""
    if job.cpu_coarse:
        return f"≤ {job.cpu_s:.0f} s" if job.cpu_s else "0 s"
    return f"{job.cpu_s:.1f} s"


def duration_text(job: Job) -> str:
    t = _t()
    if job.duration_s is None:
        return "—"
    if job.cpu_coarse:  # whole minutes between minute-rounded timestamps
        minutes = int(job.duration_s // 60)
        return t("jobs.under_a_minute") if minutes == 0 else t("jobs.minutes", n=minutes)
    return f"{job.duration_s:.1f} s"


def outcome_text(job: Job) -> str:
    t = _t()
    text = _state(job.state)
    if job.stopped_by and job.stopped_by not in ("cancelled", "lost"):  # the state says it already
        text += (
            f"（{t('jobs.stop.' + job.stopped_by)}）"
            if cli_lang() != "en"
            else f" ({t('jobs.stop.' + job.stopped_by)})"
        )
    return text


def print_summary(job: Job) -> None:
    """What --wait prints: a few labelled lines a person reads, and the next step."""
    t = _t()
    mark = "[green]✔[/]" if job.state == "succeeded" else "[red]✘[/]"
    out.print(f"{mark} {t('jobs.job')} {job.id} · {job.name}", highlight=False)
    rows = [
        (t("jobs.state"), outcome_text(job)),
        ("CPU", cpu_text(job)),
        (t("jobs.duration"), duration_text(job)),
    ]
    lang = "en" if cli_lang() == "en" else "zh"
    if job.message.get(lang):
        rows.append((t("jobs.lab_message"), str(job.message[lang])))
    for label, value in rows:
        out.print(f"  {label}: {value}", markup=False, highlight=False, soft_wrap=True)
    if job.outputs:
        out.print(f"  {t('jobs.outputs')}:", markup=False, highlight=False, soft_wrap=True)
        for o in job.outputs:
            out.print(
                f"    {o.get('selector')}  ({t('jobs.kind.' + str(o.get('kind')))})",
                markup=False,
                highlight=False,
            )
    if job.state == "succeeded":
        hint = t("jobs.next_release", id=job.id)
    elif job.stopped_by in ("exited_with_error", "missing_output"):
        hint = t("jobs.next_debug")
    else:
        hint = t("jobs.next_page", id=job.id)
    out.print(f"  {t('jobs.next')}: {hint}", markup=False, highlight=False, soft_wrap=True)


def _print_job(view: dict[str, object]) -> None:
    out.print_json(json.dumps(view, ensure_ascii=False, default=str))


@job_app.command("status")
def status(
    job_id: JobId,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON (for scripts).")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """A job's state, which lab limit stopped it, CPU, duration and declared outputs.

    Exit codes, logs and exact metering are outputs: shown only to stewards, checkers and admins
    outside the project."""
    with client(url, token) as c:
        job = c.job(job_id)
    if as_json:
        _print_job(job.to_json())
    else:
        print_summary(job)


@job_app.command("list")
def list_jobs(
    project: Annotated[int | None, typer.Option("--project", help="Only this project.")] = None,
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON (for scripts).")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Jobs of your projects, newest first: name, outcome, CPU seconds used and duration."""
    if state is not None and state not in STATES:
        raise _usage_error(
            f"没有这种状态：{state}（可用：{', '.join(STATES)}）",
            f"no such state: {state} (one of {', '.join(STATES)})",
        )
    with client(url, token) as c:
        items = c.jobs(project, state=state)
    if as_json:
        out.print_json(json.dumps([j.to_json() for j in items], ensure_ascii=False, default=str))
        return
    t = _t()
    table = Table(
        "#",
        t("jobs.project"),
        t("jobs.name"),
        t("jobs.outcome"),
        "CPU",
        t("jobs.duration"),
        t("jobs.submitted_at"),
    )
    for j in items:
        created = str(j.raw.get("created_at") or "")[:16].replace("T", " ")
        table.add_row(
            str(j.id), str(j.project_id), j.name, outcome_text(j), cpu_text(j), duration_text(j), created
        )
    out.print(table)
    if any(j.cpu_coarse for j in items):
        err.print(t("jobs.coarse_note"), highlight=False)


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
    out.print(f"{msg.get('zh', '')}\n{msg.get('en', '')}", markup=False, highlight=False, soft_wrap=True)
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
            out.print(line, markup=False, highlight=False, soft_wrap=True)
