"""``countylab release …`` and ``countylab model …``: the airlock and the model registry over the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from countylab.commands import display
from countylab.commands.remote import Token, Url, client, out
from countylab.errors import UserError

release_app = typer.Typer(help="Release requests from job outboxes (出域申请).", no_args_is_help=True)
model_app = typer.Typer(help="Model registry and in-domain predictions (模型不出域).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")
    app.add_typer(model_app, name="model")


@release_app.command("create")
def create(
    job: Annotated[int, typer.Option("--job", help="Job id whose outbox holds the files.")],
    file: Annotated[
        list[str],
        typer.Option(
            "--file",
            help="What to release, as declared in countylab.yaml: '*' (every output but models and "
            "logs), 'logs', or <action>/<path> (e.g. analyse/metrics.csv); repeatable.",
        ),
    ],
    note: Annotated[str, typer.Option(help="Context: what the files are, controls applied.")] = "",
    title: Annotated[str, typer.Option(help="Title of the request.")] = "",
    count_column: Annotated[
        list[str] | None, typer.Option("--count-column", help="Count column of tables.")
    ] = None,
    submit: Annotated[bool, typer.Option("--submit/--draft", help="Submit right away.")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Create a release request by what the job's countylab.yaml declares (you see a count)."""
    entries = [
        {"name": f, "description": note, "controls": "", "count_columns": list(count_column or [])}
        for f in file
    ]
    with client(url, token) as c:
        r = c.create_release(job, entries, title=title, note=note, submit=submit)
    out.print(f"[green]✔[/] release request 出域申请 {r.id}: {display.name('release_state', r.state)}")


