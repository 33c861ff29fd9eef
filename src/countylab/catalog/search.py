"""Catalog search that works for Chinese: character bigrams for CJK text, words for the rest.

County catalogs hold hundreds, not millions, of datasets, so a scored scan over an in-memory
token index is both simple and instant; no external search engine is needed on an intranet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9_]+")


def tokens(text: str) -> set[str]:
    """Bigrams (and single characters) of CJK runs plus lower-cased ASCII words and their parts."""
    text = text.lower()
    out: set[str] = set()
    for run in _CJK.findall(text):
        out.update(run)
        out.update(run[i : i + 2] for i in range(len(run) - 1))
    for word in _WORD.findall(text):
        out.add(word)
        out.update(part for part in word.split("_") if part)
    return out


@dataclass(frozen=True)
class Document:
    id: int
    fields: dict[str, str]  # title, description, columns, tags (weighted differently)


_WEIGHTS = {"title": 4.0, "tags": 3.0, "columns": 2.0, "description": 1.0}


def search(docs: Iterable[Document], query: str) -> list[tuple[int, float]]:
    """Ids of matching documents with scores, best first; every query term must match somewhere."""
    q = query.strip().lower()
    if not q:
        return [(d.id, 0.0) for d in docs]
    terms = _query_terms(q)
    results: list[tuple[int, float]] = []
    for doc in docs:
        score = 0.0
        ok = True
        for term in terms:
            best = 0.0
            for name, text in doc.fields.items():
                low = text.lower()
                if term in low:
                    best = max(best, _WEIGHTS.get(name, 1.0) * (2.0 if len(term) > 1 else 1.0))
                elif len(term) > 2 and _CJK.fullmatch(term):
                    # a longer Chinese term: accept when all its bigrams occur (分词-free matching)
                    grams = {term[i : i + 2] for i in range(len(term) - 1)}
                    if grams <= tokens(low):
                        best = max(best, _WEIGHTS.get(name, 1.0))
            if best == 0.0:
                ok = False
                break
            score += best
        if ok:
            results.append((doc.id, score))
    results.sort(key=lambda x: (-x[1], x[0]))
    return results


def _query_terms(q: str) -> Sequence[str]:
    return [t for t in re.split(r"[\s,，;；]+", q) if t]
