"""Small vectorised sampling helpers shared by the demo generators.

Each table draws from its own generator, seeded from (seed, table name), so that changing how
one table is generated never shifts the random stream of another — the other files keep their
bytes and their checksums in the manifest.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
DateArray = npt.NDArray[np.datetime64]
BoolArray = npt.NDArray[np.bool_]


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """An independent, reproducible generator for one named stream of one county."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode("utf-8"))])


def weighted_index(rng: np.random.Generator, weights: Sequence[float] | FloatArray, n: int) -> IntArray:
    """``n`` indices drawn with probability proportional to ``weights``."""
    w = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(w), size=n, p=w / w.sum()).astype(np.int64)


def choice_by_group(rng: np.random.Generator, group: IntArray, probs: FloatArray) -> IntArray:
    """For each row, an index drawn from ``probs[group[row]]`` (rows of ``probs`` need not sum to 1).

    One uniform draw per row compared against the row's cumulative distribution: this is the
    vectorised form of "pick a category with probabilities that depend on the row's group".
    """
    p = np.asarray(probs, dtype=np.float64)
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(group))
    picked: IntArray = np.minimum((u[:, None] > cum[group]).sum(axis=1), p.shape[1] - 1).astype(np.int64)
    return picked


def take(pool: Sequence[str], idx: IntArray) -> pa.Array:
    """Strings of ``pool`` at ``idx`` as an Arrow array (fast, no Python loop per row)."""
    return pa.array(list(pool), pa.string()).take(pa.array(idx))


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of Arrow string arrays and literal strings."""
    return pc.binary_join_element_wise(*parts, "")


def zero_pad(values: IntArray, width: int) -> pa.Array:
    """Integers as fixed-width, zero-padded decimal strings."""
    return pc.utf8_lpad(pa.array(values.astype(np.int64)).cast(pa.string()), width, "0")


def prefixed_ids(prefix: str, n: int, width: int) -> pa.Array:
    """``prefix`` + 1-based serial numbers, e.g. R0000001."""
    return join(prefix, zero_pad(np.arange(1, n + 1, dtype=np.int64), width))


def group_starts(sorted_keys: IntArray, n_groups: int) -> tuple[IntArray, IntArray]:
    """(start, count) of each group id 0..n_groups-1 in an array sorted by group id."""
    counts = np.bincount(sorted_keys, minlength=n_groups).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return starts, counts


def pick_within_groups(
    rng: np.random.Generator, groups: IntArray, starts: IntArray, counts: IntArray
) -> IntArray:
    """For each row, a uniformly random position inside the block of its group.

    Rows whose group is empty get -1; callers fall back to another pool for them.
    """
    c = counts[groups]
    offset = np.floor(rng.random(len(groups)) * np.maximum(c, 1)).astype(np.int64)
    return np.where(c > 0, starts[groups] + offset, -1)
