"""The CLI finds the running lab and remembers a login, through real processes.

Pins: ``scripts/link-cli.sh`` links ``countylab`` into a writable prefix or ``~/.local/bin``,
idempotently, never over another file, and says when the folder is not on PATH;
``countylab serve`` records its URL and pid in the per-user state file and removes it on exit;
a stale record (dead pid) is ignored and removed; the URL order is ``--url`` > ``COUNTYLAB_URL``
> state file > default and the token order ``--token`` > ``COUNTYLAB_TOKEN`` > stored login;
``countylab login`` stores a 0600 token per lab URL (audited as ``token.create``), commands then
need neither ``--url`` nor ``--token``, and ``logout`` revokes it on the lab.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from countylab.commands import local_state as ls
from countylab.config import Settings
from countylab.lab import Lab
from countylab.storage.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Adm1n-secret-pw"


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTYLAB_")}
    env |= {
        "HOME": str(tmp / "home"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "LANG": "zh_CN.UTF-8",
    }
    return env | extra


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "countylab.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- the PATH link ---------------------------------------------------------------------------------


def _checkout(tmp: Path) -> Path:
    """A stand-in checkout: the real link script beside a .venv/bin/countylab that answers."""
    root = tmp / "checkout"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "link-cli.sh").write_bytes((ROOT / "scripts" / "link-cli.sh").read_bytes())
    cli = root / ".venv" / "bin" / "countylab"
    cli.parent.mkdir(parents=True)
    cli.write_text("#!/bin/sh\necho countylab-from-checkout\n")
    cli.chmod(0o755)
    return root


def _link(tmp: Path, root: Path, prefix: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = _env(tmp, COUNTYLAB_PREFIX=str(prefix), PATH=path)
    return subprocess.run(
        ["bash", str(root / "scripts" / "link-cli.sh")], env=env, capture_output=True, text=True, check=False
    )


def test_link_script_puts_countylab_on_path_without_clobbering(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    root = _checkout(tmp_path)
    cli = str(root / ".venv" / "bin" / "countylab")
    base_path = "/usr/bin:/bin"
    # no writable prefix: ~/.local/bin, with one line saying it is not on PATH
    first = _link(tmp_path, root, tmp_path / "no-such-prefix", base_path)
    user_bin = tmp_path / "home" / ".local" / "bin"
    assert first.returncode == 0, first.stderr
    assert os.readlink(user_bin / "countylab") == cli
    notes = [line for line in first.stdout.splitlines() if "not on your PATH" in line]
    assert len(notes) == 1 and str(user_bin) in notes[0]
    # idempotent, and silent about PATH once it is on it
    again = _link(tmp_path, root, tmp_path / "no-such-prefix", f"{user_bin}:{base_path}")
    assert again.returncode == 0 and "already linked" in again.stdout and "PATH" not in again.stdout
    # a new shell with that PATH finds it
    found = subprocess.run(
        ["bash", "-c", "countylab"], env=_env(tmp_path, PATH=f"{user_bin}:{base_path}"),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert found.stdout.strip() == "countylab-from-checkout", found.stderr
    # a writable prefix (root's /usr/local) is preferred; another file there is left alone
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "countylab").write_text("#!/bin/sh\necho other\n")
    kept = _link(tmp_path, root, prefix, base_path)
    assert kept.returncode == 0 and "left as it is" in kept.stdout
    assert (prefix / "bin" / "countylab").read_text() == "#!/bin/sh\necho other\n"
    (prefix / "bin" / "countylab").unlink()
    (prefix / "bin" / "countylab").symlink_to(tmp_path / "gone" / ".venv" / "bin" / "countylab")
    replaced = _link(tmp_path, root, prefix, f"{prefix / 'bin'}:{base_path}")  # an old checkout's link
    assert replaced.returncode == 0 and os.readlink(prefix / "bin" / "countylab") == cli
    # without the venv the script says what to run, and links nothing
    (root / ".venv" / "bin" / "countylab").unlink()
    missing = _link(tmp_path, root, tmp_path / "other-prefix", base_path)
    assert missing.returncode == 1 and "venv.sh" in missing.stderr


# -- state file and credentials, in-process ------------------------------------------------------


def test_url_and_token_orders(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert ls.resolve_url(None, env) == ls.DEFAULT_URL
    ls.record_server("0.0.0.0", 8011, tmp_path / "lab", env)  # noqa: S104 - what a server may listen on
    assert ls.resolve_url(None, env) == "http://127.0.0.1:8011"
    assert ls.resolve_url(None, env | {"COUNTYLAB_URL": "http://lab:9"}) == "http://lab:9"
    assert ls.resolve_url("http://x:1", env | {"COUNTYLAB_URL": "http://lab:9"}) == "http://x:1"
    assert ls.resolve_token(None, "http://127.0.0.1:8011", env) is None
    path = ls.store_login("http://127.0.0.1:8011/", {"token": "clk_stored", "username": "a"}, env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ls.resolve_token(None, "HTTP://127.0.0.1:8011", env) == "clk_stored"
    assert ls.resolve_token(None, "http://127.0.0.1:9999", env) is None  # per lab URL
    assert ls.resolve_token(None, "http://127.0.0.1:8011", env | {"COUNTYLAB_TOKEN": "clk_env"}) == "clk_env"
    assert ls.resolve_token("clk_flag", "http://127.0.0.1:8011", env | {"COUNTYLAB_TOKEN": "e"}) == "clk_flag"
    assert ls.drop_login("http://127.0.0.1:8011", env) is not None
    assert ls.resolve_token(None, "http://127.0.0.1:8011", env) is None
    ls.forget_server(env)
    assert not ls.state_file(env).exists()


def test_a_record_of_a_dead_process_is_ignored_and_removed(tmp_path: Path) -> None:
    env = _env(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    ls.state_file(env).parent.mkdir(parents=True)
    record = {"url": "http://127.0.0.1:8123", "pid": int(dead.stdout), "port": 8123}
    ls.state_file(env).write_text(json.dumps(record))
    assert ls.running_server(env) is None and not ls.state_file(env).exists()
    assert ls.resolve_url(None, env) == ls.DEFAULT_URL
    ls.state_file(env).write_text("{not json")
    assert ls.running_server(env) is None


# -- the real thing: serve, login, a command without --url/--token, logout ----------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], int, subprocess.Popen[str]]]:
    env = _env(tmp_path)
    data = tmp_path / "lab"
    made = _cli(env, "init", "--data-dir", str(data), "--admin-password", PASSWORD)
    assert made.returncode == 0, made.stderr
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "countylab.cli", "serve", "--data-dir", str(data), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        state = ls.state_file(env)
        while not state.exists() or not _listening(port):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        yield env, port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_serve_login_and_commands_without_url_or_token(served, tmp_path: Path) -> None:
    env, port, proc = served
    record = json.loads(ls.state_file(env).read_text())
    assert record["pid"] == proc.pid and record["port"] == port
    assert record["url"] == f"http://127.0.0.1:{port}" and record["data_dir"] == str(tmp_path / "lab")

    # not logged in: one line naming the lab it found and the command to run
    before = _cli(env, "dataset", "list")
    assert before.returncode == 1 and "Traceback" not in before.stderr
    assert f"127.0.0.1:{port}" in before.stderr and "countylab login" in before.stderr
    assert len(before.stderr.strip().splitlines()) == 1

    wrong = _cli(env, "login", "--username", "admin", "--password", "not-it")
    assert (
        wrong.returncode == 1
        and wrong.stderr.startswith("error: 登录失败")
        and "Traceback" not in wrong.stderr
    )
    assert not ls.credentials_file(env).exists()

    done = _cli(env, "login", "--username", "admin", "--password", PASSWORD)
    assert done.returncode == 0, done.stderr
    creds = ls.credentials_file(env)
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    stored = json.loads(creds.read_text())[f"http://127.0.0.1:{port}"]
    assert (
        stored["username"] == "admin"
        and stored["token"].startswith("clk_")
        and PASSWORD not in creds.read_text()
    )

    listed = _cli(env, "datasets", "list")  # the plural people type works too
    assert listed.returncode == 0, listed.stderr
    audit = _cli(env, "audit", "verify", "--data-dir", str(tmp_path / "lab"))
    assert audit.returncode == 0, audit.stderr

    out = _cli(env, "logout")
    assert out.returncode == 0 and "令牌已撤销" in out.stdout, out.stdout + out.stderr
    refused = _cli(env, "dataset", "list", "--token", stored["token"])
    assert refused.returncode == 1 and "Traceback" not in refused.stderr  # revoked on the lab

    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    assert not ls.state_file(env).exists()  # removed on exit
    lab = Lab(Settings(data_dir=tmp_path / "lab"))
    try:
        with lab.read() as s:
            made = s.execute(select(AuditEvent).where(AuditEvent.action == "token.create")).scalars().all()
            assert [e.actor for e in made] == ["admin"]  # created through the identity service, audited
    finally:
        lab.close()
