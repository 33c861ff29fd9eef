"""`countylab user deactivate | activate | password | unlock` on a real lab folder."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from countylab.cli import main
from countylab.config import Settings
from countylab.lab import Lab
from countylab.storage.login_models import LoginThrottle
from countylab.storage.models import ApiToken
from countylab.web.app import create_app
from tests.support import PASSWORD, audit_actions, browser_login, create_user, token_for


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def folder(tmp_path, capsys):
    data = tmp_path / "lab"
    assert _cli(capsys, "init", "--data-dir", str(data), "--admin-password", "Adm1n-secret-pw")[0] == 0
    lab = Lab(Settings(data_dir=data, login_max_failures=2))
    dev = create_user(lab, "dev", ["developer"])
    yield data, lab, dev
    lab.close()


def test_deactivate_keep_tokens_activate_and_password_reset(folder, capsys):
    data, lab, dev = folder
    browser = TestClient(create_app(lab))
    browser_login(browser, "dev")
    token_for(lab, dev)

    code, out, err = _cli(capsys, "user", "deactivate", "dev", "--keep-tokens", "--data-dir", str(data))
    assert code == 0, err
    lab.principals.clear()  # the server's few-second cache: a change from another process waits it out
    assert browser.get("/me", follow_redirects=False).status_code == 303  # the session ended
    with lab.tx() as s:
        assert s.scalar(select(ApiToken.revoked_at)) is None
    assert _cli(capsys, "user", "activate", "dev", "--data-dir", str(data))[0] == 0

    browser_login(browser, "dev")
    code, out, err = _cli(
        capsys,
        "user",
        "password",
        "dev",
        "--password",
        "brand-new-pass",
        "--revoke-tokens",
        "--data-dir",
        str(data),
    )
    assert code == 0, err
    assert "sessions ended: 1" in out and "tokens revoked: 1" in out
    lab.principals.clear()
    assert browser.get("/me", follow_redirects=False).status_code == 303
    with lab.tx() as s:
        assert s.scalar(select(ApiToken.revoked_at)) is not None
    browser_login(browser, "dev", "brand-new-pass")
    actions = [a for a, _who, _ in audit_actions(lab)]
    assert {"user.deactivate", "user.activate", "user.password_reset"} <= set(actions)

    code, _out, err = _cli(capsys, "user", "deactivate", "nobody", "--data-dir", str(data))
    assert code == 1 and "nobody" in err and "Traceback" not in err


def test_unlock_clears_a_locked_account(folder, capsys):
    data, lab, _dev = folder
    c = TestClient(create_app(lab), raise_server_exceptions=False)
    for _ in range(2):
        c.post("/api/login", json={"username": "dev", "password": "wrong-password"})
    assert c.post("/api/login", json={"username": "dev", "password": PASSWORD}).status_code == 429
    code, out, err = _cli(capsys, "user", "unlock", "dev", "--address", "testclient", "--data-dir", str(data))
    assert code == 0 and "2 counter(s)" in out, err
    with lab.tx() as s:
        assert s.scalar(select(LoginThrottle.key)) is None
    assert c.post("/api/login", json={"username": "dev", "password": PASSWORD}).status_code == 200
    assert _cli(capsys, "user", "unlock", "--data-dir", str(data))[0] == 1
