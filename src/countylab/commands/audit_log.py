"""``countylab audit list`` and ``countylab audit export``: the audit log over the API, filtered.

The same filters as the audit page and ``GET /api/audit`` (person, action or ``group:<family>``,
target, outcome, Beijing dates).  ``list`` prints a table in Beijing time with actions by name
(``--json`` keeps codes and UTC); ``export`` saves the page's CSV (BOM) or XLSX file, and the
lab audits the export like one from the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from countylab import labels
from countylab.commands import display
from countylab.commands.local_state import resolve_token, resolve_url
from countylab.commands.remote import Token, Url, out
from countylab.errors import UserError

User = Annotated[str | None, typer.Option("--user", help="Only this person (username).")]
Action = Annotated[
    str | None, typer.Option("--action", help="One action (dataset.push) or a family (group:dataset).")
]
Target = Annotated[str | None, typer.Option("--target", help="Targets starting with this (dataset:3).")]
Outcome = Annotated[str | None, typer.Option("--outcome", help="ok, denied or failed.")]
Since = Annotated[str | None, typer.Option("--since", help="From this Beijing date (2026-12-01).")]
Until = Annotated[str | None, typer.Option("--until", help="Up to this Beijing date, included.")]


def _get(url: str | None, token: str | None, path: str, params: dict[str, Any]) -> httpx.Response:
    where = resolve_url(url)
    key = resolve_token(token, where)
    if not key:
        raise UserError(
            f"需要登录：请运行 countylab login（实验室 {where}）",
            f"Not logged in: run `countylab login` (lab {where})",
        )
    headers = {"Authorization": f"Bearer {key}", "Accept-Language": display.lang()}
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    try:
        resp = httpx.get(where.rstrip("/") + path, params=clean, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        raise UserError(f"无法连接实验室 {where}：{exc}", f"cannot reach the lab at {where}: {exc}") from None
    if resp.status_code >= 400:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:300]
        raise UserError(f"实验室拒绝了请求：{message}", f"the lab refused: {message}")
    return resp


def register(audit_app: typer.Typer) -> None:
    @audit_app.command("list")
    def list_events(
        user: User = None,
        action: Action = None,
        target: Target = None,
        outcome: Outcome = None,
        since: Since = None,
        until: Until = None,
        limit: Annotated[int, typer.Option(help="How many events (newest first).")] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="JSON with codes and UTC times.")] = False,
        url: Url = None,
        token: Token = None,
    ) -> None:
        """List audit events, newest first, in Beijing time (查看审计日志)."""
        params: dict[str, Any] = {"user": user, "action": action, "target": target, "outcome": outcome}
        params |= {"since": since, "until": until, "limit": limit}
        items = _get(url, token, "/api/audit", params).json()["items"]
        if as_json:
            out.print_json(json.dumps(items, ensure_ascii=False))
            return
        lang = display.lang()
        zh = lang == "zh-CN"
        table = Table(
            "#",
            "时间（北京时间）" if zh else "time (Beijing)",
            "操作者" if zh else "person",
            "操作" if zh else "action",
            "对象" if zh else "target",
            "结果" if zh else "outcome",
            "详情" if zh else "details",
        )
        for e in items:
            table.add_row(
                str(e["id"]),
                display.when(e["ts"], "second"),
                labels.system_name(e["actor"], lang) or e["actor"],
                labels.action_label(e["action"], lang),
                e["target"],
                display.name("outcome", e["outcome"]),
                labels.details_text(e.get("details"), lang),
            )
        out.print(table)

    @audit_app.command("export")
    def export(
        output: Annotated[Path, typer.Argument(help="File to write: .csv (UTF-8 with BOM) or .xlsx.")],
        user: User = None,
        action: Action = None,
        target: Target = None,
        outcome: Outcome = None,
        since: Since = None,
        until: Until = None,
        url: Url = None,
        token: Token = None,
    ) -> None:
        """Save the matching events as CSV or XLSX for WPS/Excel; the export is audited (导出审计日志)."""
        fmt = "xlsx" if output.suffix.lower() == ".xlsx" else "csv"
        params: dict[str, Any] = {"format": fmt, "user": user, "action": action, "target": target}
        params |= {"outcome": outcome}
        params |= {"since": since, "until": until}
        resp = _get(url, token, "/api/audit/export", params)
        output.write_bytes(resp.content)
        out.print(f"[green]✔[/] {output} ({len(resp.content):,} bytes 字节)")
