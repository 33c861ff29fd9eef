"""Find columns that hold personal information (个人信息), without keeping any of it.

The catalog calls :func:`detect_table` when a dataset version is ingested; the findings feed
:func:`countylab.catalog.grading.propose_grade` and the steward's review.  Three design rules:

* **Bounded memory.**  Datasets are streamed as Arrow record batches; per column we keep a
  reservoir sample of at most ``sample_size`` non-null values, so a 50-million-row table costs
  the same memory as a 5,000-row one.
* **Precision over recall for values, hints for the rest.**  Every value detector uses the
  identifier's own structure (GB 11643 check character, Luhn, GB 32100 check character, plate
  format) so that random digits are not mistaken for identifiers.  A column name such as
  ``身份证号`` or ``联系电话`` raises confidence; it never creates a finding on its own unless the
  column has no values yet (then the name is all we have and the steward confirms).
* **Findings never carry values.**  :class:`ColumnFinding` holds counts only, so findings can
  be logged, audited and shown to anyone without leaking what they describe.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

import numpy as np
import pyarrow as pa

from countylab.identifiers import is_valid_id_number, is_valid_luhn, is_valid_uscc


class PiiKind(StrEnum):
    id_number = "id_number"
    mobile = "mobile"
    person_name = "person_name"
    address = "address"
    bank_card = "bank_card"
    uscc = "uscc"
    licence_plate = "licence_plate"


@dataclass(frozen=True)
class ColumnFinding:
    """One kind of personal information found in one column.  Counts only, never values."""

    column: str
    kind: PiiKind
    confidence: float
    sample_count: int
    matched_count: int


# ---------------------------------------------------------------------------------------------
# value detectors

_SEPARATORS = re.compile(r"[\s\-]")
_ID_RE = re.compile(r"\d{17}[\dX]")
_MOBILE_RE = re.compile(r"(?:\+?86)?1[3-9]\d{9}")
_CARD_RE = re.compile(r"[3-6]\d{15,18}")  # UnionPay 62…, Visa 4…, Mastercard 5…, JCB/Amex 3…
_USCC_RE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE_LETTER = "A-HJ-NP-Z"  # I and O are not used on plates
_PLATE_RE = re.compile(
    rf"[{_PROVINCES}][{_PLATE_LETTER}][·•\s]?"
    rf"(?:[{_PLATE_LETTER}0-9]{{4}}[{_PLATE_LETTER}0-9挂学警港澳]"  # ordinary: 5 characters
    rf"|[DF][{_PLATE_LETTER}0-9]\d{{4}}|\d{{5}}[DF])"  # new-energy (新能源): 6 characters
)
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")
_NAME_RE = re.compile(r"[\u4e00-\u9fff]{2,4}")
_ADDRESS_RE = re.compile(
    r"[\u4e00-\u9fff]{1,}(?:省|自治区|市|州|盟|县|区|旗|镇|乡|街道|村|社区|路|街|大道|巷|胡同|屯|庄)"
    r".*?[0-9０-９一二三四五六七八九十百零〇]+(?:号|组|室|栋|幢|单元|楼|户|弄|排)"
)

# The most common Chinese surnames (covering well over 90% of people), minus a few that are
# rare as surnames but common as the first character of ordinary words (国, 平, 和, 明, 海 …),
# which would make category columns look like names.
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱"
    "严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚"
    "符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农"
    "司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫柏宗瞿桂全佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣"
    "巫寇桑郎甄丛仲虞敖巩佘池查麻苑迟邝封谈匡鞠惠荆冀郁胥班储栗燕楚鄢谌奚皮粟冼蔺楼满闻厉伊仝郜阚"
    "帅屠朴盖练廉禹井祖漆巴丰卿狄计索宣晋芮扈晁阙伏鹿薄邸雍辜羊乌裘亓邰赫杭况宿鲜印逯茹诸慕危亢嵇"
    "湛戎勾茅揭尉冶檀衣昝幸奉"
)
_COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "令狐",
        "澹台",
        "端木",
        "申屠",
        "轩辕",
        "西门",
        "南宫",
        "独孤",
        "呼延",
        "万俟",
        "闻人",
    ]
)
# Characters common in given names.  Food, product and place words mostly use characters
# outside this set (黄豆, 白菜, 马铃薯, 金融), which keeps product columns from reading as names.
_GIVEN_CHARS = frozenset(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英霞平刚桂兰华红玉梅辉建国文志林海波鹏飞宇浩凯俊健斌鑫宁晨"
    "旭昊峰欣怡佳颖琳雪婷慧莉萍燕玲丹倩蕾薇琴云凤洁蓉莹淑珍贞翠荣春秋冬夏花香月彩金银宝福禄寿喜财发"
    "富贵祥瑞德仁义礼智信忠孝安康泰宏鸿雄豪龙虎彪威武兵民生成功永长新东西南北中振兴家庆光耀亮晶晓晖"
    "辰星阳山川江河泉清源森松柏杨柳桃荷莲菊竹芝芬芸茜蓓蕊菲萱蓝青紫朝思雨露冰晴岚敬恩惠爱美雅婉娴妍"
    "媛娇婧嫣妮姗娅婕琪瑶瑾璐琦珊瑜璇瑛琼珠琛珂玮玺珏彤晗涵菡诗语若可依诺心悦乐馨曦希熙昕睿锐哲博学"
    "书儒彬翰墨轩航远帆舟骏驰腾跃鹤雁鸣麟泽润洪浪滨潇澜沛淼渊沁溪洲岩峻嵩岭坤培垚城堂基坚均圣尧舜禹"
    "弘毅力勤俭朴实正直诚守方圆立卫治邦胜利和盛昌隆茂启迪开创先锋铭钧锦铁钢铮铎镇钰宾彦炎焕煜烨炜灿"
    "烽熠昭显景晋普晟昱曜暄晏时季年元初一二三四五六七八九十百千万大小少子儿女男妹娣招来根柱栋梁材树"
    "桐楠梓榕桦枫杉桢楷仪佩俐伶修伦亭宜宣宽容寅尚展岳嘉善奇奎奕如妙姿孟宗宙宪宁屹峥崇巍州巧帅希常广"
    "应廷弈彩征得微必忆念怀恒恬恺悟悠惟慈慎慕懿戈才承抒捷敦斐斯旗旦旺昂昆易晓暮曼有朋望朗本朱权杭果"
    "柔栩格桑梦楚欢殿毓水汉池汐沐沧泓泳洛津浚浦涓淇淮深渝港湘溢滔漫潮澄澈瀚灵炫焱然照爽牧犇玄珉理琨"
    "瑄璋璟璧田甲申留登白皓益盼真砚硕祖祺秉秦程稳穗竞端笑笛策筠简素纯纲纳绍经维缘群羲翊翔联聪能致舒"
    "良芃芮苏苗茵茹荃莎菁萌蒙蓬蔚蕴虹蝶衡裕观言誉谦谨贤赛赞越路达迎运进连逸道郁醇钊锡闯闻阔雯霖震霏"
    "韦韬韵顺颂颜风飘驹骁高魁鸥鹰麒黎鼎齐丰亚京仙佑俊倍光全凡勋华卓南博卿双叶君吉启咏品坚增声壮娥"
)
# A 2–4 character string ending in one of these is a place or an organisation, not a person.
_NOT_NAME_ENDINGS = frozenset("村镇乡县市省区路街局厂店站所院部委会场组队室科处司社馆校楼桥沟湾庄屯寨铺坝")


def _looks_like_name(value: str) -> bool:
    if not _NAME_RE.fullmatch(value) or value[-1] in _NOT_NAME_ENDINGS:
        return False
    if value[:2] in _COMPOUND_SURNAMES and len(value) >= 3:
        given = value[2:]
    elif value[0] in _SURNAMES:
        given = value[1:]
    else:
        return False
    return all(ch in _GIVEN_CHARS for ch in given)


def _digits(value: str) -> str:
    return _SEPARATORS.sub("", value)


def _is_id_number(value: str) -> bool:
    value = _digits(value).upper()
    return _ID_RE.fullmatch(value) is not None and is_valid_id_number(value)


def _is_mobile(value: str) -> bool:
    return _MOBILE_RE.fullmatch(_digits(value)) is not None


def _is_bank_card(value: str) -> bool:
    value = _digits(value)
    return _CARD_RE.fullmatch(value) is not None and is_valid_luhn(value) and not _is_id_number(value)


def _is_uscc(value: str) -> bool:
    value = value.strip().upper()
    return _USCC_RE.fullmatch(value) is not None and is_valid_uscc(value)


def _is_plate(value: str) -> bool:
    return _PLATE_RE.fullmatch(value.strip().upper()) is not None


def _is_address(value: str) -> bool:
    return len(_CJK_RE.findall(value)) >= 3 and _ADDRESS_RE.search(value) is not None


_DETECTORS: dict[PiiKind, Callable[[str], bool]] = {
    PiiKind.id_number: _is_id_number,
    PiiKind.mobile: _is_mobile,
    PiiKind.person_name: _looks_like_name,
    PiiKind.address: _is_address,
    PiiKind.bank_card: _is_bank_card,
    PiiKind.uscc: _is_uscc,
    PiiKind.licence_plate: _is_plate,
}
# Kinds whose values can be written with digits only, hence worth testing in numeric columns.
_NUMERIC_KINDS = (PiiKind.id_number, PiiKind.mobile, PiiKind.bank_card)


def _normalise(value: str) -> str:
    """Trim whitespace and the apostrophe Excel users type to keep long numbers as text."""
    return value.strip().lstrip("'").strip()


def match_kinds(value: str) -> frozenset[PiiKind]:
    """The kinds of personal information a single value looks like (empty when none).

    Public so that other checks (e.g. the airlock scanning an output file) use the same rules.
    """
    value = _normalise(value)
    if not value:
        return frozenset()
    return frozenset(kind for kind, detect in _DETECTORS.items() if detect(value))


# ---------------------------------------------------------------------------------------------
# column-name hints

_HINTS: dict[PiiKind, tuple[str, ...]] = {
    PiiKind.id_number: (
        "身份证",
        "证件号",
        "身份号码",
        "公民身份",
        "sfz",
        "idcard",
        "id_card",
        "id_no",
        "idno",
        "id_number",
        "identity",
    ),
    PiiKind.mobile: ("手机", "电话", "联系方式", "mobile", "phone", "tel", "cell"),
    PiiKind.person_name: (
        "姓名",
        "名字",
        "法人",
        "法定代表",
        "联系人",
        "户主",
        "负责人",
        "申请人",
        "患者",
        "经办人",
        "驾驶员",
        "name",
        "person",
        "contact",
        "owner",
        "legal_rep",
    ),
    PiiKind.address: ("地址", "住址", "住所", "居住地", "户籍地", "addr"),
    PiiKind.bank_card: ("银行卡", "卡号", "账号", "帐号", "银行账户", "bank", "card", "account"),
    PiiKind.uscc: ("信用代码", "社会信用", "uscc", "credit_code", "组织机构代码"),
    PiiKind.licence_plate: ("车牌", "号牌", "牌照", "plate"),
}
# Words that say a column names a thing, not a person ("产品名称", "company_name"): they cancel
# the person-name hint, and only that one.
_NOT_PERSON_HINTS = (
    "名称",
    "产品",
    "商品",
    "品名",
    "企业",
    "公司",
    "单位",
    "机构",
    "部门",
    "村",
    "镇",
    "地名",
    "项目",
    "product",
    "item",
    "goods",
    "company",
    "org",
    "dept",
    "project",
    "village",
    "place",
    "file",
    "user",
)

HINT_BOOST = 0.3
"""Added to the matched share when the column name points at the kind."""
HINT_ONLY_CONFIDENCE = 0.5
"""Confidence of a finding from the column name alone (the column has no values yet)."""
NAME_FACTOR = 0.8
"""Names are fuzzier than checksummed identifiers: their matched share counts for less."""
LOW_CARDINALITY_FACTOR = 0.5
"""A name-like column with few distinct values (≥50 sampled, <20% distinct) is a category."""


def column_hints(column: str) -> frozenset[PiiKind]:
    """Kinds that the column's name points at."""
    lowered = column.lower()
    kinds = {kind for kind, words in _HINTS.items() if any(w in lowered for w in words)}
    if any(w in lowered for w in _NOT_PERSON_HINTS):
        kinds.discard(PiiKind.person_name)
    return frozenset(kinds)


