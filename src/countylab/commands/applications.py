"""``countylab application …``: data-use applications (用数申请) from the applicant's side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from countylab.commands.remote import Token, Url, client, out
from countylab.commands.scenarios import _offers

application_app = typer.Typer(
    help="Data-use applications (用数申请): draft, submit, attach, renew.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def register(app: typer.Typer) -> None:
    app.add_typer(application_app, name="application")


def _show(a: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(a, ensure_ascii=False, default=str))
        return
    out.print(f"[bold]{a['number']} {a['title']}[/]  {a['status_name']}")
    out.print(f"场景 scenario: #{a['scenario_id']} {a['scenario_title']}   单位 org: {a['organisation']}")
    if a.get("status_reason"):
        out.print(f"原因 reason: {a['status_reason']}")
    if "datasets" not in a:
        return
    out.print(
        f"用途 purpose: {a['purpose_name'] or '—'}   方式 channels: {', '.join(a['channel_names']) or '—'}"
    )
    out.print(f"期限 term: {a['starts_on'] or '—'} ~ {a['ends_on'] or '—'}")
    table = Table("dataset 数据集", "grade 分级", "columns 列")
    for d in a["datasets"]:
        table.add_row(
            f"#{d['dataset_id']} {d['title']}",
            d["grade"],
            "全部 all" if d["columns"] is None else ", ".join(d["columns"]),
        )
    out.print(table)
    for m in a["members"]:
        mark = "✔" if m["accredited"] else "✘ 无有效培训合格 not accredited"
        out.print(f"  {m['display_name']} ({m['username']}, {m['role']}) {mark}")
    ticked = len(a["commitments"]["items"])
    out.print(
        f"承诺书 commitments: {ticked}/{len(a['commitments']['all'])}   "
        f"附件 attachments: {len(a['attachments'])}"
    )
    for p in a.get("problems", []):
        out.print(f"[yellow]! {p}[/]")


Scenario = Annotated[int, typer.Option(help="Scenario id.")]
Title = Annotated[str, typer.Option(help="Title of the application.")]


@application_app.command("new")
def new(
    scenario: Scenario,
    title: Title,
    purpose: Annotated[str, typer.Option(help="public_good (公共治理/公益) or industry (产业/行业).")] = "",
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="ID or ID:col1,col2; repeat.")
    ] = None,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="dp_query, sandbox_job, model_serving.")
    ] = None,
    member: Annotated[list[int] | None, typer.Option("--member", help="Team member user id; repeat.")] = None,
    starts_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    ends_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD (at most two years).")] = None,
    outputs: Annotated[str, typer.Option(help="Expected outputs.")] = "",
    commit: Annotated[
        list[str] | None, typer.Option("--commit", help="A commitment code you tick; repeat.")
    ] = None,
    commit_all: Annotated[bool, typer.Option("--commit-all", help="Tick every commitment (承诺书).")] = False,
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Create a draft application (numbered SQ-YYYY-NNNN)."""
    with client(url, token) as c:
        commitments = list(commit or [])
        if commit_all:
            commitments = [x["code"] for x in c.application_terms()["commitments"]]
        a = c.create_application(
            scenario_id=scenario, title=title, purpose=purpose, datasets=_offers(list(dataset or [])),
            channels=list(channel or []), member_ids=list(member or []), starts_on=starts_on, ends_on=ends_on,
            expected_outputs=outputs, commitments=commitments,
        )  # fmt: skip
    _show(a, as_json)


@application_app.command("list")
def list_applications(
    status: Annotated[str, typer.Option(help="Only this status, e.g. draft.")] = "",
    mine: Annotated[bool, typer.Option("--mine", help="Only those you are on the team of.")] = False,
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Applications you may read, newest change first."""
    with client(url, token) as c:
        items = c.applications(status=status, mine=mine)
    if as_json:
        out.print_json(json.dumps(items, ensure_ascii=False, default=str))
        return
    table = Table("id", "number 编号", "title 名称", "scenario 场景", "org 单位", "status 状态")
    for a in items:
        table.add_row(
            str(a["id"]), a["number"], a["title"], a["scenario_title"], a["organisation"], a["status_name"]
        )
    out.print(table)


Ident = Annotated[int, typer.Argument(help="Application id.")]


@application_app.command("show")
def show(application_id: Ident, as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """Everything in an application, and what still stops its submission."""
    with client(url, token) as c:
        _show(c.application(application_id), as_json)


@application_app.command("submit")
def submit(application_id: Ident, as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """Submit a draft (every field complete, every commitment ticked, the team accredited)."""
    with client(url, token) as c:
        _show(c.submit_application(application_id), as_json)


@application_app.command("resubmit")
def resubmit(application_id: Ident, as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """Submit a returned application again (after editing it)."""
    with client(url, token) as c:
        _show(c.submit_application(application_id), as_json)


@application_app.command("withdraw")
def withdraw(
    application_id: Ident,
    reason: Annotated[str, typer.Option(help="Why (optional).")] = "",
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Withdraw an application."""
    with client(url, token) as c:
        _show(c.withdraw_application(application_id, reason), as_json)


@application_app.command("attach")
def attach(
    application_id: Ident,
    path: Annotated[Path, typer.Argument(help="A PDF file.", exists=True, dir_okay=False)],
    url: Url = None,
    token: Token = None,
) -> None:
    """Attach a PDF (the lab refuses anything that is not a real PDF)."""
    with client(url, token) as c:
        att = c.attach_to_application(application_id, path)
    out.print(f"[green]✔[/] {att['filename']} sha256 {att['sha256']}")


@application_app.command("renew")
def renew(application_id: Ident, as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """Start the renewal of an authorised application: a prefilled draft."""
    with client(url, token) as c:
        _show(c.renew_application(application_id), as_json)
