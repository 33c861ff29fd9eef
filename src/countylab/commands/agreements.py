"""``countylab agreement …`` and ``countylab authorisation …``: agreements (授权协议) and
authorisations (授权备案) over the API: show, draft, download, sign (password asked again; the
hash of the PDF you downloaded is what you sign), attach a stamped copy; list, show, suspend,
resume and revoke authorisations."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from countylab.commands.remote import Token, Url, client, out

agreement_app = typer.Typer(
    help="Agreements (授权协议): draft, download, sign, attach.", no_args_is_help=True
)
authorisation_app = typer.Typer(
    help="Authorisations (授权备案): list, show, suspend, resume, revoke.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
AppId = Annotated[int, typer.Argument(help="Application id (用数申请).")]
AgrId = Annotated[int, typer.Argument(help="Agreement id (one version).")]
AuthId = Annotated[int, typer.Argument(help="Authorisation id.")]
Reason = Annotated[str, typer.Option("--reason", help="Why (required; shown to the project and disclosed).")]


def register(app: typer.Typer) -> None:
    app.add_typer(agreement_app, name="agreement")
    app.add_typer(authorisation_app, name="authorisation")


def _json(value: Any) -> None:
    out.print_json(json.dumps(value, ensure_ascii=False, default=str))


def _show(a: dict[str, Any]) -> None:
    out.print(f"[bold]{a['number']}[/] 第 {a['version']} 版 · {a['status']} · SHA-256 {a['sha256']}")
    for sgn in a["signatures"]:
        out.print(f"  ✔ {sgn['party']}: {sgn['signer']} {sgn['signed_at'][:16].replace('T', ' ')}")
    for party in a["waiting_for"]:
        out.print(f"  … waiting for 待签署: {party}")
    auth = a.get("authorisation")
    if auth:
        out.print(
            f"  authorisation 授权 {auth['id']}: project {auth['project_slug']} "
            f"{auth['status']} → {auth['ends_on']}"
        )


@agreement_app.command("show")
def show(application: AppId, as_json: JsonOpt = False, url: Url = None, token: Token = None) -> None:
    """The application's newest agreement, its signatures and the authorisation."""
    with client(url, token) as c:
        a = c.agreement_of(application)
    _json(a) if as_json else _show(a)


@agreement_app.command("draft")
def draft(
    application: AppId,
    extra_clauses: Annotated[str, typer.Option("--extra", help="Extra clauses (补充条款).")] = "",
    replace_signed: Annotated[
        bool, typer.Option("--replace-signed", help="A party has signed: make a new version anyway.")
    ] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Operator: draft the agreement of an approved application (a redraft is version n+1)."""
    with client(url, token) as c:
        a = c.draft_agreement(application, extra_clauses=extra_clauses, replace_signed=replace_signed)
    out.print(f"[green]✔[/] agreement 协议 {a['id']}: {a['number']} (SHA-256 {a['sha256']})")


@agreement_app.command("download")
def download(
    agreement: AgrId,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to save the PDF.")] = Path(
        "agreement.pdf"
    ),
    url: Url = None,
    token: Token = None,
) -> None:
    """Save the agreement's PDF (the exact bytes that are signed) and print its SHA-256."""
    with client(url, token) as c:
        digest = c.download_agreement(agreement, output)
    out.print(f"[green]✔[/] {output} SHA-256 {digest}")


@agreement_app.command("sign")
def sign(
    agreement: AgrId,
    pdf: Annotated[
        Path | None,
        typer.Option("--pdf", help="The PDF you read (its SHA-256 is signed); default: download now."),
    ] = None,
    password: Annotated[
        str,
        typer.Option("--password", prompt="密码 / password", hide_input=True, help="Your password, again."),
    ] = "",
    url: Url = None,
    token: Token = None,
) -> None:
    """Sign as your party (the applicant organisation's signer or the platform's operator)."""
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest() if pdf is not None else None
    with client(url, token) as c:
        r = c.sign_agreement(agreement, password, sha256=digest)
    if r["complete"]:
        out.print(
            f"[green]✔[/] signed 已签署 ({r['party']}); "
            f"authorisation 授权 {r['authorisation_id']} in force 已生效"
        )
    else:
        out.print(f"[green]✔[/] signed 已签署 ({r['party']}); waiting for the other party 等待另一方签署")


@agreement_app.command("attach")
def attach(
    agreement: AgrId,
    file: Annotated[Path, typer.Argument(help="Scanned, stamped copy (PDF, PNG or JPEG).", exists=True)],
    url: Url = None,
    token: Token = None,
) -> None:
    """Keep a scanned, stamped copy with its SHA-256."""
    with client(url, token) as c:
        r = c.attach_agreement_scan(agreement, file)
    out.print(f"[green]✔[/] {r['filename']} SHA-256 {r['sha256']}")


@authorisation_app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="active | suspended | revoked | expired")] = None,
    as_json: JsonOpt = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Authorisations with organisation, scenario, datasets, channels and term."""
    with client(url, token) as c:
        items = c.authorisations(status)
    if as_json:
        _json(items)
        return
    table = Table(
        "id", "org 单位", "scenario 场景", "project 项目", "channels 方式", "term 期限", "status 状态"
    )
    for a in items:
        table.add_row(
            str(a["id"]),
            a["org_name"],
            a["scenario_title"],
            a["project_slug"],
            ",".join(a["channels"]),
            f"{a['starts_on']} → {a['ends_on']}",
            a["status_label"],
        )
    out.print(table)


@authorisation_app.command("show")
def show_authorisation(authorisation: AuthId, url: Url = None, token: Token = None) -> None:
    """One authorisation with its datasets (columns, channels) and events."""
    with client(url, token) as c:
        _json(c.authorisation(authorisation))


def _change(authorisation: int, action: str, reason: str, url: str | None, token: str | None) -> None:
    with client(url, token) as c:
        a = c.change_authorisation(authorisation, action, reason)
    out.print(f"[green]✔[/] authorisation 授权 {a['id']}: {a['status_label']}")


@authorisation_app.command("suspend")
def suspend(authorisation: AuthId, reason: Reason, url: Url = None, token: Token = None) -> None:
    """Steward: suspend at once (reversible); the project's jobs stop."""
    _change(authorisation, "suspend", reason, url, token)


@authorisation_app.command("resume")
def resume(authorisation: AuthId, reason: Reason, url: Url = None, token: Token = None) -> None:
    """Steward: resume a suspended authorisation."""
    _change(authorisation, "resume", reason, url, token)


@authorisation_app.command("revoke")
def revoke(authorisation: AuthId, reason: Reason, url: Url = None, token: Token = None) -> None:
    """Steward: revoke for good; the project's jobs stop."""
    _change(authorisation, "revoke", reason, url, token)
