"""Enterprise register (市场监管局) and farmland plots (农业农村局).

Firm sizes and revenues are heavy-tailed as in any real register: most entries are one- or
two-person shops, a handful of manufacturers employ hundreds and dominate turnover — exactly
the case that dominance rules in output checking exist for.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from countylab.demo import names
from countylab.demo.geography import Geography
from countylab.demo.sampling import FloatArray, choice_by_group, prefixed_ids, take, weighted_index
from countylab.identifiers import uscc_check_char

# GB/T 4754-2017 sections: (code, name, share of register, revenue per employee in 万元, name patterns)
INDUSTRIES: tuple[tuple[str, str, float, float, tuple[str, ...]], ...] = (
    (
        "A",
        "农、林、牧、渔业",
        9.0,
        15,
        (
            "农业科技有限公司",
            "生态农业有限公司",
            "家庭农场",
            "茶叶专业合作社",
            "果蔬专业合作社",
            "养殖有限公司",
        ),
    ),
    ("B", "采矿业", 0.5, 60, ("矿业有限公司", "石料有限公司")),
    (
        "C",
        "制造业",
        14.0,
        55,
        (
            "机械制造有限公司",
            "五金制品有限公司",
            "食品有限公司",
            "纺织有限公司",
            "电子科技有限公司",
            "竹木制品有限公司",
            "塑料制品有限公司",
            "服饰有限公司",
        ),
    ),
    ("D", "电力、热力、燃气及水生产和供应业", 0.5, 120, ("水电开发有限公司", "新能源有限公司")),
    ("E", "建筑业", 6.0, 40, ("建筑工程有限公司", "装饰工程有限公司", "市政工程有限公司")),
    (
        "F",
        "批发和零售业",
        34.0,
        45,
        ("商贸有限公司", "贸易有限公司", "超市", "商行", "农资经营部", "电子商务有限公司"),
    ),
    ("G", "交通运输、仓储和邮政业", 4.0, 35, ("物流有限公司", "运输有限公司", "货运部")),
    ("H", "住宿和餐饮业", 10.0, 18, ("餐饮管理有限公司", "饭店", "农家乐", "小吃店", "民宿")),
    ("I", "信息传输、软件和信息技术服务业", 2.0, 40, ("网络科技有限公司", "信息技术有限公司")),
    ("K", "房地产业", 2.0, 90, ("房地产开发有限公司", "物业管理有限公司")),
    ("L", "租赁和商务服务业", 5.0, 30, ("企业管理咨询有限公司", "文化传媒有限公司", "劳务服务有限公司")),
    ("M", "科学研究和技术服务业", 2.5, 35, ("检测技术有限公司", "环保科技有限公司")),
    ("O", "居民服务、修理和其他服务业", 6.0, 12, ("家政服务有限公司", "汽车修理厂", "理发店", "家电维修部")),
    ("P", "教育", 1.0, 15, ("教育培训有限公司",)),
    ("Q", "卫生和社会工作", 1.0, 25, ("养老服务有限公司", "诊所")),
    ("R", "文化、体育和娱乐业", 1.5, 20, ("文化发展有限公司", "体育健身有限公司")),
)
ENTITY_TYPES = ("有限责任公司", "个人独资企业", "农民专业合作社", "个体工商户")
_USCC_HEAD = ("91", "91", "93", "92")  # registration authority 9 (市场监管) + entity kind


def _entity_type(pattern: str) -> int:
    if pattern.endswith("有限公司"):
        return 0
    if pattern.endswith("合作社"):
        return 2
    if pattern.endswith(("家庭农场", "修理厂")):
        return 1
    return 3


def _org_code(body8: str) -> str:
    """GB 11714 organisation code: 8 digits + check character (the 9th-17th USCC characters)."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    c = 11 - sum(int(d) * w for d, w in zip(body8, weights, strict=True)) % 11
    return body8 + ("X" if c == 10 else "0" if c == 11 else str(c))


