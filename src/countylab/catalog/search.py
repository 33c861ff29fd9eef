"""Catalog search that finds what county staff mean: 分词, synonyms, ranking and "why it matched".

County catalogs hold hundreds, not millions, of datasets, so an in-memory index rebuilt per search
(token lists are cached per text) is simple and instant; no search engine is needed on an intranet.

* Segmentation: jieba's search mode (:mod:`countylab.catalog.segment`) for Chinese, words and their
  ``_`` parts for identifiers, so ``resident`` finds ``resident_id`` and 身份 finds 公民身份号码.
* Expansion: every query word also stands for its synonyms (:mod:`countylab.catalog.synonyms`,
  built-in plus the stewards' groups): 身份证 finds the column 公民身份号码.
* Matching, strongest first: the same word in the index; the word inside the text (partial words
  such as 养老服); an English prefix (``resid``); one typo for words of three or more characters.
* Ranking: BM25F-style.  Each query word scores ``idf × best field``, where a field's weight is
  title 5 > identifier 4 > tags 3 > column 2 > department 1.5 > description 1, times the match
  strength (a synonym counts 0.8 of the word typed, a related word 0.5) and BM25's saturating
  term frequency; the whole query as a phrase in the title, or as its start, earns a boost.
* The rule: every *meaningful* query word must match somewhere (after expansion), so adding a word
  narrows the list as people expect.  Filler words that describe every dataset (数据, 信息, 表,
  查询 …) only add to the score: "人口数据" still finds 常住人口信息.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from countylab.catalog import segment
from countylab.catalog.synonyms import Thesaurus, thesaurus

WEIGHTS = {"title": 5.0, "name": 4.0, "tags": 3.0, "column": 2.0, "department": 1.5, "description": 1.0}
FILLER = frozenset(
    {"数据", "信息", "资料", "表", "数据集", "情况", "相关", "有关", "查询", "查找", "哪些", "的", "和", "与",
     "及", "data", "dataset", "info", "the", "of", "and", "table"}
)  # fmt: skip
_SPLIT = re.compile(r"[\s,，;；、/|+]+")
_K1, _B = 1.2, 0.5
FILLER_FACTOR = 0.2  # a filler word found adds a little, never decides


@dataclass(frozen=True)
class Field:
    """One searchable text of a dataset; ``label`` names it for people ("公民身份号码 id_number")."""

    kind: str  # title | name | tags | column | department | description
    text: str
    label: str = ""


@dataclass(frozen=True)
class Document:
    id: int
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Match:
    """Why a dataset matched one query word: where, on which word, and whether via a synonym."""

    term: str  # the word as the user typed it
    word: str  # the word found in the field (a synonym, or the term itself)
    kind: str
    label: str
    text: str
    strength: str  # exact | partial | prefix | typo

    @property
    def via_synonym(self) -> bool:
        return self.word != self.term and self.strength != "typo"

    def pieces(self) -> list[tuple[str, bool]]:
        """The field's text cut into (text, highlighted) pieces around the matched word."""
        full = self.label or self.text
        shown = full if len(full) <= 80 else _window(full, self.word)
        low = shown.lower()
        at = low.find(self.word) if self.strength != "typo" else -1
        if at < 0:
            return [(shown, False)]
        end = at + len(self.word)
        return [p for p in [(shown[:at], False), (shown[at:end], True), (shown[end:], False)] if p[0]]


@dataclass(frozen=True)
class Hit:
    id: int
    score: float
    matches: tuple[Match, ...] = field(default=())


@dataclass
class _Indexed:
    field: Field
    low: str
    tokens: tuple[str, ...]


