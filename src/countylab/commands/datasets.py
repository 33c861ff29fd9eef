"""``countylab dataset …``: the catalog from the command line, over the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from countylab.commands import display
from countylab.commands.remote import Token, Url, client, err, out

dataset_app = typer.Typer(
    help="The data catalog: list, create, upload, push, grade. 数据目录.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")


@dataset_app.command("list")
def list_datasets(
    q: Annotated[str | None, typer.Option("--q", "-q", help="Search words (Chinese works).")] = None,
    grade: Annotated[str | None, typer.Option(help="Only this grade, e.g. general_4.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only this tag.")] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """List or search datasets."""
    with client(url, token) as c:
        items = c.datasets(q, grade=grade, tag=tag)
    table = Table("id", "name", "title 名称", "department 部门", "grade 分级", "rows 行数")
    for d in items:
        table.add_row(
            str(d.id), d.name, d.title, d.department, display.grade(d.grade), f"{d.row_count or 0:,}"
        )
    out.print(table)


@dataset_app.command("show")
def show(
    dataset_id: Annotated[int, typer.Argument(help="Dataset id.")], url: Url = None, token: Token = None
) -> None:
    """Show a dataset's metadata, columns and versions as JSON."""
    with client(url, token) as c:
        d = c.dataset(dataset_id)
    out.print_json(json.dumps(d.to_json(), ensure_ascii=False, default=str))


@dataset_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Identifier: a-z, 0-9, _.")],
    title: Annotated[str, typer.Option(help="Chinese title.")],
    description: Annotated[str, typer.Option(help="Description.")] = "",
    privacy_unit: Annotated[str, typer.Option(help="person, enterprise or none.")] = "none",
    privacy_unit_column: Annotated[str | None, typer.Option(help="Column holding the unit's id.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag; repeat for several.")] = None,
    key: Annotated[
        list[str] | None, typer.Option("--key", help="Key column for upserts; repeatable.")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Register a dataset of your department."""
    with client(url, token) as c:
        d = c.create_dataset(
            name,
            title,
            description=description,
            privacy_unit=privacy_unit,
            privacy_unit_column=privacy_unit_column,
            tags=tag or [],
            key_columns=key or [],
        )
    out.print(f"[green]✔[/] dataset {d.name} (id {d.id})")


@dataset_app.command("upload")
def upload(
    dataset_id: Annotated[int, typer.Argument(help="Dataset id.")],
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV, XLSX, Parquet or JSONL file.")
    ],
    mode: Annotated[str, typer.Option(help="replace, append or upsert.")] = "replace",
    key: Annotated[list[str] | None, typer.Option("--key", help="Key column for upsert; repeatable.")] = None,
    note: Annotated[str, typer.Option(help="A note kept with the version.")] = "",
    url: Url = None,
    token: Token = None,
) -> None:
    """Upload a file as the dataset's next version (all or nothing)."""
    with client(url, token) as c:
        v = c.upload_file(dataset_id, path, mode=mode, key=key or [], note=note)
    out.print(f"[green]✔[/] version v{v['version']}: {v['row_count']:,} rows")


@dataset_app.command("push")
def push(
    dataset_id: Annotated[int, typer.Argument(help="Dataset id.")],
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON Lines file of rows.")],
    key: Annotated[str | None, typer.Option(help="Idempotency key (a retried push is applied once).")] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Push rows (JSON Lines) for near-real-time sources."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    with client(url, token) as c:
        r = c.push_rows(dataset_id, rows, idempotency_key=key)
    out.print("duplicate batch: nothing applied" if r.duplicate else f"[green]✔[/] {r.accepted} rows pushed")


@dataset_app.command("grade")
def grade(
    dataset_id: Annotated[int, typer.Argument(help="Dataset id.")],
    level: Annotated[str, typer.Argument(help="core, important, general_1 … general_4.")],
    reason: Annotated[str, typer.Option(help="Written reason (required to lower).")] = "",
    url: Url = None,
    token: Token = None,
) -> None:
    """Security officer: confirm, raise or lower a dataset's grade."""
    with client(url, token) as c:
        d = c.set_grade(dataset_id, level, reason=reason)
    out.print(f"[green]✔[/] {d['name']}: {display.grade(d['grade'])}")


@dataset_app.command("dummy")
def dummy(
    dataset_id: Annotated[int, typer.Argument(help="Dataset id.")],
    output: Annotated[Path, typer.Argument(help="Where to write the file.")],
    rows: Annotated[int, typer.Option(min=1, max=1_000_000, help="Row count.")] = 1000,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    url: Url = None,
    token: Token = None,
) -> None:
    """Download dummy data (模拟数据) with the dataset's schema, to develop code against."""
    with client(url, token) as c:
        path = c.dummy_data(dataset_id, output, rows=rows, fmt=fmt)
    err.print(f"dummy data (not real) → {path}")
