"""Grades of GB/T 43697-2024 (数据安全技术 数据分类分级规则) and the proposal of one per dataset.

The lab proposes a grade from what it can see (PII findings, privacy unit, row count,
classification tags); the security officer (数据安全官) confirms it.  The proposal is
deliberately conservative: when two rules apply, the higher grade wins, because lowering
later needs a named security officer and a written reason (:func:`check_grade_change`) while
an over-graded dataset only costs convenience.

Rules, highest first (each one also names its factors in the reason):

1. tag 核心 / 核心数据 / core                                   → 核心数据 (core)
2. tag 重要 / 重要数据 / 关键基础设施 / 地理信息 (or English)      → 重要数据 (important)
3. personal data of ≥ 1,000,000 rows (GB/T 43697 treats personal information of over a
   million people as important data; rows bound the number of persons from above)  → 重要数据
4. identifiers of persons: ID number, bank card, or mobile together with a name   → 一般数据4级
5. other personal information (name, address, licence plate, mobile alone), or
   privacy unit "person" with no direct identifier found                         → 一般数据3级
6. enterprise data (privacy unit "enterprise" or a USCC column)                   → 一般数据2级
7. otherwise (no personal information, no privacy unit)                           → 一般数据1级
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from countylab.catalog.pii import ColumnFinding, PiiKind
from countylab.errors import PermissionDenied, ValidationFailed


class Grade(StrEnum):
    """A grade; compare grades with ``<``/``>`` (by :attr:`rank`, core highest), not as text."""

    core = "core"
    important = "important"
    general_4 = "general_4"
    general_3 = "general_3"
    general_2 = "general_2"
    general_1 = "general_1"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def label_zh(self) -> str:
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LABELS[self][1]

    def label(self, lang: str = "zh-CN") -> str:
        return self.label_en if lang.startswith("en") else self.label_zh

    # str's own ordering would put "core" below "general_1"; order by rank instead.
    def __lt__(self, other: str) -> bool:
        if isinstance(other, Grade):
            return self.rank < other.rank
        return NotImplemented

    def __le__(self, other: str) -> bool:
        if isinstance(other, Grade):
            return self.rank <= other.rank
        return NotImplemented

    def __gt__(self, other: str) -> bool:
        if isinstance(other, Grade):
            return self.rank > other.rank
        return NotImplemented

    def __ge__(self, other: str) -> bool:
        if isinstance(other, Grade):
            return self.rank >= other.rank
        return NotImplemented


_RANK = {
    Grade.general_1: 1,
    Grade.general_2: 2,
    Grade.general_3: 3,
    Grade.general_4: 4,
    Grade.important: 5,
    Grade.core: 6,
}
_LABELS = {
    Grade.core: ("核心数据", "core data"),
    Grade.important: ("重要数据", "important data"),
    Grade.general_4: ("一般数据4级", "general data, level 4"),
    Grade.general_3: ("一般数据3级", "general data, level 3"),
    Grade.general_2: ("一般数据2级", "general data, level 2"),
    Grade.general_1: ("一般数据1级", "general data, level 1"),
}

PRIVACY_UNITS = ("person", "enterprise", "none")
LARGE_PERSONAL_ROWS = 1_000_000
CORE_TAGS = frozenset({"核心", "核心数据", "core"})
IMPORTANT_TAGS = frozenset(
    {
        "重要",
        "重要数据",
        "关键基础设施",
        "地理信息",
        "important",
        "critical_infrastructure",
        "geographic_information",
    }
)
MIN_LOWERING_REASON = 5
PERSONAL_KINDS = frozenset(
    {
        PiiKind.id_number,
        PiiKind.mobile,
        PiiKind.person_name,
        PiiKind.address,
        PiiKind.bank_card,
        PiiKind.licence_plate,
    }
)

_KIND_ZH = {
    PiiKind.id_number: "身份证号",
    PiiKind.mobile: "手机号",
    PiiKind.person_name: "姓名",
    PiiKind.address: "地址",
    PiiKind.bank_card: "银行卡号",
    PiiKind.uscc: "统一社会信用代码",
    PiiKind.licence_plate: "车牌号",
}
_KIND_EN = {
    PiiKind.id_number: "ID numbers",
    PiiKind.mobile: "mobile numbers",
    PiiKind.person_name: "names",
    PiiKind.address: "addresses",
    PiiKind.bank_card: "bank card numbers",
    PiiKind.uscc: "USCCs",
    PiiKind.licence_plate: "licence plates",
}


@dataclass(frozen=True)
class GradeProposal:
    grade: Grade
    reason_zh: str
    reason_en: str
    factors: list[str] = field(default_factory=list)

    def reason(self, lang: str = "zh-CN") -> str:
        return self.reason_en if lang.startswith("en") else self.reason_zh


def _columns(findings: Iterable[ColumnFinding], kinds: Iterable[PiiKind]) -> tuple[str, str]:
    wanted = set(kinds)
    hits = [f for f in findings if f.kind in wanted]
    zh = "、".join(f"{f.column}（{_KIND_ZH[f.kind]}）" for f in hits)
    en = ", ".join(f"{f.column} ({_KIND_EN[f.kind]})" for f in hits)
    return zh, en


def propose_grade(
    findings: Sequence[ColumnFinding],
    *,
    privacy_unit: str,
    row_count: int,
    tags: Sequence[str] = (),
    department: str | None = None,
) -> GradeProposal:
    """Propose a grade by the rules in the module docstring; reasons name factors, never values.

    ``department`` does not change the grade (the steward knows their department better than
    a rule would); it is recorded as a factor so the reviewer sees who provided the data.
    """
    if privacy_unit not in PRIVACY_UNITS:
        raise ValidationFailed(
            f"隐私主体必须是 {'/'.join(PRIVACY_UNITS)} 之一",
            f"privacy unit must be one of {PRIVACY_UNITS}",
            reason="privacy_unit",
            value=privacy_unit,
        )
    if row_count < 0:
        raise ValidationFailed("行数不能为负", "row count cannot be negative", reason="row_count")
    kinds = {f.kind for f in findings}
    norm_tags = {t.strip().lower() for t in tags}
    factors = [f"pii:{f.kind}:{f.column}" for f in findings]
    factors += [f"privacy_unit:{privacy_unit}", f"rows:{row_count}"]
    factors += [f"tag:{t}" for t in sorted(norm_tags & (CORE_TAGS | IMPORTANT_TAGS))]
    if department:
        factors.append(f"department:{department}")
    personal = privacy_unit == "person" or bool(kinds & PERSONAL_KINDS)

    def make(grade: Grade, zh: str, en: str) -> GradeProposal:
        return GradeProposal(
            grade, f"建议定为{grade.label_zh}：{zh}", f"proposed {grade.label_en}: {en}", factors
        )

    if core := sorted(norm_tags & CORE_TAGS):
        return make(Grade.core, f"分类标签“{'、'.join(core)}”", f"classification tag '{', '.join(core)}'")
    if important := sorted(norm_tags & IMPORTANT_TAGS):
        return make(
            Grade.important,
            f"分类标签“{'、'.join(important)}”",
            f"classification tag '{', '.join(important)}'",
        )
    if personal and row_count >= LARGE_PERSONAL_ROWS:
        return make(
            Grade.important,
            f"涉及个人信息，共 {row_count} 行（≥{LARGE_PERSONAL_ROWS} 人的个人信息属于重要数据）",
            f"personal information in {row_count} rows (that of ≥{LARGE_PERSONAL_ROWS} people "
            "is important data)",
        )
    identifying = kinds & {PiiKind.id_number, PiiKind.bank_card}
    if {PiiKind.mobile, PiiKind.person_name} <= kinds:
        identifying |= {PiiKind.mobile, PiiKind.person_name}
    if identifying:
        zh, en = _columns(findings, identifying)
        return make(Grade.general_4, f"含可识别个人身份的列：{zh}", f"columns identifying persons: {en}")
    if kinds & PERSONAL_KINDS:
        zh, en = _columns(findings, PERSONAL_KINDS)
        return make(Grade.general_3, f"含个人信息列：{zh}", f"columns with personal information: {en}")
    if privacy_unit == "person":
        return make(
            Grade.general_3,
            "隐私主体为个人（未发现直接标识符）",
            "privacy unit is a person (no direct identifiers found)",
        )
    if privacy_unit == "enterprise" or PiiKind.uscc in kinds:
        zh, en = _columns(findings, {PiiKind.uscc})
        return make(
            Grade.general_2,
            "企业经营信息" + (f"，含 {zh}" if zh else ""),
            "enterprise business information" + (f", with {en}" if en else ""),
        )
    return make(
        Grade.general_1, "未发现个人信息，且无隐私主体", "no personal information and no privacy unit"
    )


def check_grade_change(
    current: Grade, new: Grade, *, actor_is_security_officer: bool, reason: str | None
) -> None:
    """Allow confirming or raising a grade by any steward; lowering only by the security officer.

    The caller has already checked that the actor holds the steward role.  Lowering a grade
    opens more actions (see :mod:`countylab.policy`), so it needs a security officer and a
    written reason of at least :data:`MIN_LOWERING_REASON` characters for the audit log.
    """
    if new >= current:
        return
    if not actor_is_security_officer:
        raise PermissionDenied(
            f"只有数据安全官可以将分级从{current.label_zh}降为{new.label_zh}",
            f"only the security officer may lower the grade from {current.label_en} to {new.label_en}",
            current=str(current),
            new=str(new),
        )
    if reason is None or len(reason.strip()) < MIN_LOWERING_REASON:
        raise ValidationFailed(
            f"降低分级须填写不少于 {MIN_LOWERING_REASON} 个字的理由",
            f"lowering a grade needs a written reason of at least {MIN_LOWERING_REASON} characters",
            reason="reason_too_short",
        )
