"""Chinese word segmentation (分词) for catalog search, with jieba loaded once per process.

jieba reads a 5 MB dictionary on first use (about a second, more on a busy machine), so it is
loaded lazily, once per process, under a lock: in the background when the catalog page opens
(:func:`preload`), or at the first search.  :func:`load_seconds` reports how long the load took
(the benchmark and the server log print it).
Synonym words are added to the dictionary so that 公民身份号码 or 最低生活保障 stay whole.

jieba caches its prefix dictionary as a ``marshal`` file, by default in the shared ``/tmp``
(``/tmp/jieba.cache``), where any local user could plant one for the lab to load; ``marshal`` is
not safe against crafted data.  So the cache lives in a directory only the lab's user can write:
the lab's own data directory (:func:`use_cache_dir`, set by :class:`countylab.lab.Lab`) or, for a
process without a lab, a fresh private temporary directory.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

log = logging.getLogger("countylab.search")

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_ASCII = re.compile(r"[a-z0-9][a-z0-9_.]*")
_lock = threading.Lock()
_state: dict[str, Any] = {"tokenizer": None, "seconds": None, "words": set(), "cache_dir": None}


def use_cache_dir(path: os.PathLike[str] | str) -> None:
    """Keep jieba's dictionary cache under ``path`` (created private to this user)."""
    _state["cache_dir"] = str(path)


def _private_cache_dir() -> str:
    """A directory for jieba's cache that no other local user can write into."""
    wanted = _state["cache_dir"]
    if wanted:
        os.makedirs(wanted, mode=0o700, exist_ok=True)
        info = os.stat(wanted)
        if info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return str(wanted)
        log.warning("jieba cache directory %s is not private; using a temporary one", wanted)
    private = tempfile.mkdtemp(prefix="countylab-jieba-")  # 0700, fresh
    _state["cache_dir"] = private
    return private


def _jieba() -> Any:
    """The jieba module, imported in the calling thread: the warnings filter it needs is global
    state that must not be changed from a background thread."""
    with warnings.catch_warnings():
        # jieba 0.42 imports pkg_resources only to open its bundled dictionary file
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def _tokenizer(jieba: Any = None) -> Any:
    tok = _state["tokenizer"]
    if tok is not None:
        return tok
    jieba = jieba or _jieba()
    with _lock:
        if _state["tokenizer"] is None:
            started = time.perf_counter()
            tok = jieba.Tokenizer()
            tok.tmp_dir = _private_cache_dir()  # never the shared /tmp/jieba.cache
            tok.initialize()
            _state["seconds"] = time.perf_counter() - started
            _state["tokenizer"] = tok
            log.info("jieba dictionary loaded in %.2f s", _state["seconds"])
    return _state["tokenizer"]


def preload() -> None:
    """Load the dictionary in a background thread if nobody has yet: the catalog page calls this
    when it opens, so the dictionary is ready by the time someone has typed a search."""
    if _state["tokenizer"] is None and not _state.get("preloading"):
        _state["preloading"] = True
        threading.Thread(target=_tokenizer, args=(_jieba(),), name="jieba-preload", daemon=True).start()


def load_seconds() -> float | None:
    """Seconds the one-time dictionary load took in this process (``None`` until loaded)."""
    seconds: float | None = _state["seconds"]
    return seconds


def add_words(words: Iterable[str]) -> None:
    """Teach the segmenter whole words (synonyms); words it already knows cost nothing."""
    new = {w for w in words if CJK.search(w) and len(w) > 1} - _state["words"]
    if not new:
        return
    tok = _tokenizer()
    with _lock:
        for w in sorted(new):
            tok.add_word(w, freq=max(tok.suggest_freq(w), 1000))
        _state["words"] = _state["words"] | new
        _cut_index.cache_clear()


def index_tokens(text: str) -> tuple[str, ...]:
    """Tokens of a catalog text for the index: jieba's search-mode words (whole and parts),
    single CJK characters excluded, plus lower-cased ASCII words and their ``_`` parts."""
    return _cut_index(text.lower())


@lru_cache(maxsize=65536)
def _cut_index(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for run in CJK.findall(text):
        out.extend(w for w in _tokenizer().cut_for_search(run) if len(w) > 1)
        if len(run) > 1:
            out.append(run)
    for word in _ASCII.findall(text):
        out.append(word)
        parts = [p for p in word.split("_") if p]
        if len(parts) > 1:
            out.extend(parts)
    return tuple(out)


def query_words(text: str) -> list[str]:
    """A query chunk cut into words as jieba reads it (precise mode); punctuation dropped."""
    words = []
    for w in _tokenizer().cut(text.lower(), HMM=False):
        w = w.strip()
        if w and (CJK.search(w) or _ASCII.fullmatch(w)):
            words.append(w)
    return words
