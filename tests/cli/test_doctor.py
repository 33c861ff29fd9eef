"""``countylab doctor`` on this (real) host, and with pieces taken away.

The CLI runs as a real subprocess through the installed console script, so the language rule,
exit codes and JSON are what an operator gets.  "Missing Tesseract" is a real PATH without it
(a folder of links to every other program on PATH), not a patched function; the cgroup checks
read real mount tables and control files written into ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from countylab.config import Settings
from countylab.doctor import check_cgroups, run_checks

COUNTYLAB = str(Path(sys.executable).parent / "countylab")
HOST_CHECKS = {"sandbox", "sandbox_user", "cgroups", "fonts", "tesseract"}


def _run(args: list[str], *, lang: str = "en", path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUNTYLAB_LANG": lang}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([COUNTYLAB, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def initialised_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One lab made by ``countylab init`` for the CLI tests (the doctor only reads it)."""
    data = tmp_path_factory.mktemp("doctor") / "lab"
    done = _run(["init", "--data-dir", str(data), "--admin-password", "doctor-test-pw-1"])
    assert done.returncode == 0, done.stderr
    return data


def _path_without(program: str, tmp_path: Path) -> str:
    """A PATH with every program of the current PATH except ``program`` (links in one folder)."""
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir():
            continue
        for entry in Path(folder).iterdir():
            if entry.name != program and not (shadow / entry.name).exists():
                (shadow / entry.name).symlink_to(entry)
    return str(shadow)


@pytest.mark.needs("sandbox", "tesseract")
def test_this_host_passes_every_required_check(initialised_lab: Path, vetted_hashing: None) -> None:
    done = _run(["doctor", "--data-dir", str(initialised_lab), "--json"])
    report = json.loads(done.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert done.returncode == 0, done.stdout
    assert report["ok"] is True
    assert HOST_CHECKS | {"disk", "database"} <= set(by_name)
    assert not [c for c in report["checks"] if c["status"] == "fail"]
    for name in ("sandbox", "sandbox_user", "fonts", "tesseract", "disk", "database"):
        assert by_name[name]["status"] == "ok", by_name[name]
    assert "schema up to date" in by_name["database"]["found"]
    assert all(c["fix"] for c in report["checks"] if c["status"] != "ok")


@pytest.mark.needs("sandbox")
def test_missing_tesseract_fails_with_the_fix_in_both_languages(
    initialised_lab: Path, tmp_path: Path, vetted_hashing: None
) -> None:
    data = initialised_lab
    path = _path_without("tesseract", tmp_path)

    english = _run(["doctor", "--data-dir", str(data)], lang="en", path=path)
    assert english.returncode == 1, english.stdout
    assert "✘ tesseract: Tesseract is not installed" in english.stdout
    assert "fix: install it: apt-get install tesseract-ocr tesseract-ocr-chi-sim" in english.stdout
    assert "✔ fonts" in english.stdout and "✔ database" in english.stdout  # only Tesseract is gone
    assert "1 required check(s) failed" in english.stdout

    chinese = _run(["doctor", "--data-dir", str(data), "--json"], lang="zh-CN", path=path)
    assert chinese.returncode == 1
    tesseract = next(c for c in json.loads(chinese.stdout)["checks"] if c["name"] == "tesseract")
    assert tesseract["status"] == "fail"
    assert tesseract["found"].startswith("未安装 Tesseract")
    assert "apt-get install tesseract-ocr tesseract-ocr-chi-sim" in tesseract["fix"]


def test_an_uninitialised_lab_is_told_to_run_init_and_nothing_is_created(tmp_path: Path) -> None:
    data = tmp_path / "not-yet"
    report = run_checks(Settings(data_dir=data))
    database = next(c for c in report.checks if c.name == "database")
    assert not report.ok
    assert database.status == "fail"
    assert "countylab init" in database.fix_en and "countylab init" in database.fix_zh
    assert not data.exists()


def test_database_is_reported_empty_then_up_to_date_once_migrated(tmp_path: Path, db_url: str) -> None:
    """On SQLite and on PostgreSQL (a fresh, empty database from scripts/test.sh)."""
    from countylab.doctor import check_database
    from countylab.storage import migrate
    from countylab.storage.db import make_engine

    settings = Settings(data_dir=tmp_path / "lab", database_url=db_url)
    before = check_database(settings)
    assert before.status == "fail" and "countylab init" in before.fix_en
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    after = check_database(settings)
    assert after.status == "ok", after
    assert "schema up to date" in after.found_en


def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    from countylab.doctor import check_database

    settings = Settings(data_dir=tmp_path, database_url="postgresql://lab:s3cret-pw@127.0.0.1:9/countylab")
    check = check_database(settings)
    assert check.status == "fail"
    assert check.found_en.startswith("cannot reach the database postgresql+psycopg://lab:***@127.0.0.1:9/")
    assert "s3cret-pw" not in check.found_en + check.found_zh
    assert "database_url" in check.fix_en


def test_bad_settings_are_one_failed_check_and_the_host_is_still_checked(tmp_path: Path) -> None:
    config = tmp_path / "countylab.toml"
    config.write_text('port = "abc"\n')
    done = _run(["doctor", "--config", str(config), "--json"])
    report = json.loads(done.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert done.returncode == 1
    assert by_name["settings"]["status"] == "fail"
    assert "port" in by_name["settings"]["found"]
    assert {"sandbox", "cgroups", "fonts", "tesseract"} <= set(by_name)


def _cgroup_root(tmp_path: Path, controllers: str) -> tuple[Path, Path]:
    root = tmp_path / "cg2"
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup2 {root} cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n")
    own = tmp_path / "self-cgroup"
    own.write_text("0::/\n")
    return mounts, own


def test_cgroup_v2_with_the_job_controllers_is_ok(tmp_path: Path) -> None:
    mounts, own = _cgroup_root(tmp_path, "cpuset cpu io memory pids")
    check = check_cgroups(mounts, own)
    assert check.status == "ok"
    assert "cgroup v2" in check.found_en and "memory" in check.found_en


def test_cgroup_v2_without_memory_and_no_v1_fails(tmp_path: Path) -> None:
    mounts, own = _cgroup_root(tmp_path, "cpu pids")
    check = check_cgroups(mounts, own)
    assert check.status == "fail"
    assert "systemd.unified_cgroup_hierarchy=1" in check.fix_en


def test_cgroup_v1_only_is_a_warning_naming_missing_controllers(tmp_path: Path) -> None:
    memory = tmp_path / "memory"
    memory.mkdir()
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup {memory} cgroup rw,relatime,memory 0 0\n")
    check = check_cgroups(mounts, tmp_path / "no-such-file")
    assert check.status == "warn"
    assert "pids, cpu missing" in check.found_en
