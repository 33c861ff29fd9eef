"""ECharts comes from the npm registry at install time, pinned by package-lock.json, copied by
scripts/assets.sh into the git-ignored static/vendor/ with its licence, and fetches nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "src" / "countylab" / "web" / "static" / "vendor"
#: strings in ECharts that look like addresses but are never fetched: XML namespace names and
#: the licence references in its header comments
NOT_FETCHED = re.compile(
    r"https?://www\.w3\.org/[\w/.]*|https?://www\.apache\.org/licenses/LICENSE-2\.0"
    r"|https://github\.com/ecomfe/zrender/blob/master/LICENSE"
)


def test_the_lockfile_pins_echarts_and_package_json_agrees():
    pkg = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    wanted = pkg["dependencies"]["echarts"]
    locked = lock["packages"]["node_modules/echarts"]
    assert locked["version"] == wanted and locked["integrity"].startswith("sha512-")


def test_vendor_files_are_installed_ignored_and_fetch_nothing():
    js = VENDOR / "echarts.min.js"
    assert js.is_file() and (VENDOR / "echarts.LICENSE").is_file(), (
        "run scripts/assets.sh (scripts/venv.sh does)"
    )
    ignores = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "/src/countylab/web/static/vendor/" in ignores, "third-party code must never be committed"
    text = NOT_FETCHED.sub("", js.read_text(encoding="utf-8"))
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I)


def test_our_chart_component_is_offline_and_exposes_its_api():
    js = (ROOT / "src" / "countylab" / "web" / "static" / "chart.js").read_text(encoding="utf-8")
    assert "barsWithIntervals" in js and "root.chart" in js
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", js, re.I)
