"""What the test suite needs on the machine, and strict mode: under ``make test`` nothing skips.

Every test that needs a capability of the machine says so with ``@pytest.mark.needs("sandbox")``
(or calls ``need("sandbox")`` in a fixture).  Outside strict mode a missing capability skips the
test, so a contributor without Chromium can still run the rest.  In strict mode
(``COUNTYLAB_TEST_STRICT=1``, set by ``scripts/test.sh``):

* the run fails at once when any required capability is missing (``pytest_sessionstart``);
* ``need`` fails the test instead of skipping it;
* any skip at all, for whatever reason, is reported as a failure: CI has zero skips.

``COUNTYLAB_TEST_HIDE=sandbox,browser`` makes the probes report those capabilities missing; the
suite's own test of this guard uses it (tests/test_capabilities.py).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

STRICT = os.environ.get("COUNTYLAB_TEST_STRICT") == "1"
# scripts/test.sh sets both; COUNTYLAB_TEST_REQUIRE_PG alone keeps its older meaning (PostgreSQL only).
REQUIRE_PG = STRICT or os.environ.get("COUNTYLAB_TEST_REQUIRE_PG") == "1"
CHROMIUM = Path("/usr/bin/chromium")
TESSERACT_LANGUAGES = "chi_sim+eng"  # what the airlock's OCR check loads (airlock/checks/ocr.py)


def _sandbox() -> str | None:
    from countylab.sandbox import sandbox_available

    if sandbox_available():
        return None
    return "a working bubblewrap sandbox (bwrap, setpriv and the countylab-sandbox user)"


def _cgroups() -> str | None:
    from countylab.sandbox.cgroups import detect_cgroups

    return None if detect_cgroups() is not None else "a writable cgroup hierarchy (job limits)"


def _browser() -> str | None:
    if not CHROMIUM.exists():
        return f"Chromium at {CHROMIUM} (install chromium; never `playwright install`)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package (pip install -e .[dev])"
    return None


def _tesseract() -> str | None:
    from countylab.airlock.checks.ocr import find_tesseract

    if find_tesseract(TESSERACT_LANGUAGES) is None:
        return f"Tesseract OCR with the languages {TESSERACT_LANGUAGES} (tesseract-ocr-chi-sim)"
    return None


def _postgresql() -> str | None:
    url = os.environ.get("COUNTYLAB_TEST_PG_URL", "")
    if not url:
        return "PostgreSQL (COUNTYLAB_TEST_PG_URL; run the suite with `make test` or scripts/test.sh)"
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach it means the same thing here
        return f"PostgreSQL at COUNTYLAB_TEST_PG_URL ({type(exc).__name__})"
    finally:
        engine.dispose()
    return None


def _ray() -> str | None:
    return None if importlib.util.find_spec("ray") is not None else "Ray (pip extra `dev`)"


def _virtualenv() -> str | None:
    return None if sys.prefix != sys.base_prefix else "a virtualenv (.venv from scripts/venv.sh)"


PROBES: dict[str, Callable[[], str | None]] = {
    "sandbox": _sandbox,
    "cgroups": _cgroups,
    "browser": _browser,
    "tesseract": _tesseract,
    "postgresql": _postgresql,
    "ray": _ray,
    "virtualenv": _virtualenv,
}


def _hidden() -> set[str]:
    return {name.strip() for name in os.environ.get("COUNTYLAB_TEST_HIDE", "").split(",") if name.strip()}


@functools.cache
def missing(capability: str) -> str | None:
    """None when ``capability`` works here, else what is missing in words (probed once a run)."""
    if capability not in PROBES:
        raise KeyError(f"unknown capability {capability!r}; known: {sorted(PROBES)}")
    if capability in _hidden():
        return f"{capability} (hidden by COUNTYLAB_TEST_HIDE)"
    return PROBES[capability]()


def need(capability: str) -> None:
    """Skip the calling test when ``capability`` is missing, or fail it in strict mode."""
    problem = missing(capability)
    if problem is None:
        return
    if STRICT or (capability == "postgresql" and REQUIRE_PG):
        pytest.fail(f"required by the test script but missing: {problem}", pytrace=False)
    pytest.skip(f"missing: {problem}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"needs(*capabilities): the test needs these capabilities of the machine ({sorted(PROBES)})",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """In strict mode a missing capability fails the run before any test runs."""
    if not STRICT:
        return
    problems = [p for p in (missing(name) for name in PROBES) if p is not None]
    if problems:
        raise pytest.UsageError(
            "make test needs " + "; ".join(problems) + " — run `bash scripts/system-deps.sh test` as root"
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("needs"):
        for capability in marker.args:
            need(capability)


def _strict_failure(reason: str) -> str:
    return f"skipped, and COUNTYLAB_TEST_STRICT=1 allows no skips (make test): {reason}"


def _skip_reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = _strict_failure(_skip_reason(report.longrepr))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    report = yield
    if STRICT and report.skipped:  # a module-level pytest.skip(allow_module_level=True)
        report.outcome = "failed"
        report.longrepr = _strict_failure(_skip_reason(report.longrepr))
    return report
