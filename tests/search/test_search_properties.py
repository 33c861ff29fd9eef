"""Invariants of the search engine, over generated catalogs and queries (Hypothesis).

* adding a word narrows: the hits of "q w" are a subset of the hits of "q";
* every hit says, for each meaningful query word, where it matched;
* results are ordered by score and each dataset appears once;
* synonym links are symmetric, and cleaning a steward's group is idempotent.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from countylab.catalog.search import FILLER, Document, Field, Index
from countylab.catalog.synonyms import BUILTIN, clean_group, thesaurus
from countylab.errors import ValidationFailed

WORDS = [
    "常住人口", "老年人", "公民身份号码", "养老服务", "耕地", "地块", "企业", "车流量", "路口", "空气质量",
    "乡镇", "社区", "income", "resident_id", "crop", "hour", "县民政局", "县公安局", "户籍", "年龄",
    "出生日期",
]  # fmt: skip
KINDS = ["title", "name", "tags", "column", "department", "description"]

fields = st.builds(
    lambda kind, words: Field(kind, " ".join(words), " ".join(words)),
    st.sampled_from(KINDS),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
)
catalogs = st.lists(st.lists(fields, min_size=1, max_size=6), min_size=1, max_size=12).map(
    lambda docs: [Document(i + 1, tuple(fs)) for i, fs in enumerate(docs)]
)
query_words = st.sampled_from([w for w in WORDS + ["身份证", "老人", "居民", "农田"] if w not in FILLER])


@settings(max_examples=60, deadline=None)
@given(catalogs, st.lists(query_words, min_size=1, max_size=3), query_words)
def test_adding_a_word_narrows(docs: list[Document], words: list[str], extra: str) -> None:
    index = Index(docs)
    before = {h.id for h in index.search(" ".join(words))}
    after = {h.id for h in index.search(" ".join([*words, extra]))}
    assert after <= before


@settings(max_examples=60, deadline=None)
@given(catalogs, st.lists(query_words, min_size=1, max_size=3))
def test_hits_are_ordered_unique_and_explained(docs: list[Document], words: list[str]) -> None:
    index = Index(docs)
    query = " ".join(words)
    hits = index.search(query)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.id for h in hits}) == len(hits)
    terms, soft = index.parse(query)
    meaningful = [t for t in terms if t not in soft] or terms
    for h in hits:
        assert [m.term for m in h.matches] == meaningful
        doc = next(d for d in docs if d.id == h.id)
        assert all(any(m.kind == f.kind for f in doc.fields) for m in h.matches)
    assert index.search(query) == hits  # deterministic


def test_empty_query_lists_everything_unscored() -> None:
    docs = [Document(1, (Field("title", "耕地"),)), Document(2, (Field("title", "路口"),))]
    assert [(h.id, h.score, h.matches) for h in Index(docs).search("  ")] == [(1, 0.0, ()), (2, 0.0, ())]


def test_synonym_links_are_symmetric() -> None:
    t = thesaurus([["托底", "最低生活保障"]])
    for word in t.words():
        for other, factor in t.expand(word).items():
            assert t.expand(other)[word] == factor
    assert t.expand("居民")["常住人口"] == 0.8 and t.expand("居民")["户籍"] == 0.5
    assert t.expand("托底")["最低生活保障"] == 0.8
    assert len(BUILTIN) >= 60


@given(st.lists(st.text(min_size=0, max_size=8), max_size=6))
def test_cleaning_a_group_is_idempotent(words: list[str]) -> None:
    try:
        once = clean_group(words)
    except ValidationFailed:
        return
    assert clean_group(once) == once and len(once) >= 2


def test_a_column_known_only_by_its_detected_kind_is_found_in_chinese() -> None:
    """An uploaded file's columns often have no Chinese title (``col3``); PII detection's kind
    (``bank_card``) and the synonym list still let 银行卡 find the dataset, and say which column."""
    from countylab.catalog.search_service import document
    from countylab.storage.catalog_models import DatasetColumn
    from countylab.storage.models import Dataset

    ds = Dataset(id=1, name="subsidy_2025", title="惠农补贴发放表", description="", tags=[])
    cols = [
        DatasetColumn(name="col3", title="", semantic=None, pii_kind="bank_card", tags=[]),
        DatasetColumn(name="hm", title="", semantic="person_name", pii_kind="person_name", tags=["敏感"]),
    ]
    index = Index([document(ds, cols, "县农业农村局")])
    (hit,) = index.search("银行卡")
    assert (hit.matches[0].label, hit.matches[0].word) == ("col3", "bank_card")
    assert [h.id for h in index.search("姓名 农业农村局")] == [1]
    assert [h.id for h in index.search("敏感")] == [1]


def test_dictionary_preloads_in_the_background_once_and_quietly() -> None:
    """A fresh process with warnings as errors: the catalog page's preload returns at once, the
    dictionary arrives in the background, and jieba's pkg_resources warning never escapes."""
    import subprocess
    import sys

    code = (
        "import time; from countylab.catalog import segment\n"
        "t = time.perf_counter(); segment.preload(); segment.preload(); started = time.perf_counter() - t\n"
        "while segment.load_seconds() is None: time.sleep(0.05)\n"
        "assert segment.index_tokens('常住人口信息')[:2] == ('常住', '人口')\n"
        "print(started, segment.load_seconds())\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    started, loaded = map(float, done.stdout.split())
    assert loaded > 0 and started < 2.0
