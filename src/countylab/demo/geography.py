"""The administrative map of 青禾县: 12 towns (镇/街道) and 250 villages (村/社区).

The map is the same at every size: only the number of people, firms and plots scales.  That
keeps the public key sets (town and village codes) stable, so a query written against the tiny
county runs unchanged on the full one.  Codes follow the national statistical division scheme:
a 9-digit town code (county code + 001-099 for 街道, 101-199 for 镇) and a 12-digit village code
(town code + 001-199 for 社区居委会, 201-399 for 村委会).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from countylab.demo import names
from countylab.demo.sampling import FloatArray, IntArray

# (communities, villages) per town, by town type and terrain; 250 in all.
_VILLAGE_PLAN = {"城区": (10, 4), "平原": (2, 22), "丘陵": (2, 21), "山区": (2, 20)}
_TOWN_WEIGHT = {"城区": 1.9, "平原": 1.0, "丘陵": 0.8, "山区": 0.55}


@dataclass(frozen=True)
class Geography:
    """Towns and villages as parallel lists (index = position)."""

    town_code: list[str]
    town_name: list[str]
    town_type: list[str]
    terrain: list[str]
    village_code: list[str]
    village_name: list[str]
    village_type: list[str]
    village_town: IntArray  # index into the town lists
    village_weight: FloatArray  # share of the county's households living there

    @property
    def n_towns(self) -> int:
        return len(self.town_code)

    @property
    def n_villages(self) -> int:
        return len(self.village_code)


def _unique_names(
    rng: np.random.Generator, first: str, second: str, n: int, suffix: str, taken: set[str]
) -> list[str]:
    """``n`` distinct two-syllable place names not in ``taken`` (which is updated)."""
    combos = [a + b for a in first for b in second if a != b]
    order = rng.permutation(len(combos))
    out: list[str] = []
    for i in order:
        name = combos[int(i)] + suffix
        if name not in taken:
            taken.add(name)
            out.append(name)
            if len(out) == n:
                return out
    raise ValueError("place-name pool too small")


def town_codes() -> list[str]:
    """The 9-digit codes of ``names.TOWNS``, in order (fixed: no randomness)."""
    codes: list[str] = []
    street_no, town_no = 0, 100
    for _, kind, _ in names.TOWNS:
        if kind == "街道":
            street_no += 1
            codes.append(f"{names.COUNTY_CODE}{street_no:03d}")
        else:
            town_no += 1
            codes.append(f"{names.COUNTY_CODE}{town_no:03d}")
    return codes


def build_geography(rng: np.random.Generator) -> Geography:
    """Draw village names and sizes; the town list itself is fixed in ``names.TOWNS``."""
    town_code = town_codes()

    taken: set[str] = set()
    v_code: list[str] = []
    v_name: list[str] = []
    v_type: list[str] = []
    v_town: list[int] = []
    v_weight: list[float] = []
    town_weights = np.array([_TOWN_WEIGHT[t] for _, _, t in names.TOWNS]) * rng.lognormal(
        0, 0.15, len(names.TOWNS)
    )
    for ti, (_, _, terrain) in enumerate(names.TOWNS):
        n_comm, n_vill = _VILLAGE_PLAN[terrain]
        comm = _unique_names(rng, names.COMMUNITY_FIRST, names.COMMUNITY_SECOND, n_comm, "社区", taken)
        vill = _unique_names(rng, names.VILLAGE_FIRST, names.VILLAGE_SECOND, n_vill, "村", taken)
        # communities (the town seat) are denser than villages
        w = np.concatenate(
            [
                rng.lognormal(0, 0.35, n_comm) * (2.2 if terrain == "城区" else 3.0),
                rng.lognormal(0, 0.45, n_vill),
            ]
        )
        w = w / w.sum() * town_weights[ti]
        for k, nm in enumerate(comm + vill):
            is_comm = k < n_comm
            serial = k + 1 if is_comm else 201 + (k - n_comm)
            v_code.append(f"{town_code[ti]}{serial:03d}")
            v_name.append(nm)
            v_type.append("社区" if is_comm else "村")
            v_town.append(ti)
            v_weight.append(float(w[k]))
    weight = np.array(v_weight)
    return Geography(
        town_code=town_code,
        town_name=[t[0] for t in names.TOWNS],
        town_type=[t[1] for t in names.TOWNS],
        terrain=[t[2] for t in names.TOWNS],
        village_code=v_code,
        village_name=v_name,
        village_type=v_type,
        village_town=np.array(v_town, dtype=np.int64),
        village_weight=weight / weight.sum(),
    )
