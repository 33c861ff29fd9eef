"""Attacks on the login: brute force on one account, password spraying from one address, and
guesses spread over several server processes (two Labs on one database), through the web form
and the JSON API.  The counters live in the database; every lockout is an audit alert."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

from fastapi.testclient import TestClient

from countylab.audit.log import recent
from countylab.lab import Lab
from countylab.web.app import create_app
from tests.support import PASSWORD, audit_actions, build_lab, create_user

LIMITS = {"login_max_failures": 4, "login_address_max_failures": 10, "login_lockout_s": 900}


def _api(lab: Lab, address: str = "203.0.113.7") -> TestClient:
    return TestClient(create_app(lab), raise_server_exceptions=False, client=(address, 40000))


def _try(c: TestClient, username: str, password: str) -> int:
    return c.post("/api/login", json={"username": username, "password": password}).status_code


def _form(c: TestClient, username: str, password: str) -> str:
    """Submit the login form; the flash message the browser would show."""
    page = c.get("/login")
    pre = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert pre
    resp = c.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": pre.group(1)},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    if resp.headers["location"] == "/":
        return "ok"
    return c.get(resp.headers["location"]).text


def _lockouts(lab: Lab) -> list[dict[str, object]]:
    with lab.tx() as s:
        return [dict(e.details) for e in recent(s, limit=1000) if e.action == "auth.lockout"]


def test_brute_force_on_one_account_is_locked_whatever_the_guess(tmp_path: Path, db_url: str) -> None:
    lab = build_lab(tmp_path, db_url, **LIMITS)
    try:
        create_user(lab, "victim", ["developer"])
        c = _api(lab)
        codes = [_try(c, "victim", f"guess-{i:04d}") for i in range(12)]
        assert codes == [401] * 4 + [429] * 8  # 4 guesses, then nothing more is even checked
        # the right password now gets exactly the same answer as a wrong one
        right = c.post("/api/login", json={"username": "victim", "password": PASSWORD})
        wrong = c.post("/api/login", json={"username": "victim", "password": "guess-9999"})
        assert right.status_code == wrong.status_code == 429
        r, w = right.json()["error"], wrong.json()["error"]
        assert (r["code"], r["message"], r["details"].keys()) == (
            w["code"],
            w["message"],
            w["details"].keys(),
        )
        # only the seconds left differ, by the time between the two requests
        assert abs(int(right.headers["Retry-After"]) - int(wrong.headers["Retry-After"])) <= 2
        # the web form answers the lock too (and sets no session)
        form = TestClient(create_app(lab), client=("198.51.100.9", 1))
        assert "已暂时锁定" in _form(form, "victim", PASSWORD)
        assert "countylab_session" not in form.cookies
        alerts = _lockouts(lab)
        assert [a["kind"] for a in alerts] == ["account"] and alerts[0]["username"] == "victim"
        assert audit_actions(lab).count(("login.failed", "victim", "denied")) == 4
    finally:
        lab.close()


def test_spraying_many_accounts_from_one_address_locks_the_address(tmp_path: Path, db_url: str) -> None:
    lab = build_lab(tmp_path, db_url, **{**LIMITS, "login_address_max_failures": 6})
    try:
        names = [f"user{i:02d}" for i in range(8)]
        for name in names[:4]:
            create_user(lab, name, ["developer"])
        attacker = _api(lab, "203.0.113.66")
        # one common password per account, made-up accounts among them: never an account lock
        codes = [_try(attacker, name, "Password123") for name in names]
        assert codes == [401] * 6 + [429] * 2
        assert _try(attacker, "user00", PASSWORD) == 429  # the address is locked for everyone
        honest = _api(lab, "198.51.100.20")  # another address is not affected
        assert _try(honest, "user00", PASSWORD) == 200
        alerts = _lockouts(lab)
        assert [a["kind"] for a in alerts] == ["address"] and alerts[0]["address"] == "203.0.113.66"
        # a valid login from the sprayer's address must not reset the address count
        lab2_addr = _api(lab, "203.0.113.77")
        for name in names[:5]:
            assert _try(lab2_addr, name, "Password123") == 401
        assert _try(lab2_addr, "user01", PASSWORD) == 200
        assert _try(lab2_addr, "user02", "Password123") == 401  # the 6th failure: it locks
        assert _try(lab2_addr, "user03", PASSWORD) == 429
    finally:
        lab.close()


def test_counters_are_shared_by_two_server_processes(tmp_path: Path, db_url: str) -> None:
    """Two Labs (as two ``serve --workers`` processes) on one database: alternating guesses
    between them meet one count."""
    first = build_lab(tmp_path, db_url, **LIMITS)
    second = build_lab(tmp_path, first.settings.database_url or "", **LIMITS)
    try:
        assert str(first.engine.url) == str(second.engine.url)
        create_user(first, "victim", ["developer"])
        a, b = _api(first), _api(second)
        codes = [_try(a if i % 2 == 0 else b, "victim", f"guess-{i}") for i in range(6)]
        assert codes == [401, 401, 401, 401, 429, 429]
        assert _try(b, "victim", PASSWORD) == 429 and _try(a, "victim", PASSWORD) == 429
        assert len(_lockouts(second)) == 1
    finally:
        second.close()
        first.close()


def test_locked_and_unknown_accounts_cost_an_argon2_check(tmp_path: Path, vetted_hashing: None) -> None:
    """Timing says nothing: a locked or unknown account takes as long as a wrong password."""
    lab = build_lab(tmp_path, login_max_failures=3, login_address_max_failures=1000)
    try:
        create_user(lab, "victim", ["developer"])
        create_user(lab, "known", ["developer"])
        c = _api(lab)
        assert [_try(c, "victim", "nope-nope") for _ in range(4)][-1] == 429

        def median(user: str) -> float:
            spent = []
            for _ in range(3):  # "known" fails 3 times: locked only after the last
                t0 = time.perf_counter()
                c.post("/api/login", json={"username": user, "password": "nope-nope"})
                spent.append(time.perf_counter() - t0)
            return statistics.median(spent)

        wrong, locked, unknown = median("known"), median("victim"), median("nobody-here")
        assert locked > 0.5 * wrong and unknown > 0.5 * wrong, (wrong, locked, unknown)
    finally:
        lab.close()
