"""``countylab review …``: the approval workflow (审批) from a reviewer's console: what waits for
me, an application's rounds, decisions, expert assignment, objections and their answers."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from countylab.commands.remote import Token, Url, client, out

review_app = typer.Typer(
    help="Approval workflow (审批): my queue, decisions, experts, objections.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Ident = Annotated[int, typer.Argument(help="Application id.")]


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")


def _json(value: Any) -> None:
    out.print_json(json.dumps(value, ensure_ascii=False, default=str))


@review_app.command("list")
def list_reviews(as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """What waits for you (待我审批), overdue first."""
    with client(url, token) as c:
        items = c.reviews()
    if as_json:
        _json(items)
        return
    table = Table("id", "number 编号", "title 名称", "org 单位", "step 环节", "due 期限")
    for w in items:
        due = (w["due_at"] or "—")[:16].replace("T", " ")
        mark = " [red]超期 overdue[/]" if w["overdue"] else ""
        step = w["step_name"] + (f" · {w['department']}" if w["department"] else "")
        table.add_row(str(w["application_id"]), w["number"], w["title"], w["organisation"], step, due + mark)
    out.print(table)
    if not items:
        out.print("暂无等待您办理的审批 / nothing waits for you")


@review_app.command("show")
def show(application_id: Ident, as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """An application's review rounds, steps, deadlines, notice and objections."""
    with client(url, token) as c:
        wf = c.application_workflow(application_id)
    if as_json:
        _json(wf)
        return
    out.print(f"[bold]{wf['number']}[/]  status 状态: {wf['status']}  config 配置: v{wf['config_version']}")
    if wf["precheck"]["waiting"]:
        late = " [red]超期 overdue[/]" if wf["precheck"]["overdue"] else ""
        out.print(f"待材料预审 awaiting pre-check, due {wf['precheck']['due_at']}{late}")
    for d in wf.get("dropped", []):
        out.print(
            f"[yellow]已去除 dropped[/] {d['title']} (#{d['dataset_id']}) · {d['department']} · "
            f"{d['decided_at']}: {d['reason']}"
        )
    for r in wf["rounds"]:
        table = Table(
            "step 环节", "status 状态", "due 期限", "decided 办理", "reason 意见", title=f"round {r['round']}"
        )
        for st in r["steps"]:
            name = st["name"] + (f" · {st['department']}" if st["department"] else "")
            late = " 超期" if st["overdue"] else ""
            table.add_row(
                name,
                st["status"] + late,
                st["due_at"] or "—",
                f"{st['decided_by']} {st['decided_at']}",
                st["reason"],
            )
        out.print(table)
    if wf["notice"]:
        n = wf["notice"]
        out.print(f"公示 notice #{n['id']}: {n['starts_at']} ~ {n['ends_at']} ({n['status']})")
    for o in wf["objections"]:
        out.print(
            f"  异议 objection #{o['id']} [{o['status']}]: {o['reason']}"
            + (f" → {o['answer']}" if o["answer"] else "")
        )


def _ids(values: list[str] | None) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for v in values or []:
        ds, _, cols = v.partition(":")
        found[int(ds)] = [c for c in cols.split(",") if c]
    return found


def _budgets(values: list[str] | None) -> dict[int, tuple[float | None, float | None]]:
    found: dict[int, tuple[float | None, float | None]] = {}
    for v in values or []:
        ds, _, rest = v.partition(":")
        eps, _, delta = rest.partition(",")
        found[int(ds)] = (float(eps) if eps else None, float(delta) if delta else None)
    return found


@review_app.command("decide")
def decide(
    application_id: Ident,
    step: Annotated[str, typer.Argument(help="precheck, consent, security, expert or final.")],
    decision: Annotated[
        str,
        typer.Argument(
            help="pass/return/reject (precheck); approve/refuse (consent); "
            "approve/return/refuse (security, final); agree/disagree (expert)."
        ),
    ],
    reason: Annotated[str, typer.Option(help="Comments; required to return or refuse.")] = "",
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="Security: keep this channel; repeat.")
    ] = None,
    columns: Annotated[
        list[str] | None, typer.Option("--columns", help="Security: ID:col1,col2 (narrow); repeat.")
    ] = None,
    budget: Annotated[
        list[str] | None, typer.Option("--budget", help="Security: ID:epsilon[,delta]; repeat.")
    ] = None,
    quota: Annotated[
        list[str] | None, typer.Option("--quota", help="Security: name=value (max_cpu, …); repeat.")
    ] = None,
    conditions: Annotated[str, typer.Option(help="Security: conditions in words.")] = "",
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Decide the application's open step (a consent: your department's)."""
    q = {k: float(v) for k, _, v in (x.partition("=") for x in quota or [])} if quota else None
    with client(url, token) as c:
        result = c.decide(
            application_id, step, decision, reason, channels=channel, columns=_ids(columns) or None,
            budgets=_budgets(budget) or None, quota=q, conditions=conditions,
        )  # fmt: skip
    if as_json:
        _json(result)
        return
    out.print(f"{result['number']}: {step} {decision} → {result['status']}")


@review_app.command("assign-expert")
def assign_expert(
    application_id: Ident,
    user: Annotated[list[int], typer.Option("--user", help="Expert's user id; repeat.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """The operator assigns expert reviewers to the application's open expert review."""
    with client(url, token) as c:
        experts = c.assign_experts(application_id, user)
    out.print(f"专家 experts: {', '.join(str(e) for e in experts)}")


@review_app.command("notices")
def notices(as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """The public notices (公示) running now."""
    with client(url, token) as c:
        items = c.notices()
    if as_json:
        _json(items)
        return
    table = Table("id", "number 编号", "title 名称", "org 单位", "period 公示期", "objections 异议")
    for n in items:
        table.add_row(
            str(n["id"]), n["application_number"], n["title"], n["organisation"],
            f"{n['starts_on']} ~ {n['ends_on']}", str(n["objections_open"]),
        )  # fmt: skip
    out.print(table)


@review_app.command("object")
def object_(
    notice_id: Annotated[int, typer.Argument(help="Notice id (countylab review notices).")],
    reason: Annotated[str, typer.Option(help="Why you object.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """File an objection against an application on public notice."""
    with client(url, token) as c:
        result = c.file_objection(notice_id, reason)
    out.print(f"异议 objection #{result['id']} filed")


@review_app.command("answer")
def answer(
    objection_id: Annotated[int, typer.Argument(help="Objection id.")],
    outcome: Annotated[str, typer.Argument(help="continue (dismissed), in_review or rejected (upheld).")],
    text: Annotated[str, typer.Option("--answer", help="The answer in words.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """The operator answers an objection."""
    with client(url, token) as c:
        result = c.answer_objection(objection_id, outcome, text)
    out.print(f"异议 objection #{result['id']}: {result['status']}")


@review_app.command("conclude")
def conclude(
    notice_id: Annotated[int, typer.Argument(help="Notice id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """End a notice whose period is over with no open objection: the application is approved."""
    with client(url, token) as c:
        result = c.conclude_notice(notice_id)
    out.print(f"{result['number']}: {result['status']}")
