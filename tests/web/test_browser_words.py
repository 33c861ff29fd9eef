"""Every main page in real Chromium, in Chinese and in English: no raw codes, no stray English.

A county clerk reading the Chinese UI must never meet ``running``, ``general_2``,
``dataset.push`` or a UTC time, and an English reader must never meet a raw code either.  Each
role of the demo walks its pages; the visible text (not ``<code>``, not data the user typed or
uploaded, which is shown as it is) is checked for enum codes, audit action codes, ``+00:00`` and,
on Chinese pages, English words outside an allow-list of proper nouns.  Screenshots land in
``$COUNTYLAB_TEST_ARTIFACTS``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from countylab.bootstrap import setup_demo
from countylab.catalog import push_summary
from countylab.catalog import service as catalog
from countylab.lab import Lab
from tests.browser import Session, live_server
from tests.support import build_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROLES_PAGES: dict[str, list[str]] = {
    "admin": ["/", "/orgs", "/audit", "/me", "/projects", "/datasets/{traffic}/connectors"],
    "steward": [
        "/",
        "/datasets",
        "/datasets/{traffic}",
        "/audit",
        "/audit?action=group:dataset",
        "/projects",
    ],
    "provider": ["/", "/datasets", "/datasets/{traffic}"],
    "developer": ["/", "/projects", "/projects/1", "/jobs", "/airlock", "/query", "/models"],
    "checker": ["/", "/airlock"],
}

# Words that stay as they are in Chinese text: product and format names, units, symbols.
ALLOWED = {
    "duckdb",
    "sql",
    "api",
    "csv",
    "xlsx",
    "json",
    "svg",
    "png",
    "jpeg",
    "ppt",
    "pdf",
    "excel",
    "wps",
    "opendp",
    "python",
    "parquet",
    "postgresql",
    "sqlite",
    "id",
    "utc",
    "url",
    "http",
    "https",
    "sha",
    "cpu",
    "gpu",
    "mib",
    "gib",
    "kb",
    "mb",
    "gb",
    "ε",
    "δ",
    "dp",
    "ai",
    "ip",
    "sdk",
    "cli",
    "token",
    "countylab",
    "english",
    "ok",
    "pii",
    "v",
    "upsert",
    "zip",
    "tar",
}
# Codes that must never show: every enum member with an underscore or shared with English words,
# and audit action codes.
CODE_RE = re.compile(
    r"\b(?:general_[1-4]|under_review|pending_review|seccomp_denied|killed_timeout|"
    r"int64|float64|(?:dataset|job|release|grant|query|model|user|token)\.[a-z_]+(?:\.[a-z_]+)?)\b"
)
CHINESE_ONLY_CODES = re.compile(
    r"\b(?:running|queued|succeeded|pending|approved|rejected|returned|withdrawn|"
    r"released|draft|submitted|important|core|timestamp)\b"
)
# A run of letters with its neighbours: one touching _ . : / | - or a digit is an identifier, a file
# name or syntax the user types (elderly-care-demand, towns.town_code, 名称:number), shown as is.
TOKEN_RE = re.compile(r"[A-Za-z0-9_.:/|\-]*[A-Za-z]{2,}[A-Za-z0-9_.:/|\-]*")
COMMAND_RE = re.compile(r"countylab [a-z]+")

VISIBLE_TEXT = """
() => {
  // [text, isData]: data (what people typed or uploaded: notes, column names, values) is shown as
  // it is, so only the code and time checks apply to it, not the English-word check.
  const skip = el => el.closest(
    'code, pre, kbd, script, style, textarea, .mono, [translate="no"], .demo-logins');
  const data = el => Boolean(el.closest('.data, #preview-table tbody'));
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (!n.parentElement || skip(n.parentElement)) continue;
    const style = getComputedStyle(n.parentElement);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const text = n.textContent.trim();
    if (text) out.push([text, data(n.parentElement)]);
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    lab: Lab = build_lab(tmp_path_factory.mktemp("words"), county_name="青禾县")
    report = setup_demo(lab, size="tiny")
    with lab.read() as s:
        traffic = catalog.get_by_name(s, "traffic_counts").id
    feed = push_summary.feed_principal()
    with lab.read() as s:
        air = catalog.get_by_name(s, "air_quality").id
    from countylab.demo import feeds

    hour = __import__("datetime").datetime(2026, 12, 5, 8)
    rows = feeds.air_quality_batch(2026120508, hour, feeds.make_stations(20261126))
    payload = [
        {k: (v.isoformat(sep=" ") if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows
    ]
    lab.ingestion.push(feed, air, payload, "words-feed-1")
    lab.ingestion.committer.summaries.flush(lab.tx)  # a dataset.push_summary on the audit page
    with lab.read() as s:
        names = {u for (u,) in s.execute(__import__("sqlalchemy").text("SELECT username FROM users"))}
        datasets = {n for (n,) in s.execute(__import__("sqlalchemy").text("SELECT name FROM datasets"))}
    try:
        with live_server(lab, demo_logins=report.logins) as url:
            yield url, {"traffic": traffic, "usernames": names, "datasets": datasets}
    finally:
        lab.close()


def _problems(texts: list[tuple[str, bool]], lang: str, known: set[str]) -> list[str]:
    found: list[str] = []
    for text, is_data in texts:
        if "+00:00" in text or re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text):
            found.append(f"UTC/ISO time: {text[:80]}")
        if not is_data and re.fullmatch(r"[a-z]+_[a-z_]+\s*[：:]", text):
            found.append(f"raw detail key {text!r}")
        for m in CODE_RE.finditer(text):
            found.append(f"code {m.group(0)!r} in {text[:80]!r}")
        if lang == "zh-CN" and not is_data:
            for m in CHINESE_ONLY_CODES.finditer(text):
                found.append(f"English state {m.group(0)!r} in {text[:80]!r}")
            for m in TOKEN_RE.finditer(COMMAND_RE.sub("", text)):
                word = m.group(0)
                if word.lower() in ALLOWED or word in known or word.isupper():
                    continue
                if any(ch in word for ch in "_.:/|-") or any(ch.isdigit() for ch in word):
                    continue
                found.append(f"English word {word!r} in {text[:80]!r}")
    return found


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_pages_speak_the_users_language(
    browser: Any, world: tuple[str, dict[str, Any]], artifacts: Any, lang: str
) -> None:
    url, facts = world
    known = set(facts["usernames"]) | set(facts["datasets"]) | {"demo-feed"}
    report: dict[str, list[str]] = {}
    for role, pages in ROLES_PAGES.items():
        s = Session(browser, url, artifacts, viewport={"width": 1280, "height": 900})
        if lang == "en":
            s.context.add_cookies([{"name": "lang", "value": "en", "url": url}])
        s.login(role)
        for path in pages:
            path = path.format(**facts)
            resp = s.go(path)
            assert resp is not None and resp.status == 200, (role, path, resp and resp.status)
            texts = s.page.evaluate(VISIBLE_TEXT)
            found = _problems(texts, lang, known)
            if role == "steward" and path == f"/datasets/{facts['traffic']}" and lang == "zh-CN":
                # dataset.js refreshes the freshness every 5 s: it must stay in Beijing time too
                shown = s.page.inner_text("#freshness")
                s.page.wait_for_timeout(6000)
                assert s.page.inner_text("#freshness") == shown, "the live refresh changed the time zone"
            if path == "/audit" and role == "steward":
                s.shot(f"audit-log-{lang}")
            if found:
                report[f"{role} {path}"] = found
        s.shot(f"words-{lang}-{role}")
        s.close()
    assert not report, "\n".join(f"{k}: {v[:8]}" for k, v in report.items())
