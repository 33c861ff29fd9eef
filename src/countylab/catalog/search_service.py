"""Catalog search over the metadata database: the documents of datasets, and synonym groups.

:mod:`countylab.catalog.search` knows nothing of the database; this module turns datasets, their
columns and departments into search documents, and keeps the stewards' synonym groups (audited,
permission ``dataset.grade``, which admins also pass here: they run the catalog's vocabulary too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.catalog import search as engine
from countylab.catalog import segment
from countylab.catalog.synonyms import Thesaurus, clean_group, thesaurus
from countylab.errors import NotFound
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission, Role
from countylab.storage.catalog_models import DatasetColumn
from countylab.storage.models import Dataset, utcnow
from countylab.storage.search_models import SynonymGroup

if TYPE_CHECKING:
    from countylab.catalog.service import Filters


def document(d: Dataset, columns: Sequence[DatasetColumn], department: str) -> engine.Document:
    """A dataset as search fields: title, identifier, tags, department, description, and one
    field per column (name, Chinese title, semantic and PII kind, tags) so a hit can say which."""
    fields = [
        engine.Field("title", d.title or "", d.title or ""),
        engine.Field("name", d.name, d.name),
        engine.Field("tags", " ".join(d.tags or []), "、".join(d.tags or [])),
        # "县民政局" also as "民政局": people name departments without the county
        engine.Field("department", f"{department} {department.removeprefix('县')}", department),
        engine.Field("description", d.description or "", ""),
    ]
    for c in columns:
        extra = [c.semantic or "", c.pii_kind or "", *(c.tags or [])]
        label = f"{c.title}（{c.name}）" if c.title else c.name
        text = " ".join(dict.fromkeys(x for x in [c.title or "", c.name, *extra] if x))
        fields.append(engine.Field("column", text, label))
    return engine.Document(d.id, tuple(fields))


def rank(session: Session, found: Sequence[Dataset], q: str) -> list[tuple[Dataset, engine.Hit]]:
    """``found`` (already filtered by department, grade, tag) ranked for the query ``q``."""
    cols: dict[int, list[DatasetColumn]] = {}
    if found:
        rows = session.execute(
            select(DatasetColumn)
            .where(DatasetColumn.dataset_id.in_([d.id for d in found]))
            .order_by(DatasetColumn.dataset_id, DatasetColumn.position)
        ).scalars()
        for c in rows:
            cols.setdefault(c.dataset_id, []).append(c)
    docs = [document(d, cols.get(d.id, []), d.org.name if d.org else "") for d in found]
    by_id = {d.id: d for d in found}
    groups = [list(g.words) for g in list_groups(session)]
    hits = engine.cached_index(docs, groups).search(q)
    return [(by_id[h.id], h) for h in hits]


def search(session: Session, filters: Filters) -> list[tuple[Dataset, engine.Hit]]:
    """The catalog's filtered, ranked datasets with why each matched (the catalog page's view)."""
    from countylab.catalog import service as catalog  # the catalog imports this module

    found = catalog.search_datasets(session, dataclasses.replace(filters, q=""))
    if not filters.q.strip():
        segment.preload()  # the page is open: someone is about to search
        return [(d, engine.Hit(d.id, 0.0)) for d in found]
    return rank(session, found, filters.q)


def current_thesaurus(session: Session) -> Thesaurus:
    """The built-in groups plus every steward group."""
    return thesaurus(g.words for g in list_groups(session))


def list_groups(session: Session) -> list[SynonymGroup]:
    return list(session.execute(select(SynonymGroup).order_by(SynonymGroup.id)).scalars())


def _authorize(actor: Principal, target: str) -> None:
    if Role.admin not in actor.roles:
        authorize(actor, Permission.dataset_grade, target=target)


def create_group(session: Session, actor: Principal, words: Sequence[str], note: str = "") -> SynonymGroup:
    _authorize(actor, "synonyms")
    g = SynonymGroup(words=clean_group(words), note=note.strip()[:200], created_by=actor.user_id)
    session.add(g)
    session.flush()
    audit.record(session, actor, "search.synonyms.create", f"synonyms:{g.id}", words=g.words, note=g.note)
    return g


def get_group(session: Session, group_id: int) -> SynonymGroup:
    g = session.get(SynonymGroup, group_id)
    if g is None:
        raise NotFound(f"没有编号为 {group_id} 的同义词组", f"No synonym group {group_id}")
    return g


def update_group(
    session: Session, actor: Principal, group_id: int, words: Sequence[str], note: str | None = None
) -> SynonymGroup:
    _authorize(actor, f"synonyms:{group_id}")
    g = get_group(session, group_id)
    before = list(g.words)
    g.words = clean_group(words)
    if note is not None:
        g.note = note.strip()[:200]
    g.updated_at = utcnow()
    audit.record(session, actor, "search.synonyms.update", f"synonyms:{g.id}", before=before, words=g.words)
    return g


def delete_group(session: Session, actor: Principal, group_id: int) -> None:
    _authorize(actor, f"synonyms:{group_id}")
    g = get_group(session, group_id)
    audit.record(session, actor, "search.synonyms.delete", f"synonyms:{g.id}", words=list(g.words))
    session.delete(g)
