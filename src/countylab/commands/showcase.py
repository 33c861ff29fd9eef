"""``countylab dashboard …``: dashboards (数据看板) and the showcase's DP metrics over the API.

``list`` and ``show`` read; ``publish`` asks the security officer to approve the current version
(the refusal names any number that is neither open, released nor DP); ``approve`` is the security
officer's decision.  ``dashboard metric list|show|add|edit|refresh`` are what the dashboards page
offers for showcase metrics: a metric is saved only after the DP gateway has checked its SQL and ε
(a refusal is the gateway's own message, and nothing is saved); ``refresh`` runs its DP query now,
charged to the showcase budget.  ``dashboard metrics`` and ``dashboard refresh`` are the first
names of ``metric list`` and ``metric refresh``, kept for existing scripts.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from countylab.commands import display
from countylab.commands.remote import Token, Url, client, out

dashboard_app = typer.Typer(
    help="Dashboards and showcase metrics (数据看板、成果展示指标).", no_args_is_help=True
)
metric_app = typer.Typer(
    help="Showcase DP metrics (成果展示指标): list, show, add, edit, refresh.", no_args_is_help=True
)
dashboard_app.add_typer(metric_app, name="metric")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
MetricId = Annotated[int, typer.Argument(help="Showcase metric id (see `countylab dashboard metric list`).")]

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


class Schedule(StrEnum):
    hourly = "hourly"
    daily = "daily"
    weekly = "weekly"
    manual = "manual"


SCHEDULES = {
    "hourly": "每小时 hourly",
    "daily": "每天 daily",
    "weekly": "每周 weekly",
    "manual": "手动 manual",
}


def _json(value: Any) -> None:
    out.print_json(json.dumps(value, ensure_ascii=False, default=str))


def _status(m: dict[str, Any]) -> str:
    if m["stale"]:
        return f"过期 stale: {m['stale_reason']}"
    return "ok" if m["result"] else "—"


def _done(word: str, m: dict[str, Any]) -> None:
    out.print(
        f"[green]✔[/] {word}: #{m['id']} {m['name']} — {m['title']} "
        f"(ε {m['epsilon']:g}, {SCHEDULES.get(m['schedule'], m['schedule'])})"
    )


@metric_app.command("list")
def metric_list(as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """The showcase's DP metrics: ε, schedule, last refresh, stale and why."""
    with client(url, token) as c:
        items = c.metrics()
    if as_json:
        _json(items)
        return
    table = Table("id", "标识 name", "名称 title", "ε", "周期 schedule", "上次刷新 refreshed", "状态 status")
    for m in items:
        table.add_row(
            str(m["id"]),
            m["name"],
            m["title"],
            f"{m['epsilon']:g}",
            SCHEDULES.get(m["schedule"], m["schedule"]),
            display.when(m["refreshed_at"]) or "—",
            _status(m),
        )
    out.print(table)


