"""The approval workflow as configuration, not code: which steps each application goes through.

The county's rules differ by the grade of the data and the purpose of use, and they change
(a new 重要数据 rule, a longer notice period), so the steps are data: a TOML file shipped with
the lab (``workflow_default.toml``, version 0) and the versions the admin saves on
``/ops/workflow`` (``workflow_configs``; a row is never edited).  An application keeps the
version that was current when it was submitted.

Some rules are not configurable, because the configuration must not be able to weaken them:
every path has department consent (部门同意) and the security review (安全审查); a path that can
match 重要数据 has expert review (专家评审); 核心数据 is never granted to an external organisation
(enforced in :mod:`countylab.operations.workflow` at every step, whatever the file says).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab.catalog.grading import Grade
from countylab.errors import NotFound, ValidationFailed
from countylab.labels import BEIJING
from countylab.storage.workflow_models import WorkflowConfig

STEP_KINDS = ("precheck", "consent", "security", "expert", "final")
REVIEW_KINDS = ("consent", "security", "expert", "final")  # the kinds a path's stages may name
PURPOSES = ("public_good", "industry")
_STEP_ZH = {
    "precheck": "材料预审",
    "consent": "部门同意",
    "security": "安全审查",
    "expert": "专家评审",
    "final": "终审",
}


@dataclass(frozen=True)
class Path:
    name: str
    grades: frozenset[str]
    purposes: frozenset[str]
    stages: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Config:
    version: int
    deadline_unit: str  # working_days | days
    notice_days: int
    deadlines: dict[str, int]
    expert_assign: int
    expert_agree: int
    paths: tuple[Path, ...]
    renewal_stages: tuple[tuple[str, ...], ...]
    renewal_notice_days: int

    def path_for(self, grade: Grade, purpose: str, *, renewal: bool = False) -> tuple[tuple[str, ...], ...]:
        """The stages for an application whose highest grade is ``grade``.

        Expert review is added for 重要数据 when a path (a renewal's) leaves it out: the rule is
        the law's, not the county's."""
        stages: tuple[tuple[str, ...], ...] | None = self.renewal_stages if renewal else None
        if stages is None:
            for p in self.paths:
                if grade.value in p.grades and purpose in p.purposes:
                    stages = p.stages
                    break
        if stages is None:  # validation makes every grade × purpose match; be safe anyway
            stages = (("consent",), ("security",), ("final",))
        if grade == Grade.important and not any("expert" in s for s in stages):
            stages = (*stages, ("expert",))
        return stages

    def notice_days_for(self, *, renewal: bool) -> int:
        return self.renewal_notice_days if renewal else self.notice_days

    def due(self, kind: str, opened: datetime) -> datetime:
        """The deadline of a step opened at ``opened``: the end of the Beijing day after N working
        days (Monday–Friday; public holidays are not known to the lab) or N calendar days."""
        days = self.deadlines.get(kind, 5)
        opened = opened if opened.tzinfo is not None else opened.replace(tzinfo=UTC)
        day = opened.astimezone(BEIJING).date()
        day = add_days(day, days, working=self.deadline_unit == "working_days")
        end = datetime.combine(day, time(23, 59, 59), tzinfo=BEIJING)  # shown as that day 23:59
        return end.astimezone(UTC)


def add_days(day: date, n: int, *, working: bool) -> date:
    if not working:
        return day + timedelta(days=n)
    left = n
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def default_source() -> str:
    return resources.files("countylab.operations").joinpath("workflow_default.toml").read_text("utf-8")


def _bad(zh: str, en: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(f"审批流程配置有误：{zh}", f"workflow configuration: {en}", **details)


def _int(raw: dict[str, Any], key: str, lo: int, hi: int, where: str) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(
            f"{where}{key} 必须是 {lo} 到 {hi} 之间的整数（现为 {value!r}）",
            f"{where}{key} must be an integer from {lo} to {hi} (got {value!r})",
            field=f"{where}{key}",
        )
    return value


def _stages(raw: Any, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, list) and s for s in raw):
        raise _bad(
            f'{where}stages 必须是非空的阶段列表，如 [["consent"], ["security"]]',
            f'{where}stages must be a non-empty list of stages, e.g. [["consent"], ["security"]]',
            field=f"{where}stages",
        )
    seen: list[str] = []
    for stage in raw:
        for kind in stage:
            if kind not in REVIEW_KINDS:
                raise _bad(
                    f"{where}stages 中的步骤“{kind}”未知（可用：{'、'.join(REVIEW_KINDS)}）",
                    f"{where}stages names an unknown step {kind!r} (known: {', '.join(REVIEW_KINDS)})",
                    field=f"{where}stages",
                )
            if kind in seen:
                raise _bad(
                    f"{where}stages 中步骤“{_STEP_ZH[kind]}”出现了两次",
                    f"{where}stages names {kind!r} twice",
                    field=f"{where}stages",
                )
            seen.append(kind)
    return tuple(tuple(str(k) for k in s) for s in raw)


def parse(source: str, *, version: int = 0) -> Config:
    """Parse and validate a configuration; every error names the key that is wrong."""
    try:
        raw = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"TOML 语法错误：{exc}", f"TOML syntax error: {exc}", field="source") from None
    unit = raw.get("deadline_unit", "working_days")
    if unit not in ("working_days", "days"):
        raise _bad(
            "deadline_unit 只能是 working_days 或 days",
            "deadline_unit must be working_days or days",
            field="deadline_unit",
        )
    notice_days = _int(raw, "notice_days", 1, 60, "")
    deadlines_raw = raw.get("deadlines", {})
    if not isinstance(deadlines_raw, dict):
        raise _bad("[deadlines] 必须是表", "[deadlines] must be a table", field="deadlines")
    deadlines = {k: _int(deadlines_raw, k, 1, 90, "deadlines.") for k in STEP_KINDS}
    expert = raw.get("expert", {})
    if not isinstance(expert, dict):
        raise _bad("[expert] 必须是表", "[expert] must be a table", field="expert")
    assign = _int(expert, "assign", 1, 20, "expert.")
    agree = _int(expert, "agree", 1, 20, "expert.")
    if agree > assign:
        raise _bad(
            f"expert.agree（{agree}）不能大于 expert.assign（{assign}）",
            f"expert.agree ({agree}) cannot exceed expert.assign ({assign})",
            field="expert.agree",
        )
    paths: list[Path] = []
    raw_paths = raw.get("paths")
    if not isinstance(raw_paths, list) or not raw_paths:
        raise _bad("至少需要一条 [[paths]]", "at least one [[paths]] is needed", field="paths")
    for i, p in enumerate(raw_paths, start=1):
        where = f"paths[{i}]."
        grades = p.get("grades", [])
        purposes = p.get("purposes", [])
        bad_grades = [g for g in grades if g not in {x.value for x in Grade}]
        if not grades or bad_grades:
            raise _bad(
                f"{where}grades 有误：{bad_grades or '为空'}",
                f"{where}grades is wrong: {bad_grades or 'empty'}",
                field=f"{where}grades",
            )
        if not purposes or any(x not in PURPOSES for x in purposes):
            raise _bad(
                f"{where}purposes 只能包含 public_good、industry",
                f"{where}purposes may hold public_good, industry",
                field=f"{where}purposes",
            )
        stages = _stages(p.get("stages"), where)
        flat = {k for s in stages for k in s}
        for needed in ("consent", "security"):
            if needed not in flat:
                raise _bad(
                    f"{where}每条路径都必须包含“{_STEP_ZH[needed]}”",
                    f"{where}every path must include {needed!r}",
                    field=f"{where}stages",
                )
        if "important" in grades and "expert" not in flat:
            raise _bad(
                f"{where}含重要数据的路径必须包含“专家评审”",
                f"{where}a path for important data must include 'expert'",
                field=f"{where}stages",
            )
        paths.append(Path(str(p.get("name", f"#{i}")), frozenset(grades), frozenset(purposes), stages))
    for g in Grade:
        for purpose in PURPOSES:
            if not any(g.value in p.grades and purpose in p.purposes for p in paths):
                raise _bad(
                    f"没有路径适用于“{g.label_zh}”+“{purpose}”",
                    f"no path matches {g.value} + {purpose}",
                    field="paths",
                )
    renewal = raw.get("renewal", {})
    if not isinstance(renewal, dict):
        raise _bad("[renewal] 必须是表", "[renewal] must be a table", field="renewal")
    renewal_stages = _stages(renewal.get("stages", [["security"]]), "renewal.")
    if "security" not in {k for s in renewal_stages for k in s}:
        raise _bad(
            "续期路径必须包含“安全审查”", "the renewal path must include 'security'", field="renewal.stages"
        )
    renewal_notice = _int(
        {"notice_days": renewal.get("notice_days", notice_days)}, "notice_days", 1, 60, "renewal."
    )
    return Config(
        version=version,
        deadline_unit=str(unit),
        notice_days=notice_days,
        deadlines=deadlines,
        expert_assign=assign,
        expert_agree=agree,
        paths=tuple(paths),
        renewal_stages=renewal_stages,
        renewal_notice_days=renewal_notice,
    )


_DEFAULT: Config | None = None


def default_config() -> Config:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = parse(default_source(), version=0)
    return _DEFAULT


def current_version(session: Session) -> int:
    v = session.execute(
        select(WorkflowConfig.version).order_by(WorkflowConfig.version.desc()).limit(1)
    ).scalar()
    return int(v or 0)


def version_at(session: Session, when: datetime | None) -> int:
    """The version that was current at ``when`` (an application's submission)."""
    if when is None:
        return current_version(session)
    v = session.execute(
        select(WorkflowConfig.version)
        .where(WorkflowConfig.created_at <= when)
        .order_by(WorkflowConfig.version.desc())
        .limit(1)
    ).scalar()
    return int(v or 0)


def load(session: Session, version: int | None = None) -> Config:
    """A stored version (the current one when ``version`` is None); 0 is the shipped default."""
    v = current_version(session) if version is None else version
    if v == 0:
        return default_config()
    row = session.execute(select(WorkflowConfig).where(WorkflowConfig.version == v)).scalar()
    if row is None:
        raise NotFound(f"审批流程配置第 {v} 版不存在", f"Workflow configuration version {v} not found")
    return parse(row.source, version=v)


def source_of(session: Session, version: int | None = None) -> str:
    v = current_version(session) if version is None else version
    if v == 0:
        return default_source()
    source = session.execute(select(WorkflowConfig.source).where(WorkflowConfig.version == v)).scalar()
    if source is None:
        raise NotFound(f"审批流程配置第 {v} 版不存在", f"Workflow configuration version {v} not found")
    return source


def history(session: Session) -> list[WorkflowConfig]:
    return list(session.execute(select(WorkflowConfig).order_by(WorkflowConfig.version.desc())).scalars())


def save(session: Session, source: str, *, user_id: int | None, note: str, now: datetime) -> Config:
    """Validate and store ``source`` as the next version (the caller authorises and audits)."""
    version = current_version(session) + 1
    config = parse(source, version=version)
    session.add(
        WorkflowConfig(
            version=version,
            source=source,
            body=_as_json(config),
            note=note.strip()[:500],
            created_by=user_id,
            created_at=now,
        )
    )
    session.flush()
    return config


def _as_json(c: Config) -> dict[str, Any]:
    return {
        "deadline_unit": c.deadline_unit,
        "notice_days": c.notice_days,
        "deadlines": c.deadlines,
        "expert": {"assign": c.expert_assign, "agree": c.expert_agree},
        "paths": [
            {
                "name": p.name,
                "grades": sorted(p.grades),
                "purposes": sorted(p.purposes),
                "stages": [list(s) for s in p.stages],
            }
            for p in c.paths
        ],
        "renewal": {"stages": [list(s) for s in c.renewal_stages], "notice_days": c.renewal_notice_days},
    }
