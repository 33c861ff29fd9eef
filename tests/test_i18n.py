"""Message catalogs: zh-CN and en stay in step, and templates take every word from them.

A key used but missing would show up as ``nav.something`` in the page; a key present in one
catalog only falls back to Chinese in the English UI; Chinese typed straight into a template
can never be shown in English.  Each test below catches one of those.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from countylab.catalog.grading import Grade
from countylab.i18n import LANGS, catalog, from_accept_language, normalise, translator
from countylab.identity.roles import OrgKind, Role
from countylab.web.ui.common import NAV

SRC = Path(__file__).resolve().parents[1] / "src" / "countylab"
TEMPLATES = sorted((SRC / "web" / "templates").rglob("*.html"))
WEB_PY = sorted((SRC / "web").rglob("*.py"))
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
LITERAL_KEY = re.compile(r"""\bt\(\s*['"]([^'"]+)['"]""")
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def _fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


def test_both_catalogs_have_exactly_the_same_keys():
    zh, en = catalog("zh-CN"), catalog("en")
    assert LANGS == ("zh-CN", "en")
    assert sorted(set(zh) - set(en)) == [], "keys only in zh-CN.json"
    assert sorted(set(en) - set(zh)) == [], "keys only in en.json"


def test_values_are_non_empty_and_use_the_same_placeholders():
    zh, en = catalog("zh-CN"), catalog("en")
    for key in zh:
        assert zh[key].strip() and en[key].strip(), f"empty translation for {key}"
        assert _fields(zh[key]) == _fields(en[key]), f"{key}: placeholders differ"
        assert not CJK.search(en[key]) or key.startswith("lang."), f"Chinese left in en.json: {key}"


def test_catalog_files_have_no_duplicate_keys():
    import json

    from countylab.i18n import catalog_files

    for lang in LANGS:
        seen: list[str] = []
        for path in catalog_files(lang):
            pairs = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=list)
            seen += [k for k, _v in pairs]
        assert len(seen) == len(set(seen)), f"duplicate keys in the {lang} catalog files"


def _used_literal_keys() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for path in TEMPLATES:
        for key in LITERAL_KEY.findall(path.read_text(encoding="utf-8")):
            if not key.endswith("."):  # 'nav.' ~ item.key: a dynamic key, checked below
                used.setdefault(key, set()).add(path.name)
    prefixes = "|".join(sorted({k.split(".")[0] for k in catalog("zh-CN")}))
    in_code = re.compile(r"""['"]((?:""" + prefixes + r""")\.[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)['"]""")
    for path in WEB_PY:
        for key in in_code.findall(path.read_text(encoding="utf-8")):
            if key.rsplit(".", 1)[-1] not in {"html", "css", "js", "json", "svg"}:
                used.setdefault(key, set()).add(path.name)
    return used


def test_every_literal_key_in_templates_and_web_code_exists():
    used = _used_literal_keys()
    assert len(used) > 50, "the key scanner found suspiciously few keys"
    zh = catalog("zh-CN")
    missing = {k: sorted(v) for k, v in used.items() if k not in zh}
    assert not missing, f"keys used but missing from the catalogs: {missing}"


def test_every_dynamic_key_exists():
    """Templates build some keys from values (``'nav.' ~ item.key``); every value needs its key."""
    zh = catalog("zh-CN")
    needed = {f"nav.{n.key}" for n in NAV} | {f"soon.{n.key}" for n in NAV}
    needed |= {f"home.role.{r.value}" for r in Role} | {f"home.links.{r.value}" for r in Role}
    needed |= {f"orgkind.{k.value}" for k in OrgKind} | {f"grade.{g.value}" for g in Grade}
    needed |= {f"outcome.{o}" for o in ("ok", "denied", "failed")}
    needed |= {f"member.{m}" for m in ("owner", "member")}
    assert sorted(needed - set(zh)) == []


def test_home_links_point_to_the_same_local_pages_in_both_languages():
    zh, en = catalog("zh-CN"), catalog("en")
    for role in Role:
        key = f"home.links.{role.value}"

        def hrefs(text: str) -> list[str]:
            return [part.split(">")[1] for part in text.split("|")]

        assert hrefs(zh[key]) == hrefs(en[key]), key
        assert all(h.startswith("/") and not h.startswith("//") for h in hrefs(zh[key])), key


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_chinese_typed_into_templates(path):
    text = JINJA.sub(" ", path.read_text(encoding="utf-8"))
    found = [line.strip() for line in text.splitlines() if CJK.search(line)]
    assert not found, f"{path.name}: Chinese outside t(): {found}"


def test_the_template_scanner_sees_chinese_outside_t():
    sample = "<p>{{ t('nav.home') }} 首页</p>{{ '首页' if x }}"
    assert CJK.search(JINJA.sub(" ", sample))
    assert not CJK.search(JINJA.sub(" ", "<p>{{ t('nav.home') }}</p>{# 注释 #}"))


def test_language_negotiation():
    assert from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert from_accept_language("fr-FR, zh-TW;q=0.5, en;q=0.4") == "zh-CN"
    assert from_accept_language("fr-FR") is None
    assert from_accept_language("en;q=0.2, zh;q=0.9") == "zh-CN"
    assert normalise("EN-gb") == "en" and normalise(None) == "zh-CN" and normalise("de") == "zh-CN"
    t_en, t_zh = translator("en"), translator("zh-CN")
    assert t_en("nav.home") != t_zh("nav.home")
    assert t_en("no.such.key") == "no.such.key"  # the visible symptom the page test looks for