class Index:
    """The documents with their token lists, field lengths and vocabulary, built once per search."""

    def __init__(self, docs: Iterable[Document], synonyms: Thesaurus | None = None) -> None:
        self.thesaurus = synonyms or thesaurus()
        segment.add_words(self.thesaurus.words())
        self.docs: list[tuple[int, list[_Indexed]]] = []
        self.vocab: set[str] = set()
        lengths: dict[str, list[int]] = {}
        for d in docs:
            fields = []
            for f in d.fields:
                if not f.text.strip():
                    continue
                toks = segment.index_tokens(f.text)
                fields.append(_Indexed(f, f.text.lower(), toks))
                self.vocab.update(toks)
                lengths.setdefault(f.kind, []).append(len(toks))
            self.docs.append((d.id, fields))
        self.avg = {k: (sum(v) / len(v)) or 1.0 for k, v in lengths.items()}

    def search(self, query: str) -> list[Hit]:
        """Matching documents, best first (ties by id); an empty query lists all, unscored."""
        terms, soft = self.parse(query)
        if not terms:
            return [Hit(i, 0.0) for i, _ in self.docs]
        meaningful = [t for t in terms if t not in soft] or terms
        per_doc: list[tuple[int, list[_Indexed], dict[str, tuple[float, Match]]]] = []
        df: dict[str, int] = {t: 0 for t in terms}
        for doc_id, fields in self.docs:
            best = {}
            for term in terms:
                found = self._best(term, fields)
                if found is not None:
                    best[term] = found
                    df[term] += 1
            if all(t in best for t in meaningful):
                per_doc.append((doc_id, fields, best))
        n = len(self.docs)
        phrase = "".join(terms) if len(terms) > 1 else terms[0]
        whole = re.sub(r"\s+", "", query.strip().lower())
        hits = []
        for doc_id, fields, best in per_doc:
            score = sum(
                _idf(n, df[t]) * s * (FILLER_FACTOR if t not in meaningful else 1.0)
                for t, (s, _) in best.items()
            )
            score += _boost(fields, {whole, phrase})
            matches = tuple(best[t][1] for t in meaningful if t in best)
            hits.append(Hit(doc_id, round(score, 4), matches))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits

    def terms(self, query: str) -> list[str]:
        return self.parse(query)[0]

    def parse(self, query: str) -> tuple[list[str], set[str]]:
        """Query words, and which of them are soft (filler words; single characters left over
        when jieba cuts a chunk, as 码 of 身份证号码).  A chunk stays whole when the catalog or the
        synonym list knows it, or it is a partial word or a one-typo form of a known word."""
        out: list[str] = []
        soft: set[str] = set()
        for chunk in _SPLIT.split(query.strip().lower()):
            if not chunk:
                continue
            words = [chunk] if self._known(chunk) else (segment.query_words(chunk) or [chunk])
            for w in words:
                if w in FILLER or (len(words) > 1 and len(w) == 1):
                    soft.add(w)
                if w not in out:
                    out.append(w)
        return out, soft

    def _known(self, chunk: str) -> bool:
        if chunk in self.vocab or chunk in self.thesaurus.words():
            return True
        if len(chunk) >= 3 and any(chunk in f.low for _, fs in self.docs for f in fs):
            return True
        return len(chunk) >= 3 and any(_near(chunk, v) for v in self.vocab)

    def _best(self, term: str, fields: Sequence[_Indexed]) -> tuple[float, Match] | None:
        # on equal scores the word typed wins, then a synonym in the same script (highlights read well)
        alts = sorted(
            self.thesaurus.expand(term).items(),
            key=lambda a: (a[0] != term, a[0].isascii() != term.isascii(), a[0]),
        )
        best: tuple[float, Match] | None = None
        for typos in (False, True):  # a typo reading only when the word is found nowhere as typed
            if best is not None:
                break
            for f in fields:
                for word, factor in alts if not typos else [(term, 1.0)]:
                    found = _strength(word, f, typed=word == term, typos=typos)
                    if found is None:
                        continue
                    strength, quality, tf = found
                    norm = 1 - _B + _B * (len(f.tokens) or 1) / self.avg.get(f.field.kind, 1.0)
                    sat = tf * (_K1 + 1) / (tf + _K1 * norm)
                    score = WEIGHTS.get(f.field.kind, 1.0) * quality * factor * sat
                    if best is None or score > best[0]:
                        best = (score, Match(term, word, f.field.kind, f.field.label, f.field.text, strength))
        return best


def _strength(word: str, f: _Indexed, *, typed: bool, typos: bool) -> tuple[str, float, int] | None:
    """How ``word`` occurs in a field: (kind, quality, term frequency), or ``None``."""
    if typos:
        return ("typo", 0.4, 1) if len(word) >= 3 and any(_near(word, t) for t in f.tokens) else None
    tf = f.tokens.count(word)
    if tf:
        return "exact", 1.0, tf
    if word in f.low and (len(word) > 1 or typed):
        cjk = bool(segment.CJK.search(word))
        if cjk or any(t.startswith(word) for t in f.tokens):
            return ("partial" if cjk else "prefix"), (0.7 if len(word) > 1 else 0.4), 1
        return "partial", 0.4, 1
    return None


def _near(a: str, b: str) -> bool:
    """One edit apart (two for long English words); only words of similar length are compared."""
    limit = 2 if len(a) >= 8 and a.isascii() else 1
    if abs(len(a) - len(b)) > limit or a == b or min(len(a), len(b)) < 3:
        return False
    return _distance(a, b, limit) <= limit


def _distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, stopping early past ``limit``."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _idf(n: int, df: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def _boost(fields: Sequence[_Indexed], phrases: set[str]) -> float:
    """Exact title or identifier, title prefix, and whole-phrase matches outrank scattered words."""
    bonus = 0.0
    for f in fields:
        if f.field.kind not in ("title", "name"):
            continue
        for p in phrases:
            if not p:
                continue
            if f.low == p:
                bonus = max(bonus, 6.0)
            elif f.low.startswith(p):
                bonus = max(bonus, 3.0)
            elif len(p) > 1 and p in f.low:
                bonus = max(bonus, 2.0)
    return bonus


def _window(text: str, word: str, width: int = 36) -> str:
    at = text.lower().find(word)
    if at < 0:
        return text[: width * 2] + "…"
    start = max(0, at - width)
    end = min(len(text), at + len(word) + width)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def search(docs: Iterable[Document], query: str, synonyms: Thesaurus | None = None) -> list[Hit]:
    """Build an index over ``docs`` and search it (the one-shot form the catalog uses)."""
    return Index(docs, synonyms).search(query)
