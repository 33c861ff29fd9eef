"""The public pages' cache: one build per key at a time, the old value served meanwhile."""

from __future__ import annotations

import threading
import time

import pytest

from countylab.showcase import cache


def test_twenty_callers_of_a_missing_key_share_one_build() -> None:
    cache.clear()
    builds: list[int] = []
    start = threading.Barrier(20)

    def build() -> int:
        builds.append(1)
        time.sleep(0.2)
        return 42

    got: list[int] = []

    def visit() -> None:
        start.wait()
        got.append(cache.cached(("single", 1), 10.0, build))

    threads = [threading.Thread(target=visit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [42] * 20
    assert len(builds) == 1


def test_an_expired_value_is_served_while_one_caller_rebuilds() -> None:
    cache.clear()
    assert cache.cached("swr", 0.05, lambda: "old") == "old"
    time.sleep(0.06)
    release, building = threading.Event(), threading.Event()
    rebuilt: list[str] = []

    def slow() -> str:
        building.set()
        release.wait(5)
        rebuilt.append("new")
        return "new"

    builder = threading.Thread(target=lambda: cache.cached("swr", 0.05, slow))
    builder.start()
    assert building.wait(5)  # the builder holds the key's gate (however busy the machine is)
    began = time.monotonic()
    assert cache.cached("swr", 0.05, lambda: "never") == "old"  # stale, at once
    assert time.monotonic() - began < 0.5
    release.set()
    builder.join()
    assert rebuilt == ["new"]
    assert cache.cached("swr", 10.0, lambda: "never") == "new"


def test_a_failed_build_leaves_the_key_buildable() -> None:
    cache.clear()

    def boom() -> int:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        cache.cached("fail", 1.0, boom)
    assert cache.cached("fail", 1.0, lambda: 7) == 7
