"""The command line, run in-process through ``countylab.cli.main`` and once as a real process.

What it pins: every command has working ``--help``; usage mistakes are one ``error:`` line on
stderr with exit code 2 (never a traceback); lab errors are one line with exit code 1; the
init → user add → token create → audit verify path works end to end, and ``audit verify``
notices a row edited behind the lab's back.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from countylab.bootstrap import DEMO_USERS
from countylab.cli import main
from countylab.config import Settings
from countylab.lab import Lab
from countylab.storage.models import User
from countylab.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "Adm1n-secret-pw"

COMMANDS = [
    [],
    ["version"],
    ["init"],
    ["serve"],
    ["demo"],
    ["user", "add"],
    ["token", "create"],
    ["audit", "verify"],
    ["login"],
    ["logout"],
    ["job", "submit"],
    ["datasets", "list"],  # plural alias of `dataset`
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one stderr line, got:\n{err}"
    assert lines[0].startswith("error:"), lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "countylab")
def test_help_of_every_command(capsys, command):
    code, out, err = run(capsys, *command, "--help")
    assert code == 0, err
    assert "Usage:" in out and "--help" in out
    assert err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["init", "--bogus"],
        ["user", "add"],  # missing username
        ["user", "add", "bob"],  # missing --role
        ["token", "create", "bob", "--days", "0"],  # below the minimum
        ["serve", "--port", "not-a-number"],
        ["demo", "--size", "huge", "--no-serve"],
        ["no-such-command"],
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors_are_one_line_and_exit_2(capsys, tmp_path, argv):
    code, out, err = run(capsys, *argv, "--data-dir", str(tmp_path / "lab"))
    assert code == 2, (out, err)
    assert_one_error_line(err)
    assert not (tmp_path / "lab").exists(), "a usage error must not create anything"


@pytest.mark.parametrize(
    "argv",
    [
        ["user", "add", "bob", "--role", "developer", "--password", "long-enough-1"],
        ["token", "create", "admin"],
        ["audit", "verify"],
        ["serve", "--port", "8765"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_commands_on_an_uninitialised_lab_fail_with_one_line(capsys, tmp_path, argv):
    code, _out, err = run(capsys, *argv, "--data-dir", str(tmp_path / "empty"))
    assert code == 1
    assert_one_error_line(err)
    assert "countylab init" in err


def test_init_user_token_and_audit_verify_then_tampering_is_detected(capsys, tmp_path):
    data = tmp_path / "lab"
    code, out, err = run(capsys, "init", "--data-dir", str(data), "--admin-password", ADMIN_PASSWORD)
    assert code == 0, err
    assert "admin" in out and (data / "countylab.db").is_file()
    # a second init is harmless and says so
    code, out, err = run(capsys, "init", "--data-dir", str(data), "--admin-password", ADMIN_PASSWORD)
    assert code == 0 and "already initialised" in " ".join(out.split())  # rich wraps at 80 columns

    code, out, err = run(
        capsys,
        "user",
        "add",
        "bob",
        "--role",
        "developer",
        "--role",
        "leader",
        "--password",
        "bobs-password-1",
        "--display-name",
        "鲍勃",
        "--data-dir",
        str(data),
    )
    assert code == 0, err
    assert "bob" in out and "developer" in out and "leader" in out
    # the same user twice is a lab error, not a crash
    code, _out, err = run(
        capsys,
        "user",
        "add",
        "bob",
        "--role",
        "developer",
        "--password",
        "bobs-password-1",
        "--data-dir",
        str(data),
    )
    assert code == 1
    assert_one_error_line(err)

    code, out, err = run(
        capsys, "token", "create", "bob", "--name", "ci", "--days", "7", "--data-dir", str(data)
    )
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert token.startswith("clk_") and token not in err, "the token goes to stdout only"
    lab = Lab(Settings(data_dir=data))
    try:
        client = TestClient(create_app(lab), raise_server_exceptions=False)
        me = client.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "bob" and sorted(me.json()["roles"]) == ["developer", "leader"]
        assert client.get("/api/whoami", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    finally:
        lab.close()

    code, out, err = run(capsys, "audit", "verify", "--data-dir", str(data))
    assert code == 0, err
    assert "intact" in out

    # An attacker with file access drops the append-only trigger and edits one event.
    db = sqlite3.connect(data / "countylab.db")
    try:
        victim = db.execute(
            "SELECT id FROM audit_events WHERE action LIKE 'user.%' ORDER BY id DESC"
        ).fetchone()[0]
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_events SET actor = 'nobody' WHERE id = ?", (victim,))
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET actor = 'nobody' WHERE id = ?", (victim,))
        db.commit()
    finally:
        db.close()
    code, out, err = run(capsys, "audit", "verify", "--data-dir", str(data))
    assert code == 1
    assert f"event {victim}" in " ".join(err.split()), err
    assert "intact" not in out


def test_demo_creates_once_and_reuses(capsys, tmp_path):
    data = tmp_path / "demo"
    code, out, err = run(capsys, "demo", "--size", "tiny", "--no-serve", "--data-dir", str(data))
    assert code == 0, err
    for role in {roles[0] for _u, _n, roles, _o, _k in DEMO_USERS}:
        assert role in out, f"no demo login printed for role {role}"
    for username, *_ in DEMO_USERS:
        assert username in out
    assert "Demo@2026" in out

    code, out, err = run(capsys, "demo", "--size", "tiny", "--no-serve", "--data-dir", str(data))
    assert code == 0, err
    assert "reusing" in out
    lab = Lab(Settings(data_dir=data))
    try:
        with lab.tx() as s:
            names = sorted(u.username for u in s.query(User).all() if u.is_active)
            services = sorted(u.username for u in s.query(User).all() if not u.is_active)
    finally:
        lab.close()
    assert names == sorted(u for u, *_ in DEMO_USERS), "a second demo run must not duplicate users"
    assert services == ["showcase-service"]  # the showcase's DP account, which cannot log in


def test_version_prints_the_package_version(capsys):
    from countylab import __version__

    code, out, _err = run(capsys, "version")
    assert code == 0 and out.strip() == __version__


def test_real_process_help_and_usage_error():
    exe = ROOT / ".venv" / "bin" / "countylab"
    if not exe.exists():
        exe = Path(sys.executable).with_name("countylab")
    done = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "demo" in done.stdout and "audit" in done.stdout
    bad = subprocess.run(
        [str(exe), "init", "--bogus"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2
    assert_one_error_line(bad.stderr)


def test_bad_settings_are_one_line_errors(capsys, tmp_path, monkeypatch):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("port = \n", encoding="utf-8")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'\n", encoding="utf-8")
    for argv, needle in (
        (["serve", "--config", str(bad_toml)], "line 1"),
        (["serve", "--config", str(unknown)], "colour"),
        (["serve", "--config", str(tmp_path / "missing.toml")], "missing.toml"),
    ):
        code, _out, err = run(capsys, *argv, "--data-dir", str(tmp_path / "lab"))
        assert code == 1, argv
        assert_one_error_line(err)
        assert needle in err
    monkeypatch.setenv("COUNTYLAB_PORT", "eighty")
    code, _out, err = run(capsys, "serve", "--data-dir", str(tmp_path / "lab"))
    assert code == 1
    assert_one_error_line(err)
    assert "port" in err and "eighty" in err
