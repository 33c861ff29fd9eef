"""Agreements (授权协议): drafted from the approved terms, printed as a PDF, signed by both parties.

Why the PDF bytes are the record: a signature means "I agree to *this* document", so each
signature stores the SHA-256 of the exact bytes the signer was shown, and the bytes of a version
never change.  A redraft is a new version (the old one stays readable, ``superseded``); once a
party has signed, a redraft must say so explicitly (``replace_signed``) and every signature is
asked again.  When the second signature lands the authorisation takes effect in the same
transaction (:func:`countylab.operations.authorisations.take_effect`), so there is never a
signed agreement without its project, nor a project without its agreement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from countylab import audit, notify
from countylab.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission, Role
from countylab.labels import label
from countylab.operations import agreement_terms as at
from countylab.operations.states import ApplicationStatus, move
from countylab.operations.terms import ApprovedTerms
from countylab.storage.authorisation_models import Agreement, AgreementAttachment, AgreementSignature
from countylab.storage.models import Dataset, Org, User, utcnow
from countylab.storage.operations_models import Application, ApplicationMember, Scenario

TITLE = "公共数据授权运营协议"
PARTIES = ("applicant", "platform")
PARTY_ZH = {"applicant": "乙方（申请单位）", "platform": "甲方（平台）"}
MAX_ATTACHMENT = 20 << 20
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True, undefined=jinja2.StrictUndefined
)
_DEFAULT_OBLIGATIONS = (
    "只在实验室内使用授权数据，不复制、不导出、不尝试识别个人；",
    "只为本协议所列场景和用途使用数据；",
    "成员变动、安全事件及时报告平台运营方；",
    "配合审计与检查，授权终止后不再使用任何数据或衍生结果。",
)


@dataclass(frozen=True)
class PasswordConfirmed:
    """Proof that the signer typed their password just now (see :mod:`countylab.operations.reauth`)."""

    user_id: int


# -- reading ---------------------------------------------------------------------------------------
def application(session: Session, application_id: int, *, lock: bool = False) -> Application:
    q = select(Application).where(Application.id == application_id)
    app = session.execute(q.with_for_update() if lock else q).scalar_one_or_none()
    if app is None:
        raise NotFound(f"申请 {application_id} 不存在", f"Application {application_id} not found")
    return app


def versions(session: Session, application_id: int) -> list[Agreement]:
    q = select(Agreement).where(Agreement.application_id == application_id).order_by(Agreement.version)
    return list(session.execute(q).scalars())


def current(session: Session, application_id: int) -> Agreement | None:
    found = versions(session, application_id)
    return found[-1] if found else None


def get(session: Session, agreement_id: int, *, lock: bool = False) -> Agreement:
    q = select(Agreement).where(Agreement.id == agreement_id)
    agreement = session.execute(q.with_for_update() if lock else q).scalar_one_or_none()
    if agreement is None:
        raise NotFound(f"协议 {agreement_id} 不存在", f"Agreement {agreement_id} not found")
    return agreement


def signatures(session: Session, agreement_id: int) -> list[AgreementSignature]:
    q = select(AgreementSignature).where(AgreementSignature.agreement_id == agreement_id)
    return list(session.execute(q.order_by(AgreementSignature.signed_at)).scalars())


def attachments(session: Session, agreement_id: int) -> list[AgreementAttachment]:
    q = select(AgreementAttachment).where(AgreementAttachment.agreement_id == agreement_id)
    return list(session.execute(q.order_by(AgreementAttachment.id)).scalars())


def may_read(session: Session, actor: Principal, app: Application) -> bool:
    """The two parties (the applying organisation's team, the platform's operators) and oversight."""
    if actor.is_system or actor.roles & {Role.operator, Role.admin, Role.steward, Role.leader}:
        return True
    if actor.user_id == app.applicant_id:
        return True
    member = session.get(ApplicationMember, (app.id, actor.user_id or 0))
    return member is not None


def require_read(session: Session, actor: Principal, app: Application) -> None:
    if not may_read(session, actor, app):
        raise PermissionDenied(
            "没有权限：只有协议双方和监管角色可以查看协议",
            "Permission denied: only the two parties and oversight roles see an agreement",
            permission=Permission.agreement_sign.value,
            target=f"application:{app.id}",
            reason="agreement_party",
        )


# -- drafting --------------------------------------------------------------------------------------
def platform_org(session: Session) -> Org:
    org = session.execute(select(Org).where(Org.kind == "platform").order_by(Org.id)).scalars().first()
    if org is None:
        raise Conflict(
            "实验室还没有平台单位（类型 platform），无法生成协议",
            "The lab has no platform organisation (kind platform): an agreement needs one",
        )
    return org


def render(session: Session, terms: ApprovedTerms, *, number: str, version: int, extra: str) -> bytes:
    from countylab.pdf import render_pdf

    app = application(session, terms.application_id)
    scenario = session.get(Scenario, terms.scenario_id)
    applicant_org = session.get(Org, terms.org_id)
    rows = []
    for d in terms.datasets:
        ds = session.get(Dataset, d.dataset_id)
        if ds is None:
            raise NotFound(f"数据集 {d.dataset_id} 不存在", f"Dataset {d.dataset_id} not found")
        budget = (
            "—"
            if d.epsilon is None
            else f"ε {d.epsilon:g}" + ("" if d.delta is None else f" / δ {d.delta:g}")
        )
        rows.append(
            {
                "title": ds.title,
                "name": ds.name,
                "grade": label("grade", ds.grade),
                "columns": "全部字段" if d.columns is None else "、".join(d.columns),
                "budget": budget,
            }
        )
    names = []
    for uid in terms.member_ids:
        user = session.get(User, uid)
        names.append(f"{user.display_name}（{user.username}）" if user else f"#{uid}")
    q = terms.quota
    quota = (
        "按实验室默认配额"
        if q is None
        else f"单作业最多 CPU {q.max_cpu:g} 核、内存 {q.max_memory_mb} MB、时长 {q.max_time_s} 秒；"
        f"每 {q.period_days} 天 CPU 秒数 {'不限' if q.cpu_seconds is None else f'{q.cpu_seconds:g}'}；"
        f"同时运行 {q.concurrent_jobs} 个作业"
    )
    promised = app.commitments or {}
    items = promised.get("items") if isinstance(promised, dict) else None
    from countylab.operations.applications import COMMITMENTS  # the applicant's 承诺书, in words

    commitments = (
        [COMMITMENTS[str(c)][0] if str(c) in COMMITMENTS else str(c) for c in items]
        if isinstance(items, list) and items
        else list(_DEFAULT_OBLIGATIONS)
    )
    html = _ENV.get_template("agreement_pdf.html").render(
        title=TITLE,
        number=number,
        version=version,
        terms=at.to_json(terms),
        platform_org=platform_org(session).name,
        applicant_org=applicant_org.name if applicant_org else f"#{terms.org_id}",
        scenario_title=scenario.title if scenario else f"#{terms.scenario_id}",
        application_title=app.title,
        purpose=at.PURPOSE_ZH.get(terms.purpose, terms.purpose),
        datasets=rows,
        channels=at.channels_zh([c.value for c in terms.channels]),
        quota=quota,
        members="、".join(names),
        commitments=commitments,
        extra_clauses=extra,
        drafted_on=utcnow().date().isoformat(),
    )
    return render_pdf(html)


def draft(
    session: Session,
    actor: Principal,
    application_id: int,
    *,
    terms: ApprovedTerms | None = None,
    extra_clauses: str = "",
    replace_signed: bool = False,
    now: datetime | None = None,
) -> Agreement:
    """Draft (or redraft) the agreement of an ``approved`` application: version n+1."""
    authorize(actor, Permission.agreement_manage, target=f"application:{application_id}")
    app = application(session, application_id, lock=True)
    status = ApplicationStatus(app.status)
    if status is ApplicationStatus.authorised:
        raise Conflict(
            f"申请 {app.number} 的协议已由双方签署并生效，不能再修改；变更请提出续期申请",
            f"The agreement of {app.number} is signed by both parties and in force; "
            "it cannot change (apply for a renewal instead)",
            reason="agreement_signed",
        )
    if status not in (ApplicationStatus.approved, ApplicationStatus.signing):
        raise Conflict(
            f"申请 {app.number} 尚未批准，不能起草协议",
            f"Application {app.number} is not approved: no agreement can be drafted yet",
            reason="not_approved",
        )
    previous = current(session, application_id)
    signed_one = (
        previous is not None and previous.status == "signing" and bool(signatures(session, previous.id))
    )
    if previous is not None and signed_one and not replace_signed:
        raise Conflict(
            f"协议第 {previous.version} 版已有一方签署，内容不能再改；"
            "如确需修改，请生成新版本（双方须重新签署）",
            f"Version {previous.version} is already signed by one party and cannot change; "
            "a change needs a new version, and then every signature again",
            reason="agreement_signed",
        )
    if terms is None:
        from countylab.operations.workflow import approved_terms  # engineer B's contract

        terms = approved_terms(session, application_id)
    if terms.application_id != application_id:
        raise ValidationFailed("条款不属于该申请", "The terms belong to another application")
    if len(extra_clauses) > 4000:
        raise ValidationFailed(
            "补充条款最多 4000 字", "Extra clauses: at most 4000 characters", field="extra_clauses"
        )
    version = (previous.version + 1) if previous else 1
    number = f"XY-{app.number}-v{version}"
    pdf = render(session, terms, number=number, version=version, extra=extra_clauses.strip())
    if previous is not None and previous.status == "signing":
        previous.status = "superseded"
    agreement = Agreement(
        application_id=application_id,
        version=version,
        number=number,
        status="signing",
        terms=at.to_json(terms),
        extra_clauses=extra_clauses.strip(),
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
        drafted_by=actor.user_id,
        drafted_at=now or utcnow(),
    )
    session.add(agreement)
    if status is ApplicationStatus.approved:
        move(session, app, ApplicationStatus.signing, now=now)
    session.flush()
    audit.record(
        session,
        actor,
        "agreement.draft",
        f"agreement:{agreement.id}",
        application_id=application_id,
        number=number,
        version=version,
        sha256=agreement.sha256,
    )
    notify.emit(
        session,
        "agreement.drafted",
        recipients=notify.to_users(app.applicant_id) | notify.to_roles(Role.operator.value),
        target=f"application:{application_id}",
        link=f"/agreements/{agreement.id}",
        actor_id=actor.user_id,
        number=app.number,
        version=version,
    )
    return agreement


# -- signing ---------------------------------------------------------------------------------------
def party_of(session: Session, actor: Principal, app: Application) -> str | None:
    """Which party ``actor`` may sign for: the applicant organisation's applicant or owner, or an
    operator of the platform organisation; None for anybody else."""
    if actor.user_id is None:
        return None
    if actor.org_id == app.org_id:
        owner = session.get(ApplicationMember, (app.id, actor.user_id))
        if actor.user_id == app.applicant_id or (owner is not None and owner.role == "owner"):
            return "applicant"
    if Role.operator in actor.roles and actor.org_id is not None:
        org = session.get(Org, actor.org_id)
        if org is not None and org.kind == "platform":
            return "platform"
    return None


@dataclass(frozen=True)
class Signed:
    agreement: Agreement
    signature: AgreementSignature
    complete: bool
    authorisation_id: int | None


def sign(
    session: Session,
    actor: Principal,
    agreement_id: int,
    *,
    sha256: str,
    confirmed: PasswordConfirmed,
    now: datetime,
) -> Signed:
    """Sign the current version as the actor's party; the second signature authorises."""
    authorize(actor, Permission.agreement_sign, target=f"agreement:{agreement_id}")
    if confirmed.user_id != actor.user_id:
        raise PermissionDenied(
            "签署须由本人输入密码确认", "Signing needs the signer's own password", reason="reauth"
        )
    agreement = get(session, agreement_id, lock=True)
    app = application(session, agreement.application_id, lock=True)
    target = f"agreement:{agreement_id}"
    party = party_of(session, actor, app)
    if party is None:
        raise PermissionDenied(
            f"您不是协议 {agreement.number} 的签署人：乙方由申请单位的申请人签署，甲方由平台运营方签署",
            f"You are not a signer of agreement {agreement.number}: the applicant organisation's "
            "applicant signs for it, an operator of the platform organisation for the platform",
            permission=Permission.agreement_sign.value,
            target=target,
            reason="wrong_signer",
        )
    if agreement.status == "superseded":
        newest = current(session, app.id)
        raise Conflict(
            f"协议第 {agreement.version} 版已被第 {newest.version if newest else '?'} 版取代，请签署最新版本",
            f"Version {agreement.version} was replaced by version {newest.version if newest else '?'}: "
            "sign the newest version",
            reason="outdated_version",
        )
    if agreement.status != "signing":
        raise Conflict(
            f"协议 {agreement.number} 已签署完毕", f"Agreement {agreement.number} is already signed"
        )
    if sha256.strip().lower() != agreement.sha256:
        raise Conflict(
            "您确认的文件与当前协议文本不一致（SHA-256 不符），请重新下载后再签署",
            "The document you confirmed is not the current agreement (SHA-256 differs): "
            "download it again and sign that",
            reason="hash_mismatch",
        )
    done = {s.party for s in signatures(session, agreement_id)}
    if party in done:
        raise Conflict(
            f"{PARTY_ZH[party]}已签署过协议 {agreement.number}，不能重复签署",
            f"The {party} party has already signed agreement {agreement.number}",
            reason="already_signed",
        )
    signature = AgreementSignature(
        agreement_id=agreement_id,
        party=party,
        user_id=actor.user_id,
        org_id=actor.org_id,
        sha256=agreement.sha256,
        signed_at=now,
    )
    session.add(signature)
    session.flush()
    audit.record(
        session,
        actor,
        "agreement.sign",
        target,
        party=party,
        number=agreement.number,
        version=agreement.version,
        sha256=agreement.sha256,
        application_id=app.id,
    )
    complete = done | {party} == set(PARTIES)
    authorisation_id = None
    if complete:
        from countylab.operations.authorisations import take_effect

        agreement.status, agreement.completed_at = "signed", now
        authorisation_id = take_effect(session, actor, agreement, now=now).id
    else:
        waiting = "platform" if party == "applicant" else "applicant"
        recipients = (
            notify.to_roles(Role.operator.value, org_id=platform_org(session).id)
            if waiting == "platform"
            else notify.to_users(app.applicant_id)
        )
        notify.emit(
            session,
            "agreement.signed_one",
            recipients=recipients,
            target=f"application:{app.id}",
            link=f"/agreements/{agreement_id}",
            actor_id=actor.user_id,
            number=app.number,
        )
    return Signed(agreement, signature, complete, authorisation_id)


