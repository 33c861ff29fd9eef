"""The strict-mode guard of tests/capabilities.py, run as a separate pytest in a subprocess:
under ``make test`` a missing capability fails the run, and so does any skip at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.capabilities import PROBES

ROOT = Path(__file__).resolve().parents[1]
EVERYTHING = pytest.mark.needs(*PROBES)  # the inner strict run passes its guard only with all of them


def _pytest(args: list[str], *, cwd: Path, strict: bool, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("COUNTYLAB_TEST_", "PYTEST_"))}
    if "COUNTYLAB_TEST_PG_URL" in os.environ:
        base["COUNTYLAB_TEST_PG_URL"] = os.environ["COUNTYLAB_TEST_PG_URL"]
    if strict:
        base["COUNTYLAB_TEST_STRICT"] = "1"
    base["PYTHONPATH"] = str(ROOT)
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _path_without(tmp_path: Path, program: str) -> str:
    """A PATH with every program of today's PATH except ``program`` (linked into one folder)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or not Path(folder).is_dir():
            continue
        for entry in Path(folder).iterdir():
            target = bin_dir / entry.name
            if entry.name != program and not target.exists() and os.access(entry, os.X_OK):
                target.symlink_to(entry)
    return str(bin_dir)


def test_a_missing_program_fails_the_strict_run_before_any_test(tmp_path: Path) -> None:
    path = _path_without(tmp_path, "tesseract")
    run = _pytest(["tests/test_policy.py", "-q"], cwd=ROOT, strict=True, PATH=path)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "make test needs" in run.stderr and "Tesseract" in run.stderr, run.stderr
    assert " passed" not in run.stdout  # failed at the start, not after running tests


def test_each_hidden_capability_is_named_and_fails_the_strict_run() -> None:
    run = _pytest(
        ["tests/test_policy.py", "-q"], cwd=ROOT, strict=True, COUNTYLAB_TEST_HIDE="sandbox,browser,ray"
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    for name in ("sandbox", "browser", "ray"):
        assert f"{name} (hidden by COUNTYLAB_TEST_HIDE)" in run.stderr, run.stderr


INNER = """
import pytest

@pytest.mark.needs("sandbox")
def test_needs_the_sandbox():
    pass

def test_skips_for_another_reason():
    pytest.skip("no reason at all")

def test_passes():
    pass
"""


def _inner_suite(tmp_path: Path) -> Path:
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's configuration
    return tmp_path


def test_outside_strict_mode_a_missing_capability_skips(tmp_path: Path) -> None:
    folder = _inner_suite(tmp_path)
    run = _pytest(
        ["-p", "tests.capabilities", "-q", "-rs"], cwd=folder, strict=False, COUNTYLAB_TEST_HIDE="sandbox"
    )
    assert run.returncode == pytest.ExitCode.OK, run.stdout + run.stderr
    assert "1 passed, 2 skipped" in run.stdout, run.stdout
    assert "sandbox (hidden by COUNTYLAB_TEST_HIDE)" in run.stdout


@EVERYTHING
def test_in_strict_mode_every_skip_is_a_failure(tmp_path: Path) -> None:
    folder = _inner_suite(tmp_path)
    run = _pytest(["-p", "tests.capabilities", "-q"], cwd=folder, strict=True)
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    assert "1 failed, 2 passed" in run.stdout, run.stdout  # the sandbox is there: only the bare skip
    assert "allows no skips" in run.stdout and "no reason at all" in run.stdout
    assert "skipped" not in run.stdout.splitlines()[-1]