@metric_app.command("show")
def metric_show(metric_id: MetricId, as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """A metric's SQL, ε, schedule, next refresh and cached answer (each DP value with its interval)."""
    with client(url, token) as c:
        m = c.metric(metric_id)
    if as_json:
        _json(m)
        return
    out.print(f"[bold]{m['title']}[/] ({m['name']}, #{m['id']})")
    out.print(f"SQL: {m['sql']}", markup=False, highlight=False)
    out.print(
        f"ε {m['epsilon']:g} · 周期 schedule {SCHEDULES.get(m['schedule'], m['schedule'])} · "
        f"已花费 ε spent {m['epsilon_spent']:g}"
    )
    out.print(
        f"上次刷新 refreshed: {display.when(m['refreshed_at']) or '—'} · "
        f"下次 next: {display.when(m['next_due_at']) or '—'} · 状态 status: {_status(m)}",
        markup=False,
    )
    result = m.get("result") or {}
    if result.get("columns"):
        intervals: dict[str, list[Any]] = result.get("intervals") or {}
        table = Table(*result["columns"])
        for r, row in enumerate(result["rows"]):
            cells = []
            for name, value in zip(result["columns"], row, strict=True):
                bounds = (intervals.get(name) or [None] * (r + 1))[r]
                if bounds and value is not None:
                    cells.append(f"{value:g} [{bounds[0]:g}, {bounds[1]:g}]")
                else:
                    cells.append("—" if value is None else str(value))
            table.add_row(*cells)
        out.print(table)


@metric_app.command("add")
def metric_add(
    name: Annotated[str, typer.Argument(help="Metric name: a-z, 0-9 and '_' (e.g. alone_by_town).")],
    title: Annotated[str, typer.Option("--title", help="The title charts show (名称).")],
    epsilon: Annotated[float, typer.Option("--epsilon", help="ε each refresh spends.")],
    sql: Annotated[str | None, typer.Argument(help="The DP SQL aggregate (or give --file).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the SQL from this file.")] = None,
    schedule: Annotated[
        Schedule, typer.Option("--schedule", help="How often it refreshes.")
    ] = Schedule.daily,
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Add a showcase metric; the DP gateway checks its SQL and ε first (a refusal saves nothing)."""
    if (sql is None) == (file is None):
        raise typer.BadParameter("give the SQL as an argument or with --file, not both / SQL 二选一")
    if file is not None:
        if not file.is_file():
            raise typer.BadParameter(f"no such file / 文件不存在: {file}")
        sql = file.read_text(encoding="utf-8")
    assert sql is not None
    with client(url, token) as c:
        m = c.create_metric(name, title=title, sql=sql, epsilon=epsilon, schedule=schedule.value)
    _json(m) if as_json else _done("已创建指标 created", m)


@metric_app.command("edit")
def metric_edit(
    metric_id: MetricId,
    title: Annotated[str | None, typer.Option("--title", help="A new title.")] = None,
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="A new ε per refresh.")] = None,
    schedule: Annotated[Schedule | None, typer.Option("--schedule", help="A new schedule.")] = None,
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Change a metric's title, ε or schedule (the rest stays; a new question is a new metric)."""
    if title is None and epsilon is None and schedule is None:
        raise typer.BadParameter(
            "nothing to change: give --title, --epsilon or --schedule / 没有要修改的内容"
        )
    with client(url, token) as c:
        cur = c.metric(metric_id)
        m = c.update_metric(
            metric_id,
            title=cur["title"] if title is None else title,
            epsilon=cur["epsilon"] if epsilon is None else epsilon,
            schedule=cur["schedule"] if schedule is None else schedule.value,
        )
    _json(m) if as_json else _done("已保存 saved", m)


@metric_app.command("refresh")
def metric_refresh(
    metric_id: MetricId, as_json: JsonOpt = False, url: Url = None, token: Token = None
) -> None:
    """Run a showcase metric's DP query now (charged to the showcase budget); refused → exit 1."""
    with client(url, token) as c:
        m = c.refresh_metric(metric_id)
    if as_json:
        _json(m)
    elif not m["stale"]:
        out.print(
            f"[green]✔[/] {m['title']}: refreshed 已刷新 {display.when(m['refreshed_at'])}, "
            f"ε spent in total {m['epsilon_spent']:g}"
        )
    if m["stale"]:
        if not as_json:
            out.print(
                f"[yellow]![/] 刷新被拒绝，保留旧值 refused, the cached value stays: {m['stale_reason']}"
            )
        raise typer.Exit(1)


@dashboard_app.command("refresh")
def refresh(metric_id: MetricId, url: Url = None, token: Token = None) -> None:
    """Run a showcase metric's DP query now (the same as `countylab dashboard metric refresh`)."""
    metric_refresh(metric_id, as_json=False, url=url, token=token)


@dashboard_app.command("metrics")
def list_metrics(url: Url = None, token: Token = None) -> None:
    """The showcase's DP metrics (the same as `countylab dashboard metric list`)."""
    metric_list(as_json=False, url=url, token=token)
