"""Synonym groups for catalog search: the words county staff type for what the catalog names.

A clerk looks for "身份证" where the column says 公民身份号码, for "老人" where the text says
老年人, for "低保" where the programme is 最低生活保障.  The built-in groups below cover the
vocabulary of a county government's departments (民政, 公安, 人社, 医保, 农业, 市场监管, 交通,
生态环境, 教育, 卫健 …); stewards add their county's own words in the database
(:class:`~countylab.storage.search_models.SynonymGroup`), and a query expands with both.

A group is symmetric: any member finds every other member.  Words are compared lower-cased, so
English and pinyin forms may sit in a group too (``id_number``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from countylab.errors import ValidationFailed

BUILTIN: tuple[tuple[str, ...], ...] = (
    # people and households
    ("居民", "常住人口", "人口", "~户籍", "~住户", "resident", "residents", "population"),
    ("老人", "老年人", "高龄", "养老", "长者", "老龄", "elderly"),
    ("身份证", "身份证号", "公民身份号码", "身份号码", "证件号码", "id_number", "idcard"),
    ("户籍户", "家庭户", "家庭", "household", "households"),
    ("户主", "户籍户主", "家长"),
    ("姓名", "名字", "名称", "name", "person_name"),
    ("手机", "手机号", "手机号码", "电话", "联系电话", "联系方式", "mobile", "phone"),
    ("银行卡", "银行卡号", "银行账号", "账号", "bank_card"),
    ("车牌", "车牌号", "号牌", "号牌号码", "机动车号牌", "licence_plate", "plate"),
    ("单位名称", "机构名称", "企业名称", "org_name"),
    ("住址", "地址", "住所", "居住地", "address"),
    ("出生日期", "生日", "出生年月", "birth_date", "birthday"),
    ("年龄", "岁数", "age"),
    ("性别", "男女", "gender", "sex"),
    ("收入", "年收入", "工资", "薪酬", "income"),
    ("职业", "工作", "就业", "occupation"),
    ("学历", "受教育程度", "文化程度", "教育程度", "education"),
    ("婚姻", "婚姻状况", "婚否", "marital_status"),
    ("独居", "空巢", "一人户", "lives_alone"),
    ("学生", "在校生", "学籍", "student"),
    ("儿童", "未成年人", "少年儿童", "留守儿童"),
    ("残疾人", "残障", "残疾", "disabled"),
    ("低保", "最低生活保障", "低保户", "困难群众", "救助"),
    ("特困", "特困供养", "五保"),
    ("医保", "医疗保障", "医疗保险", "参保"),
    ("社保", "社会保险", "养老保险"),
    ("退役军人", "复员军人", "优抚对象"),
    # places
    ("乡镇", "街道", "乡镇街道", "town", "towns"),
    ("村", "社区", "村庄", "村委会", "居委会", "行政村", "village", "villages"),
    ("行政区划", "区划", "区划代码", "行政区"),
    # economy and market
    ("企业", "法人", "市场主体", "公司", "个体工商户", "工商", "enterprise", "enterprises", "company"),
    ("统一社会信用代码", "信用代码", "社会信用代码", "营业执照", "uscc"),
    ("法定代表人", "法人代表", "负责人"),
    ("营业收入", "营收", "销售额", "revenue"),
    ("从业人员", "员工", "职工", "雇员", "employees"),
    ("行业", "产业", "行业门类", "industry"),
    ("合作社", "农民专业合作社", "专业合作社"),
    # agriculture
    ("耕地", "农田", "地块", "田地", "土地", "承包地", "farmland", "plot"),
    ("作物", "农作物", "庄稼", "种植", "crop", "crops"),
    ("亩产", "单产", "产量", "yield"),
    ("面积", "亩数", "area"),
    ("灌溉", "水利", "浇灌", "irrigation"),
    ("农业", "农村", "三农", "agriculture"),
    ("农户", "承包户", "种植户"),
    # care and health
    ("养老服务", "居家养老", "助餐", "助浴", "助洁", "助医", "elderly_care"),
    ("医院", "卫生院", "诊所", "医疗机构"),
    ("就诊", "门诊", "看病", "住院"),
    ("健康", "卫生", "卫健", "health"),
    # transport and environment
    ("交通", "路口", "车流", "车流量", "道路", "traffic"),
    ("车速", "速度", "平均车速", "speed"),
    ("车辆", "机动车", "汽车", "vehicles"),
    ("空气", "空气质量", "大气", "aqi", "air"),
    ("pm2.5", "pm25", "细颗粒物"),
    ("pm10", "可吸入颗粒物"),
    ("污染", "环境", "生态", "生态环境", "环保"),
    ("监测站", "站点", "监测点", "station"),
    # departments (short and full names)
    ("民政", "民政局", "县民政局"),
    ("公安", "公安局", "县公安局", "派出所"),
    ("农业农村局", "农业局", "农委"),
    ("市场监管", "市场监管局", "市场监督管理局", "工商局"),
    ("交通运输局", "交通局"),
    ("生态环境局", "环保局", "环境局"),
    ("卫健委", "卫生健康委", "卫生健康委员会", "卫生局"),
    ("人社局", "人力资源和社会保障局", "人社"),
    ("医保局", "医疗保障局"),
    ("教育局", "教体局"),
    # time and frequency
    ("日期", "时间", "时段", "date", "hour", "time"),
    ("实时", "每小时", "小时", "hourly"),
    ("记录", "台账", "明细", "流水", "records"),
    ("个人信息", "隐私", "敏感个人信息", "pii"),
)

MAX_WORDS = 30
EQUIVALENT = 0.8  # 身份证 for 公民身份号码
RELATED = 0.5  # 户籍 for 居民: found, but after the closer words
MAX_WORD_LEN = 40


def clean_group(words: Iterable[str]) -> list[str]:
    """Normalised, de-duplicated words of one steward group; refuses groups that cannot expand.

    Separators people use in Chinese forms (，、；) are accepted, so a steward can paste
    "低保，最低生活保障" into one box.
    """
    out: list[str] = []
    for raw in words:
        for part in _split(raw):
            word = part.strip().lower()
            if not word:
                continue
            if len(word) > MAX_WORD_LEN:
                raise ValidationFailed(
                    f"同义词“{word[:20]}…”太长（最多 {MAX_WORD_LEN} 个字）",
                    f"The synonym “{word[:20]}…” is too long (at most {MAX_WORD_LEN} characters)",
                    field="words",
                )
            if word not in out:
                out.append(word)
    if len(out) < 2:
        raise ValidationFailed(
            "一组同义词至少要有两个不同的词",
            "A synonym group needs at least two different words",
            field="words",
        )
    if len(out) > MAX_WORDS:
        raise ValidationFailed(
            f"一组同义词最多 {MAX_WORDS} 个词",
            f"A synonym group holds at most {MAX_WORDS} words",
            field="words",
        )
    return out


def _split(raw: str) -> list[str]:
    for sep in "，、；;\n\t":
        raw = raw.replace(sep, ",")
    return raw.replace(" ", ",").split(",")


class Thesaurus:
    """Word -> the words it may stand for, with how closely: built from the built-in and the
    stewards' groups.  A word written ``~户籍`` in a group is only *related* (相关词): it links
    to the group at :data:`RELATED` instead of :data:`EQUIVALENT`, so 居民 prefers 常住人口 to 户籍户."""

    def __init__(self, groups: Iterable[Sequence[str]]) -> None:
        self._map: dict[str, dict[str, float]] = {}
        for group in groups:
            words = {w.strip().lower().lstrip("~"): w.strip().startswith("~") for w in group if w.strip()}
            for w, w_related in words.items():
                links = self._map.setdefault(w, {})
                for other, o_related in words.items():
                    if other != w:
                        factor = RELATED if (w_related or o_related) else EQUIVALENT
                        links[other] = max(links.get(other, 0.0), factor)

    def expand(self, word: str) -> dict[str, float]:
        """The word itself (1.0) and its synonyms with their closeness (lower-cased)."""
        word = word.lower()
        return {**self._map.get(word, {}), word: 1.0}

    def words(self) -> set[str]:
        """Every word of every group (added to the segmenter's dictionary so it stays whole)."""
        return set(self._map)


def thesaurus(extra: Iterable[Sequence[str]] = ()) -> Thesaurus:
    return Thesaurus([*BUILTIN, *extra])