# -- the stamped copy ------------------------------------------------------------------------------
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def attach(
    session: Session, actor: Principal, agreement_id: int, *, filename: str, content: bytes
) -> AgreementAttachment:
    """Keep a scanned, stamped copy (PDF, PNG or JPEG) with its SHA-256."""
    agreement = get(session, agreement_id)
    app = application(session, agreement.application_id)
    target = f"agreement:{agreement_id}"
    if not (actor.is_system or Role.operator in actor.roles or party_of(session, actor, app)):
        authorize(actor, Permission.agreement_manage, target=target)  # raises, with the words
    authorize(actor, Permission.agreement_sign, target=target)
    media = next((m for magic, m in _MAGIC if content.startswith(magic)), None)
    if media is None:
        raise ValidationFailed(
            "盖章扫描件须为 PDF、PNG 或 JPEG 文件",
            "The stamped copy must be a PDF, PNG or JPEG file",
            field="file",
            reason="file_type",
        )
    if not content or len(content) > MAX_ATTACHMENT:
        raise ValidationFailed("文件为空或超过 20 MB", "The file is empty or over 20 MB", field="file")
    name = Path(filename or "scan").name[:200] or "scan"
    row = AgreementAttachment(
        agreement_id=agreement_id,
        filename=name,
        media_type=media,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        content=content,
        uploaded_by=actor.user_id,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "agreement.attach", target, filename=name, sha256=row.sha256, size=row.size)
    return row


