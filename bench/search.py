"""Catalog search benchmark: jieba's one-time load, index build and query latency, and precision@1,
against the old character-bigram search (kept below, verbatim in behaviour, as the baseline).

Catalogs: the demo county's (``countylab demo --size tiny``: generated seed files loaded through
the ordinary ingestion path) and a synthetic one of ``--datasets`` (default 500) datasets made by
recombining the demo's metadata with towns, years and departments.  Queries: the 71-query corpus
of ``tests/search/queries.tsv`` (precision@1 is measured on the demo catalog, where each query
has its expected top result).  ``request_uncached_ms`` = index build + query (the first search after
the catalog changed); ``request_cached_ms`` = the cache-key check (every field hashed) + query, what
a user waits for otherwise; ``query_ms`` is the query alone.  One JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from countylab.catalog import search as engine  # noqa: E402
from countylab.catalog import search_service, segment  # noqa: E402
from countylab.catalog import service as catalog  # noqa: E402
from countylab.demo.catalog import CATALOG  # noqa: E402

# -- the old search (before issue 12): bigrams of CJK runs, substring scoring --------------------
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9_]+")
_OLD_WEIGHTS = {"title": 4.0, "tags": 3.0, "columns": 2.0, "description": 1.0}


def _old_tokens(text: str) -> set[str]:
    text = text.lower()
    out: set[str] = set()
    for run in _CJK.findall(text):
        out.update(run)
        out.update(run[i : i + 2] for i in range(len(run) - 1))
    for word in _WORD.findall(text):
        out.add(word)
        out.update(part for part in word.split("_") if part)
    return out


def old_search(docs: Sequence[tuple[int, dict[str, str]]], query: str) -> list[int]:
    terms = [t for t in re.split(r"[\s,，;；]+", query.strip().lower()) if t]
    results: list[tuple[int, float]] = []
    for doc_id, fields in docs:
        score, ok = 0.0, True
        for term in terms:
            best = 0.0
            for name, text in fields.items():
                low = text.lower()
                if term in low:
                    best = max(best, _OLD_WEIGHTS.get(name, 1.0) * (2.0 if len(term) > 1 else 1.0))
                elif len(term) > 2 and _CJK.fullmatch(term):
                    grams = {term[i : i + 2] for i in range(len(term) - 1)}
                    if grams <= _old_tokens(low):
                        best = max(best, _OLD_WEIGHTS.get(name, 1.0))
            if best == 0.0:
                ok = False
                break
            score += best
        if ok:
            results.append((doc_id, score))
    results.sort(key=lambda x: (-x[1], x[0]))
    return [i for i, _ in results]


def old_doc(doc: engine.Document) -> tuple[int, dict[str, str]]:
    """The fields the old catalog code gave the old search (title+name, columns+department)."""
    by: dict[str, list[str]] = {}
    for f in doc.fields:
        by.setdefault(f.kind, []).append(f.text)
    cols = [t for f in doc.fields if f.kind == "column" for t in f.text.split()[:2]]
    return doc.id, {
        "title": " ".join(by.get("title", []) + by.get("name", [])),
        "description": " ".join(by.get("description", [])),
        "tags": " ".join(by.get("tags", [])),
        "columns": " ".join(cols + by.get("department", [])[:1]),
    }


# -- catalogs --------------------------------------------------------------------------------------
def demo_documents(work: Path) -> tuple[list[engine.Document], dict[int, str]]:
    from countylab.config import Settings
    from countylab.demo import generate_county
    from countylab.demolab import load_catalog, steward_principal
    from countylab.identity import service as ids
    from countylab.identity.access import SYSTEM
    from countylab.lab import Lab

    generate_county(work / "seed", size="tiny")
    lab = Lab(Settings(data_dir=work / "lab-data", database_url=""))
    lab.migrate()
    with lab.tx() as s:
        org = ids.create_org(s, SYSTEM, name="县大数据中心", kind="platform")
        ids.create_user(
            s, SYSTEM, username="steward", password="bench-pass-2026", display_name="s", roles=["steward"],
            org_id=org.id,
        )  # fmt: skip
    load_catalog(lab, work / "seed", steward_principal(lab), lambda _m: None)
    with lab.read() as s:
        found = catalog.search_datasets(s, catalog.Filters())
        docs = [
            search_service.document(d, catalog.columns(s, d.id), d.org.name if d.org else "") for d in found
        ]
        names = {d.id: d.name for d in found}
    lab.close()
    return docs, names


def synthetic_documents(n: int, seed: int = 7) -> list[engine.Document]:
    rng = random.Random(seed)
    towns = ["城关镇", "青禾镇", "河西乡", "东岭镇", "南湖街道", "北山乡", "西坪镇", "石桥镇", "柳林乡"]
    years = [2021, 2022, 2023, 2024, 2025]
    docs = []
    for i in range(n):
        m = rng.choice(CATALOG)
        town, year = rng.choice(towns), rng.choice(years)
        cols = rng.sample(m.columns, k=max(1, len(m.columns) - rng.randint(0, 3)))
        fields = [
            engine.Field("title", f"{town}{m.title_zh}（{year}年）"),
            engine.Field("name", f"{m.name}_{i}"),
            engine.Field("tags", " ".join(m.tags)),
            engine.Field("department", f"县{m.department[0]} {m.department[0]}"),
            engine.Field("description", f"{town}{year}年度{m.description_zh}"),
        ]
        fields += [
            engine.Field("column", f"{title} {name} {sem}", f"{title}（{name}）") for name, title, sem in cols
        ]
        docs.append(engine.Document(i + 1, tuple(fields)))
    return docs


def corpus() -> list[tuple[str, str]]:
    rows = (ROOT / "tests/search/queries.tsv").read_text(encoding="utf-8").splitlines()
    return [(r.split("\t")[0], r.split("\t")[1]) for r in rows if r and not r.startswith("#")]


# -- measuring -------------------------------------------------------------------------------------
def _ms(samples: Iterable[float]) -> dict[str, float]:
    xs = sorted(samples)
    return {
        "p50": round(statistics.median(xs) * 1000, 3),
        "p95": round(xs[int(0.95 * (len(xs) - 1))] * 1000, 3),
        "max": round(xs[-1] * 1000, 3),
    }


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def jieba_load_seconds() -> list[float]:
    """The one-time dictionary load, in fresh processes (the first may write jieba's cache file)."""
    code = (
        "from countylab.catalog import segment; segment.index_tokens('人口'); print(segment.load_seconds())"
    )
    out = []
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        out.append(round(float(done.stdout.strip().splitlines()[-1]), 3))
    return out


def measure(docs: list[engine.Document], queries: list[str], repeat: int) -> dict[str, object]:
    thesaurus = engine.thesaurus()
    segment._cut_index.cache_clear()
    cold = _timed(lambda: engine.Index(docs, thesaurus))
    index = engine.Index(docs, thesaurus)
    warm = [_timed(lambda: engine.Index(docs, thesaurus)) for _ in range(repeat)]
    query = [_timed(lambda q=q: index.search(q)) for _ in range(repeat) for q in queries]
    request = [_timed(lambda q=q: engine.search(docs, q, thesaurus)) for q in queries]
    cached = [_timed(lambda q=q: engine.cached_index(docs).search(q)) for q in queries]
    olds = [old_doc(d) for d in docs]
    old = [_timed(lambda q=q: old_search(olds, q)) for _ in range(repeat) for q in queries]
    return {
        "datasets": len(docs),
        "fields": sum(len(d.fields) for d in docs),
        "index_build_cold_ms": round(cold * 1000, 2),
        "index_build_ms": _ms(warm),
        "query_ms": _ms(query),
        "request_uncached_ms": _ms(request),
        "request_cached_ms": _ms(cached),
        "old_bigram_query_ms": _ms(old),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    loads = jieba_load_seconds()
    queries = corpus()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        demo, names = demo_documents(Path(tmp))
    texts = [q for q, _ in queries]
    result: dict[str, object] = {"jieba_load_s": loads, "queries": len(queries)}
    hits = [engine.search(demo, q) for q, _ in queries]
    olds = [old_doc(d) for d in demo]
    old_hits = [old_search(olds, q) for q, _ in queries]

    def p_at_1(tops: list[str]) -> float:
        return round(sum(t == e for t, (_, e) in zip(tops, queries, strict=True)) / len(queries), 3)

    result["precision_at_1"] = p_at_1([names[h[0].id] if h else "-" for h in hits])
    result["old_bigram_precision_at_1"] = p_at_1([names[h[0]] if h else "-" for h in old_hits])
    result["old_bigram_misses"] = [
        q for (q, e), h in zip(queries, old_hits, strict=True) if (names[h[0]] if h else "-") != e
    ]
    result["demo"] = measure(demo, texts, args.repeat)
    result["synthetic"] = measure(synthetic_documents(args.datasets), texts, args.repeat)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
