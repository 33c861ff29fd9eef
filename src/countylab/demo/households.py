"""Household composition for an ageing rural county.

People are generated household by household rather than drawn from an age pyramid, so that
joins behave as on real registers: a couple is two people of opposite sex and similar age at
one address, children are 22-34 years younger than the head, old people often live alone.
The county-wide pyramid then *emerges*: a thin band of 20-40 year olds (they work in the cities),
a bulge at 50-70 and more women than men past 80.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from countylab.demo.geography import Geography
from countylab.demo.sampling import BoolArray, DateArray, IntArray, weighted_index

HEAD, SPOUSE, CHILD, GRANDCHILD, PARENT, CHILD_SPOUSE = range(6)
RELATIONS = ("户主", "配偶", "子女", "孙子女", "父母", "儿媳/女婿")

HUKOU = ("农业户口", "城镇户口", "外地户口")
_HUKOU_P = {"村": (0.85, 0.05, 0.10), "社区": (0.15, 0.68, 0.17)}
_SIZE_P = {
    "村": (0.21, 0.31, 0.19, 0.15, 0.09, 0.04, 0.01),
    "社区": (0.20, 0.30, 0.27, 0.15, 0.06, 0.015, 0.005),
}
# home counties of migrant households (real division codes of other provinces' counties)
MIGRANT_REGIONS = ("340822", "360424", "522425", "511623", "412723", "430524", "362329", "420222")


@dataclass(frozen=True)
class Households:
    """One row per household, plus one row per member (member arrays are ordered by household)."""

    village: IntArray
    size: IntArray
    hukou: IntArray  # index into HUKOU
    region: IntArray  # -1 = the county itself, else index into MIGRANT_REGIONS
    # members
    member_household: IntArray
    relation: IntArray
    age: IntArray
    male: BoolArray


def _gamma_age(
    rng: np.random.Generator, lo: float, shape: float, scale: float, hi: float, n: int
) -> IntArray:
    return np.minimum(lo + rng.gamma(shape, scale, n), hi).astype(np.int64)


def _head_ages(rng: np.random.Generator, size: IntArray) -> tuple[IntArray, IntArray]:
    """Age of each household head and a 'kind' flag: 0 elderly, 1 younger adult, 2 single parent."""
    n = len(size)
    u = rng.random(n)
    kind = np.ones(n, dtype=np.int64)
    # heads of families: young parents with school children, or grandparents of three generations
    age = np.where(
        rng.random(n) < 0.35, _gamma_age(rng, 27, 3.0, 3.5, 60, n), _gamma_age(rng, 47, 3.0, 4.0, 88, n)
    )
    one, two = size == 1, size == 2
    old1 = one & (u < 0.68)
    age[old1] = _gamma_age(rng, 60, 2.6, 5.5, 99, int(old1.sum()))
    young1 = one & ~old1
    age[young1] = _gamma_age(rng, 22, 2.5, 8.0, 59, int(young1.sum()))
    old2 = two & (u < 0.66)
    age[old2] = _gamma_age(rng, 55, 3.0, 4.8, 97, int(old2.sum()))
    young2 = two & (u >= 0.66) & (u < 0.88)
    age[young2] = rng.integers(22, 46, int(young2.sum()))
    single_parent = two & (u >= 0.88)
    age[single_parent] = rng.integers(38, 70, int(single_parent.sum()))
    kind[old1 | old2] = 0
    kind[single_parent] = 2
    return age, kind


def build_households(rng: np.random.Generator, geo: Geography, n_households: int) -> Households:
    """Draw households (sorted by village, so ids run village by village like a real register)."""
    village = np.sort(weighted_index(rng, geo.village_weight, n_households))
    is_comm = np.array([t == "社区" for t in geo.village_type])[village]
    size = np.empty(n_households, dtype=np.int64)
    hukou = np.empty(n_households, dtype=np.int64)
    for vt, mask in (("村", ~is_comm), ("社区", is_comm)):
        k = int(mask.sum())
        size[mask] = 1 + weighted_index(rng, _SIZE_P[vt], k)
        hukou[mask] = weighted_index(rng, _HUKOU_P[vt], k)
    region = np.where(hukou == 2, rng.integers(0, len(MIGRANT_REGIONS), n_households), -1)

    head_age, kind = _head_ages(rng, size)
    head_male = rng.random(n_households) < 0.82
    alone_old = (size == 1) & (kind == 0)
    head_male[alone_old] = rng.random(int(alone_old.sum())) < np.where(head_age[alone_old] >= 80, 0.25, 0.45)
    alone_young = (size == 1) & (kind == 1)
    head_male[alone_young] = rng.random(int(alone_young.sum())) < 0.66

    hh = np.repeat(np.arange(n_households, dtype=np.int64), size)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    k = np.arange(len(hh), dtype=np.int64) - starts[hh]
    m = len(hh)
    h_age, h_male, h_kind = head_age[hh], head_male[hh], kind[hh]

    relation = np.full(m, CHILD, dtype=np.int64)
    relation[k == 0] = HEAD
    relation[(k == 1) & (h_kind != 2)] = SPOUSE
    older_head = h_age >= 50
    relation[(k == 3) & older_head] = CHILD_SPOUSE
    relation[(k >= 4) & older_head] = GRANDCHILD
    relation[((k == 4) | (k == 5)) & ~older_head] = PARENT
    # skip-generation households (留守): grandparents with grandchildren, the parents work away
    skip = (rng.random(n_households) < 0.3)[hh] & older_head & (k >= 2)
    relation[skip] = GRANDCHILD

    age = np.zeros(m, dtype=np.int64)
    male = rng.random(m) < 0.52  # sex ratio at birth in the cohorts concerned
    age[k == 0] = h_age[k == 0]
    male[k == 0] = h_male[k == 0]

    sp = relation == SPOUSE
    shift = np.where(h_male[sp], -1.5, 1.5) + rng.normal(0, 3.0, int(sp.sum()))
    age[sp] = np.clip(np.rint(h_age[sp] + shift), 20, 100).astype(np.int64)
    male[sp] = ~h_male[sp]

    ch = relation == CHILD
    birth_gap = rng.integers(22, 35, m) + 2 * np.maximum(k - 2, 0)
    age[ch] = np.maximum(h_age[ch] - birth_gap[ch], 0)

    # the first child (k == 2) of an older head is the parent of the grandchildren
    first_child_age = np.where(k == 2, age, 0)
    fc = np.maximum.reduceat(first_child_age, starts)[hh] if m else first_child_age
    cs = relation == CHILD_SPOUSE
    age[cs] = np.clip(np.rint(fc[cs] + rng.normal(0, 3.0, int(cs.sum()))), 18, 100).astype(np.int64)
    male[cs] = rng.random(int(cs.sum())) < 0.2  # mostly daughters-in-law
    young_fc = cs & (fc < 22)
    relation[young_fc] = CHILD
    age[young_fc] = np.maximum(h_age[young_fc] - birth_gap[young_fc], 0)

    gc = (relation == GRANDCHILD) & ~skip
    age[gc] = fc[gc] - rng.integers(22, 33, int(gc.sum())) - (k[gc] - 4)
    age[skip] = rng.integers(0, 17, int(skip.sum()))
    bad = gc & (age < 0)
    relation[bad] = CHILD
    age[bad] = np.maximum(h_age[bad] - birth_gap[bad], 0)

    pa_ = relation == PARENT
    age[pa_] = np.minimum(h_age[pa_] + rng.integers(22, 35, int(pa_.sum())), 100)
    male[pa_ & (k == 4)] = rng.random(int((pa_ & (k == 4)).sum())) < 0.35
    male[pa_ & (k == 5)] = ~male[np.flatnonzero(pa_ & (k == 5)) - 1]

    return Households(
        village=village,
        size=size,
        hukou=hukou,
        region=region,
        member_household=hh,
        relation=relation,
        age=age,
        male=male,
    )


def birth_dates(rng: np.random.Generator, age: IntArray, as_of: date) -> DateArray:
    """Birth dates (datetime64[D]) about ``age`` years before ``as_of``; ``exact_age`` gives the age."""
    days_back = np.floor((age + rng.random(len(age))) * 365.2425).astype(np.int64)
    return np.datetime64(as_of, "D") - days_back.astype("timedelta64[D]")


def exact_age(births: DateArray, as_of: date) -> IntArray:
    """Completed years on ``as_of`` for birth dates (datetime64[D])."""
    year = births.astype("datetime64[Y]").astype(np.int64) + 1970
    month = births.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (births - births.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    not_yet = (month > as_of.month) | ((month == as_of.month) & (day > as_of.day))
    age: IntArray = (as_of.year - year - not_yet.astype(np.int64)).astype(np.int64)
    return age