# ---------------------------------------------------------------------------------------------
# streaming reservoir sample


@dataclass
class _Reservoir:
    """Algorithm R over Arrow arrays: each non-null value kept with probability k/n."""

    size: int
    rng: np.random.Generator
    seen: int = 0
    values: list[object] = field(default_factory=list)

    def add(self, array: pa.Array) -> None:
        array = array.drop_null()
        n = len(array)
        if n == 0:
            return
        fill = min(n, self.size - len(self.values))
        if fill > 0:
            self.values.extend(array.slice(0, fill).to_pylist())
        rest = n - fill
        if rest > 0:
            # Item number t (1-based, counted over all batches) replaces slot j ~ U[0, t) when
            # j < size.  Drawn for the whole batch at once; later items overwrite earlier ones.
            totals = np.arange(self.seen + fill + 1, self.seen + n + 1)
            slots = self.rng.integers(0, totals)
            hits = np.nonzero(slots < self.size)[0]
            if len(hits):
                picked = array.take(pa.array(hits + fill)).to_pylist()
                for slot, value in zip(slots[hits].tolist(), picked, strict=True):
                    self.values[slot] = value
        self.seen += n


def _kind_of_type(dtype: pa.DataType) -> str | None:
    if pa.types.is_dictionary(dtype):
        return _kind_of_type(dtype.value_type)
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "text"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    return None


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    return None


