"""Catalog metadata of the demo datasets, written down once next to the generator.

Column order here is the column order of the files; ``generator`` refuses to write a table whose
columns differ, so the manifest can never describe a file that is not there.
"""

from __future__ import annotations

from dataclasses import dataclass

from countylab.demo.care import SERVICE_TYPES
from countylab.demo.economy import CROPS, INDUSTRIES
from countylab.demo.manifest import KeySet

TOWN_KEYS = KeySet(column="town_code", source="towns.town_code")
VILLAGE_KEYS = KeySet(column="village_code", source="villages.village_code")
CIVIL, POLICE, AGRI = (
    ("民政局", "civil affairs"),
    ("公安局", "public security"),
    ("农业农村局", "agriculture"),
)
MARKET, TRANSPORT, ECO = (
    ("市场监管局", "market regulation"),
    ("交通运输局", "transport"),
    ("生态环境局", "ecology"),
)


@dataclass(frozen=True)
class DatasetMeta:
    name: str
    title_zh: str
    title_en: str
    description_zh: str
    department: tuple[str, str]
    privacy_unit: str
    privacy_unit_column: str | None
    suggested_grade: str
    update_frequency: str
    primary_key: tuple[str, ...]
    key_sets: tuple[KeySet, ...]
    tags: tuple[str, ...]
    columns: tuple[tuple[str, str, str], ...]  # (name, title_zh, semantic)