def enterprises_table(
    geo: Geography, residents: pa.Table, n: int, as_of: date, rng: np.random.Generator
) -> pa.Table:
    """The enterprise register; legal persons are drawn from the county's adult residents."""
    ind = weighted_index(rng, [i[2] for i in INDUSTRIES], n)
    pattern_of = np.array([rng.integers(0, len(INDUSTRIES[i][4])) for i in ind.tolist()], dtype=np.int64)
    patterns = [INDUSTRIES[i][4][p] for i, p in zip(ind.tolist(), pattern_of.tolist(), strict=True)]
    etype = np.array([_entity_type(p) for p in patterns], dtype=np.int64)
    town_w: FloatArray = np.zeros(geo.n_towns)
    np.add.at(town_w, geo.village_town, geo.village_weight)
    town_w = town_w * np.where(np.array(geo.town_type) == "街道", 1.8, 1.0)
    town = weighted_index(rng, town_w, n)

    chars = names.BRAND_CHARS
    brand = [chars[a] + chars[b] for a, b in rng.integers(0, len(chars), (n, 2)).tolist()]
    small = etype == 3
    name_list = [
        names.COUNTY_NAME + (geo.town_name[t] if s else "") + b + p
        for t, s, b, p in zip(town.tolist(), small.tolist(), brand, patterns, strict=True)
    ]
    seen: set[str] = set()
    for i, nm in enumerate(name_list):  # registration refuses duplicate names: add a third character
        while nm in seen:
            extra = chars[int(rng.integers(0, len(chars)))]
            nm = nm.replace(brand[i], brand[i] + extra, 1)
            brand[i] = brand[i] + extra
        seen.add(nm)
        name_list[i] = nm

    org_bodies = rng.integers(10**7, 10**8, n).tolist()
    uscc = []
    for head, body in zip(np.array(_USCC_HEAD)[etype].tolist(), org_bodies, strict=True):
        first17 = head + names.COUNTY_CODE + _org_code(str(body))
        uscc.append(first17 + uscc_check_char(first17))

    emp = np.where(
        small, rng.integers(1, 6, n), np.minimum(np.rint(1 + rng.lognormal(1.6, 1.25, n)), 5000)
    ).astype(np.int64)
    emp = np.where(np.array([i[0] for i in INDUSTRIES])[ind] == "C", np.minimum(emp * 3, 8000), emp)
    per_head = np.array([i[3] for i in INDUSTRIES])[ind]
    revenue = emp * per_head * rng.lognormal(0, 0.6, n)
    revenue = np.where(rng.random(n) < 0.05, 0.0, np.round(revenue, 1))  # dormant firms report nothing

    years = np.arange(1995, as_of.year + 1)
    year = years[weighted_index(rng, np.exp(0.12 * (years - 1995)), n)]
    start = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    established = np.minimum(
        start + rng.integers(0, 365, n).astype("timedelta64[D]"), np.datetime64(as_of, "D")
    )

    age = residents.column("age").to_numpy()
    adults = np.flatnonzero((age >= 22) & (age <= 70))
    legal = pc.take(residents.column("name"), pa.array(adults[rng.integers(0, len(adults), n)]))

    order = np.argsort(established, kind="stable")  # register numbers follow registration dates
    table = pa.table(
        {
            "enterprise_id": prefixed_ids("E", n, 6),
            "uscc": pa.array(uscc, pa.string()).take(pa.array(order)),
            "name": pa.array(name_list, pa.string()).take(pa.array(order)),
            "entity_type": take(ENTITY_TYPES, etype[order]),
            "industry_code": take([i[0] for i in INDUSTRIES], ind[order]),
            "industry": take([i[1] for i in INDUSTRIES], ind[order]),
            "town_code": take(geo.town_code, town[order]),
            "employees": pa.array(emp[order]),
            "revenue_wan": pa.array(revenue[order]),
            "legal_person": legal.take(pa.array(order)),
            "established": pa.array(established[order], pa.date32()),
        }
    )
    return table


