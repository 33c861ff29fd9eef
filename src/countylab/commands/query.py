"""``countylab query …`` and ``countylab budget …``: the DP SQL gateway from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from countylab.commands import display
from countylab.commands.remote import Token, Url, client, out

budget_app = typer.Typer(help="Privacy budgets of a project. 隐私预算.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("query")(query)
    app.add_typer(budget_app, name="budget")


def _cell(value: Any, interval: Any) -> str:
    text = "—" if value is None else (f"{value:,.4g}" if isinstance(value, float) else str(value))
    if isinstance(interval, list) and len(interval) == 2 and None not in interval:
        text += f"  [{interval[0]:,.4g}, {interval[1]:,.4g}]"
    return text


def query(
    sql: Annotated[str, typer.Argument(help="One aggregate SELECT over the project's granted datasets.")],
    project: Annotated[int, typer.Option("--project", "-p", help="Project id.")],
    epsilon: Annotated[
        float | None, typer.Option("--epsilon", "-e", help="Privacy budget ε this query spends.")
    ] = None,
    delta: Annotated[
        float | None,
        typer.Option(help="δ for DP partition selection (default: a small fraction of the grade's δ cap)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Also save the answer as .xlsx (with the DP note) or .csv (UTF-8 BOM)."
        ),
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Run a differentially private SQL query (数据黑匣查询); prints noisy values with 95% intervals.

    Values are rounded to the digits their interval supports, town and village codes come with
    their names, and headers are words (人数, 年龄合计); ``--json`` prints the unrounded answer."""
    fmt = _output_format(output)
    with client(url, token) as c:
        data = c.query_raw(sql, project_id=project, epsilon=epsilon, delta=delta)
        if output is not None and data.get("query_id") is not None:
            c.download_answer(int(data["query_id"]), output, format=fmt)
    if as_json:
        out.print_json(json.dumps(data, ensure_ascii=False, default=str))
        return
    out.print(_answer_table(data))
    spent = (
        "cached, no cost 缓存答案，未扣预算"
        if data.get("cached")
        else f"ε spent 本次消耗 {data['epsilon_spent']:g}, δ {data['delta_spent']:.2g}"
    )
    renews = next((b.get("renews_at") for b in data.get("budget") or [] if b.get("renews_at")), None)
    tail = f"; renews 更新于 {display.when(renews, 'date')}" if renews else ""
    out.print(f"{spent}; ε remaining 剩余 {data['budget_remaining']:.4g}{tail}")
    for note in (data.get("display") or {}).get("notes") or data.get("notes") or []:
        out.print(f"[dim]{note}[/]")
    if output is not None:
        out.print(f"saved 已保存: {output}")


def _output_format(output: Path | None) -> str:
    """Checked before the query runs: a bad file name must not cost privacy budget."""
    if output is None:
        return "xlsx"
    fmt = output.suffix.lower().lstrip(".")
    if fmt not in ("xlsx", "csv"):
        raise typer.BadParameter("--output 文件须以 .xlsx 或 .csv 结尾 / must end in .xlsx or .csv")
    return fmt


def _answer_table(data: dict[str, Any]) -> Table:
    """The answer as people read it (the server's display block), or the raw one if it has none."""
    shown = data.get("display")
    if isinstance(shown, dict) and len(shown.get("cells") or []) == len(data["rows"]):
        table = Table(*shown["headers"])
        for i, cells in enumerate(shown["cells"]):
            row = []
            for j, text in enumerate(cells):
                low, high = shown["low"][i][j], shown["high"][i][j]
                row.append(f"{text}  [{low}, {high}]" if low is not None and high is not None else str(text))
            table.add_row(*row)
        return table
    table = Table(*data["columns"])
    intervals = data.get("intervals") or {}
    for i, raw in enumerate(data["rows"]):
        table.add_row(
            *[
                _cell(v, (intervals.get(col) or [None] * (i + 1))[i])
                for col, v in zip(data["columns"], raw, strict=True)
            ]
        )
    return table


