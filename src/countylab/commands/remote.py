"""Options shared by the commands that call a lab's API: ``--url`` and ``--token``."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from countylab.errors import UserError

Url = Annotated[
    str | None, typer.Option("--url", help="Lab URL (or COUNTYLAB_URL; default http://127.0.0.1:8000).")
]
Token = Annotated[str | None, typer.Option("--token", help="API token (or COUNTYLAB_TOKEN).")]

out = Console()
err = Console(stderr=True)


def client(url: str | None, token: str | None):  # type: ignore[no-untyped-def]
    from countylab_client import Client

    token = token or os.environ.get("COUNTYLAB_TOKEN")
    if not token:
        raise UserError(
            "需要 API 令牌：--token 或环境变量 COUNTYLAB_TOKEN（在“我的账号”页面创建）",
            "An API token is needed: --token or COUNTYLAB_TOKEN (create one on the My account page)",
        )
    lang = "en" if os.environ.get("COUNTYLAB_LANG", os.environ.get("LANG", "")).startswith("en") else "zh-CN"
    return Client(url or os.environ.get("COUNTYLAB_URL", "http://127.0.0.1:8000"), token, lang=lang)
