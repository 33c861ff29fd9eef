"""Command line: ``countylab demo | serve | init | login | user add | token create | audit verify``.

Entry points stay thin: parse, build settings once, call one service, print.  Every lab error
and every usage error is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from countylab import __version__
from countylab.commands import agreements as agreement_cmds
from countylab.commands import airlock, audit_log, datasets, display, doctor, jobs, query
from countylab.commands import applications as application_cmds
from countylab.commands import approvals as approval_cmds
from countylab.commands import login as login_cmd
from countylab.commands import maps as map_cmds
from countylab.commands import scenarios as scenario_cmds
from countylab.commands import showcase as showcase_cmds
from countylab.config import Settings
from countylab.errors import CountylabError, UserError
from countylab_client import CountylabClientError

app = typer.Typer(
    name="countylab",
    help="countylab — 数字县域场景应用实验室 (digital county data lab). 数据不出域、可用不可见.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
user_app = typer.Typer(help="Manage users. 用户管理.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens. API 令牌.", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect the audit log. 审计日志.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")


# the command groups that talk to a (possibly remote) lab over its API
login_cmd.register(app)
datasets.register(app)
query.register(app)
jobs.register(app)
airlock.register(app)
map_cmds.register(app)
showcase_cmds.register(app)
scenario_cmds.register(app)
application_cmds.register(app)
agreement_cmds.register(app)
approval_cmds.register(app)
# host checks before or beside a lab (sandbox, cgroups, fonts, OCR, disk, database, settings)
doctor.register(app)
audit_log.register(audit_app)

# typer (>= 0.29) vendors its own click: every parsing and usage error it raises is a
# typer.TyperException (its public base class), never one of the click package's.
_USAGE_ERRORS: tuple[type[Any], ...] = (typer.TyperException,)

out = display.console()
err = display.console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Lab data folder (default ./lab-data).")]
Config = Annotated[Path | None, typer.Option("--config", help="TOML settings file.")]


def _settings(data_dir: Path | None, config: Path | None, **extra: object) -> Settings:
    kwargs: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    if config is not None:
        kwargs["config_file"] = config
    try:
        return Settings(**kwargs)  # type: ignore[arg-type]
    except ValueError as exc:  # pydantic's ValidationError, a TOML syntax error, a missing file
        problem = _settings_problem(exc)
        raise UserError(f"设置有误：{problem}", f"Invalid settings: {problem}") from exc


def _settings_problem(exc: ValueError) -> str:
    """One line naming each bad setting, e.g. ``port: Input should be a valid integer (got 'abc')``."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
        )
    return " ".join(str(exc).split())


def _lab(settings: Settings, *, must_exist: bool = True):  # type: ignore[no-untyped-def]
    from countylab.lab import Lab

    lab = Lab(settings)
    if must_exist and not lab.is_initialised():
        raise CountylabError(
            f"实验室尚未初始化：{settings.data_dir}（请先运行 countylab init 或 countylab demo）",
            f"No lab initialised at {settings.data_dir} (run `countylab init` or `countylab demo` first)",
        )
    return lab


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def init(
    data_dir: DataDir = None,
    config: Config = None,
    admin_username: Annotated[str, typer.Option(help="First admin's username.")] = "admin",
    admin_password: Annotated[
        str | None, typer.Option(help="First admin's password (prompted when omitted).")
    ] = None,
) -> None:
    """Create the data folder, migrate the metadata database and create the first admin."""
    from countylab.bootstrap import init_lab

    settings = _settings(data_dir, config)
    lab = _lab(settings, must_exist=False)
    if admin_password is None and not lab.is_initialised():
        admin_password = typer.prompt(
            "Admin password / 管理员密码", hide_input=True, confirmation_prompt=True
        )
    created = init_lab(lab, admin_username=admin_username, admin_password=admin_password or "")
    out.print(
        f"[green]✔[/] lab ready at {settings.data_dir.resolve()}"
        + (f"; admin user '{admin_username}' created" if created else " (already initialised)")
    )


@app.command()
def serve(
    data_dir: DataDir = None,
    config: Config = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes sharing the port and the database.")
    ] = 1,
) -> None:
    """Run the web server (UI and API); with --workers N, N processes on one port."""
    settings = _settings(data_dir, config, host=host, port=port)
    lab = _lab(settings)
    if workers == 1:
        _run_server(lab, [])
        return
    _run_workers(lab, workers, data_dir=data_dir, config_file=config, host=host, port=port)


