"""Front-end assets (issue 14, item 7): ECharts comes from npm at install time (lockfile), as a
step ``make demo`` and ``make test`` run; nothing is loaded from a CDN; no third-party code is
committed; the chart component is our own file and exposes ``countylab.chart.draw``."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "countylab" / "web"
#: a tag that makes the browser fetch: script/img/iframe/source src, link href, CSS url()/@import
FETCHING = re.compile(
    r"""<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import\s+["']?\s*(?:https?:)?//""",
    re.I,
)


def test_no_template_or_static_file_loads_anything_from_outside() -> None:
    files = [*(WEB / "templates").rglob("*.html")]
    files += [p for p in (WEB / "static").rglob("*") if p.suffix in {".js", ".css", ".svg", ".html"}]
    files = [p for p in files if "vendor" not in p.relative_to(WEB).parts]
    assert len(files) > 40
    offenders = [str(p.relative_to(WEB)) for p in files if FETCHING.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_detector_sees_a_cdn() -> None:
    for bad in (
        '<script src="https://cdn.jsdelivr.net/npm/echarts"></script>',
        "<link rel=stylesheet href='//unpkg.com/x.css'>",
        "body { background: url( https://example.com/a.png) }",
        '@import "http://x.org/a.css";',
    ):
        assert FETCHING.search(bad), bad
    assert not FETCHING.search('<script src="/static/vendor/echarts.min.js"></script><a href="/public">x</a>')


def test_no_third_party_code_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert tracked, "git ls-files listed nothing"
    vendored = [
        f
        for f in tracked
        if f.startswith(("node_modules/", "src/countylab/web/static/vendor/"))
        or re.search(r"(\.min\.js|echarts[^/]*\.js|htmx[^/]*\.js|jquery[^/]*\.js)$", f, re.I)
    ]
    assert vendored == []


def test_echarts_is_installed_from_the_lockfile_by_the_steps_make_demo_and_make_test_run() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/echarts"]["integrity"].startswith("sha512-")
    assets = (ROOT / "scripts" / "assets.sh").read_text()
    assert "npm ci" in assets and "static/vendor" in assets
    assert "scripts/assets.sh" in (ROOT / "scripts" / "venv.sh").read_text()
    make = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        body = make.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert "scripts/venv.sh" in body, f"make {target} does not install the assets"


def test_the_chart_component_is_ours_and_exposes_draw() -> None:
    js = (WEB / "static" / "chart.js").read_text(encoding="utf-8")
    assert "root.chart = { draw," in js and "barsWithIntervals" in js and "getDataURL" in js
    for kind in ('"line"', '"card"', '"table"', '"map"'):
        assert f"spec.kind === {kind}" in js
