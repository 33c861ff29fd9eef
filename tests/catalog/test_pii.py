"""PII detection per column: precision on look-alikes, hints, streaming sample, no values kept."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

import pyarrow as pa
import pytest

from countylab.catalog.pii import ColumnFinding, PiiKind, detect_table, match_kinds
from countylab.identifiers import USCC_ALPHABET, id_check_char, luhn_check_digit, uscc_check_char

RNG = random.Random(20240601)
N = 300


def make_id() -> str:
    body = (
        f"{RNG.choice(['110105', '330106', '510107'])}{RNG.randint(1950, 2010)}"
        f"{RNG.randint(1, 12):02d}{RNG.randint(1, 28):02d}{RNG.randint(0, 999):03d}"
    )
    return body + id_check_char(body)


def make_bad_id() -> str:
    value = make_id()
    wrong = next(c for c in "0123456789X" if c != value[-1])
    return value[:-1] + wrong


def make_card() -> str:
    body = "62" + "".join(RNG.choice("0123456789") for _ in range(RNG.choice([13, 14, 15, 16])))
    return body + luhn_check_digit(body)


def make_bad_card() -> str:
    body = "62" + "".join(RNG.choice("0123456789") for _ in range(13))
    good = luhn_check_digit(body)
    return body + str((int(good) + RNG.randint(1, 9)) % 10)


def make_uscc() -> str:
    body = (
        "91"
        + "".join(RNG.choice("0123456789") for _ in range(6))
        + "".join(RNG.choice(USCC_ALPHABET) for _ in range(9))
    )
    return body + uscc_check_char(body)


def make_mobile() -> str:
    return f"1{RNG.choice('3456789')}{RNG.randint(0, 999_999_999):09d}"


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英霞平刚桂"


def make_name() -> str:
    return RNG.choice(SURNAMES) + "".join(RNG.choice(GIVEN) for _ in range(RNG.choice([1, 2])))


def make_address() -> str:
    return (
        f"{RNG.choice(['城关镇', '河口乡', '新华街道'])}{RNG.choice(['李家村', '王庄村', '东风社区'])}"
        f"{RNG.randint(1, 12)}组{RNG.randint(1, 99)}号"
    )


def make_plate() -> str:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    if RNG.random() < 0.5:
        tail = "".join(RNG.choice(letters + "0123456789") for _ in range(5))
    else:
        tail = RNG.choice("DF") + RNG.choice(letters) + f"{RNG.randint(0, 9999):04d}"
    return RNG.choice("湘鄂川粤") + RNG.choice(letters) + tail


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("11010519491231002X", PiiKind.id_number),
        ("11010519491231002x", PiiKind.id_number),
        ("13812345678", PiiKind.mobile),
        ("+86 138-1234-5678", PiiKind.mobile),
        ("王小明", PiiKind.person_name),
        ("欧阳娜娜", PiiKind.person_name),
        ("浙江省杭州市西湖区文三路90号", PiiKind.address),
        ("城关镇李家村三组", PiiKind.address),
        ("6222021001123456789", PiiKind.bank_card),
        ("91350100M000100Y43", PiiKind.uscc),
        ("京A12345", PiiKind.licence_plate),
        ("粤BD12345", PiiKind.licence_plate),
        ("沪A·12345D", PiiKind.licence_plate),
        ("'13812345678", PiiKind.mobile),
    ],
)
def test_single_values_are_recognised(value: str, kind: PiiKind) -> None:
    assert kind in match_kinds(value)


@pytest.mark.parametrize(
    "value",
    [
        "110105194912310021",
        "12812345678",
        "黄豆",
        "白菜",
        "马铃薯",
        "金融服务",
        "林业",
        "李家村",
        "城关镇李家村",
        "6222021001123456787",
        "6222 0210 0112 3456 788",
        "91350100M000100Y44",
        "京I12345",
        "A1234-56",
        "",
        "   ",
    ],
)
def test_look_alikes_are_not_recognised(value: str) -> None:
    assert match_kinds(value) == frozenset()


def personal_table() -> pa.Table:
    return pa.table(
        {
            "身份证号": [make_id() for _ in range(N)],
            "联系电话": [make_mobile() for _ in range(N)],
            "姓名": [make_name() for _ in range(N)],
            "家庭住址": [make_address() for _ in range(N)],
            "col_card": [make_card() for _ in range(N)],
            "tyshxydm": [make_uscc() for _ in range(N)],
            "车辆": [make_plate() for _ in range(N)],
            "编号": [make_bad_id() for _ in range(N)],
            "流水号": [make_bad_card() for _ in range(N)],
            "随机18位": ["".join(RNG.choice("0123456789") for _ in range(18)) for _ in range(N)],
            "产品编码": [
                f"{RNG.choice('ABCXYZ')}{RNG.randint(1000, 9999)}-{RNG.randint(10, 99)}" for _ in range(N)
            ],
            "商品": [
                RNG.choice(
                    [
                        "黄豆",
                        "白菜",
                        "马铃薯",
                        "金银花茶",
                        "高山云雾茶",
                        "土鸡蛋",
                        "腊肉",
                        "红薯粉条",
                        "菜籽油",
                        "林下香菇",
                    ]
                )
                + RNG.choice(["", "（特级）", "5kg"])
                for _ in range(N)
            ],
            "amount": [RNG.randint(1, 10_000) for _ in range(N)],
        }
    )


def test_each_kind_is_found_in_its_column_and_look_alikes_are_not() -> None:
    findings = detect_table(personal_table())
    found = {(f.column, f.kind) for f in findings}
    assert found == {
        ("身份证号", PiiKind.id_number),
        ("联系电话", PiiKind.mobile),
        ("姓名", PiiKind.person_name),
        ("家庭住址", PiiKind.address),
        ("col_card", PiiKind.bank_card),
        ("tyshxydm", PiiKind.uscc),
        ("车辆", PiiKind.licence_plate),
    }
    by_column = {f.column: f for f in findings}
    assert by_column["身份证号"].matched_count == N == by_column["身份证号"].sample_count
    assert by_column["身份证号"].confidence == 1.0


def test_findings_never_hold_matched_values() -> None:
    table = personal_table()
    findings = detect_table(table)
    assert findings
    text = repr(findings) + repr([dataclasses.asdict(f) for f in findings])
    for column in table.column_names:
        for value in table.column(column).to_pylist():
            if match_kinds(str(value)):
                assert str(value) not in text


def test_identifiers_stored_as_int64_are_checked() -> None:
    ids = [int(v) for v in (make_id() for _ in range(3 * N)) if v[-1] != "X"][:N]
    table = pa.table(
        {
            "a": pa.array(ids, pa.int64()),
            "b": pa.array([int(make_mobile()) for _ in range(N)], pa.int64()),
            "c": pa.array([int(make_bad_card()) for _ in range(N)], pa.int64()),
            "d": pa.array([float(make_mobile()) for _ in range(N)], pa.float64()),
            "e": pa.array([RNG.randint(10**17, 10**18 - 1) for _ in range(N)], pa.int64()),
        }
    )
    found = {(f.column, f.kind) for f in detect_table(table)}
    assert ("a", PiiKind.id_number) in found
    assert ("b", PiiKind.mobile) in found
    assert ("d", PiiKind.mobile) in found
    assert not any(column in ("c", "e") for column, _ in found)


def test_column_name_hint_lifts_a_partly_filled_column_over_the_threshold() -> None:
    values = [make_mobile() if i % 10 < 4 else "无" for i in range(N)]
    hinted = detect_table(pa.table({"联系电话": values}))
    plain = detect_table(pa.table({"备注": values}))
    [finding] = hinted
    assert finding.kind is PiiKind.mobile and finding.confidence == pytest.approx(0.7, abs=0.01)
    assert plain == []


def test_hint_alone_is_not_enough_when_values_contradict_it() -> None:
    assert detect_table(pa.table({"姓名": [f"X{i}" for i in range(N)]})) == []
    assert detect_table(pa.table({"产品名称": [make_name() for _ in range(N)]}))[0].confidence < 0.9


def test_an_empty_column_is_reported_from_its_name_alone() -> None:
    table = pa.table(
        {"身份证号码": pa.array([None] * 5, pa.string()), "备注": pa.array([None] * 5, pa.string())}
    )
    assert detect_table(table) == [ColumnFinding("身份证号码", PiiKind.id_number, 0.5, 0, 0)]
    assert detect_table(table, threshold=0.6) == []


def test_low_cardinality_name_like_column_is_a_category_not_names() -> None:
    values = [RNG.choice(["王明", "李华", "张强", "高峰", "林森"]) for _ in range(N)]
    assert detect_table(pa.table({"类别": values})) == []
    assert detect_table(pa.table({"户主": values})) != []  # the name hint still wins


def test_nulls_empty_strings_and_dictionary_columns() -> None:
    values = [make_mobile() if i % 2 else None for i in range(N)] + [""] * 50
    table = pa.table({"x": pa.array(values).dictionary_encode()})
    [finding] = detect_table(table)
    assert finding.kind is PiiKind.mobile
    assert finding.sample_count == finding.matched_count == N // 2


def batches(n_batches: int, rows: int, late_from: int) -> Iterator[pa.RecordBatch]:
    """Junk in early batches, mobiles from batch ``late_from`` on: a sampler that only kept the
    first values would miss them."""
    for b in range(n_batches):
        values = [make_mobile() if b >= late_from else "—" for _ in range(rows)]
        yield pa.record_batch({"v": values, "n": list(range(rows))})


def test_reservoir_sample_is_bounded_and_spans_all_batches() -> None:
    [finding] = detect_table(batches(40, 500, late_from=20), sample_size=1000, threshold=0.2)
    assert finding.sample_count == 1000
    assert 0.4 < finding.matched_count / finding.sample_count < 0.6


def test_same_seed_same_findings_other_seed_other_sample() -> None:
    a = detect_table(batches(20, 300, late_from=10), sample_size=200, threshold=0.1)
    b = detect_table(batches(20, 300, late_from=10), sample_size=200, threshold=0.1)
    c = detect_table(batches(20, 300, late_from=10), sample_size=200, seed=7, threshold=0.1)
    assert a == b
    assert a[0].matched_count != c[0].matched_count or a[0].confidence != c[0].confidence


def test_empty_input_and_bad_sample_size() -> None:
    assert detect_table(iter([])) == []
    with pytest.raises(ValueError):
        detect_table(pa.table({"x": ["a"]}), sample_size=0)
