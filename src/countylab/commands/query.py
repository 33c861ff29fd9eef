"""``countylab query …`` and ``countylab budget …``: the DP SQL gateway from the command line."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

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
        float | None, typer.Option(help="δ for DP partition selection (default: the lab's).")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="dp (noisy, spends ε) or sdc (exact, 一般1–2级 data only).")
    ] = "dp",
    as_json: Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Run a differentially private SQL query (数据黑匣查询); prints noisy values with 95% intervals."""
    with client(url, token) as c:
        data = c.query_raw(sql, project_id=project, epsilon=epsilon, delta=delta, mode=mode)
    if as_json:
        out.print_json(json.dumps(data, ensure_ascii=False, default=str))
        return
    table = Table(*data["columns"])
    intervals = data.get("intervals") or {}
    for i, row in enumerate(data["rows"]):
        table.add_row(
            *[
                _cell(v, (intervals.get(col) or [None] * (i + 1))[i])
                for col, v in zip(data["columns"], row, strict=True)
            ]
        )
    out.print(table)
    spent = (
        "cached, no cost 缓存答案，未扣预算"
        if data.get("cached")
        else f"ε spent 本次消耗 {data['epsilon_spent']:g}"
    )
    out.print(f"{spent}; ε remaining 剩余 {data['budget_remaining']:.4g}")
    for cell in data.get("suppressed") or []:
        out.print(f"[yellow]suppressed 抑制[/] {cell['row']} {cell['column']}: {', '.join(cell['reasons'])}")
    for note in data.get("notes") or []:
        out.print(f"[dim]{note}[/]")


@budget_app.command("show")
def show(
    project: Annotated[int, typer.Option("--project", "-p", help="Project id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Show a project's privacy budgets per dataset (project-wide and per analyst)."""
    with client(url, token) as c:
        data = c.budget(project)
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
