"""Options shared by the commands that call a lab's API: ``--url`` and ``--token``.

Neither is needed after ``countylab demo``/``serve`` and ``countylab login`` on the same
machine: the URL comes from the running lab's state file and the token from the stored login
(orders in :mod:`countylab.commands.local_state`)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from countylab.commands import display
from countylab.commands.local_state import resolve_token, resolve_url
from countylab.errors import UserError

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Lab URL (or COUNTYLAB_URL; default: the lab `countylab serve`/`demo` runs, else "
        "http://127.0.0.1:8000).",
    ),
]
Token = Annotated[
    str | None, typer.Option("--token", help="API token (or COUNTYLAB_TOKEN; default: `countylab login`).")
]

out = display.console()
err = display.console(stderr=True)


def cli_lang() -> str:
    value = os.environ.get("COUNTYLAB_LANG") or os.environ.get("LANG", "")
    return "en" if value.startswith("en") else "zh-CN"


def client(url: str | None, token: str | None):  # type: ignore[no-untyped-def]
    from countylab_client import Client

    where = resolve_url(url)
    token = resolve_token(token, where)
    if not token:
        raise UserError(
            f"需要登录：请运行 countylab login（实验室 {where}），"
            "或用 --token / COUNTYLAB_TOKEN 提供 API 令牌",
            f"Not logged in: run `countylab login` (lab {where}), or give an API token with --token "
            "or COUNTYLAB_TOKEN",
        )
    return Client(where, token, lang=cli_lang())
