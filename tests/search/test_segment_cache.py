"""jieba's dictionary cache never lands in a directory another local user can write into."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def _run(code: str, tmp: Path) -> str:
    env = {**os.environ, "TMPDIR": str(tmp)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_cache_goes_to_the_configured_private_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    # a planted cache in the shared temporary directory would be loaded by default jieba
    (shared / "jieba.cache").write_bytes(b"not a marshal file")
    cache = tmp_path / "lab" / "cache" / "segment"
    used = _run(
        "from countylab.catalog import segment\n"
        f"segment.use_cache_dir({str(cache)!r})\n"
        "print(segment._tokenizer().tmp_dir)",
        shared,
    )
    assert used == str(cache)
    assert (cache / "jieba.cache").exists()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert (shared / "jieba.cache").read_bytes() == b"not a marshal file"


def test_without_a_lab_the_cache_is_a_fresh_private_directory(tmp_path: Path) -> None:
    (tmp_path / "jieba.cache").write_bytes(b"planted")
    used = _run("from countylab.catalog import segment\nprint(segment._tokenizer().tmp_dir)", tmp_path)
    assert Path(used).parent == tmp_path and Path(used).name.startswith("countylab-jieba-")
    assert stat.S_IMODE(Path(used).stat().st_mode) == 0o700
    assert (Path(used) / "jieba.cache").exists()


def test_a_lab_puts_the_cache_in_its_data_directory(tmp_path: Path) -> None:
    from countylab.catalog import segment
    from tests.support import build_lab

    lab = build_lab(tmp_path)
    try:
        assert segment._state["cache_dir"] == str(lab.settings.data_dir / "cache" / "segment")
    finally:
        lab.close()