def _run_server(lab, demo_logins: list[dict[str, str]]) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from countylab.web.app import create_app

    s = lab.settings
    _warn_insecure_hashing()
    out.print(f"[bold]countylab[/] → [link]http://{s.host}:{s.port}[/]  (Ctrl-C to stop)")
    app_ = create_app(lab, demo_logins=demo_logins, background=True)
    with _recorded(s):
        uvicorn.run(app_, host=s.host, port=s.port, log_level="warning")


def _warn_insecure_hashing() -> None:
    from countylab.identity.secrets import INSECURE_TEST_HASHING_ENV, insecure_test_hashing

    if insecure_test_hashing():
        err.print(
            f"[bold red]警告 / WARNING[/]: {INSECURE_TEST_HASHING_ENV}=1 — "
            "新密码以仅供测试的最低强度哈希保存 / "
            "new passwords get the test-only, weakest hash. Never use it for a real county."
        )


@contextmanager
def _recorded(s: Settings) -> Iterator[None]:
    """While serving, the per-user state file names this lab, so `countylab datasets list` in
    another shell reaches this port without --url (:mod:`countylab.commands.local_state`)."""
    from countylab.commands.local_state import forget_server, record_server

    try:
        record_server(s.host, s.port, s.data_dir)
    except OSError as exc:  # a read-only home must not stop the lab
        err.print(f"note: could not record the running lab ({exc}) / 未能记录运行中的实验室")
    try:
        yield
    finally:
        forget_server()


def _run_workers(lab, workers: int, **args: object) -> None:  # type: ignore[no-untyped-def]
    """N uvicorn worker processes, each building its own lab from the same arguments.

    The parent only checked the lab; it closes it before forking workers so no connection or
    thread is inherited.  Background singletons run in whichever worker wins the election.
    """
    import os

    import uvicorn

    from countylab.web.workers import ARGS_VARIABLE, encode_args

    s = lab.settings
    _warn_insecure_hashing()
    lab.close()
    os.environ[ARGS_VARIABLE] = encode_args({k: v for k, v in args.items() if v is not None})
    out.print(f"[bold]countylab[/] → [link]http://{s.host}:{s.port}[/]  ({workers} workers; Ctrl-C to stop)")
    with _recorded(s):
        uvicorn.run(
            "countylab.web.workers:app_from_environment",
            factory=True,
            host=s.host,
            port=s.port,
            workers=workers,
            log_level="warning",
        )


@app.command()
def demo(
    data_dir: DataDir = None,
    config: Config = None,
    size: Annotated[str, typer.Option(help="Demo county size: tiny, small or full.")] = "full",
    seed: Annotated[int, typer.Option(help="Random seed of the demo county.")] = 20261126,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Prepare the demo lab, do not serve.")] = False,
) -> None:
    """Generate the demo county (first run only), set up the demo lab and serve it."""
    from countylab.bootstrap import DEMO_PASSWORD, setup_demo

    if size not in ("tiny", "small", "full"):
        raise typer.BadParameter(f"size must be tiny, small or full, not {size!r}", param_hint="--size")
    settings = _settings(data_dir, config, host=host, port=port, county_name="青禾县")
    lab = _lab(settings, must_exist=False)
    report = setup_demo(lab, size=size, seed=seed, progress=lambda msg: out.print(f"  • {msg}"))
    table = Table(title="演示账号 / demo logins (password: " + DEMO_PASSWORD + ")")
    table.add_column("role 角色")
    table.add_column("username 用户名")
    for login in report.logins:
        table.add_row(login["role"], login["username"])
    out.print(table)
    out.print(f"URL: http://{settings.host}:{settings.port}")
    out.print(
        "命令行 CLI: countylab login -u developer   →   countylab datasets list",
        markup=False,
        highlight=False,
    )
    if not no_serve:
        from countylab.demolab import LiveFeeds

        feeds = LiveFeeds(lab)
        lab.register_background("demo-feeds", feeds.start, feeds.stop)
        out.print(
            "live traffic and air-quality feeds push a new hour every 5 s / 交通与空气质量数据实时推送中"
        )
        _run_server(lab, report.logins)


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name (a-z, 0-9, _ . -).")],
    role: Annotated[list[str], typer.Option("--role", "-r", help="Role; repeat for several.")],
    password: Annotated[str | None, typer.Option(help="Password (prompted when omitted).")] = None,
    display_name: Annotated[str, typer.Option(help="Display name.")] = "",
    org: Annotated[str | None, typer.Option(help="Organisation name.")] = None,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Add a user with one or more roles."""
    from sqlalchemy import select

    from countylab.errors import NotFound
    from countylab.identity import service as ids
    from countylab.identity.access import cli_principal
    from countylab.storage.models import Org

    lab = _lab(_settings(data_dir, config))
    if password is None:
        password = typer.prompt("Password / 密码", hide_input=True, confirmation_prompt=True)
    with lab.tx() as s:
        org_id = None
        if org:
            found = s.execute(select(Org).where(Org.name == org)).scalar_one_or_none()
            if found is None:
                raise NotFound(f"单位“{org}”不存在", f"Organisation '{org}' not found")
            org_id = found.id
        user = ids.create_user(
            s,
            cli_principal(),
            username=username,
            password=password or "",
            display_name=display_name,
            roles=role,
            org_id=org_id,
        )
        out.print(
            f"[green]✔[/] user {user.username} (id {user.id}) roles: {', '.join(sorted(user.role_names))}"
        )


@user_app.command("deactivate")
def user_deactivate(
    username: Annotated[str, typer.Argument(help="Whose account.")],
    keep_tokens: Annotated[
        bool, typer.Option("--keep-tokens", help="Keep (do not revoke) the user's API tokens.")
    ] = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Deactivate a user: their web sessions end at once; their API tokens are revoked unless
    --keep-tokens (kept tokens stay refused while the user is deactivated)."""
    from countylab.identity import service as ids
    from countylab.identity.access import cli_principal

    lab = _lab(_settings(data_dir, config))
    with lab.tx() as s:
        user = ids.set_active(
            s, cli_principal(), ids.find_user(s, username).id, False, revoke_tokens=not keep_tokens
        )
        out.print(f"[green]✔[/] user {user.username} deactivated")