def _batches(data: Iterable[pa.RecordBatch] | pa.Table) -> Iterator[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        yield from data.to_batches()
    else:
        yield from data


def _score(kind: PiiKind, sample: list[str], matched: int, hinted: bool) -> float:
    if not sample:
        return HINT_ONLY_CONFIDENCE if hinted else 0.0
    share = matched / len(sample)
    if kind is PiiKind.person_name:
        share *= NAME_FACTOR
        if len(sample) >= 50 and len(set(sample)) < 0.2 * len(sample):
            share *= LOW_CARDINALITY_FACTOR
    if hinted and matched:
        share += HINT_BOOST
    return round(min(1.0, share), 3)


def detect_table(
    batches: Iterable[pa.RecordBatch] | pa.Table,
    *,
    sample_size: int = 2000,
    seed: int = 0,
    threshold: float = 0.5,
) -> list[ColumnFinding]:
    """Personal information per column, from a bounded sample of each column's values.

    Text columns are tested against every kind; integer, floating and decimal columns only
    against the kinds that can be all digits (ID numbers without X, mobiles, bank cards),
    because spreadsheets often store those as numbers.  Confidence is the matched share of the
    sample (names count for :data:`NAME_FACTOR` of it), plus :data:`HINT_BOOST` when the column
    name points at the kind.  A finding is reported when confidence ≥ ``threshold``.  The same
    ``seed`` gives the same findings.
    """
    if sample_size < 1:
        raise ValueError("sample_size must be positive")
    reservoirs: dict[str, _Reservoir] = {}
    column_kind: dict[str, str] = {}
    order: list[str] = []
    for batch in _batches(batches):
        for index, name in enumerate(batch.schema.names):
            if name not in reservoirs:
                order.append(name)
                column_kind[name] = _kind_of_type(batch.schema.field(index).type) or ""
                reservoirs[name] = _Reservoir(sample_size, np.random.default_rng([seed, len(order)]))
            if not column_kind[name]:
                continue
            array = batch.column(index)
            if pa.types.is_dictionary(array.type):
                array = array.dictionary_decode()
            reservoirs[name].add(array)

    findings: list[ColumnFinding] = []
    for name in order:
        if not column_kind[name]:
            continue
        kinds = _NUMERIC_KINDS if column_kind[name] == "number" else tuple(PiiKind)
        texts = (_as_text(v) for v in reservoirs[name].values)
        sample = [s for s in (_normalise(t) for t in texts if t is not None) if s]
        hints = column_hints(name)
        per_column: list[ColumnFinding] = []
        for kind in kinds:
            detect = _DETECTORS[kind]
            matched = sum(1 for v in sample if detect(v))
            confidence = _score(kind, sample, matched, kind in hints)
            if confidence >= threshold:
                per_column.append(ColumnFinding(name, kind, confidence, len(sample), matched))
        per_column.sort(key=lambda f: -f.confidence)
        findings.extend(per_column)
    return findings