CROPS = ("水稻", "小麦", "玉米", "油菜", "大豆", "甘薯", "茶叶", "蔬菜", "水果")
_CROP_YIELD = (480, 380, 420, 160, 130, 1600, 55, 2400, 1300)  # kg per mu, irrigated reference
_CROP_BY_TERRAIN = {  # crop shares by terrain
    "城区": (0.15, 0.05, 0.03, 0.07, 0.03, 0.02, 0.02, 0.50, 0.13),
    "平原": (0.38, 0.14, 0.06, 0.16, 0.05, 0.03, 0.02, 0.11, 0.05),
    "丘陵": (0.20, 0.06, 0.10, 0.12, 0.06, 0.08, 0.20, 0.08, 0.10),
    "山区": (0.10, 0.02, 0.14, 0.06, 0.05, 0.10, 0.38, 0.05, 0.10),
}
IRRIGATION = ("渠灌", "井灌", "喷灌", "滴灌", "无灌溉")
_IRR_FACTOR = (1.0, 0.97, 1.02, 1.05, 0.78)


def farmland_table(
    geo: Geography, households: pa.Table, n_plots: int, as_of: date, rng: np.random.Generator
) -> pa.Table:
    """Plots of farming households over the last two crop years (one row per plot and year)."""
    hh_village = pc.index_in(households.column("village_code"), pa.array(geo.village_code)).to_numpy()
    farming = np.flatnonzero(
        (np.array(geo.village_type) == "村")[hh_village]
        & (households.column("hukou_type").to_numpy(zero_copy_only=False) == "农业户口")
    )
    owner = np.sort(farming[rng.integers(0, len(farming), n_plots)])
    village = hh_village[owner]
    town = geo.village_town[village]
    terrain = np.array([["城区", "平原", "丘陵", "山区"].index(t) for t in geo.terrain])[town]
    probs = np.array([_CROP_BY_TERRAIN[t] for t in ("城区", "平原", "丘陵", "山区")])
    crop1 = choice_by_group(rng, terrain, probs)
    rotate = (rng.random(n_plots) < 0.25) & (crop1 != 6)  # tea is perennial
    crop2 = np.where(rotate, choice_by_group(rng, terrain, probs), crop1)
    crop2 = np.where(crop2 == 6, crop1, crop2)
    big = rng.random(n_plots) < 0.03  # land transferred to large growers (种粮大户)
    area = np.where(big, rng.uniform(30, 300, n_plots), rng.lognormal(np.log(1.8), 0.75, n_plots))
    area = np.round(np.maximum(area, 0.2), 2)
    irr_p = np.where(
        np.isin(crop1, (0,))[:, None],
        [0.8, 0.1, 0.02, 0.0, 0.08],
        np.where(np.isin(crop1, (6, 8))[:, None], [0.05, 0.05, 0.3, 0.15, 0.45], [0.3, 0.2, 0.1, 0.05, 0.35]),
    )
    irr = (rng.random(n_plots)[:, None] > np.cumsum(irr_p, axis=1)).sum(axis=1)

    years = (as_of.year - 1, as_of.year)
    crop = np.concatenate([crop1, crop2])
    irr2 = np.concatenate([irr, irr])
    year_effect = np.concatenate([np.full(n_plots, 1.0), np.where(irr == 4, 0.9, 0.99)])  # dry summer
    yld = (
        np.array(_CROP_YIELD)[crop]
        * np.array(_IRR_FACTOR)[irr2]
        * year_effect
        * rng.lognormal(0, 0.12, 2 * n_plots)
    )
    ids = prefixed_ids("P", n_plots, 6)
    idx = np.concatenate([np.arange(n_plots), np.arange(n_plots)])
    order = np.lexsort((np.repeat(years, n_plots), idx))
    hh_ids = households.column("household_id").take(pa.array(owner))
    return pa.table(
        {
            "plot_id": ids.take(pa.array(idx[order])),
            "year": pa.array(np.repeat(np.array(years, dtype=np.int64), n_plots)[order]),
            "village_code": take(geo.village_code, village[idx[order]]),
            "town_code": take(geo.town_code, town[idx[order]]),
            "household_id": hh_ids.take(pa.array(idx[order])),
            "area_mu": pa.array(area[idx[order]]),
            "crop": take(CROPS, crop[order]),
            "irrigation": take(IRRIGATION, irr2[order]),
            "yield_kg_per_mu": pa.array(np.round(yld[order], 1)),
        }
    )
