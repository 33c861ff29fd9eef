"""Real-world queries against the demo county's catalog, each with its expected top result.

``queries.tsv`` holds what county staff type (issue 12's 居民 / 老人 / 身份证, partial words, typos,
mixed Chinese and English, department names); ``-`` means nothing should be found.  The test
prints precision@1 and fails on any miss, naming the query and what came first instead.
"""

from __future__ import annotations

from pathlib import Path

from countylab.catalog import search_service
from countylab.catalog import service as catalog
from countylab.lab import Lab

CORPUS = Path(__file__).with_name("queries.tsv")


def _corpus() -> list[tuple[str, str]]:
    rows = [line.split("\t") for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [(r[0], r[1]) for r in rows if r[0] and not r[0].startswith("#")]


def test_corpus_is_big_and_covers_the_issue() -> None:
    queries = dict(_corpus())
    assert len(queries) >= 40
    assert queries["居民"] == queries["身份证"] == "residents"
    assert queries["老人"] == "elderly_care_records"


def test_every_query_finds_its_dataset_first(demo_catalog: Lab) -> None:
    misses = []
    corpus = _corpus()
    with demo_catalog.read() as s:
        everything = catalog.search_datasets(s, catalog.Filters())
        assert len(everything) == 9
        for q, expected in corpus:
            ranked = search_service.rank(s, everything, q)
            top = ranked[0][0].name if ranked else "-"
            if top != expected:
                misses.append(f"{q!r}: expected {expected}, got {[d.name for d, _ in ranked[:3]]}")
    precision = 1 - len(misses) / len(corpus)
    print(f"precision@1 = {precision:.3f} over {len(corpus)} queries")
    assert not misses, f"precision@1 = {precision:.3f}; misses:\n" + "\n".join(misses)


def test_hits_say_why_they_matched(demo_catalog: Lab) -> None:
    with demo_catalog.read() as s:
        everything = catalog.search_datasets(s, catalog.Filters())
        (d, hit), *_ = search_service.rank(s, everything, "身份证")
        m = hit.matches[0]
        assert (d.name, m.kind, m.label, m.word, m.via_synonym) == (
            "residents",
            "column",
            "公民身份号码（id_number）",
            "公民身份号码",
            True,
        )
        assert m.pieces() == [("公民身份号码", True), ("（id_number）", False)]
        (d, hit), *_ = search_service.rank(s, everything, "老人")
        assert d.name == "elderly_care_records" and hit.matches[0].term == "老人"


def test_ranked_everywhere_and_filters_still_apply(demo_catalog: Lab) -> None:
    with demo_catalog.read() as s:
        names = [d.name for d in catalog.search_datasets(s, catalog.Filters(q="人口"))]
        assert names[0] == "residents" and set(names) >= {"households", "towns"}
        police = catalog.get_by_name(s, "residents").org_id
        only = catalog.search_datasets(s, catalog.Filters(q="人口", department=police))
        assert {d.org_id for d in only} == {police} and only[0].name == "residents"
        tagged = catalog.search_datasets(s, catalog.Filters(q="人口", tag="户籍"))
        assert [d.name for d in tagged] == ["households"]
