"""Login, sessions and tokens: lockout and reset, sessions ended by a password change or a
deactivation, token revocation on request, last_used_at (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from countylab.identity import login as lg
from countylab.identity import service as ids
from countylab.identity.access import SYSTEM
from countylab.storage.login_models import LoginThrottle
from countylab.storage.models import ApiToken, WebSession
from countylab.web.app import create_app
from tests.support import PASSWORD, api_client, audit_actions, browser_login, build_lab, token_for


def _login(c: TestClient, username: str, password: str) -> int:
    return c.post("/api/login", json={"username": username, "password": password}).status_code


def test_lockout_after_max_failures_refuses_even_the_right_password(tmp_path, db_url, make_user):
    lab = build_lab(tmp_path, db_url, login_max_failures=3, login_lockout_s=600)
    try:
        make_user(lab, "dev", ["developer"])
        c = TestClient(create_app(lab), raise_server_exceptions=False)
        assert [_login(c, "dev", "wrong-password") for _ in range(3)] == [401, 401, 401]
        locked = c.post("/api/login", json={"username": "dev", "password": PASSWORD})
        wrong = c.post("/api/login", json={"username": "dev", "password": "wrong-password"})
        # the same answer whether the password was right: no oracle while locked
        assert locked.status_code == wrong.status_code == 429
        lk, wr = locked.json()["error"], wrong.json()["error"]
        assert lk["code"] == wr["code"] == "login_locked" and lk["message"] == wr["message"]
        assert 0 < int(locked.headers["Retry-After"]) <= 600
        assert "countylab_session" not in locked.cookies
        zh = c.post(
            "/api/login", json={"username": "dev", "password": PASSWORD}, headers={"Accept-Language": "zh-CN"}
        )
        assert "锁定" in zh.json()["error"]["message"]
        acts = audit_actions(lab)
        assert acts.count(("login.failed", "dev", "denied")) == 3
        assert ("auth.lockout", "system", "denied") in acts
        assert acts.count(("login.refused", "dev", "denied")) == 3
        # the operator clears the lock; the right password works again
        with lab.tx() as s:
            assert lg.unlock(s, SYSTEM, username="dev") == 1
        assert _login(c, "dev", PASSWORD) == 200
        assert ("auth.unlock", "system", "ok") in audit_actions(lab)
    finally:
        lab.close()


def test_success_resets_the_account_count_but_not_the_address_count(tmp_path, db_url, make_user):
    lab = build_lab(tmp_path, db_url, login_max_failures=3, login_address_max_failures=50)
    try:
        make_user(lab, "dev", ["developer"])
        c = TestClient(create_app(lab), raise_server_exceptions=False)
        for _ in range(3):  # 2 failures, a success, again and again: never locked
            assert [_login(c, "dev", "nope-nope"), _login(c, "dev", "nope-nope")] == [401, 401]
            assert _login(c, "dev", PASSWORD) == 200
        with lab.tx() as s:
            rows = {r.key: r.failures for r in s.execute(select(LoginThrottle)).scalars()}
        assert "account:dev" not in rows and rows["address:testclient"] == 6
    finally:
        lab.close()


def test_the_window_expires_and_old_counters_are_forgotten(tmp_path, make_user):
    lab = build_lab(tmp_path, login_max_failures=2, login_window_s=60)
    try:
        make_user(lab, "dev", ["developer"])
        c = TestClient(create_app(lab), raise_server_exceptions=False)
        assert _login(c, "dev", "nope-nope") == 401
        with lab.tx() as s:  # the first failure was two minutes ago
            s.execute(update(LoginThrottle).values(window_start=datetime.now(UTC) - timedelta(seconds=120)))
        assert _login(c, "dev", "nope-nope") == 401  # counts as the first of a new window
        assert _login(c, "dev", PASSWORD) == 200
        assert ("auth.lockout", "system", "denied") not in audit_actions(lab)
    finally:
        lab.close()


def test_password_change_ends_other_sessions_and_keeps_this_one(tmp_path, db_url, make_user):
    lab = build_lab(tmp_path, db_url)
    try:
        dev = make_user(lab, "dev", ["developer"])
        app = create_app(lab)
        here, elsewhere = TestClient(app), TestClient(app, raise_server_exceptions=False)
        csrf = browser_login(here, "dev")
        browser_login(elsewhere, "dev")
        token = token_for(lab, dev)
        resp = here.post(
            "/me/password",
            data={"old": PASSWORD, "new": "a-new-password", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert resp.status_code == 303
        assert here.get("/me", follow_redirects=False).status_code == 200  # this session stays
        gone = elsewhere.get("/me", follow_redirects=False)
        assert gone.status_code == 303 and "/login" in gone.headers["location"]
        tok = api_client(lab)  # tokens survive unless asked
        assert tok.get("/api/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        with lab.tx() as s:
            assert s.scalar(select(WebSession.user_id).where(WebSession.user_id == dev)) == dev

        # now through the API with revoke_tokens: the token that calls is revoked as well
        other_token = token_for(lab, dev)
        r = tok.post(
            "/api/me/password",
            json={"old": "a-new-password", "new": "third-password", "revoke_tokens": True},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200 and r.json() == {"sessions_ended": 1, "tokens_revoked": 2}, r.text
        for t in (token, other_token):
            lab.principals.clear()
            assert tok.get("/api/whoami", headers={"Authorization": f"Bearer {t}"}).status_code == 401
        assert here.get("/me", follow_redirects=False).status_code == 303  # a token call keeps no session
        assert ("user.password", "dev", "ok") in audit_actions(lab)
    finally:
        lab.close()


def test_deactivation_ends_sessions_and_revokes_tokens_unless_kept(tmp_path, db_url, make_user):
    lab = build_lab(tmp_path, db_url)
    try:
        admin = make_user(lab, "admin", ["admin"])
        dev = make_user(lab, "dev", ["developer"])
        app = create_app(lab)
        browser = TestClient(app)
        browser_login(browser, "dev")
        token = token_for(lab, dev)
        c = api_client(lab, admin)
        r = c.put(f"/api/users/{dev}/active", json={"active": False, "revoke_tokens": False})
        assert r.status_code == 200, r.text
        assert browser.get("/me", follow_redirects=False).status_code == 303
        with lab.tx() as s:
            assert s.scalar(select(WebSession.id_hash).where(WebSession.user_id == dev)) is None
            assert s.scalar(select(ApiToken.revoked_at).where(ApiToken.user_id == dev)) is None
        whoami = api_client(lab).get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
        assert whoami.status_code == 401  # kept, but refused while the user is deactivated
        assert c.put(f"/api/users/{dev}/active", json={"active": True}).status_code == 200
        lab.principals.clear()
        ok = api_client(lab).get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        # the default revokes them for good
        assert c.put(f"/api/users/{dev}/active", json={"active": False}).status_code == 200
        assert c.put(f"/api/users/{dev}/active", json={"active": True}).status_code == 200
        lab.principals.clear()
        assert (
            api_client(lab).get("/api/whoami", headers={"Authorization": f"Bearer {token}"}).status_code
            == 401
        )
    finally:
        lab.close()


def test_deactivation_form_keeps_tokens_only_when_ticked(lab, make_user):
    make_user(lab, "admin", ["admin"])
    dev = make_user(lab, "dev", ["developer"])
    token_for(lab, dev)
    client = TestClient(create_app(lab))
    csrf = browser_login(client, "admin")
    r = client.post(
        f"/users/{dev}/active",
        data={"active": "0", "keep_tokens": "1", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with lab.tx() as s:
        assert s.scalar(select(ApiToken.revoked_at).where(ApiToken.user_id == dev)) is None
    client.post(f"/users/{dev}/active", data={"active": "1", "csrf_token": csrf}, follow_redirects=False)
    client.post(f"/users/{dev}/active", data={"active": "0", "csrf_token": csrf}, follow_redirects=False)
    with lab.tx() as s:
        assert s.scalar(select(ApiToken.revoked_at).where(ApiToken.user_id == dev)) is not None


def test_token_use_sets_last_used_at_at_most_once_a_minute(tmp_path, db_url, make_user):
    lab = build_lab(tmp_path, db_url)
    try:
        dev = make_user(lab, "dev", ["developer"])
        c = api_client(lab, dev)
        with lab.tx() as s:
            assert s.scalar(select(ApiToken.last_used_at)) is None
        before = datetime.now(UTC)
        assert c.get("/api/whoami").status_code == 200
        with lab.tx() as s:
            first = s.scalar(select(ApiToken.last_used_at))
        assert first is not None and (first if first.tzinfo else first.replace(tzinfo=UTC)) >= before
        lab.principals.clear()
        assert c.get("/api/whoami").status_code == 200
        with lab.tx() as s:  # within the minute: not written again
            assert s.scalar(select(ApiToken.last_used_at)) == first
            s.execute(update(ApiToken).values(last_used_at=datetime.now(UTC) - timedelta(minutes=5)))
        lab.principals.clear()
        assert c.get("/api/whoami").status_code == 200
        with lab.tx() as s:
            later = s.scalar(select(ApiToken.last_used_at))
        assert later is not None and (later if later.tzinfo else later.replace(tzinfo=UTC)) >= before
    finally:
        lab.close()


def test_touch_token_unit(lab, make_user):
    dev = make_user(lab, "dev", ["developer"])
    raw = token_for(lab, dev)
    with lab.tx() as s:
        assert ids.touch_token(s, raw) is True
        assert ids.touch_token(s, raw) is False  # already touched this minute
        assert ids.touch_token(s, "clk_not-a-token") is False
        assert s.scalar(select(ApiToken.last_used_at)) is not None
