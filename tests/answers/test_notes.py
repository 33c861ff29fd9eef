"""DP notes read in the page's language: the engine's English notes are read back against the
same templates, so a Chinese reader never gets an English sentence (item 6)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from countylab.privacy.notes import KEYS, localise, note

SAMPLES = {
    "pure": {"epsilon": "0.5", "measurements": 2, "contribution": 3},
    "clamped": {},
    "fixed_point": {},
    "partition": {"threshold": 17, "delta": "1e-06"},
}
ENGLISH_WORD = re.compile(r"\b(?!OpenDP\b)[A-Za-z]{3,}\b")


@pytest.mark.parametrize("key", KEYS)
def test_every_engine_note_reads_in_chinese_with_its_figures(key: str) -> None:
    english = note(key, **SAMPLES[key])
    chinese = localise(english, "zh-CN")
    assert chinese != english and not ENGLISH_WORD.search(chinese), chinese
    for value in SAMPLES[key].values():
        assert str(value) in chinese
    assert localise(english, "en") == english


def test_the_engine_writes_its_notes_from_the_templates() -> None:
    from countylab.privacy import engine

    source = Path(engine.__file__).read_text(encoding="utf-8")
    body = source[source.index("def _notes(") : source.index("return notes", source.index("def _notes("))]
    assert "ε-DP" not in body and set(re.findall(r'note\(\s*"(\w+)"', body)) == set(KEYS)


def test_a_note_from_an_older_version_is_shown_as_it_is() -> None:
    assert localise("some note cached long ago", "zh-CN") == "some note cached long ago"
