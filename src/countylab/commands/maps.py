"""``countylab map …``: the county map's boundaries over the API (import, status)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from countylab.commands.remote import Token, Url, client, err, out

map_app = typer.Typer(help="County map boundaries (县域地图).", no_args_is_help=True)


class Level(StrEnum):
    town = "town"
    village = "village"


def register(app: typer.Typer) -> None:
    app.add_typer(map_app, name="map")


@map_app.command("import")
def import_boundaries(
    file: Annotated[
        Path, typer.Argument(help="GeoJSON FeatureCollection, or a zip of .shp/.shx/.dbf[/.prj].")
    ],
    level: Annotated[Level, typer.Option("--level", help="Which areas the file draws.")],
    code_property: Annotated[
        str, typer.Option("--code-property", help="Property holding the town/village code (XZQDM…).")
    ] = "code",
    name_property: Annotated[
        str, typer.Option("--name-property", help="Property holding the name.")
    ] = "name",
    url: Url = None,
    token: Token = None,
) -> None:
    """Replace a level's boundaries with a checked file, all or nothing (operators, admins).

    A refused file lists every bad feature: its position, code, name and the reason."""
    from countylab_client import ValidationError

    if not file.is_file():
        raise typer.BadParameter(f"no such file: {file}")
    with client(url, token) as c:
        try:
            r = c.import_map_boundaries(
                file, level=level.value, code_property=code_property, name_property=name_property
            )
        except ValidationError as e:
            problems = e.details.get("problems") or []
            if problems:
                t = Table("#", "code 代码", "name 名称", "reason 原因")
                for p in problems:
                    t.add_row(
                        str(p.get("index", "")),
                        p.get("code") or "—",
                        p.get("name") or "—",
                        p.get("reason", ""),
                    )
                err.print(t)
            raise
    out.print(
        f"[green]✔[/] {level.value}: {r['features']} features imported 已导入"
        + (f"; {len(r['missing_codes'])} codes not drawn 未绘制" if r["missing_codes"] else "")
    )


@map_app.command("status")
def status(url: Url = None, token: Token = None) -> None:
    """Areas drawn per level, codes not drawn, the last import; points per open-data layer."""
    with client(url, token) as c:
        st = c.map_status()
    t = Table("level 层级", "drawn 已绘制", "known 代码数", "last import 最近导入")
    for level, lv in st["levels"].items():
        last = lv["imports"][0] if lv["imports"] else None
        t.add_row(
            level,
            str(lv["areas"]),
            str(lv["known"]),
            f"{last['source']} {last['filename']} {last['at'][:16]}" if last else "—",
        )
    out.print(t)
    for layer, n in st["points"].items():
        out.print(f"{layer}: {n} points 点位")
