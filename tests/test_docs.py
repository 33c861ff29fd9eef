"""Documentation keeps up with the code.

Every setting, CLI command and /api route is documented; the three reference pages are exactly
what ``scripts/gen_docs.py`` generates now (``make docs`` refreshes them); relative links in the
docs resolve; the security-properties table in DEVELOPERS.md names files that exist.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import typer.main

from countylab.cli import app as cli_app
from countylab.config import Settings
from countylab.web.app import create_app, iter_api_routes
from tests.support import build_lab

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"


def load_gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(name: str) -> str:
    path = REFERENCE / name
    assert path.exists(), f"{path} is missing: run `make docs`"
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name):
    text = read("settings.md")
    assert f"| `{name}` | `COUNTYLAB_{name.upper()}` |" in text
    description = Settings.model_fields[name].description
    assert description, f"setting {name} has no description (it becomes its documentation)"
    assert description.replace("|", "\\|") in text


def _cli_paths() -> list[str]:
    """Command paths straight from the Typer app (not through gen_docs, so the two can disagree)."""
    root = typer.main.get_command(cli_app)
    ctx = root.make_context("countylab", [], resilient_parsing=True)
    paths = []
    for name in root.list_commands(ctx):
        sub = root.get_command(ctx, name)
        if hasattr(sub, "list_commands"):
            sub_ctx = sub.make_context(name, [], parent=ctx, resilient_parsing=True)
            paths += [f"countylab {name} {leaf}" for leaf in sub.list_commands(sub_ctx)]
        else:
            paths.append(f"countylab {name}")
    return paths


def test_every_cli_command_is_documented():
    paths = _cli_paths()
    expected = {
        "countylab demo",
        "countylab serve",
        "countylab init",
        "countylab user add",
        "countylab token create",
        "countylab audit verify",
        "countylab version",
    }
    assert expected <= set(paths)
    text = read("cli.md")
    for path in paths:
        assert f"## `{path}`" in text, f"{path} is not in docs/reference/cli.md"
        assert f"Usage: {path} " in text


def test_every_api_route_is_documented(tmp_path):
    lab = build_lab(tmp_path)
    try:
        routes = [r for r in iter_api_routes(create_app(lab)) if r.path.startswith("/api/")]
    finally:
        lab.close()
    assert len(routes) >= 20
    text = read("api.md")
    for route in routes:
        for method in route.methods or ():
            assert f"| {method} | `{route.path}` |" in text, f"{method} {route.path} missing from api.md"


@pytest.mark.parametrize("name", ["settings.md", "cli.md", "api.md", "policy.md"])
def test_checked_in_reference_is_freshly_generated(name):
    gen = load_gen_docs()
    assert read(name) == gen.PAGES[name](), f"docs/reference/{name} is out of date: run `make docs`"


def test_gen_docs_check_mode_detects_a_stale_page(tmp_path, monkeypatch, capsys):
    gen = load_gen_docs()
    for name in gen.PAGES:
        (tmp_path / name).write_text((REFERENCE / name).read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(gen, "REFERENCE", tmp_path)
    monkeypatch.setattr(gen, "ROOT", tmp_path.parent)
    assert gen.main(["--check"]) == 0
    (tmp_path / "cli.md").write_text("stale\n", encoding="utf-8")
    assert gen.main(["--check"]) == 1
    assert "cli.md" in capsys.readouterr().err
    assert gen.main([]) == 0 and (tmp_path / "cli.md").read_text(encoding="utf-8") != "stale\n"


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "DEVELOPERS.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_docs_have_the_four_sections():
    for section in ("tutorial", "how-to", "reference", "explanation"):
        assert any((ROOT / "docs" / section).glob("*.md")), f"docs/{section}/ is empty"


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file_part = target.split("#", 1)[0]
        assert (path.parent / file_part).exists(), f"{path.name}: broken link {target}"


def test_readme_starts_with_the_two_commands_and_shows_a_screenshot():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    demo, test = text.find("make demo"), text.find("make test")
    assert 0 <= demo < test < 1500, "README: `make demo` first, then `make test`, near the top"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images and all((ROOT / i).is_file() for i in images)


def test_security_table_names_files_that_exist():
    text = (ROOT / "DEVELOPERS.md").read_text(encoding="utf-8")
    section = text.split("## Security properties", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) >= 7
    for row in rows:
        for path in re.findall(r"`((?:src|tests)/[^`]+?\.py)(?:::\w+)?`", row):
            assert (ROOT / path).is_file(), f"DEVELOPERS.md security table: {path} does not exist"


def test_developers_layout_names_every_module_and_package():
    """A newcomer finds every top-level part of the package in DEVELOPERS.md's layout list."""
    text = (ROOT / "DEVELOPERS.md").read_text(encoding="utf-8")
    layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    package = ROOT / "src" / "countylab"
    parts = [p.name + "/" for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    parts += [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
    missing = [name for name in sorted(parts) if not re.search(rf"^\s+{re.escape(name)}\s", layout, re.M)]
    assert not missing, f"DEVELOPERS.md layout does not mention: {missing}"


def test_no_comment_or_doc_points_outside_the_repository():
    """The repository explains itself: no source, test or doc cites a design note it does not hold."""
    offenders = []
    for folder in ("src", "tests", "client", "docs", "bench", "scripts"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in {".py", ".md", ".html", ".sh", ".toml"} or ".venv" in path.parts:
                continue
            if path == Path(__file__):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if "DESIGN.md" in text or "../shared/" in text:
                offenders.append(str(path.relative_to(ROOT)))
    for name in ("README.md", "DEVELOPERS.md"):
        if "DESIGN.md" in (ROOT / name).read_text(encoding="utf-8"):
            offenders.append(name)
    assert not offenders, f"these cite a document outside the repository: {offenders}"
