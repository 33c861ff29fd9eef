"""API: ranked catalog search with why each dataset matched, and the stewards' synonym groups.

``GET /api/datasets?q=`` stays the catalog listing (ranked the same way); ``GET /api/search``
adds the score and the matches ("列：公民身份号码") that the SDK and the page show.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from countylab.catalog import search_service
from countylab.catalog.search import Hit
from countylab.catalog.synonyms import BUILTIN
from countylab.storage.search_models import SynonymGroup
from countylab.web.api.catalog import CatalogFilters, dataset_summary
from countylab.web.deps import Actor, LabDep
from countylab.web.params import Id

router = APIRouter(prefix="/api", tags=["search"])


def hit_view(h: Hit) -> dict[str, Any]:
    return {
        "score": h.score,
        "matches": [
            {
                "term": m.term,
                "word": m.word,
                "field": m.kind,
                "label": m.label,
                "strength": m.strength,
                "via_synonym": m.via_synonym,
            }
            for m in h.matches
        ],
    }


def group_view(g: SynonymGroup) -> dict[str, Any]:
    return {
        "id": g.id,
        "words": list(g.words),
        "note": g.note,
        "created_at": g.created_at.isoformat() if g.created_at else None,
        "updated_at": g.updated_at.isoformat() if g.updated_at else None,
    }


@router.get("/search")
def search(actor: Actor, lab: LabDep, filters: CatalogFilters) -> dict[str, Any]:
    """Datasets ranked for ``q`` (分词, synonyms), each with ``score`` and the ``matches`` that explain it."""
    with lab.read() as s:
        ranked = search_service.search(s, filters)
        return {"q": filters.q, "items": [{**dataset_summary(d), **hit_view(h)} for d, h in ranked]}


@router.get("/search/synonyms")
def list_synonyms(actor: Actor, lab: LabDep) -> dict[str, Any]:
    """The stewards' synonym groups (``items``) and the built-in ones (``builtin``)."""
    with lab.read() as s:
        return {
            "items": [group_view(g) for g in search_service.list_groups(s)],
            "builtin": [list(g) for g in BUILTIN],
        }


class SynonymsIn(BaseModel):
    words: list[str] = Field(max_length=60)
    note: str = Field(default="", max_length=200)


@router.post("/search/synonyms", status_code=201)
def create_synonyms(body: SynonymsIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Add a synonym group (stewards and admins; audited); search uses it at once."""
    with lab.tx() as s:
        return group_view(search_service.create_group(s, actor, body.words, body.note))


@router.put("/search/synonyms/{group_id}")
def update_synonyms(group_id: Id, body: SynonymsIn, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Replace a synonym group's words and note (stewards and admins; audited)."""
    with lab.tx() as s:
        return group_view(search_service.update_group(s, actor, group_id, body.words, body.note))


@router.delete("/search/synonyms/{group_id}")
def delete_synonyms(group_id: Id, actor: Actor, lab: LabDep) -> dict[str, Any]:
    """Remove a synonym group (stewards and admins; audited)."""
    with lab.tx() as s:
        search_service.delete_group(s, actor, group_id)
    return {"deleted": group_id}