@user_app.command("activate")
def user_activate(
    username: Annotated[str, typer.Argument(help="Whose account.")],
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Activate a deactivated user again."""
    from countylab.identity import service as ids
    from countylab.identity.access import cli_principal

    lab = _lab(_settings(data_dir, config))
    with lab.tx() as s:
        user = ids.set_active(s, cli_principal(), ids.find_user(s, username).id, True)
        out.print(f"[green]✔[/] user {user.username} activated")


@user_app.command("password")
def user_password(
    username: Annotated[str, typer.Argument(help="Whose password.")],
    password: Annotated[str | None, typer.Option(help="New password (prompted when omitted).")] = None,
    revoke_tokens: Annotated[
        bool, typer.Option("--revoke-tokens", help="Also revoke all of the user's API tokens.")
    ] = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Set a user's password; all their web sessions end (and, with --revoke-tokens, their tokens)."""
    from countylab.identity import service as ids
    from countylab.identity.access import cli_principal

    lab = _lab(_settings(data_dir, config))
    if password is None:
        password = typer.prompt("New password / 新密码", hide_input=True, confirmation_prompt=True)
    with lab.tx() as s:
        ended = ids.reset_password(
            s, cli_principal(), ids.find_user(s, username).id, new=password or "", revoke_tokens=revoke_tokens
        )
    out.print(
        f"[green]✔[/] password of {username} set; sessions ended: {ended['sessions_ended']}"
        + (f", tokens revoked: {ended['tokens_revoked']}" if "tokens_revoked" in ended else "")
    )


@user_app.command("unlock")
def user_unlock(
    username: Annotated[str | None, typer.Argument(help="Account to unlock.")] = None,
    address: Annotated[str | None, typer.Option(help="Client address to unlock as well.")] = None,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Clear the failed-login counters and lock of an account and/or a client address."""
    from countylab.identity.access import cli_principal
    from countylab.identity.login import unlock

    if not username and not address:
        raise UserError("请指定用户名或 --address", "Name an account or an --address")
    lab = _lab(_settings(data_dir, config))
    with lab.tx() as s:
        cleared = unlock(s, cli_principal(), username=username, address=address)
    out.print(f"[green]✔[/] unlocked ({cleared} counter(s) cleared)")


@token_app.command("create")
def token_create(
    username: Annotated[str, typer.Argument(help="Whose token.")],
    name: Annotated[str, typer.Option(help="A label for the token.")] = "cli",
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days until it expires.")] = 90,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """Create an API token for a user; it is printed once and stored only as a hash."""
    from sqlalchemy import select

    from countylab.errors import NotFound
    from countylab.identity import service as ids
    from countylab.identity.access import cli_principal
    from countylab.storage.models import User

    lab = _lab(_settings(data_dir, config))
    with lab.tx() as s:
        user = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            raise NotFound(f"用户“{username}”不存在", f"User '{username}' not found")
        issued = ids.create_token(s, cli_principal(), user_id=user.id, name=name, days=days)
    err.print(f"token for {username} (expires {issued.expires_at:%Y-%m-%d}); shown once:")
    print(issued.token)


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDir = None,
    config: Config = None,
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="Trusted Ed25519 public key (hex) of the checkpoints.")
    ] = None,
    witness_dir: Annotated[
        Path | None, typer.Option("--witness-dir", help="Witness folder (default: audit_witness_dir).")
    ] = None,
) -> None:
    """Check the hash chain against the signed checkpoints; name each failed check (exit 1) or OK."""
    from countylab.audit.verifier import verify_configured

    settings = _settings(data_dir, config)
    lab = _lab(settings)
    try:
        with lab.read() as s:
            verdict = verify_configured(s, settings, public_key=public_key or "", witness_dir=witness_dir)
    finally:
        lab.close()
    for note in verdict.notes:
        err.print(f"note: {note.en} / {note.zh}", markup=False, highlight=False)
    if verdict.ok:
        last = verdict.last
        at = f" (last at event {last.event_id})" if last else ""
        signed = f", {verdict.checkpoints} signed checkpoints{at}"
        out.print(f"[green]✔ audit chain intact[/]: {verdict.events} events{signed} / 审计链完整")
        return
    shown = verdict.findings[:20]
    for f in shown:
        err.print(f"✘ [{f.check}] {f.en} / {f.zh}", markup=False, highlight=False, soft_wrap=True)
    if len(verdict.findings) > len(shown):
        more = len(verdict.findings) - len(shown)
        err.print(f"… and {more} more / 另有 {more} 处")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(data_dir: DataDir = None, config: Config = None) -> None:
    """Sign the audit chain head into the witness now (skipped when the newest checkpoint has it)."""
    from countylab.audit.checkpoints import CheckpointService

    settings = _settings(data_dir, config)
    lab = _lab(settings)
    try:
        service = CheckpointService.from_settings(settings, lab.read_sessions)
        checkpoint, wrote = service.run_once()
    finally:
        lab.close()
    verb = "signed" if wrote else "already signed"
    out.print(
        f"checkpoint {checkpoint.seq} {verb}: event {checkpoint.event_id}, head {checkpoint.head} "
        f"/ 检查点 {checkpoint.seq}：第 {checkpoint.event_id} 号事件"
    )
    print(checkpoint.line())


@audit_app.command("public-key")
def audit_public_key(data_dir: DataDir = None, config: Config = None) -> None:
    """Print the checkpoints' public key (hex) to pin in audit_public_key; signs a first checkpoint."""
    from countylab.audit import checkpoints, keys

    settings = _settings(data_dir, config)
    lab = _lab(settings)
    try:
        checkpoints.CheckpointService.from_settings(settings, lab.read_sessions).run_once()
    finally:
        lab.close()
    print(keys.public_hex(keys.load_or_create(checkpoints.key_path(settings)).public_key()))


@audit_app.command("grant-app-role")
def audit_grant_app_role(
    role: Annotated[str, typer.Argument(help="PostgreSQL role the server connects as.")],
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """PostgreSQL: give ROLE the rights to run the lab (DML, append-only audit), no DDL; run as owner."""
    from countylab.storage.roles import grant_app_role

    settings = _settings(data_dir, config)
    grant_app_role(settings, role)
    out.print(f"granted app role '{role}' DML rights, no DDL / 已授予应用角色“{role}”数据读写权限（无 DDL）")


# plural spellings people type (`countylab datasets list`): the same commands, not new ones
ALIASES = {"datasets": "dataset", "jobs": "job", "releases": "release", "models": "model"}


def main(argv: list[str] | None = None) -> int:
    """Console entry: one-line errors, exit codes 0 ok, 1 lab error, 2 usage error."""
    lang = "en" if any(v.startswith("en") for v in (_env_lang(),)) else "zh-CN"
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ALIASES:
        args[0] = ALIASES[args[0]]
    try:
        rv = app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err.print("aborted / 已取消")
        return 130
    except _USAGE_ERRORS as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `countylab` or `countylab user`: show help
            out.print(exc.format_message(), markup=False, highlight=False, soft_wrap=True)
            return 2
        ctx = getattr(exc, "ctx", None)
        hint = f" (try: {ctx.command_path} --help)" if ctx else ""
        err.print(f"error: {exc.format_message()}{hint}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except CountylabError as exc:
        err.print(f"error: {exc.message(lang)}", markup=False, highlight=False, soft_wrap=True)
        return 1
    except CountylabClientError as exc:  # remote commands: the server's message, one line
        err.print(f"error: {exc.message}", markup=False, highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return rv if isinstance(rv, int) else 0


def _env_lang() -> str:
    import os

    return os.environ.get("COUNTYLAB_LANG", "") or os.environ.get("LANG", "")


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
