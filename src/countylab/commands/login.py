"""``countylab login`` / ``logout``: an API token for this user on this machine, kept 0600.

Login uses the lab's own routes, as the web page does: ``POST /api/login`` (password, throttled
and audited as for the browser), ``POST /api/tokens`` with the session's CSRF token (the token is
created and audited by the identity service as on the My account page), then the web session is
closed again.  Only the token is stored (:mod:`countylab.commands.local_state`); the password
never is.  ``logout`` revokes the token on the lab when it can, and forgets it either way.
"""

from __future__ import annotations

import platform
from http.cookies import SimpleCookie
from typing import Annotated, Any

import httpx
import typer

from countylab.commands.local_state import credentials_file, drop_login, resolve_url, store_login
from countylab.commands.remote import Url, cli_lang, err, out
from countylab.errors import UserError

SESSION_COOKIE = "countylab_session"  # countylab.web.deps.SESSION_COOKIE (no web import here)


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)


def _fail(resp: httpx.Response) -> UserError:
    """The lab's own message (already in the CLI's language, see Accept-Language), one line."""
    try:
        body = resp.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    msg = str(error.get("message") or "") if isinstance(error, dict) else ""
    msg = msg or f"HTTP {resp.status_code}"
    return UserError(f"登录失败：{msg}", f"Login failed: {msg}")


def _session_cookie(resp: httpx.Response) -> str:
    """The session id from Set-Cookie, read by hand: a lab with cookie_secure sets a Secure
    cookie that an http:// client jar would drop, and the CLI is not a browser."""
    for header in resp.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if SESSION_COOKIE in jar:
            return jar[SESSION_COOKIE].value
    raise UserError("实验室没有返回会话", "the lab returned no session")


def create_token(url: str, username: str, password: str, *, days: int | None = None) -> dict[str, Any]:
    """Log in with a password and create an API token; the web session is closed afterwards."""
    headers = {"Accept-Language": cli_lang(), "Accept": "application/json"}
    try:
        with httpx.Client(base_url=url, timeout=30.0, headers=headers) as http:
            resp = http.post("/api/login", json={"username": username, "password": password})
            if resp.status_code != 200:
                raise _fail(resp)
            session, csrf = _session_cookie(resp), str(resp.json()["csrf_token"])
            http.cookies.clear()
            auth = {"Cookie": f"{SESSION_COOKIE}={session}", "X-CSRF-Token": csrf}
            body: dict[str, Any] = {"name": f"cli@{platform.node() or 'host'}"[:100]}
            if days:
                body["days"] = days
            made = http.post("/api/tokens", json=body, headers=auth)
            if made.status_code != 201:
                raise _fail(made)
            http.post("/logout", headers=auth, follow_redirects=False)
            issued: dict[str, Any] = made.json()
    except httpx.HTTPError as exc:
        raise UserError(
            f"无法连接实验室 {url}：{exc}（实验室在运行吗？用 --url 指定地址）",
            f"Cannot reach the lab at {url}: {exc} (is it running? name it with --url)",
        ) from exc
    return issued


def login(
    username: Annotated[str | None, typer.Option("--username", "-u", help="Login name (prompted).")] = None,
    password: Annotated[
        str | None, typer.Option("--password", help="Password (prompted, hidden; avoid on shared hosts).")
    ] = None,
    days: Annotated[int | None, typer.Option(min=1, max=3650, help="Days until the token expires.")] = None,
    url: Url = None,
) -> None:
    """Log in to the lab and keep an API token for the next commands (登录).

    The token is stored in ~/.config/countylab/credentials.json (mode 0600), one per lab URL;
    `countylab logout` revokes and forgets it."""
    where = resolve_url(url)
    if not username:
        username = typer.prompt("用户名 Username")
    if password is None:
        password = typer.prompt("密码 Password", hide_input=True)
    issued = create_token(where, username.strip(), password or "", days=days)
    path = store_login(
        where,
        {
            "username": username.strip(),
            "token": issued["token"],
            "token_id": issued.get("id"),
            "expires_at": issued.get("expires_at"),
        },
    )
    expires = str(issued.get("expires_at") or "")[:10]
    out.print(
        f"[green]✔[/] 已登录 logged in: {username} @ {where}  (令牌有效期至 token expires {expires})",
        highlight=False,
        soft_wrap=True,
    )
    err.print(f"令牌已保存 token stored: {path}", highlight=False, soft_wrap=True)


def logout(url: Url = None) -> None:
    """Revoke the stored API token on the lab and forget it (退出登录)."""
    where = resolve_url(url)
    entry = drop_login(where)
    if entry is None:
        out.print(f"未登录 not logged in: {where} ({credentials_file()})", highlight=False, soft_wrap=True)
        return
    revoked = False
    token_id = entry.get("token_id")
    if isinstance(token_id, int):
        try:
            with httpx.Client(base_url=where, timeout=10.0) as http:
                resp = http.delete(
                    f"/api/tokens/{token_id}", headers={"Authorization": f"Bearer {entry['token']}"}
                )
                revoked = resp.status_code == 200
        except httpx.HTTPError:
            revoked = False
    note = (
        "令牌已撤销 token revoked"
        if revoked
        else "实验室不可达，令牌仅在本机删除 lab unreachable: forgotten here only"
    )
    out.print(f"[green]✔[/] 已退出 logged out: {where} ({note})", highlight=False, soft_wrap=True)