@release_app.command("submit")
def submit(
    request_id: Annotated[int, typer.Argument(help="Release request id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Submit a draft: the automatic checks run at once."""
    with client(url, token) as c:
        r = c.submit_release(request_id)
    out.print(
        f"release request 出域申请 {r.id}: {display.name('release_state', r.state)}"
        f" (checks 检查: {display.name('check_status', r.checks_status) or '—'})"
    )


@release_app.command("resubmit")
def resubmit(
    request_id: Annotated[int, typer.Argument(help="Release request id (returned by the checkers).")],
    job: Annotated[int | None, typer.Option("--job", help="A newer job of the same project.")] = None,
    file: Annotated[
        list[str] | None,
        typer.Option("--file", help="Selectors of the new round (default: the last round's); repeatable."),
    ] = None,
    reply: Annotated[
        list[str] | None,
        typer.Option("--reply", help="A reply to a checker comment: COMMENT_ID=TEXT; repeatable."),
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Resubmit a returned request as the next round; the checks run again."""
    replies: dict[int, str] = {}
    for item in reply or []:
        cid, sep, text = item.partition("=")
        if not sep or not cid.strip().isdigit():
            out.print(f"--reply {item!r}: write COMMENT_ID=TEXT / 请写成 评论编号=回复")
            raise typer.Exit(code=2)
        replies[int(cid)] = text.strip()
    with client(url, token) as c:
        r = c.resubmit_release(request_id, job_id=job, files=file or None, replies=replies)
    counts = (r.raw.get("changes") or {}).get("counts") or {}
    changed = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    out.print(
        f"release request 出域申请 {r.id}: round 轮次 {r.raw.get('round')} "
        f"{display.name('release_state', r.state)}"
        f" (checks 检查: {display.name('check_status', r.checks_status) or '—'}) {changed}"
    )


@release_app.command("list")
def list_requests(
    scope: Annotated[str, typer.Option(help="mine, queue (checkers) or all (stewards).")] = "mine",
    url: Url = None,
    token: Token = None,
) -> None:
    """List release requests."""
    with client(url, token) as c:
        items = c.releases(scope)
    table = Table("id", "title 标题", "project 项目", "grade 分级", "state 状态", "checks 检查")
    for r in items:
        table.add_row(
            str(r.id),
            r.title,
            r.project or "",
            display.grade(r.grade),
            display.name("release_state", r.state),
            display.name("check_status", r.checks_status),
        )
    out.print(table)


@release_app.command("download")
def download(
    request_id: Annotated[int, typer.Argument(help="A released request's id.")],
    to: Annotated[Path, typer.Option(help="Folder to write the files into.")] = Path("."),
    url: Url = None,
    token: Token = None,
) -> None:
    """Download every released file of a request, checking each SHA-256."""
    import hashlib

    with client(url, token) as c:
        files = [f for f in c.released_files() if f.request_id == request_id]
        if not files:  # unknown, not yours, or not released: a failure, not an empty success
            raise UserError(
                f"出域申请 {request_id} 没有你可下载的已出域文件（申请不存在、尚未出域或不属于你的项目）",
                f"release request {request_id} has no released files you may download "
                "(no such request, not released yet, or not your project's)",
            )
        to.mkdir(parents=True, exist_ok=True)
        for f in files:
            data = c.download_release_file(f.id)
            if hashlib.sha256(data).hexdigest() != f.released_sha256:
                raise UserError(
                    f"{f.name} 的 SHA-256 与出域记录不符，未保存",
                    f"{f.name}: SHA-256 differs from the release record; not saved",
                )
            (to / Path(f.name).name).write_bytes(data)
            out.print(f"[green]✔[/] {f.name} sha256={f.released_sha256}")


@model_app.command("register")
def register_model(
    job: Annotated[int, typer.Option("--job", help="Job id whose outbox holds the model file.")],
    file: Annotated[
        str,
        typer.Option(
            "--file", help="An output declared `kind: model` in countylab.yaml, as <action>/<path>."
        ),
    ],
    name: Annotated[str, typer.Option(help="Model name.")],
    output: Annotated[
        list[str],
        typer.Option(
            "--output",
            help="Typed output, repeatable: NAME:number:LOW..HIGH[:DECIMALS] or NAME:category:A|B.",
        ),
    ],
    input_: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            help="Input column, in order; repeatable.  Leave out when the job declared named fields "
            "beside the model (<model>.countylab.json).",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="The training dataset's column the model predicts (memorisation tests)."),
    ] = None,
    metrics_file: Annotated[int | None, typer.Option(help="Id of a released metrics file.")] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Register a model with its model card (it is served in-domain after approval)."""
    with client(url, token) as c:
        m = c.register_model(
            job, file, name, inputs=input_ or [], outputs=output, target=target, metrics_file_id=metrics_file
        )
    out.print(f"[green]✔[/] model 模型 {m.id}: {display.name('model_state', m.state)}")


@model_app.command("assess")
def assess_model(
    model_id: Annotated[int, typer.Argument(help="Model id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Run the memorisation tests on the real training data (checkers and stewards)."""
    with client(url, token) as c:
        report = c.assess_model(model_id)
    out.print_json(json.dumps(report, ensure_ascii=False))


@model_app.command("predict")
def predict(
    model_id: Annotated[int, typer.Argument(help="Model id.")],
    field: Annotated[
        list[str] | None,
        typer.Option("--field", "-f", help="A named input NAME=VALUE (town=城关镇); repeat for each field."),
    ] = None,
    rows: Annotated[
        str | None,
        typer.Option(help='JSON records, e.g. \'[{"town": "城关镇", "age": 82}]\', or @file.json.'),
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Predictions of an approved model (rate-limited, audited), by named fields:

    countylab model predict 3 --field town=城关镇 --field age=82 --field lives_alone=是
    """
    if bool(field) == bool(rows):
        out.print("give --field NAME=VALUE (one record) or --rows JSON / 请用 --field 或 --rows 之一")
        raise typer.Exit(code=2)
    if field:
        record: dict[str, str] = {}
        for item in field:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                out.print(f"--field {item!r}: write NAME=VALUE / 请写成 字段名=值")
                raise typer.Exit(code=2)
            record[name.strip()] = value.strip()
        records: list[Any] = [record]
    else:
        assert rows is not None
        text = Path(rows[1:]).read_text(encoding="utf-8") if rows.startswith("@") else rows
        records = json.loads(text)
    with client(url, token) as c:
        predictions = c.predict(model_id, records)
    if field:
        out.print(f"{model_id}: {predictions[0]}")
    else:
        out.print_json(json.dumps({"model_id": model_id, "predictions": predictions}, ensure_ascii=False))