# -- views -----------------------------------------------------------------------------------------
def view(session: Session, agreement: Agreement) -> dict[str, Any]:
    sigs = signatures(session, agreement.id)
    users = {
        u.id: u for u in session.execute(select(User).where(User.id.in_([s.user_id for s in sigs]))).scalars()
    }
    return {
        "id": agreement.id,
        "application_id": agreement.application_id,
        "number": agreement.number,
        "version": agreement.version,
        "status": agreement.status,
        "sha256": agreement.sha256,
        "size": len(agreement.pdf),
        "drafted_at": agreement.drafted_at.isoformat(),
        "completed_at": agreement.completed_at.isoformat() if agreement.completed_at else None,
        "extra_clauses": agreement.extra_clauses,
        "terms": agreement.terms,
        "signatures": [
            {
                "party": s.party,
                "user_id": s.user_id,
                "signer": users[s.user_id].display_name if s.user_id in users else "",
                "sha256": s.sha256,
                "signed_at": s.signed_at.isoformat(),
            }
            for s in sigs
        ],
        "waiting_for": [p for p in PARTIES if p not in {s.party for s in sigs}]
        if agreement.status == "signing"
        else [],
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "sha256": a.sha256,
                "size": a.size,
                "media_type": a.media_type,
            }
            for a in attachments(session, agreement.id)
        ],
    }


def count_waiting(session: Session) -> int:
    return int(
        session.execute(select(func.count(Agreement.id)).where(Agreement.status == "signing")).scalar_one()
    )