CATALOG: tuple[DatasetMeta, ...] = (
    DatasetMeta(
        "towns",
        "乡镇（街道）",
        "Towns and sub-districts",
        "青禾县下辖镇、街道及常住人口。",
        CIVIL,
        "none",
        None,
        "general_1",
        "static",
        ("town_code",),
        (TOWN_KEYS,),
        ("行政区划", "基础数据"),
        (
            ("town_code", "乡镇代码", "key"),
            ("town_name", "乡镇名称", "place_name"),
            ("type", "类型", "category"),
            ("terrain", "地形", "category"),
            ("population", "人口", "measure"),
        ),
    ),
    DatasetMeta(
        "villages",
        "村（社区）",
        "Villages and communities",
        "青禾县各村民委员会、社区居民委员会。",
        CIVIL,
        "none",
        None,
        "general_1",
        "static",
        ("village_code",),
        (VILLAGE_KEYS, TOWN_KEYS),
        ("行政区划", "基础数据"),
        (
            ("village_code", "村（社区）代码", "key"),
            ("village_name", "村（社区）名称", "place_name"),
            ("town_code", "乡镇代码", "foreign_key:towns.town_code"),
            ("type", "类型", "category"),
        ),
    ),
    DatasetMeta(
        "households",
        "户籍户信息",
        "Households",
        "户籍登记的户：住址、户规模、户籍类型、户主。",
        POLICE,
        "person",
        "household_id",
        "general_3",
        "daily",
        ("household_id",),
        (VILLAGE_KEYS, TOWN_KEYS),
        ("人口", "户籍", "个人信息"),
        (
            ("household_id", "户编号", "privacy_unit_id"),
            ("village_code", "村（社区）代码", "foreign_key:villages.village_code"),
            ("town_code", "乡镇代码", "foreign_key:towns.town_code"),
            ("address", "住址", "address"),
            ("household_size", "户人数", "measure"),
            ("lives_alone", "独居", "flag"),
            ("hukou_type", "户籍类型", "category"),
            ("head_resident_id", "户主编号", "foreign_key:residents.resident_id"),
        ),
    ),
    DatasetMeta(
        "residents",
        "常住人口信息",
        "Residents",
        "人口基础信息：身份、联系方式、住址、受教育程度、职业与收入。",
        POLICE,
        "person",
        "resident_id",
        "general_4",
        "daily",
        ("resident_id",),
        (VILLAGE_KEYS, TOWN_KEYS),
        ("人口", "个人信息", "敏感个人信息"),
        (
            ("resident_id", "人员编号", "privacy_unit_id"),
            ("name", "姓名", "person_name"),
            ("id_number", "公民身份号码", "id_number"),
            ("gender", "性别", "category"),
            ("birth_date", "出生日期", "birth_date"),
            ("age", "年龄", "measure"),
            ("mobile", "手机号码", "mobile"),
            ("household_id", "户编号", "foreign_key:households.household_id"),
            ("relation_to_head", "与户主关系", "category"),
            ("village_code", "村（社区）代码", "foreign_key:villages.village_code"),
            ("town_code", "乡镇代码", "foreign_key:towns.town_code"),
            ("address", "住址", "address"),
            ("education", "受教育程度", "category"),
            ("occupation", "职业", "category"),
            ("income", "年收入（元）", "measure"),
            ("lives_alone", "独居", "flag"),
            ("hukou_type", "户籍类型", "category"),
            ("marital_status", "婚姻状况", "category"),
        ),
    ),
    DatasetMeta(
        "enterprises",
        "市场主体登记信息",
        "Enterprise register",
        "企业、农民专业合作社和个体工商户登记信息及从业人员、营业收入。",
        MARKET,
        "enterprise",
        "enterprise_id",
        "general_2",
        "daily",
        ("enterprise_id",),
        (TOWN_KEYS, KeySet(column="industry", values=[i[1] for i in INDUSTRIES])),
        ("市场主体", "经济"),
        (
            ("enterprise_id", "主体编号", "privacy_unit_id"),
            ("uscc", "统一社会信用代码", "uscc"),
            ("name", "名称", "org_name"),
            ("entity_type", "主体类型", "category"),
            ("industry_code", "行业门类代码", "category"),
            ("industry", "行业门类", "category"),
            ("town_code", "乡镇代码", "foreign_key:towns.town_code"),
            ("employees", "从业人员数", "measure"),
            ("revenue_wan", "营业收入（万元）", "measure"),
            ("legal_person", "法定代表人", "person_name"),
            ("established", "成立日期", "date"),
        ),
    ),
    DatasetMeta(
        "farmland_plots",
        "耕地地块种植信息",
        "Farmland plots",
        "农户承包地块的面积、作物、灌溉方式和亩产（近两年）。",
        AGRI,
        "person",
        "household_id",
        "general_2",
        "static",
        ("plot_id", "year"),
        (VILLAGE_KEYS, TOWN_KEYS, KeySet(column="crop", values=list(CROPS))),
        ("农业", "耕地"),
        (
            ("plot_id", "地块编号", "key"),
            ("year", "年度", "category"),
            ("village_code", "村代码", "foreign_key:villages.village_code"),
            ("town_code", "乡镇代码", "foreign_key:towns.town_code"),
            ("household_id", "承包户编号", "foreign_key:households.household_id"),
            ("area_mu", "面积（亩）", "measure"),
            ("crop", "作物", "category"),
            ("irrigation", "灌溉方式", "category"),
            ("yield_kg_per_mu", "亩产（公斤）", "measure"),
        ),
    ),
    DatasetMeta(
        "elderly_care_records",
        "居家养老服务记录",
        "Home elderly care records",
        "60周岁以上老年人接受助餐、助浴、助洁、助医等居家养老服务的记录。",
        CIVIL,
        "person",
        "resident_id",
        "general_4",
        "daily",
        ("record_id",),
        (KeySet(column="service_type", values=list(SERVICE_TYPES)),),
        ("养老", "民生", "个人信息"),
        (
            ("record_id", "记录编号", "key"),
            ("resident_id", "服务对象编号", "foreign_key:residents.resident_id"),
            ("service_date", "服务日期", "date"),
            ("service_type", "服务类型", "category"),
            ("duration_min", "服务时长（分钟）", "measure"),
            ("provider", "服务机构", "org_name"),
            ("cost_yuan", "服务费用（元）", "measure"),
        ),
    ),
    DatasetMeta(
        "traffic_counts",
        "路口交通流量",
        "Junction traffic counts",
        "重点路口每小时机动车流量和平均车速。",
        TRANSPORT,
        "none",
        None,
        "general_1",
        "hourly",
        ("junction_id", "hour"),
        (TOWN_KEYS,),
        ("交通", "物联感知"),
        (
            ("junction_id", "路口编号", "key"),
            ("junction_name", "路口名称", "place_name"),
            ("town_code", "乡镇代码", "foreign_key:towns.town_code"),
            ("hour", "时段", "timestamp"),
            ("vehicles", "车流量（辆）", "measure"),
            ("avg_speed_kmh", "平均车速（公里/小时）", "measure"),
        ),
    ),
    DatasetMeta(
        "air_quality",
        "空气质量小时数据",
        "Hourly air quality",
        "空气自动监测站小时浓度（微克/立方米）和AQI。",
        ECO,
        "none",
        None,
        "general_1",
        "hourly",
        ("station_id", "hour"),
        (TOWN_KEYS,),
        ("生态环境", "物联感知"),
        (
            ("station_id", "站点编号", "key"),
            ("station_name", "站点名称", "place_name"),
            ("town_code", "乡镇代码", "foreign_key:towns.town_code"),
            ("hour", "时段", "timestamp"),
            ("pm25", "PM2.5", "measure"),
            ("pm10", "PM10", "measure"),
            ("no2", "二氧化氮", "measure"),
            ("o3", "臭氧", "measure"),
            ("aqi", "空气质量指数", "measure"),
        ),
    ),
)


def meta(name: str) -> DatasetMeta:
    for m in CATALOG:
        if m.name == name:
            return m
    raise KeyError(name)
