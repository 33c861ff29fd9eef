"""Vectorised makers of fake identifiers, names and addresses.

Fake values must *pass* the same checks real ones do (GB 11643 ID numbers, GB 32100 USCC,
Luhn for bank cards), otherwise code a developer writes against dummy data — a validator, a
join on a cleaned ID — behaves differently inside the sandbox on real data. The check
arithmetic is done here over whole NumPy arrays (100k rows in milliseconds); the weights follow
the standards' definitions (2^(17-i) mod 11 and 3^i mod 31) and the tests hold every value
against the reference functions in :mod:`countylab.identifiers`.

Every function takes a ``numpy.random.Generator`` so output is a pure function of the seed.
"""

from __future__ import annotations

import numpy as np

from countylab.identifiers import USCC_ALPHABET

_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_ID_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_USCC_CHARS = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
_PLATE_LETTERS = np.frombuffer(b"ABCDEFGHJKLMNPQRSTUVWXYZ", dtype=np.uint8)

# Administrative-division-shaped codes for fake ID numbers; the ID check ignores the region.
_REGIONS = ("340100", "340221", "341122", "410102", "420106", "510104", "610112", "360121")
_PROVINCES = np.array(list("京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵云藏陕甘青宁新"))
# Common surnames, most frequent first, with rough relative weights.
_SURNAMES = np.array(list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"))
_SURNAME_WEIGHTS = np.linspace(3.0, 0.6, len(_SURNAMES))
_GIVEN = np.array(
    list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国玉红文辉志鹏春梅海燕小宇浩然欣怡子涵晨")
)
_TOWNS = np.array(["城关镇", "东河镇", "西山乡", "南湖街道", "北岭乡", "青石镇", "柳营乡", "新华街道"])
_VILLAGES = np.array(["和平村", "建设村", "红旗村", "东风社区", "幸福村", "团结村", "前进社区", "光明村"])
_FAKE_COUNTY = "示范县"
_PHRASES = np.array(["情况正常", "已办结", "待回访", "需跟进", "资料齐全", "已核实", "暂无异常", "按期完成"])


def ascii_rows(codes: np.ndarray) -> np.ndarray:
    """Turn an ``(n, k)`` array of ASCII codes into ``n`` strings of length ``k``."""
    n, k = codes.shape
    if k == 0:
        return np.full(n, "", dtype="U1")
    packed = np.ascontiguousarray(codes, dtype=np.uint8).view(f"S{k}").reshape(n)
    result: np.ndarray = packed.astype(f"U{k}")
    return result


def _fill(rng: np.random.Generator, n: int, width: int, prefix: str, alphabet: np.ndarray) -> np.ndarray:
    """``(n, width)`` indices into ``alphabet``: ``prefix`` first, uniform random after it."""
    lookup = {int(ch): i for i, ch in enumerate(alphabet)}
    idx = rng.integers(0, len(alphabet), size=(n, width))
    for pos, ch in enumerate(prefix[:width].encode()):
        idx[:, pos] = lookup[ch]
    return idx


def _ymd_digits(dates: np.ndarray) -> np.ndarray:
    """``(n, 8)`` YYYYMMDD digit matrix of a ``datetime64[D]`` array."""
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    value = years * 10_000 + months * 100 + days
    powers = 10 ** np.arange(7, -1, -1, dtype=np.int64)
    digits: np.ndarray = (value[:, None] // powers) % 10
    return digits


def id_numbers(
    rng: np.random.Generator,
    n: int,
    *,
    birth: np.ndarray | None = None,
    male: np.ndarray | None = None,
    prefix: str | None = None,
) -> np.ndarray:
    """18-character resident ID numbers with a correct check character.

    ``birth`` (``datetime64[D]``, NaT where unknown) and ``male`` (``1`` male, ``0`` female, ``-1``
    unknown) keep the embedded birth date and sex digit consistent with other generated columns.
    ``prefix`` (up to six digits) fixes the leading region code.
    """
    region = np.array([list(r) for r in _REGIONS], dtype=np.int64)[rng.integers(0, len(_REGIONS), n)]
    for pos, ch in enumerate((prefix or "")[:6]):
        region[:, pos] = int(ch)
    lo = np.datetime64("1935-01-01", "D").astype(np.int64)
    hi = np.datetime64("2015-12-31", "D").astype(np.int64)
    random_birth = rng.integers(lo, hi + 1, size=n).astype("datetime64[D]")
    if birth is not None:
        birth = np.where(np.isnat(birth), random_birth, birth.astype("datetime64[D]"))
    else:
        birth = random_birth
    sequence = rng.integers(0, 10, size=(n, 3))
    if male is not None:
        odd = rng.integers(0, 5, size=n) * 2 + 1
        even = rng.integers(0, 5, size=n) * 2
        sequence[:, 2] = np.where(male == 1, odd, np.where(male == 0, even, sequence[:, 2]))
    body = np.concatenate([region, _ymd_digits(birth), sequence], axis=1)
    check = _ID_CHECK[(body @ _ID_WEIGHTS) % 11]
    return ascii_rows(np.concatenate([_DIGITS[body], check[:, None]], axis=1))


def uscc_codes(rng: np.random.Generator, n: int, *, prefix: str | None = None) -> np.ndarray:
    """18-character unified social credit codes with a correct GB 32100 check character."""
    body = _fill(rng, n, 17, "", _USCC_CHARS)
    body[:, 0] = 9  # "9": registered by market regulation, the common case
    body[:, 1] = rng.integers(1, 4, size=n)  # 1 enterprise, 2 sole proprietor, 3 co-operative
    body[:, 2:8] = rng.integers(0, 10, size=(n, 6))
    if prefix:
        lookup = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
        for pos, ch in enumerate(prefix[:17]):
            body[:, pos] = lookup[ch]
    check = (31 - (body @ _USCC_WEIGHTS) % 31) % 31
    return ascii_rows(np.concatenate([_USCC_CHARS[body], _USCC_CHARS[check][:, None]], axis=1))


def bank_cards(
    rng: np.random.Generator, n: int, *, prefix: str | None = None, length: int = 19
) -> np.ndarray:
    """Card numbers (UnionPay-style ``62`` prefix by default) that pass the Luhn check."""
    body = _fill(rng, n, length - 1, prefix or "62", _DIGITS)
    doubled = body.copy()
    # Counting from the right of the body, positions 0, 2, 4… are doubled once the check is added.
    doubled[:, ::-1][:, 0::2] *= 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    check = (10 - doubled.sum(axis=1) % 10) % 10
    return ascii_rows(_DIGITS[np.concatenate([body, check[:, None]], axis=1)])


def mobiles(rng: np.random.Generator, n: int, *, prefix: str | None = None) -> np.ndarray:
    """11-digit mainland mobile numbers: ``1``, a second digit 3–9, nine more digits."""
    digits = rng.integers(0, 10, size=(n, 11))
    digits[:, 0] = 1
    digits[:, 1] = rng.integers(3, 10, size=n)
    for pos, ch in enumerate((prefix or "")[:11]):
        digits[:, pos] = int(ch)
    return ascii_rows(_DIGITS[digits])


def licence_plates(rng: np.random.Generator, n: int, *, prefix: str | None = None) -> np.ndarray:
    """Plates like ``皖K3A821``: province, issuing-office letter, five digits or letters."""
    province = np.full(n, prefix[0]) if prefix else _PROVINCES[rng.integers(0, len(_PROVINCES), n)]
    office = _PLATE_LETTERS[rng.integers(0, 8, n)]
    if prefix and len(prefix) > 1:
        office[:] = ord(prefix[1])
    tail = _DIGITS[rng.integers(0, 10, size=(n, 5))]
    letters = _PLATE_LETTERS[rng.integers(0, len(_PLATE_LETTERS), size=(n, 5))]
    tail = np.where(rng.random((n, 5)) < 0.15, letters, tail)
    return np.strings.add(province, ascii_rows(np.concatenate([office[:, None], tail], axis=1)))


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Chinese names: a common surname and one or two common given-name characters."""
    weights = _SURNAME_WEIGHTS / _SURNAME_WEIGHTS.sum()
    surname = rng.choice(_SURNAMES, size=n, p=weights)
    first = _GIVEN[rng.integers(0, len(_GIVEN), n)]
    second = _GIVEN[rng.integers(0, len(_GIVEN), n)]
    second = np.where(rng.random(n) < 0.7, second, "")
    return np.strings.add(np.strings.add(surname, first), second)


def addresses(
    rng: np.random.Generator, n: int, places: list[np.ndarray], *, county: str | None = None
) -> np.ndarray:
    """Addresses built from place columns of the same rows (town → village), if any.

    ``places`` are string arrays ordered from the largest division down, ``""`` where a row has
    no value. ``county`` is the approved administrative prefix (``青禾县``), learnt from the
    data only when shared by many rows; without places the address uses generic place names.
    """
    prefix = county if county is not None else (None if places else _FAKE_COUNTY)
    if not places:
        places = [_TOWNS[rng.integers(0, len(_TOWNS), n)], _VILLAGES[rng.integers(0, len(_VILLAGES), n)]]
    if prefix:
        places = [np.full(n, prefix), *places]
    result = places[0].astype(str)
    for part in places[1:]:
        result = np.strings.add(result, part.astype(str))
    group = rng.integers(1, 13, n).astype(str)
    number = rng.integers(1, 200, n).astype(str)
    tail = np.strings.add(np.strings.add(np.strings.add(group, "组"), number), "号")
    return np.strings.add(result, tail)


_TRADE = np.array(list("华兴盛达丰源鑫泰宏安恒通瑞康德裕隆和嘉锦绿禾青山湖新"))
_TRADES = np.array(
    ["农业", "果蔬", "茶业", "建材", "商贸", "餐饮", "电子", "机械", "物流", "养殖", "家政", "服装"]
)
_ORG_SUFFIX = np.array(["有限公司", "有限责任公司", "专业合作社", "经营部", "服务站"])
_ORG_SUFFIX_WEIGHTS = np.array([0.45, 0.2, 0.15, 0.15, 0.05])


def org_names(rng: np.random.Generator, n: int, *, county: str | None = None) -> np.ndarray:
    """Organisation names like ``青禾县华盛果蔬有限公司``: county, trade name, trade, legal form."""
    first = _TRADE[rng.integers(0, len(_TRADE), n)]
    second = _TRADE[rng.integers(0, len(_TRADE), n)]
    trade = _TRADES[rng.integers(0, len(_TRADES), n)]
    suffix = rng.choice(_ORG_SUFFIX, size=n, p=_ORG_SUFFIX_WEIGHTS)
    names = np.strings.add(np.strings.add(np.strings.add(first, second), trade), suffix)
    return np.strings.add(county, names) if county else names


def phrases(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bland free-text remarks, so text columns are non-empty without saying anything."""
    return _PHRASES[rng.integers(0, len(_PHRASES), n)]


def sequential_keys(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """Keys like ``H000042``: a prefix and a zero-padded number."""
    return np.strings.add(prefix, np.strings.zfill(numbers.astype(np.int64).astype(str), width))
