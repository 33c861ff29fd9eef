"""PDF attachments of an application (附件): real PDFs only, stored under the lab's data folder.

A file is accepted when it starts with ``%PDF-`` *and* pdfium opens it and counts its pages: a
renamed Word file or a truncated download is refused with the reason.  The file is stored by its
sha256 under ``<data>/applications/<id>/`` (never by the name the user gave), and the hash is
recorded so the agreement and the audit log can name exactly what was submitted.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.audit import log as audit
from countylab.errors import NotFound, TooLarge, ValidationFailed
from countylab.identity.access import Principal
from countylab.operations import applications
from countylab.storage.models import utcnow
from countylab.storage.operations_models import Application, ApplicationAttachment

#: the largest attachment accepted
MAX_BYTES = 20 * 1024 * 1024
MAX_PER_APPLICATION = 20


def page_count(content: bytes) -> int:
    """Pages of a PDF, or ValidationFailed saying why it is not one."""
    if not content.startswith(b"%PDF-"):
        raise ValidationFailed(
            "附件不是 PDF 文件（文件头不是 %PDF-）",
            "The attachment is not a PDF (it does not start with %PDF-)",
            field="file",
        )
    import pypdfium2

    try:
        doc = pypdfium2.PdfDocument(content)
    except pypdfium2.PdfiumError as exc:
        raise ValidationFailed(
            f"PDF 文件已损坏，无法打开：{exc}", f"The PDF is broken and cannot be opened: {exc}", field="file"
        ) from None
    try:
        pages = len(doc)
    finally:
        doc.close()
    if pages < 1:
        raise ValidationFailed("PDF 文件没有页面", "The PDF has no pages", field="file")
    return pages


def _safe_name(filename: str) -> str:
    name = os.path.basename(filename.replace("\\", "/")).strip() or "attachment.pdf"
    name = "".join(ch for ch in name if ch.isprintable())[:200]
    return name if name.lower().endswith(".pdf") else f"{name}.pdf"


def attach(
    session: Session,
    actor: Principal,
    application_id: int,
    *,
    filename: str,
    content: bytes,
    data_dir: Path,
) -> ApplicationAttachment:
    """Store a PDF attachment on an editable application; the file is written before the row
    and removed again if the transaction fails to flush."""
    app = applications._editable(session, actor, application_id)
    applications._require_editable(app)
    if len(content) > MAX_BYTES:
        raise TooLarge(
            f"附件超过 {MAX_BYTES // 1024 // 1024} MB",
            f"The attachment is over {MAX_BYTES // 1024 // 1024} MB",
            field="file",
        )
    pages = page_count(content)
    count = len(list_for(session, app.id))
    if count >= MAX_PER_APPLICATION:
        raise ValidationFailed(
            f"每份申请最多 {MAX_PER_APPLICATION} 个附件",
            f"At most {MAX_PER_APPLICATION} attachments",
            field="file",
        )
    sha = hashlib.sha256(content).hexdigest()
    rel = Path("applications") / str(app.id) / f"{sha}.pdf"
    path = data_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    if not existed:
        tmp = path.with_suffix(".part")
        tmp.write_bytes(content)
        tmp.replace(path)
    att = ApplicationAttachment(
        application_id=app.id,
        filename=_safe_name(filename),
        sha256=sha,
        size=len(content),
        stored_as=rel.as_posix(),
        uploaded_by=actor.user_id,
        uploaded_at=utcnow(),
    )
    try:
        session.add(att)
        session.flush()
    except Exception:
        if not existed:
            path.unlink(missing_ok=True)
        raise
    app.version += 1
    app.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "application.attach",
        f"application:{app.id}",
        number=app.number,
        filename=att.filename,
        sha256=sha,
        size=len(content),
        pages=pages,
    )
    return att


def remove(session: Session, actor: Principal, application_id: int, attachment_id: int) -> None:
    """Take an attachment off an editable application (the file stays: another row may share it)."""
    app = applications._editable(session, actor, application_id)
    applications._require_editable(app)
    att = session.get(ApplicationAttachment, attachment_id)
    if att is None or att.application_id != app.id:
        raise NotFound(f"附件 #{attachment_id} 不存在", f"Attachment #{attachment_id} not found")
    session.delete(att)
    app.version += 1
    session.flush()
    audit.record(
        session, actor, "application.detach", f"application:{app.id}", number=app.number, sha256=att.sha256
    )


def list_for(session: Session, application_id: int) -> list[ApplicationAttachment]:
    return list(
        session.execute(
            select(ApplicationAttachment)
            .where(ApplicationAttachment.application_id == application_id)
            .order_by(ApplicationAttachment.id)
        ).scalars()
    )


def open_for(
    session: Session, actor: Principal, application_id: int, attachment_id: int, data_dir: Path
) -> tuple[Application, ApplicationAttachment, Path]:
    """The attachment's file for a reader of the application (others: PermissionDenied)."""
    app = applications.get(session, actor, application_id)
    att = session.get(ApplicationAttachment, attachment_id)
    if att is None or att.application_id != app.id:
        raise NotFound(f"附件 #{attachment_id} 不存在", f"Attachment #{attachment_id} not found")
    path = (data_dir / att.stored_as).resolve()
    if not path.is_relative_to(data_dir.resolve()) or not path.is_file():
        raise NotFound("附件文件缺失", "The attachment's file is missing")
    return app, att, path


def record_download(
    session: Session, actor: Principal, application_id: int, att: ApplicationAttachment, *, via: str
) -> None:
    """Who read which attachment (its name and hash), from the page or the API: audited."""
    audit.record(
        session,
        actor,
        "application.attachment.download",
        f"application:{application_id}",
        attachment_id=att.id,
        filename=att.filename,
        sha256=att.sha256,
        via=via,
    )
