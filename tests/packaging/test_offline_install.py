"""The lab and its client build as wheels and install into a fresh venv with no network.

Why this shape (it has to stay well under a minute and must not reach any index):

* The sources are copied to ``tmp_path`` and both wheels built there with the real build backend
  (``pip wheel --no-build-isolation``: setuptools comes from the dev environment, pinned in
  constraints.txt), so the build writes nothing into the checkout.
* The fresh venv gets the third-party packages of the dev environment through one ``.pth`` line
  naming a folder of links to its site-packages **without** countylab, countylab-client and the
  editable-install hooks.  Downloading or copying ~1 GB of scientific wheels would take minutes;
  the third-party side of an offline install is what ``make offline-bundle`` ships, and it is
  exercised by running that.  What this test proves is our side: the metadata, the declared
  client dependency and the entry point.
* pip runs ``--isolated`` (no user or site config, so no configured find-links or extra
  indexes), ``--no-index`` with only the wheel folder, and with proxies pointing at a closed
  port: any attempt to reach a network fails.
* The lab wheel alone must fail to install for want of ``countylab-client`` (the dependency is
  declared, and nothing else provides it); with the client wheel beside it, pip pulls it in by
  that declaration, and ``countylab --help`` and ``countylab doctor --help`` run from the venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"
DEAD_PROXY = "http://127.0.0.1:9"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(http_proxy=DEAD_PROXY, https_proxy=DEAD_PROXY, HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY)
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    return env


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120)


def _copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".mypy_cache")
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=ignore)
    shutil.copytree(ROOT / "client", dest / "client", ignore=ignore)
    return dest


def _third_party_overlay(dest: Path) -> Path:
    """Links to the dev environment's site-packages entries, minus our packages and .pth hooks."""
    dest.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name
        if name.startswith(("countylab", "__editable__")) or name.endswith(".pth") or name == "__pycache__":
            continue
        (dest / name).symlink_to(entry)
    return dest


def test_wheels_install_offline_and_the_cli_runs(tmp_path: Path) -> None:
    sources = _copy_sources(tmp_path / "src")
    wheels = tmp_path / "wheels"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--isolated", "--no-index", "--no-build-isolation",
         "--no-deps", "-q", "-w", str(wheels), "./client", "."],
        cwd=sources,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    lab_wheel = next(wheels.glob("countylab-*.whl"))
    client_wheel = next(wheels.glob("countylab_client-*.whl"))

    client_version = tomllib.loads((ROOT / "client/pyproject.toml").read_text())["project"]["version"]
    with zipfile.ZipFile(lab_wheel) as whl:
        names = set(whl.namelist())
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    ]
    assert f"countylab-client=={client_version}" in requires
    runtime = [r for r in requires if "extra ==" not in r]  # what `pip install countylab` pulls in
    assert not [r for r in runtime if r.startswith(("itsdangerous", "httpx2"))]
    assert any(r.startswith("httpx2") and 'extra == "dev"' in r for r in requires)  # TestClient needs it
    for data_file in (
        "countylab/i18n/zh-CN.json",
        "countylab/i18n/zh-CN/search.json",  # the per-area catalogs
        "countylab/web/static/vendor/echarts.min.js",  # built from package-lock.json, not committed
        "countylab/web/static/vendor/echarts.LICENSE",
        "countylab/storage/migrations/env.py",
        "countylab/py.typed",
    ):
        assert data_file in names

    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path).returncode == 0
    site = venv / "lib" / PYTHON_DIR / "site-packages"
    (site / "_third_party.pth").write_text(f"{_third_party_overlay(tmp_path / 'third-party')}\n")
    python = str(venv / "bin" / "python")
    pip_install = [python, "-m", "pip", "install", "--isolated", "--no-index", "-q", "--find-links"]

    lab_only = tmp_path / "lab-only"
    lab_only.mkdir()
    shutil.copy2(lab_wheel, lab_only)
    refused = _run([*pip_install, str(lab_only), "countylab"], cwd=tmp_path)
    assert refused.returncode != 0
    assert "countylab-client" in refused.stderr

    installed = _run([*pip_install, str(wheels), "countylab"], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    where = _run(
        [python, "-c", "import countylab, countylab_client as c; print(countylab.__file__, c.__file__)"],
        tmp_path,
    )
    assert where.stdout.split() and all(p.startswith(str(site)) for p in where.stdout.split()), where.stdout
    assert client_wheel.name.startswith(f"countylab_client-{client_version}-")

    countylab = str(venv / "bin" / "countylab")
    top = _run([countylab, "--help"], cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    assert "doctor" in top.stdout
    doctor = _run([countylab, "doctor", "--help"], cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    assert "--json" in doctor.stdout
