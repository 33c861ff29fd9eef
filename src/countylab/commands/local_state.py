"""Per-user files that let ``countylab …`` find the running lab and remember a login.

* ``$XDG_STATE_HOME/countylab/current.json`` (default ``~/.local/state/…``): the lab that
  ``countylab serve``/``demo`` started last — URL, host, port, pid, data folder.  A record whose
  process is gone is ignored and removed, so a stale file never sends commands to a dead port.
* ``$XDG_CONFIG_HOME/countylab/credentials.json`` (default ``~/.config/…``, mode 0600): the API
  token ``countylab login`` created, one per lab URL.

The URL a command uses is ``--url`` > ``COUNTYLAB_URL`` > the state file > the default; the
token is ``--token`` > ``COUNTYLAB_TOKEN`` > the stored one.  Both orders are written once here
(:func:`resolve_url`, :func:`resolve_token`) so every command agrees.  The environment is passed
in (``env``) so tests and the CLI entry point decide what it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
_WILDCARDS = {"0.0.0.0", "::", ""}  # noqa: S104 - listening everywhere: reach it on loopback


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def state_file(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_STATE_HOME") or str(_home(env) / ".local" / "state")
    return Path(base) / "countylab" / "current.json"


def credentials_file(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(_home(env) / ".config")
    return Path(base) / "countylab" / "credentials.json"


def lab_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in _WILDCARDS else host
    if ":" in shown and not shown.startswith("["):  # an IPv6 literal
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def normalise(url: str) -> str:
    """One key per lab: no trailing slash, lower-case scheme and host."""
    url = url.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


def _write_private(path: Path, data: Any) -> None:
    """Atomically, readable by the owner only (0600 in a 0700 folder)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


# -- the running lab -----------------------------------------------------------------------------


def record_server(host: str, port: int, data_dir: Path, env: Mapping[str, str] = os.environ) -> Path:
    """Remember the lab this process is about to serve; returns the file written."""
    path = state_file(env)
    _write_private(
        path,
        {
            "url": lab_url(host, port),
            "host": host,
            "port": port,
            "pid": os.getpid(),
            "data_dir": str(Path(data_dir).resolve()),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return path


def forget_server(env: Mapping[str, str] = os.environ) -> None:
    """Remove the record if this process wrote it (another lab started since keeps its own)."""
    path = state_file(env)
    if _read_json(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def running_server(env: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """The recorded lab if its process still runs; a stale record is removed."""
    path = state_file(env)
    data = _read_json(path)
    if not data:
        return None
    pid = data.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid) or not isinstance(data.get("url"), str):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return None
    return data


def resolve_url(url: str | None, env: Mapping[str, str] = os.environ) -> str:
    if url:
        return url
    if env.get("COUNTYLAB_URL"):
        return env["COUNTYLAB_URL"]
    running = running_server(env)
    return str(running["url"]) if running else DEFAULT_URL


# -- stored logins --------------------------------------------------------------------------------


def stored_login(url: str, env: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    entry = _read_json(credentials_file(env)).get(normalise(url))
    return entry if isinstance(entry, dict) and isinstance(entry.get("token"), str) else None


def store_login(url: str, entry: Mapping[str, Any], env: Mapping[str, str] = os.environ) -> Path:
    path = credentials_file(env)
    data = _read_json(path)
    data[normalise(url)] = dict(entry)
    _write_private(path, data)
    return path


def drop_login(url: str, env: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """Forget the stored login of ``url``; returns it (None when there was none)."""
    path = credentials_file(env)
    data = _read_json(path)
    entry = data.pop(normalise(url), None)
    if entry is not None:
        _write_private(path, data)
    return entry if isinstance(entry, dict) else None


def resolve_token(token: str | None, url: str, env: Mapping[str, str] = os.environ) -> str | None:
    if token:
        return token
    if env.get("COUNTYLAB_TOKEN"):
        return env["COUNTYLAB_TOKEN"]
    entry = stored_login(url, env)
    return str(entry["token"]) if entry else None
