"""Settings: where each value comes from, in which order, and how bad values are refused.

Precedence, highest first: keyword arguments (the CLI's options), ``COUNTYLAB_*`` environment
variables, the TOML file named by ``config_file``, the defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from countylab.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test from an environment without lab settings (the test script sets some)."""
    import os

    for name in list(os.environ):
        if name.startswith("COUNTYLAB_") and name.removeprefix("COUNTYLAB_").lower() in Settings.model_fields:
            monkeypatch.delenv(name)


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "countylab.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    s = Settings()
    assert s.port == 8000 and s.host == "127.0.0.1" and s.default_lang == "zh-CN"
    assert s.data_dir == Path("./lab-data") and s.config_file is None
    assert s.strict_audit is False and s.cookie_secure is False
    assert s.resolved_database_url == f"sqlite:///{(Path('./lab-data') / 'countylab.db').resolve()}"


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("COUNTYLAB_PORT", "9100")
    monkeypatch.setenv("COUNTYLAB_COUNTY_NAME", "青禾县")
    monkeypatch.setenv("COUNTYLAB_COOKIE_SECURE", "true")
    monkeypatch.setenv("COUNTYLAB_DEFAULT_LANG", "en")
    monkeypatch.setenv("COUNTYLAB_DATABASE_URL", "postgresql://lab@db.local/county")
    s = Settings()
    assert (s.port, s.county_name, s.cookie_secure, s.default_lang) == (9100, "青禾县", True, "en")
    assert s.resolved_database_url == "postgresql+psycopg://lab@db.local/county"


def test_toml_file_by_keyword_and_by_environment(tmp_path, monkeypatch):
    path = toml(tmp_path, 'port = 9200\ncounty_name = "文件县"\nupload_max_mb = 10\n')
    s = Settings(config_file=path)
    assert (s.port, s.county_name, s.upload_max_mb) == (9200, "文件县", 10)
    monkeypatch.setenv("COUNTYLAB_CONFIG_FILE", str(path))
    assert Settings().port == 9200


def test_precedence_kwargs_over_env_over_file_over_defaults(tmp_path, monkeypatch):
    path = toml(tmp_path, 'port = 9300\nhost = "0.0.0.0"\ncounty_name = "文件县"\nsession_hours = 3\n')
    monkeypatch.setenv("COUNTYLAB_PORT", "9301")
    monkeypatch.setenv("COUNTYLAB_HOST", "10.0.0.5")
    s = Settings(config_file=path, port=9302)
    assert s.port == 9302  # keyword beats environment and file
    assert s.host == "10.0.0.5"  # environment beats file
    assert s.county_name == "文件县" and s.session_hours == 3  # file beats defaults
    assert s.token_days == 90  # default where nobody says otherwise


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"default_lang": "fr"}, "default_lang"),
        ({"session_hours": 0}, "session_hours"),
        ({"upload_max_mb": -1}, "upload_max_mb"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_bad_values_name_the_setting(kwargs, field):
    with pytest.raises(ValidationError) as info:
        Settings(**kwargs)
    assert [e["loc"][0] for e in info.value.errors()] == [field]


def test_bad_values_from_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("COUNTYLAB_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()
    monkeypatch.delenv("COUNTYLAB_PORT")
    with pytest.raises(ValidationError, match="colour"):
        Settings(config_file=toml(tmp_path, 'colour = "blue"\n'))
    with pytest.raises(ValidationError, match="default_lang"):
        Settings(config_file=toml(tmp_path, 'default_lang = "de"\n'))
    with pytest.raises(ValueError, match="config file not found"):
        Settings(config_file=tmp_path / "missing.toml")
    with pytest.raises(ValueError):
        Settings(config_file=toml(tmp_path, "port = \n"))


def test_derived_paths(tmp_path):
    s = Settings(data_dir=tmp_path)
    assert s.warehouse_dir == tmp_path / "warehouse" and s.seed_dir == tmp_path / "seed"
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'countylab.db'}"


def test_a_retired_setting_in_an_old_config_file_is_ignored_not_refused(tmp_path, caplog):
    """An upgraded county server keeps starting: ``secret_key`` did nothing and is dropped with a
    warning, while an unknown key (a typo) is still refused."""
    old = tmp_path / "lab.toml"
    old.write_text(f'data_dir = "{tmp_path}"\nsecret_key = "kept-from-v0"\n', encoding="utf-8")
    settings = Settings(config_file=old)
    assert settings.data_dir == tmp_path
    assert "secret_key" in caplog.text and "ignored" in caplog.text
    typo = tmp_path / "typo.toml"
    typo.write_text(f'data_dir = "{tmp_path}"\nsecret_kye = "x"\n', encoding="utf-8")
    with pytest.raises(ValidationError):
        Settings(config_file=typo)
