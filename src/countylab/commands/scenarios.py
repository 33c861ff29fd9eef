"""``countylab scenario …`` and ``countylab capability …``: the scenario list (场景清单) and the
capability list (能力清单) over the API.  Readable tables by default, ``--json`` for programs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from countylab.commands import display
from countylab.commands.remote import Token, Url, client, out

scenario_app = typer.Typer(
    help="The scenario list (场景清单): publish, propose, accept, move.", no_args_is_help=True
)
capability_app = typer.Typer(
    help="The capability list (能力清单) of enterprises and institutes.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def register(app: typer.Typer) -> None:
    app.add_typer(scenario_app, name="scenario")
    app.add_typer(capability_app, name="capability")


def _json(value: Any) -> None:
    out.print_json(json.dumps(value, ensure_ascii=False, default=str))


def _offers(dataset: list[str]) -> list[dict[str, Any]]:
    """``--dataset 3`` or ``--dataset 3:town,age`` (only those columns)."""
    found: list[dict[str, Any]] = []
    for item in dataset:
        ident, _, cols = item.partition(":")
        if not ident.strip().isdigit():
            raise typer.BadParameter(f"--dataset {item!r}: expected ID or ID:col1,col2")
        entry: dict[str, Any] = {"dataset_id": int(ident)}
        if cols.strip():
            entry["columns"] = [c.strip() for c in cols.split(",") if c.strip()]
        found.append(entry)
    return found


def _show(sc: dict[str, Any]) -> None:
    out.print(
        f"[bold]#{sc['id']} {sc['title']}[/]  {sc['status_name']}  ({sc['field_name']} · {sc['department']})"
    )
    out.print(
        f"征集期 window: {sc.get('apply_from') or '—'} ~ {sc.get('apply_until') or '—'}  "
        f"可见 {sc['visibility']}"
    )
    out.print(f"问题 problem: {sc['problem']}")
    if sc.get("expected_outcome"):
        out.print(f"预期成果 outcome: {sc['expected_outcome']}")
    if sc.get("status_reason"):
        out.print(f"理由 reason: {sc['status_reason']}")
    table = Table("id", "dataset 数据集", "grade 分级", "columns 列")
    for d in sc["datasets"]:
        cols = "全部 all" if d["columns"] is None else ", ".join(d["columns"])
        table.add_row(str(d["dataset_id"]), d["title"], display.grade(d["grade"]), cols)
    out.print(table)


@scenario_app.command("list")
def list_scenarios(
    field: Annotated[str, typer.Option(help="Only this field, e.g. elderly_care.")] = "",
    status: Annotated[str, typer.Option(help="Only this status, e.g. collecting.")] = "",
    q: Annotated[str, typer.Option("--q", "-q", help="Words in the title or problem.")] = "",
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Scenarios you may see, newest first."""
    with client(url, token) as c:
        items = c.scenarios(field=field, status=status, q=q)
    if as_json:
        _json(items)
        return
    table = Table("id", "title 场景", "field 领域", "department 部门", "until 截止", "status 状态")
    for sc in items:
        table.add_row(
            str(sc["id"]), sc["title"], sc["field_name"], sc["department"], sc.get("apply_until") or "—",
            sc["status_name"],
        )  # fmt: skip
    out.print(table)


