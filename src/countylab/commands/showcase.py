"""``countylab dashboard …``: dashboards (数据看板) and the showcase's DP metrics over the API.

``list`` and ``show`` read; ``publish`` asks the security officer to approve the current version
(the refusal names any number that is neither open, released nor DP); ``approve`` is the security
officer's decision; ``refresh`` runs a showcase metric's DP query now, charged to the showcase budget.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from countylab.commands.remote import Token, Url, client, out

dashboard_app = typer.Typer(
    help="Dashboards and showcase metrics (数据看板、成果展示指标).", no_args_is_help=True
)

STATES = {"draft": "草稿 draft", "pending": "待审批 pending", "published": "已发布 published"}
SOURCES = {"open": "开放数据 open", "release": "已出域 released", "dp": "差分隐私 DP"}


def register(app: typer.Typer) -> None:
    app.add_typer(dashboard_app, name="dashboard")


@dashboard_app.command("list")
def list_dashboards(url: Url = None, token: Token = None) -> None:
    """Every dashboard with its state, version and number of widgets."""
    with client(url, token) as c:
        items = c.dashboards()
    table = Table("id", "标识 slug", "名称 title", "状态 state", "版本 version", "图表 widgets")
    for d in items:
        table.add_row(
            str(d["id"]),
            d["slug"],
            d["title"],
            STATES.get(d["state"], d["state"]),
            str(d["version"]),
            str(d.get("widgets", "")),
        )
    out.print(table)


@dashboard_app.command("show")
def show(
    dashboard_id: Annotated[int, typer.Argument(help="Dashboard id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """A dashboard's widgets and the numbers of its latest approval record."""
    with client(url, token) as c:
        d = c.dashboard(dashboard_id)
    out.print(
        f"[bold]{d['title']}[/] ({d['slug']}) — {STATES.get(d['state'], d['state'])}, "
        f"版本 version {d['version']}"
    )
    widgets = Table("#", "类型 kind", "名称 title", "来源 source")
    for w in d["items"]:
        label = (w.get("chart") or {}).get("source", {}).get("label", "")
        widgets.add_row(
            str(w["position"] + 1), w["kind"], w["title"], f"{SOURCES.get(w['source_kind'], '')} {label}"
        )
    out.print(widgets)
    a: dict[str, Any] | None = d.get("approval")
    if a:
        out.print(
            f"审批记录 approval: {a['state']} (版本 version {a['version']}, "
            f"{len(a['numbers'])} 个数字 numbers)"
        )
        numbers = Table("图表 widget", "数字 number", "数值 value", "来源 source")
        for n in a["numbers"]:
            numbers.add_row(
                n["widget"], n["name"], f"{n['value']:g}", SOURCES.get(n["source_kind"], n["source_kind"])
            )
        out.print(numbers)


@dashboard_app.command("publish")
def publish(
    dashboard_id: Annotated[int, typer.Argument(help="Dashboard id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Submit the current version for the security officer's approval (lists every number)."""
    with client(url, token) as c:
        a = c.submit_dashboard(dashboard_id)
    out.print(
        f"[green]✔[/] 已提交发布审批 submitted: version {a['version']}, "
        f"{len(a['numbers'])} numbers to approve"
    )


@dashboard_app.command("approve")
def approve(
    dashboard_id: Annotated[int, typer.Argument(help="Dashboard id.")],
    reject: Annotated[bool, typer.Option("--reject", help="Send it back instead (needs --comment).")] = False,
    comment: Annotated[str, typer.Option(help="Your comment (required with --reject).")] = "",
    version: Annotated[
        int | None, typer.Option(help="The version you checked (default: the pending one).")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Security officer: approve (publish) or send back the pending version."""
    with client(url, token) as c:
        if version is None:
            pending = c.dashboard(dashboard_id).get("approval") or {}
            version = int(pending.get("version") or 0)
        a = c.decide_dashboard(dashboard_id, approve=not reject, version=version, comment=comment)
    word = "已退回 sent back" if reject else "已批准发布 published"
    out.print(f"[green]✔[/] {word}: version {a['version']}")


@dashboard_app.command("refresh")
def refresh(
    metric_id: Annotated[int, typer.Argument(help="Showcase metric id (see `countylab dashboard metrics`).")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Run a showcase metric's DP query now (charged to the showcase budget)."""
    with client(url, token) as c:
        m = c.refresh_metric(metric_id)
    if m["stale"]:
        out.print(f"[yellow]![/] 刷新被拒绝，保留旧值 refused, the cached value stays: {m['stale_reason']}")
        raise typer.Exit(1)
    out.print(
        f"[green]✔[/] {m['title']}: refreshed {m['refreshed_at']}, ε spent in total {m['epsilon_spent']:g}"
    )


@dashboard_app.command("metrics")
def list_metrics(url: Url = None, token: Token = None) -> None:
    """The showcase's DP metrics: schedule, last refresh, stale and why."""
    with client(url, token) as c:
        items = c.showcase_metrics()
    table = Table("id", "名称 title", "ε", "周期 schedule", "上次刷新 refreshed", "状态 status")
    for m in items:
        status = f"过期 stale: {m['stale_reason']}" if m["stale"] else ("ok" if m["result"] else "—")
        table.add_row(
            str(m["id"]), m["title"], f"{m['epsilon']:g}", m["schedule"], m["refreshed_at"] or "—", status
        )
    out.print(table)
