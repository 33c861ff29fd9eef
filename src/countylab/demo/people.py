"""Households and residents tables (the 公安局 household register, with 民政 attributes).

Identifiers are generated to *pass* the real checks (GB 11643 check character via
``countylab.identifiers``, unique per person, 17th digit parity = sex) so that PII detectors
and validators behave on the demo county as they would on real registers.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from countylab.demo import names
from countylab.demo.geography import Geography
from countylab.demo.households import (
    CHILD,
    GRANDCHILD,
    HEAD,
    HUKOU,
    MIGRANT_REGIONS,
    RELATIONS,
    SPOUSE,
    Households,
    birth_dates,
    exact_age,
)
from countylab.demo.sampling import (
    IntArray,
    choice_by_group,
    join,
    prefixed_ids,
    take,
    weighted_index,
    zero_pad,
)
from countylab.identifiers import id_check_char

EDUCATION = ("未上学", "小学", "初中", "高中/中专", "大专", "本科及以上")
# adult education by age band: 18-29, 30-44, 45-59, 60-74, 75+
_EDU_P = np.array(
    [
        [0.005, 0.03, 0.27, 0.27, 0.23, 0.195],
        [0.01, 0.10, 0.42, 0.22, 0.14, 0.11],
        [0.03, 0.25, 0.47, 0.18, 0.05, 0.02],
        [0.12, 0.45, 0.30, 0.10, 0.02, 0.01],
        [0.35, 0.45, 0.14, 0.05, 0.007, 0.003],
    ]
)
OCCUPATIONS = (
    "学龄前儿童",
    "在校学生",
    "农林牧渔生产人员",
    "生产制造人员",
    "商业服务人员",
    "个体经营者",
    "专业技术人员",
    "办事人员",
    "外出务工人员",
    "无业",
    "离退休人员",
)
_WORK_P = np.array(
    [  # working age, by hukou: 农业, 城镇, 外地
        [0, 0, 0.30, 0.18, 0.12, 0.08, 0.04, 0.02, 0.18, 0.08, 0],
        [0, 0, 0.03, 0.25, 0.22, 0.12, 0.12, 0.10, 0.06, 0.10, 0],
        [0, 0, 0.05, 0.40, 0.25, 0.12, 0.05, 0.03, 0.02, 0.08, 0],
    ]
)
_OLD_P = np.array(
    [  # 60+, by hukou
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0.30, 0.15],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0.20, 0.80],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0.55, 0.45],
    ]
)
_OLD_FARMING = 0.55  # share of rural 60-74 year olds still farming
# median annual income (yuan) and log-sd by occupation; 离退休 split rural/urban below
_INCOME = {
    2: (30000, 0.5),
    3: (52000, 0.4),
    4: (45000, 0.45),
    5: (65000, 0.9),
    6: (85000, 0.45),
    7: (70000, 0.35),
    8: (58000, 0.4),
    9: (2400, 1.0),
}
MARITAL = ("未婚", "已婚", "离婚", "丧偶")
_MOBILE_PREFIX = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "177",
    "180",
    "181",
    "182",
    "183",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)


def households_table(geo: Geography, hh: Households, rng: np.random.Generator) -> pa.Table:
    """The household table; addresses are unique by construction (rank inside the village)."""
    n = len(hh.size)
    v = hh.village
    vstart = np.searchsorted(v, v, side="left")
    rank = np.arange(n) - vstart
    town = geo.village_town[v]
    is_comm = np.array([t == "社区" for t in geo.village_type])[v]
    prefix = join(names.COUNTY_NAME, take(geo.town_name, town), take(geo.village_name, v))
    # villages: 村民小组 (groups of ~35 households), house numbers per group
    per_village = np.bincount(v, minlength=geo.n_villages)[v]
    groups = np.maximum(1, np.ceil(per_village / 35)).astype(np.int64)
    group = rank % groups + 1
    house = 2 * (rank // groups) + 1 + rng.integers(0, 2, n)
    rural = join(
        prefix, pc.cast(pa.array(group), pa.string()), "组", pc.cast(pa.array(house), pa.string()), "号"
    )
    # communities: road, gate number, building and room
    road = (v * 7 + rank % 2) % len(names.ROADS)
    q = rank // 2
    gate = 2 * (q // 120) + 1 + 2 * (v % 40)
    r = q % 120
    building, room = r // 24 + 1, ((r % 24) // 2 + 1) * 100 + r % 2 + 1
    urban = join(
        prefix,
        take(names.ROADS, road),
        pc.cast(pa.array(gate), pa.string()),
        "号",
        pc.cast(pa.array(building), pa.string()),
        "幢",
        pc.cast(pa.array(room), pa.string()),
        "室",
    )
    address = pc.if_else(pa.array(is_comm), urban, rural)
    return pa.table(
        {
            "household_id": prefixed_ids("H", n, 7),
            "village_code": take(geo.village_code, v),
            "town_code": take(geo.town_code, town),
            "address": address,
            "household_size": pa.array(hh.size),
            "lives_alone": pa.array(hh.size == 1),
            "hukou_type": take(HUKOU, hh.hukou),
            "head_resident_id": join("R", zero_pad(np.cumsum(hh.size) - hh.size + 1, 7)),
        }
    )


def _person_names(
    rng: np.random.Generator, surname: IntArray, male: np.ndarray, birth_year: IntArray
) -> pa.Array:
    """Surname + one or two given-name characters in the fashion of the birth generation."""
    m = len(surname)
    era = np.searchsorted(np.array(names.ERA_BOUNDS), birth_year, side="right")
    out_given = np.empty(m, dtype=object)
    single = rng.random(m) < np.array(names.SINGLE_CHAR_GIVEN_SHARE)[era]
    for g in (0, 1):
        for e in range(3):
            pool = names.GIVEN_CHARS[g][e]
            sel = np.flatnonzero((male == (g == 0)) & (era == e))
            a = rng.integers(0, len(pool), len(sel))
            b = rng.integers(0, len(pool), len(sel))
            two = [pool[i] + pool[j] for i, j in zip(a.tolist(), b.tolist(), strict=True)]
            one = [pool[i] for i in a.tolist()]
            out_given[sel] = np.where(single[sel], one, two)
    sn = take([s for s, _ in names.SURNAMES], surname)
    return join(sn, pa.array(out_given, pa.string()))


def _id_numbers(
    rng: np.random.Generator, region: list[str], births: np.ndarray, male: np.ndarray
) -> list[str]:
    """Unique 18-character ID numbers: region + birth date + sequence (odd = male) + check character."""
    m = len(region)
    ymd = np.datetime_as_string(births, unit="D")
    body8 = np.char.replace(ymd.astype(str), "-", "")
    key = np.char.add(np.array(region, dtype=str), body8)
    _, inverse = np.unique(key, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    sorted_inv = inverse[order]
    first = np.searchsorted(sorted_inv, sorted_inv, side="left")
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m) - first
    base = rng.integers(0, 500, int(inverse.max()) + 1 if m else 0)[inverse]
    seq = 2 * ((base + rank) % 500) + male.astype(np.int64)
    bodies = np.char.add(key, np.char.zfill(seq.astype(str), 3)).tolist()
    return [b + id_check_char(b) for b in bodies]


def _mobiles(rng: np.random.Generator, m: int) -> np.ndarray:
    """Distinct 11-digit mobile numbers from real operator prefixes."""
    prefix = np.array(_MOBILE_PREFIX)[rng.integers(0, len(_MOBILE_PREFIX), m)]
    number = np.char.add(prefix, np.char.zfill(rng.integers(0, 10**8, m).astype(str), 8))
    while True:
        _, first_idx = np.unique(number, return_index=True)
        dup = np.ones(m, dtype=bool)
        dup[first_idx] = False
        if not dup.any():
            return number
        k = int(dup.sum())
        number[dup] = np.char.add(
            np.array(_MOBILE_PREFIX)[rng.integers(0, len(_MOBILE_PREFIX), k)],
            np.char.zfill(rng.integers(0, 10**8, k).astype(str), 8),
        )


def residents_table(
    geo: Geography, hh: Households, addresses: pa.Array, as_of: date, rng: np.random.Generator
) -> pa.Table:
    """One row per resident, ordered by household; ``resident_id`` is the privacy unit."""
    h = hh.member_household
    m = len(h)
    births = birth_dates(rng, hh.age, as_of)
    age = exact_age(births, as_of)
    birth_year = births.astype("datetime64[Y]").astype(np.int64) + 1970
    male = hh.male
    rel = hh.relation

    # family surname passes to children and grandchildren and to men of the family
    family = weighted_index(rng, [w for _, w in names.SURNAMES], len(hh.size))[h]
    own = weighted_index(rng, [w for _, w in names.SURNAMES], m)
    inherits = np.isin(rel, (CHILD, GRANDCHILD)) | (male & np.isin(rel, (HEAD, SPOUSE, 4)))
    surname = np.where(inherits, family, own)

    region_idx = hh.region[h]
    region = np.where(
        region_idx < 0, names.COUNTY_CODE, np.array(MIGRANT_REGIONS)[np.maximum(region_idx, 0)]
    ).tolist()
    hukou = hh.hukou[h]

    band = np.clip(np.searchsorted(np.array([30, 45, 60, 75]), age, side="right"), 0, 4)
    edu = choice_by_group(rng, band, _EDU_P)
    edu = np.where((hukou == 1) & (rng.random(m) < 0.3), np.minimum(edu + 1, 5), edu)
    edu = np.where(age < 18, np.select([age < 6, age < 12, age < 15], [0, 1, 2], 3), edu)

    occ = choice_by_group(rng, hukou, _WORK_P)
    old = choice_by_group(rng, hukou, _OLD_P)
    still_farming = (hukou == 0) & (age < 75) & (rng.random(m) < _OLD_FARMING)
    old = np.where(still_farming, 2, old)
    occ = np.where(age >= 60, old, occ)
    student = (age >= 6) & ((age < 18) | ((age < 23) & (edu >= 3) & (rng.random(m) < 0.5)))
    occ = np.where(student, 1, occ)
    occ = np.where(age < 6, 0, occ)

    income = np.zeros(m)
    for o, (median, sd) in _INCOME.items():
        sel = occ == o
        income[sel] = median * rng.lognormal(0.0, sd, int(sel.sum()))
    pension = occ == 10
    urban_pension = pension & (hukou == 1)
    income[pension] = 2600 * rng.lognormal(0.0, 0.25, int(pension.sum()))
    income[urban_pension] = 42000 * rng.lognormal(0.0, 0.3, int(urban_pension.sum()))
    income[(occ == 9) & (rng.random(m) < 0.5)] = 0
    income_yuan = (np.rint(income / 100) * 100).astype(np.int64)

    size = hh.size[h]
    has_spouse = (np.bincount(h[rel == SPOUSE], minlength=len(hh.size)) > 0)[h]
    married = ((rel == HEAD) & has_spouse) | (rel == SPOUSE) | (rel == 5)
    widowed_p = np.clip((age - 55) / 40, 0.05, 0.85)
    single_status = np.where(
        age < 28, 0, np.where(rng.random(m) < widowed_p, 3, np.where(rng.random(m) < 0.5, 0, 2))
    )
    marital = np.where(married, 1, single_status)
    adult_child = np.isin(rel, (CHILD,)) & (age >= 24) & (rng.random(m) < 0.45)
    marital = np.where(adult_child, 1, marital)
    marital = np.where(rel == GRANDCHILD, 0, marital)
    marital = np.where(rel == 4, np.where(rng.random(m) < 0.5, 1, 3), marital)
    marital = np.where(age < 20, 0, marital)

    has_phone = (age >= 14) & ~((age >= 85) & (rng.random(m) < 0.5))
    mobile = pa.array(np.where(has_phone, _mobiles(rng, m), ""), pa.string())
    mobile = pc.if_else(pa.array(has_phone), mobile, pa.scalar(None, pa.string()))

    village = hh.village[h]
    hh_ids = prefixed_ids("H", len(hh.size), 7)
    return pa.table(
        {
            "resident_id": prefixed_ids("R", m, 7),
            "name": _person_names(rng, surname, male, birth_year),
            "id_number": pa.array(_id_numbers(rng, region, births, male), pa.string()),
            "gender": pa.array(np.where(male, "男", "女"), pa.string()),
            "birth_date": pa.array(births.astype("datetime64[D]"), pa.date32()),
            "age": pa.array(age),
            "mobile": mobile,
            "household_id": hh_ids.take(pa.array(h)),
            "relation_to_head": take(RELATIONS, rel),
            "village_code": take(geo.village_code, village),
            "town_code": take(geo.town_code, geo.village_town[village]),
            "address": addresses.take(pa.array(h)),
            "education": take(EDUCATION, edu),
            "occupation": take(OCCUPATIONS, occ),
            "income": pa.array(income_yuan),
            "lives_alone": pa.array(size == 1),
            "hukou_type": take(HUKOU, hukou),
            "marital_status": take(MARITAL, marital),
        }
    )
