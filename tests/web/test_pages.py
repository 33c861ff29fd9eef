"""Every page, for every role it is meant for, in Chinese and in English (in-process client).

Pinned here: pages render (or refuse with a translated 403 page) per role; the language comes
from the ``lang`` cookie first, then Accept-Language; no message key leaks untranslated into
the HTML; nothing is loaded from outside the server (county intranets are offline); and the
security headers are on every kind of response.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from countylab.i18n import catalog
from countylab.identity.roles import Permission, Role
from countylab.lab import Lab
from countylab.web.app import create_app
from countylab.web.deps import SESSION_COOKIE
from countylab.web.ui.common import NAV
from tests.support import api_client, browser_login, build_lab, create_user

STATIC = Path(__file__).resolve().parents[2] / "src" / "countylab" / "web" / "static"
ZH, EN = catalog("zh-CN"), catalog("en")
KEY_PREFIXES = sorted({k.split(".")[0] for k in ZH})
KEY_RE = re.compile(r"\b(?:" + "|".join(KEY_PREFIXES) + r")\.[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*\b")
PROJECT_TITLE = "养老服务需求预测"

# path → roles it is for (None: every logged-in user)
PAGES: dict[str, frozenset[Role] | None] = {
    "/": None,
    "/me": None,
    "/projects": None,
    "/projects/{pid}": frozenset({Role.developer, Role.admin, Role.steward, Role.operator, Role.checker}),
    "/orgs": frozenset({Role.admin, Role.steward, Role.operator}),
    "/audit": frozenset({Role.admin, Role.steward}),
}


class _Scan(HTMLParser):
    """Collects visible text and attribute values, skipping data shown verbatim (<code>, details)."""

    SKIP_CLASSES = {"details", "kv"}
    URL_ATTRS = {"href", "src", "action", "srcset", "poster", "data"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.urls: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = set((dict(attrs).get("class") or "").split())
        if self._skip or tag == "code" or classes & self.SKIP_CLASSES:
            self._skip.append(tag)
        for name, value in attrs:
            if value is None:
                continue
            if name in self.URL_ATTRS:
                self.urls.append(value)
            elif not self._skip and name in ("placeholder", "title", "aria-label", "alt", "data-confirm"):
                self.texts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.texts.append(data)


def scan(html: str) -> _Scan:
    parser = _Scan()
    parser.feed(html)
    return parser


def assert_clean_page(html: str) -> None:
    found = scan(html)
    permissions = {p.value for p in Permission}  # named on purpose in "no permission (x.y)" messages
    leaked = sorted({m.group(0) for text in found.texts for m in KEY_RE.finditer(text)} - permissions)
    assert not leaked, f"untranslated message keys in the page: {leaked}"
    external = [u for u in found.urls if re.match(r"\s*(https?:)?//", u, re.I)]
    assert not external, f"page loads or links outside the server: {external}"
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.I)


def assert_security_headers(response) -> None:  # type: ignore[no-untyped-def]
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert response.headers.get("x-frame-options") == "DENY"
    assert response.headers.get("x-content-type-options") == "nosniff"


class World:
    def __init__(self, lab: Lab, pid: int) -> None:
        self.lab = lab
        self.pid = pid
        self.app = create_app(lab, demo_logins=[{"role": "admin", "username": "admin", "password": "x"}])
        self._sessions: dict[Role, str] = {}  # one real login per role; argon2 is slow on purpose

    def client(self, role: Role | None, lang: str | None = None, via: str = "header") -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False)
        if role is not None and role not in self._sessions:
            browser_login(c, role.value)
            c.cookies.delete("lang")  # login stored the user's own language; start from none
            self._sessions[role] = c.cookies[SESSION_COOKIE]
        elif role is not None:
            c.cookies.set(SESSION_COOKIE, self._sessions[role])
        if lang and via == "cookie":
            c.cookies.set("lang", lang)
            c.headers["Accept-Language"] = "zh-CN,zh;q=0.9" if lang == "en" else "en-GB,en;q=0.9"
        elif lang:
            c.headers["Accept-Language"] = {"en": "en-US,en;q=0.9,zh;q=0.5", "zh-CN": "zh-CN,zh;q=0.9"}[lang]
        return c


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    lab = build_lab(tmp_path_factory.mktemp("pages"))
    ids = {role: create_user(lab, role.value, [role.value], org=f"{role.value}-org") for role in Role}
    pid = (
        api_client(lab, ids[Role.developer])
        .post("/api/projects", json={"slug": "elderly-care-demand", "title": PROJECT_TITLE})
        .json()["id"]
    )
    yield World(lab, pid)
    lab.close()


def _for(roles: frozenset[Role] | None, role: Role) -> bool:
    return roles is None or role in roles


@pytest.mark.parametrize(
    "lang,via", [("zh-CN", "header"), ("en", "header"), ("en", "cookie"), ("zh-CN", "cookie")]
)
@pytest.mark.parametrize("role", list(Role), ids=str)
def test_every_page_for_every_role_and_language(world, role, lang, via):
    c = world.client(role, lang, via)
    cat = EN if lang == "en" else ZH
    other = ZH if lang == "en" else EN
    for template, roles in PAGES.items():
        path = template.format(pid=world.pid)
        r = c.get(path)
        assert_security_headers(r)
        assert f'<html lang="{lang}">' in r.text, (path, lang)
        assert_clean_page(r.text)
        if _for(roles, role):
            assert r.status_code == 200, (role, path, r.text[:500])
            # the navigation is in the chosen language, and only the items for this role
            assert cat["nav.home"] in r.text and cat["nav.projects"] in r.text
            assert other["nav.projects"] not in r.text
            for item in NAV:
                shown = f'href="{item.href}"' in r.text
                expected = item.roles is None or role in item.roles
                assert shown == expected or item.href == "/", (role, item.key, shown)
        else:
            assert r.status_code == 403, (role, path, r.status_code)
            assert cat["nav.home"] in r.text  # the error page is a normal page with navigation


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_coming_soon_pages_of_each_nav_item(world, role):
    c = world.client(role, "en")
    for item in NAV:
        if not item.href.startswith("/soon/") or not (item.roles is None or role in item.roles):
            continue
        r = c.get(item.href)
        assert r.status_code == 200
        assert EN[f"soon.{item.key}"] in r.text
        assert_clean_page(r.text)


def test_unknown_coming_soon_page_shows_no_raw_key(world):
    r = world.client(Role.developer, "en").get("/soon/no-such-capability")
    assert r.status_code in (200, 404)
    assert_clean_page(r.text)


def test_role_specific_content(world):
    admin = world.client(Role.admin, "zh-CN")
    orgs = admin.get("/orgs").text
    assert 'id="users-table"' in orgs and 'action="/users"' in orgs  # admins manage users
    steward = world.client(Role.steward, "zh-CN").get("/orgs").text
    assert 'id="users-table"' in steward and 'action="/users"' not in steward  # read only

    dev = world.client(Role.developer, "zh-CN")
    assert PROJECT_TITLE in dev.get("/projects").text
    assert PROJECT_TITLE in dev.get("/").text
    leader = world.client(Role.leader, "zh-CN")
    assert PROJECT_TITLE not in leader.get("/projects").text  # not a member, no oversight
    denied = dev.get("/audit")
    assert denied.status_code == 403 and ZH["nav.audit"] not in scan(denied.text).texts


def test_login_page_and_anonymous_redirects(world):
    c = world.client(None, "en")
    r = c.get("/login")
    assert r.status_code == 200 and '<html lang="en">' in r.text
    assert EN["login.submit"] in r.text and EN["login.demo_accounts"] in r.text
    assert_clean_page(r.text)
    assert_security_headers(r)
    zh = world.client(None, "zh-CN").get("/login")
    assert ZH["login.submit"] in zh.text and '<html lang="zh-CN">' in zh.text
    for path in ("/", "/orgs", "/audit", "/me", "/projects"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path


def test_language_switch_sets_the_cookie_and_only_redirects_locally(world):
    c = world.client(Role.developer)
    r = c.get("/lang/en?next=/projects", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects"
    assert 'lang="en"' in c.get("/projects").text
    r = c.get("/lang/zh-CN?next=//evil.example/", follow_redirects=False)
    assert r.headers["location"] == "/"
    assert 'lang="zh-CN"' in c.get("/").text


def test_error_pages_and_api_carry_security_headers(world):
    c = world.client(Role.admin, "en")
    for path, status in (
        ("/no-such-page", 404),
        ("/api/whoami", 200),
        ("/static/app.css", 200),
        ("/api/no-such", 404),
        ("/projects/99999", 404),
    ):
        r = c.get(path)
        assert r.status_code == status, path
        assert_security_headers(r)
    assert EN["error.not_found"].split("{")[0][:10] in c.get("/no-such-page").text


def test_the_detectors_themselves_catch_leaks():
    with pytest.raises(AssertionError, match="untranslated"):
        assert_clean_page("<p>nav.bogus_item</p>")
    with pytest.raises(AssertionError, match="untranslated"):
        assert_clean_page('<input placeholder="field.nothing">')
    with pytest.raises(AssertionError, match="outside"):
        assert_clean_page('<script src="https://cdn.example.com/x.js"></script>')
    assert_clean_page("<p>ok</p><code>project.create</code>")  # audit actions are shown verbatim


def test_static_files_reference_nothing_outside():
    files = [p for p in STATIC.rglob("*") if p.is_file() and "vendor" not in p.parts]  # tests/answers
    assert {p.name for p in files} >= {"app.css", "app.js", "logo.svg"}
    for p in files:
        text = p.read_text(encoding="utf-8", errors="replace")
        text = re.sub(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"', "", text)  # a namespace name, not a fetch
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), f"{p.name} refers outside"
        assert "@import" not in text or p.suffix != ".css" or "url(http" not in text