@scenario_app.command("show")
def show(
    scenario_id: Annotated[int, typer.Argument(help="Scenario id.")],
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """One scenario with the datasets it offers."""
    with client(url, token) as c:
        sc = c.scenario(scenario_id)
    _json(sc) if as_json else _show(sc)


def _publish(propose: bool, **kw: Any) -> None:
    as_json = kw.pop("as_json")
    url, token = kw.pop("url"), kw.pop("token")
    kw["datasets"] = _offers(kw.pop("dataset"))
    with client(url, token) as c:
        sc = c.publish_scenario(propose=propose, **kw)
    if as_json:
        _json(sc)
    else:
        out.print(f"[green]✔[/] #{sc['id']} {sc['title']}: {sc['status_name']}")


Title = Annotated[str, typer.Option(help="Title (场景名称).")]
Problem = Annotated[str, typer.Option(help="The problem to solve (要解决的问题).")]
Field = Annotated[str, typer.Option(help="Field code: elderly_care, agriculture, transport, industry, …")]
Datasets = Annotated[
    list[str], typer.Option("--dataset", help="ID or ID:col1,col2 (only those columns); repeat.")
]
Outcome = Annotated[str, typer.Option(help="Expected outcome (预期成果).")]
Org = Annotated[int | None, typer.Option(help="Owning department's org id (default: yours).")]
From = Annotated[str | None, typer.Option("--from", help="Window opens YYYY-MM-DD.")]
Until = Annotated[str | None, typer.Option("--until", help="Window closes YYYY-MM-DD.")]
Visibility = Annotated[str, typer.Option(help="public, or internal (government only).")]


@scenario_app.command("publish")
def publish(
    title: Title,
    problem: Problem,
    field: Field,
    dataset: Datasets,
    expected_outcome: Outcome = "",
    org: Org = None,
    apply_from: From = None,
    apply_until: Until = None,
    visibility: Visibility = "public",
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Publish a scenario (征集中); subscribers of its field are notified."""
    _publish(
        False, title=title, problem=problem, field=field, dataset=dataset, expected_outcome=expected_outcome,
        org_id=org, apply_from=apply_from, apply_until=apply_until, visibility=visibility, as_json=as_json,
        url=url, token=token,
    )  # fmt: skip


@scenario_app.command("propose")
def propose(
    title: Title,
    problem: Problem,
    field: Field,
    dataset: Datasets,
    expected_outcome: Outcome = "",
    org: Org = None,
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Propose a scenario of your own (待受理 until the operator accepts it)."""
    _publish(
        True, title=title, problem=problem, field=field, dataset=dataset, expected_outcome=expected_outcome,
        org_id=org, apply_from=None, apply_until=None, visibility="public", as_json=as_json, url=url,
        token=token,
    )  # fmt: skip


@scenario_app.command("edit")
def edit(
    scenario_id: Annotated[int, typer.Argument(help="Published scenario id.")],
    reason: Annotated[str, typer.Option(help="Why it changes (required; kept with the new version).")],
    title: Annotated[str | None, typer.Option(help="New title (default: unchanged).")] = None,
    problem: Annotated[str | None, typer.Option(help="New problem text (default: unchanged).")] = None,
    field: Annotated[str | None, typer.Option(help="New field code (default: unchanged).")] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset", help="The whole new offer: ID or ID:col1,col2; repeat (default: unchanged)."
        ),
    ] = None,
    expected_outcome: Annotated[str | None, typer.Option(help="New expected outcome.")] = None,
    apply_from: Annotated[str | None, typer.Option("--from", help="Window opens YYYY-MM-DD.")] = None,
    apply_until: Annotated[str | None, typer.Option("--until", help="Window closes YYYY-MM-DD.")] = None,
    visibility: Annotated[str | None, typer.Option(help="public or internal.")] = None,
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Edit a published scenario's text or offer: a new version with the reason; subscribers are
    notified; applications already submitted keep the offer they were submitted under."""
    with client(url, token) as c:
        now = c.scenario(scenario_id)
        offers = (
            _offers(dataset)
            if dataset
            else [
                {"dataset_id": d["dataset_id"], "columns": d["columns"], "note": d.get("note", "")}
                for d in now["datasets"]
            ]
        )
        sc = c.edit_scenario(
            scenario_id,
            reason=reason,
            title=now["title"] if title is None else title,
            problem=now["problem"] if problem is None else problem,
            field=now["field"] if field is None else field,
            datasets=offers,
            expected_outcome=now["expected_outcome"] if expected_outcome is None else expected_outcome,
            apply_from=now["apply_from"] if apply_from is None else apply_from,
            apply_until=now["apply_until"] if apply_until is None else apply_until,
            visibility=now["visibility"] if visibility is None else visibility,
        )
    if as_json:
        _json(sc)
    else:
        out.print(f"[green]✔[/] #{sc['id']} {sc['title']}: 第 {sc['version']} 版 version {sc['version']}")


@scenario_app.command("accept")
def accept(
    scenario_id: Annotated[int, typer.Argument(help="Proposed scenario id.")],
    reason: Annotated[str, typer.Option(help="Why (optional).")] = "",
    url: Url = None,
    token: Token = None,
) -> None:
    """The operator accepts a proposal: it starts collecting applications."""
    with client(url, token) as c:
        sc = c.accept_scenario(scenario_id, reason)
    out.print(f"[green]✔[/] #{sc['id']} {sc['title']}: {sc['status_name']}")


@scenario_app.command("decline")
def decline(
    scenario_id: Annotated[int, typer.Argument(help="Proposed scenario id.")],
    reason: Annotated[str, typer.Option(help="Why (required; the proposer reads it).")],
    url: Url = None,
    token: Token = None,
) -> None:
    """The operator declines a proposal."""
    with client(url, token) as c:
        sc = c.decline_scenario(scenario_id, reason)
    out.print(f"#{sc['id']} {sc['title']}: {sc['status_name']}")


@scenario_app.command("status")
def status(
    scenario_id: Annotated[int, typer.Argument(help="Scenario id.")],
    new: Annotated[str, typer.Argument(help="matched, in_progress, completed, closed, collecting.")],
    reason: Annotated[str, typer.Option(help="Why (required, audited).")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Move a scenario: 征集中 → 已对接 → 实施中 → 已完成 / 已关闭."""
    with client(url, token) as c:
        sc = c.set_scenario_status(scenario_id, new, reason)
    out.print(f"[green]✔[/] #{sc['id']} {sc['title']}: {sc['status_name']}")


@scenario_app.command("subscribe")
def subscribe(
    field: Annotated[
        list[str] | None, typer.Argument(help="Field codes; none: unsubscribe from all.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every field.")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Hear of new scenarios in these fields (replaces your subscriptions)."""
    fields = [""] if every else list(field or [])
    with client(url, token) as c:
        now = c.subscribe_scenarios(fields)
    out.print("订阅 subscribed: " + (", ".join(f or "全部 all" for f in now) or "—"))


@capability_app.command("list")
def list_capabilities(
    field: Annotated[str, typer.Option(help="Only this field.")] = "",
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """What enterprises and research institutes offer."""
    with client(url, token) as c:
        items = c.capabilities(field=field)
    if as_json:
        _json(items)
        return
    table = Table("id", "capability 能力", "field 领域", "organisation 单位")
    for cap in items:
        table.add_row(str(cap["id"]), cap["title"], cap["field_name"], cap["organisation"])
    out.print(table)


@capability_app.command("publish")
def publish_capability(
    title: Annotated[str, typer.Option(help="What you offer.")],
    field: Field,
    description: Annotated[str, typer.Option(help="Details.")] = "",
    org: Annotated[int | None, typer.Option(help="On behalf of this org (operator only).")] = None,
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """List a capability of your organisation (an enterprise or research institute)."""
    with client(url, token) as c:
        cap = c.publish_capability(title=title, field=field, description=description, org_id=org)
    _json(cap) if as_json else out.print(f"[green]✔[/] #{cap['id']} {cap['title']} ({cap['organisation']})")