@budget_app.command("show")
def show(
    project: Annotated[int, typer.Option("--project", "-p", help="Project id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Show a project's privacy budgets per dataset (project-wide and per analyst)."""
    with client(url, token) as c:
        data = c.budget(project)
    out.print(
        f"period 周期: {data.get('period', '')} {display.when(data.get('period_start'), 'date')} – "
        f"{display.when(data.get('period_end'), 'date')} "
        f"(renews 更新于 {display.when(data.get('renews_at'))})"
    )
    table = Table(
        "dataset 数据集", "scope 范围", "ε limit 上限", "ε spent 已用", "ε left 剩余", "δ left 剩余"
    )
    for b in data["budgets"]:
        scope = "project 项目" if b["scope"] == "project" else f"analyst {b['username'] or b['user_id']}"
        table.add_row(
            b["dataset"],
            scope,
            f"{b['epsilon_limit']:g}",
            f"{b['epsilon_spent']:.4g}",
            f"{b['epsilon_remaining']:.4g}",
            f"{b['delta_remaining']:.3g}",
        )
    out.print(table)
    years = Table("dataset 数据集", "year 年度", "ε all projects 全部项目上限", "ε spent 已用", "ε left 剩余")
    for y in data.get("datasets_year") or []:
        years.add_row(
            y["dataset"],
            str(y["year"]),
            f"{y['epsilon_limit']:g}",
            f"{y['epsilon_spent']:.4g}",
            f"{y['epsilon_remaining']:.4g}",
        )
    out.print(years)


@budget_app.command("topup")
def topup(
    project: Annotated[int, typer.Option("--project", "-p", help="Project id.")],
    dataset: Annotated[int, typer.Option("--dataset", "-d", help="Dataset id.")],
    epsilon: Annotated[float, typer.Option(help="Extra ε asked for, this period only.")],
    reason: Annotated[str, typer.Option(help="Why the project needs it (the steward reads this).")],
    delta: Annotated[float, typer.Option(help="Extra δ asked for.")] = 0.0,
    url: Url = None,
    token: Token = None,
) -> None:
    """Project member: request a privacy budget top-up (追加预算申请) for this period."""
    with client(url, token) as c:
        t = c.request_topup(project, dataset, epsilon=epsilon, delta=delta, reason=reason)
    out.print(
        f"[green]✔[/] top-up 追加预算 #{t['id']} {t['dataset']}: ε +{t['epsilon']:g} — "
        f"{display.name('topup_status', t['status'])}"
    )


@budget_app.command("topups")
def list_topups(
    project: Annotated[int | None, typer.Option("--project", "-p", help="Project id (default: all).")] = None,
    pending: Annotated[bool, typer.Option(help="Only pending requests (all projects).")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """List top-up requests: of one project, or (security officer) of every project."""
    with client(url, token) as c:
        items = c.topups(project, status="pending" if pending and project is None else None)
    table = Table("id", "project 项目", "dataset 数据集", "ε", "by 申请人", "reason 理由", "status 状态")
    for t in items:
        table.add_row(
            str(t["id"]),
            t["project"],
            t["dataset"],
            f"{t['epsilon']:g}",
            t["username"],
            t["reason"],
            display.name("topup_status", t["status"]),
        )
    out.print(table)


@budget_app.command("decide")
def decide(
    topup_id: Annotated[int, typer.Argument(help="Top-up request id.")],
    approve: Annotated[bool, typer.Option("--approve/--refuse", help="Approve or refuse.")],
    note: Annotated[str, typer.Option(help="A note for the project.")] = "",
    url: Url = None,
    token: Token = None,
) -> None:
    """Security officer: approve or refuse a top-up request (批准/拒绝追加预算)."""
    with client(url, token) as c:
        t = c.decide_topup(topup_id, approve=approve, note=note)
    out.print(f"[green]✔[/] top-up 追加预算 #{t['id']}: {display.name('topup_status', t['status'])}")


@budget_app.command("set")
def set_budget(
    project: Annotated[int, typer.Option("--project", "-p", help="Project id.")],
    dataset: Annotated[int, typer.Option("--dataset", "-d", help="Dataset id.")],
    epsilon: Annotated[float | None, typer.Option(help="ε limit (within the grade's cap).")] = None,
    delta: Annotated[float | None, typer.Option(help="δ limit (within the grade's cap).")] = None,
    user: Annotated[int | None, typer.Option(help="Set this analyst's (user id) budget instead.")] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Security officer: set a project's (or analyst's) privacy budget on a dataset."""
    with client(url, token) as c:
        b = c.set_budget(project, dataset, epsilon=epsilon, delta=delta, user_id=user)
    out.print(f"[green]✔[/] {b['dataset']}: ε ≤ {b['epsilon_limit']:g}, δ ≤ {b['delta_limit']:g}")
