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
import threading
from collections import Counter, OrderedDict
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
    token_set: frozenset[str]


@dataclass
class _Doc:
    id: int
    fields: list[_Indexed]
    text: str  # every field's lower-cased text: one fast substring test rejects most documents


class Index:
    """The documents with their token lists, field lengths and vocabulary, built once per search."""

    def __init__(self, docs: Iterable[Document], synonyms: Thesaurus | None = None) -> None:
        self.thesaurus = synonyms or thesaurus()
        self._known_words = self.thesaurus.words()
        segment.add_words(self._known_words)
        self.docs: list[_Doc] = []
        self.vocab: set[str] = set()
        lengths: dict[str, list[int]] = {}
        for d in docs:
            fields = []
            for f in d.fields:
                if not f.text.strip():
                    continue
                toks = segment.index_tokens(f.text)
                fields.append(_Indexed(f, f.text.lower(), toks, frozenset(toks)))
                self.vocab.update(toks)
                lengths.setdefault(f.kind, []).append(len(toks))
            self.docs.append(_Doc(d.id, fields, "\n".join(f.low for f in fields)))
        self.avg = {k: (sum(v) / len(v)) or 1.0 for k, v in lengths.items()}
        self._near_cache: dict[str, frozenset[str]] = {}
        self._by_char: dict[str, list[str]] = {}
        self._lock = threading.Lock()  # a cached index serves concurrent requests

    def search(self, query: str) -> list[Hit]:
        """Matching documents, best first (ties by id); an empty query lists all, unscored."""
        terms, soft = self.parse(query)
        if not terms:
            return [Hit(d.id, 0.0) for d in self.docs]
        meaningful = [t for t in terms if t not in soft] or terms
        found = {t: self._matches(t) for t in terms}
        n = len(self.docs)
        phrase = "".join(terms) if len(terms) > 1 else terms[0]
        whole = re.sub(r"\s+", "", query.strip().lower())
        hits = []
        for pos, doc in enumerate(self.docs):
            if not all(pos in found[t] for t in meaningful):
                continue
            best = {t: found[t][pos] for t in terms if pos in found[t]}
            score = sum(
                _idf(n, len(found[t])) * s * (FILLER_FACTOR if t not in meaningful else 1.0)
                for t, (s, _) in best.items()
            )
            score += _boost(doc.fields, {whole, phrase})
            hits.append(Hit(doc.id, round(score, 4), tuple(best[t][1] for t in meaningful)))
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits

    def _matches(self, term: str) -> dict[int, tuple[float, Match]]:
        """Best match of ``term`` per document position.  A typo reading (one edit) is tried only
        when neither the word nor any synonym of it is found anywhere in the catalog as typed."""
        # on equal scores the word typed wins, then a synonym in the same script (highlights read well)
        alts = sorted(
            self.thesaurus.expand(term).items(),
            key=lambda a: (a[0] != term, a[0].isascii() != term.isascii(), a[0]),
        )
        out: dict[int, tuple[float, Match]] = {}
        for pos, doc in enumerate(self.docs):
            present = [a for a in alts if a[0] in doc.text]
            if present:
                best = self._best(term, doc.fields, present, None)
                if best is not None:
                    out[pos] = best
        if out or len(term) < 3:
            return out
        near = self._near(term)
        if near:
            for pos, doc in enumerate(self.docs):
                if any(not near.isdisjoint(f.token_set) for f in doc.fields):
                    best = self._best(term, doc.fields, [(term, 1.0)], near)
                    if best is not None:
                        out[pos] = best
        return out

    def _near(self, term: str) -> frozenset[str]:
        """The catalog's words one typo away from ``term`` (computed once per term)."""
        if term not in self._near_cache:
            with self._lock:  # built on the first typo: character -> words holding it
                if not self._by_char:
                    by_char: dict[str, list[str]] = {}
                    for v in self.vocab:
                        for ch in set(v):
                            by_char.setdefault(ch, []).append(v)
                    self._by_char = by_char
            # one edit changes at most one (two for long English words) of the distinct characters
            limit = 2 if len(term) >= 8 and term.isascii() else 1
            shared: Counter[str] = Counter()
            for ch in set(term):
                shared.update(self._by_char.get(ch, ()))
            need = len(set(term)) - limit
            candidates = [v for v, c in shared.items() if c >= need and abs(len(v) - len(term)) <= limit]
            self._near_cache[term] = frozenset(v for v in candidates if _near(term, v))
        return self._near_cache[term]

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
        if chunk in self.vocab or chunk in self._known_words:
            return True
        if len(chunk) < 3:
            return False
        return any(chunk in d.text for d in self.docs) or bool(self._near(chunk))

    def _best(
        self,
        term: str,
        fields: Sequence[_Indexed],
        alts: Sequence[tuple[str, float]],
        near: frozenset[str] | None,
    ) -> tuple[float, Match] | None:
        best: tuple[float, Match] | None = None
        for f in fields:
            for word, factor in alts:
                found = _strength(word, f, typed=word == term, near=near)
                if found is None:
                    continue
                strength, quality, tf = found
                norm = 1 - _B + _B * (len(f.tokens) or 1) / self.avg.get(f.field.kind, 1.0)
                sat = tf * (_K1 + 1) / (tf + _K1 * norm)
                score = WEIGHTS.get(f.field.kind, 1.0) * quality * factor * sat
                if best is None or score > best[0]:
                    best = (score, Match(term, word, f.field.kind, f.field.label, f.field.text, strength))
        return best


def _strength(
    word: str, f: _Indexed, *, typed: bool, near: frozenset[str] | None
) -> tuple[str, float, int] | None:
    """How ``word`` occurs in a field: (kind, quality, term frequency), or ``None``.  With
    ``near`` (the catalog's words one typo from ``word``), only a typo reading is looked for."""
    if near is not None:
        return ("typo", 0.4, 1) if not near.isdisjoint(f.token_set) else None
    if word in f.token_set:
        return "exact", 1.0, f.tokens.count(word)
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
    """Build an index over ``docs`` and search it (one shot, no cache)."""
    return Index(docs, synonyms).search(query)


_CACHE: OrderedDict[tuple[object, ...], Index] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 8


def cached_index(docs: Sequence[Document], groups: Sequence[Sequence[str]] = ()) -> Index:
    """The index of exactly these documents and steward groups, reused while neither changes.

    Building costs about 50 ms at 500 datasets, searching about 10: the catalog changes far
    less often than people search it.  The key is the documents themselves (their every field),
    so any edit of a title, column or tag, or of a synonym group, builds a fresh index.
    """
    key = (tuple(docs), tuple(tuple(g) for g in groups))
    with _CACHE_LOCK:
        index = _CACHE.get(key)
        if index is not None:
            _CACHE.move_to_end(key)
            return index
    index = Index(docs, thesaurus(groups))
    with _CACHE_LOCK:
        _CACHE[key] = index
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return index
