"""Plain-dict views of ORM rows for JSON responses (the client SDK parses exactly these)."""

from __future__ import annotations

from typing import Any

from countylab.audit.log import AuditRecord
from countylab.storage.models import ApiToken, Grant, Org, Project, User


def org(o: Org | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {"id": o.id, "name": o.name, "kind": o.kind}


def user(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "org": org(u.org),
        "roles": sorted(u.role_names),
        "lang": u.lang,
        "is_active": u.is_active,
    }


def project(p: Project, grants: list[Grant] | None = None) -> dict[str, Any]:
    return {
        "id": p.id,
        "slug": p.slug,
        "title": p.title,
        "description": p.description,
        "org_id": p.org_id,
        "status": p.status,
        "members": [{"user_id": m.user_id, "username": m.user.username, "role": m.role} for m in p.members],
        "datasets": [{"dataset_id": g.dataset_id, "name": g.dataset.name} for g in (grants or [])],
        "created_at": p.created_at.isoformat(),
    }


def token(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "prefix": t.prefix,
        "created_at": t.created_at.isoformat(),
        "expires_at": t.expires_at.isoformat() if t.expires_at else None,
        "revoked": t.revoked_at is not None,
    }


def audit_event(e: AuditRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "ts": e.ts,
        "actor": e.actor,
        "actor_id": e.actor_id,
        "action": e.action,
        "target": e.target,
        "outcome": e.outcome,
        "details": e.details,
        "hash": e.hash,
    }
