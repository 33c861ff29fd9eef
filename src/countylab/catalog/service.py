"""Catalog metadata: datasets, their columns, grades, key sets, lineage and search.

Reading catalog metadata is open to every role (the catalog is the county's shop window);
writing needs ``dataset.write`` within the owning department, grading needs the security
officer (``dataset.grade``).  Every change is audited in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from countylab import audit
from countylab.catalog import search_service
from countylab.catalog.grading import Grade, check_grade_change
from countylab.errors import Conflict, NotFound, ValidationFailed
from countylab.identity.access import Principal, authorize
from countylab.identity.roles import Permission, Role
from countylab.notify.hooks import grade_notice
from countylab.storage.catalog_models import DatasetColumn, DatasetVersion, GradeChange, KeySet, Lineage
from countylab.storage.models import Dataset, Org

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
PRIVACY_UNITS = ("person", "enterprise", "none")
FREQUENCIES = ("static", "yearly", "monthly", "weekly", "daily", "hourly", "realtime")


def _now() -> datetime:
    return datetime.now(UTC)


def get_dataset(session: Session, dataset_id: int) -> Dataset:
    ds = session.get(Dataset, dataset_id)
    if ds is None:
        raise NotFound(f"数据集 {dataset_id} 不存在", f"Dataset {dataset_id} not found")
    return ds


def get_by_name(session: Session, name: str) -> Dataset:
    ds = session.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
    if ds is None:
        raise NotFound(f"数据集“{name}”不存在", f"Dataset '{name}' not found")
    return ds


def authorize_write(actor: Principal, ds: Dataset) -> None:
    """Providers write their own department's datasets; admins any."""
    authorize(actor, Permission.dataset_write, org_id=ds.org_id, target=f"dataset:{ds.id}")


def _check_fields(fields: dict[str, Any]) -> None:
    if "privacy_unit" in fields and fields["privacy_unit"] not in PRIVACY_UNITS:
        raise ValidationFailed(
            f"隐私主体只能是 {'/'.join(PRIVACY_UNITS)}",
            f"privacy_unit must be one of {', '.join(PRIVACY_UNITS)}",
            field="privacy_unit",
        )
    if "update_frequency" in fields and fields["update_frequency"] not in FREQUENCIES:
        raise ValidationFailed(
            f"更新频率只能是 {'/'.join(FREQUENCIES)}",
            f"update_frequency must be one of {', '.join(FREQUENCIES)}",
            field="update_frequency",
        )
    if "title" in fields and not str(fields["title"]).strip():
        raise ValidationFailed("数据集名称不能为空", "A dataset needs a title", field="title")
    if "tags" in fields:
        tags = fields["tags"]
        if not isinstance(tags, list) or any(not isinstance(t, str) or len(t) > 40 for t in tags):
            raise ValidationFailed(
                "标签须为不超过40字的文本列表", "tags must be a list of short strings", field="tags"
            )


EDITABLE = (
    "title",
    "description",
    "contact",
    "update_frequency",
    "privacy_unit",
    "privacy_unit_column",
    "tags",
    "key_columns",
)


def suggest_dataset_name(session: Session, title: str) -> str:
    """A free dataset identifier from a (Chinese) title: 常住人口信息 → ``changzhurenkouxinxi``.

    Clerks name datasets by title; the identifier is generated, not demanded, and the UI shows
    it (editable) before saving.  Taken names get ``_2``, ``_3``…"""
    from countylab.ingest.idents import identifier_from

    base = identifier_from(title, fallback="ds", max_len=40)
    if len(base) < 2:
        base = f"ds_{base}"
    similar = select(Dataset.name).where(Dataset.name.startswith(base, autoescape=True))
    taken = set(session.execute(similar).scalars())
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def create_dataset(
    session: Session,
    actor: Principal,
    *,
    name: str,
    title: str,
    org_id: int | None = None,
    description: str = "",
    contact: str = "",
    update_frequency: str = "static",
    privacy_unit: str = "none",
    privacy_unit_column: str | None = None,
    tags: list[str] | None = None,
    key_columns: list[str] | None = None,
) -> Dataset:
    org_id = org_id if org_id is not None else actor.org_id
    name = name.strip() or suggest_dataset_name(session, title)
    authorize(actor, Permission.dataset_write, org_id=org_id, target=f"dataset:{name}")
    if not _NAME.match(name):
        raise ValidationFailed(
            "数据集标识须以小写字母开头，只含小写字母、数字和下划线（2–64位）",
            "Dataset name must start with a-z and use only a-z, 0-9 and _ (2-64 chars)",
            field="name",
        )
    if org_id is None or session.get(Org, org_id) is None:
        raise ValidationFailed(
            "请指定数据集所属部门", "Choose the department that owns the dataset", field="org_id"
        )
    fields = {
        "title": title,
        "privacy_unit": privacy_unit,
        "update_frequency": update_frequency,
        "tags": tags or [],
    }
    _check_fields(fields)
    if session.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none():
        raise Conflict(f"数据集标识“{name}”已存在", f"Dataset name '{name}' already exists", field="name")
    ds = Dataset(
        name=name,
        title=title.strip(),
        description=description.strip(),
        org_id=org_id,
        contact=contact,
        update_frequency=update_frequency,
        privacy_unit=privacy_unit,
        privacy_unit_column=privacy_unit_column,
        grade=Grade.general_4.value if privacy_unit == "person" else Grade.general_2.value,
        grade_confirmed=False,
        grade_reason="尚未上传数据，暂按隐私主体从严分级 / provisional until data arrives",
        tags=list(dict.fromkeys(tags or [])),
        key_columns=key_columns or [],
        created_by=actor.user_id,
    )
    session.add(ds)
    session.flush()
    audit.record(
        session,
        actor,
        "dataset.create",
        f"dataset:{ds.id}",
        name=name,
        title=ds.title,
        org_id=org_id,
    )
    return ds


def update_dataset(session: Session, actor: Principal, dataset_id: int, **fields: Any) -> Dataset:
    ds = get_dataset(session, dataset_id)
    authorize_write(actor, ds)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(
            f"不能修改这些字段：{', '.join(sorted(unknown))}",
            f"These fields cannot be edited: {', '.join(sorted(unknown))}",
        )
    _check_fields(fields)
    if "privacy_unit_column" in fields and fields["privacy_unit_column"] and ds.table_schema:
        names = {c["name"] for c in ds.table_schema["columns"]}
        if fields["privacy_unit_column"] not in names:
            raise ValidationFailed(
                "隐私主体列不在数据集的列中",
                "The privacy unit column is not a column",
                field="privacy_unit_column",
            )
    changed = {k: v for k, v in fields.items() if getattr(ds, k) != v}
    for k, v in changed.items():
        setattr(ds, k, v.strip() if isinstance(v, str) else v)
    ds.updated_at = _now()
    audit.record(session, actor, "dataset.update", f"dataset:{ds.id}", fields=sorted(changed))
    return ds


# -- grades ------------------------------------------------------------------------------------


def set_grade(session: Session, actor: Principal, dataset_id: int, grade: str, reason: str = "") -> Dataset:
    """The security officer confirms, raises or (with a written reason) lowers a grade."""
    ds = get_dataset(session, dataset_id)
    authorize(actor, Permission.dataset_grade, target=f"dataset:{ds.id}")
    try:
        new = Grade(grade)
    except ValueError:
        raise ValidationFailed(f"未知的分级：{grade}", f"Unknown grade: {grade}", field="grade") from None
    current = Grade(ds.grade)
    check_grade_change(
        current, new, actor_is_security_officer=Role.steward in actor.roles or actor.is_system, reason=reason
    )
    kind = "confirmed" if new == current else ("raised" if new.rank > current.rank else "lowered")
    ds.grade, ds.grade_confirmed = new.value, True
    grade_notice(session, ds, ds.proposed_grade)  # settles the stewards' "to confirm" notices
    if reason.strip():
        ds.grade_reason = reason.strip()
    session.add(
        GradeChange(
            dataset_id=ds.id,
            from_grade=current.value,
            to_grade=new.value,
            kind=kind,
            reason=reason.strip(),
            by_user_id=actor.user_id,
        )
    )
    audit.record(
        session,
        actor,
        f"dataset.grade.{kind}",
        f"dataset:{ds.id}",
        **{"from": current.value, "to": new.value, "reason": reason},
    )
    return ds


def apply_proposal(session: Session, ds: Dataset, grade: Grade, reason: str) -> None:
    """After new data: an unconfirmed grade follows the proposal.  A confirmed grade stands (the
    officer may have lowered it deliberately, with a reason) unless the data became more
    sensitive than when it was last assessed, i.e. the new proposal exceeds the previous one;
    then the grade is raised automatically (tightening is always allowed) and recorded."""
    current = Grade(ds.grade)
    previous = Grade(ds.proposed_grade) if ds.proposed_grade else None
    ds.proposed_grade = grade.value
    grade_notice(session, ds, previous.value if previous else None)
    if not ds.grade_confirmed:
        if grade != current or not ds.grade_reason:
            session.add(
                GradeChange(
                    dataset_id=ds.id,
                    from_grade=current.value,
                    to_grade=grade.value,
                    kind="proposed",
                    reason=reason,
                    by_user_id=None,
                )
            )
        ds.grade, ds.grade_reason = grade.value, reason
    elif previous is not None and grade.rank > previous.rank and grade.rank > current.rank:
        ds.grade, ds.grade_reason = grade.value, reason
        session.add(
            GradeChange(
                dataset_id=ds.id,
                from_grade=current.value,
                to_grade=grade.value,
                kind="raised",
                reason=reason,
                by_user_id=None,
            )
        )


def grade_history(session: Session, dataset_id: int) -> list[GradeChange]:
    return list(
        session.execute(
            select(GradeChange).where(GradeChange.dataset_id == dataset_id).order_by(GradeChange.id.desc())
        ).scalars()
    )


# -- columns -----------------------------------------------------------------------------------


def columns(session: Session, dataset_id: int) -> list[DatasetColumn]:
    return list(
        session.execute(
            select(DatasetColumn)
            .where(DatasetColumn.dataset_id == dataset_id)
            .order_by(DatasetColumn.position)
        ).scalars()
    )


COLUMN_EDITABLE = ("title", "tags", "lower", "upper", "key_set", "joinable_to", "sensitive", "semantic")


def set_column(
    session: Session, actor: Principal, dataset_id: int, name: str, **fields: Any
) -> DatasetColumn:
    """Steward-set column metadata: clamping bounds, public key set, joins, sensitivity, tags."""
    ds = get_dataset(session, dataset_id)
    authorize(actor, Permission.dataset_grade, target=f"dataset:{ds.id}")
    col = session.execute(
        select(DatasetColumn).where(DatasetColumn.dataset_id == ds.id, DatasetColumn.name == name)
    ).scalar_one_or_none()
    if col is None:
        raise NotFound(f"列“{name}”不存在", f"Column '{name}' not found", column=name)
    unknown = set(fields) - set(COLUMN_EDITABLE)
    if unknown:
        raise ValidationFailed(
            f"不能修改：{', '.join(sorted(unknown))}", f"Cannot edit: {', '.join(sorted(unknown))}"
        )
    lower, upper = fields.get("lower", col.lower), fields.get("upper", col.upper)
    if lower is not None and upper is not None and float(lower) > float(upper):
        raise ValidationFailed("下界不能大于上界", "lower bound must not exceed upper bound", column=name)
    if (
        fields.get("key_set")
        and session.execute(select(KeySet).where(KeySet.name == fields["key_set"])).scalar_one_or_none()
        is None
    ):
        raise NotFound(f"公开键集“{fields['key_set']}”不存在", f"Key set '{fields['key_set']}' not found")
    for k, v in fields.items():
        setattr(col, k, v)
    audit.record(
        session,
        actor,
        "dataset.column.update",
        f"dataset:{ds.id}",
        column=name,
        fields=sorted(fields),
    )
    return col


# -- key sets and lineage ----------------------------------------------------------------------


def upsert_key_set(
    session: Session,
    actor: Principal,
    *,
    name: str,
    title: str,
    values: list[Any],
    source: str | None = None,
    labels: dict[str, str] | None = None,
) -> KeySet:
    """Create or replace a public key set; ``labels`` maps each code to its display name."""
    authorize(actor, Permission.dataset_grade, target=f"key_set:{name}")
    ks = session.execute(select(KeySet).where(KeySet.name == name)).scalar_one_or_none()
    names = {str(k): str(v) for k, v in (labels or {}).items()}
    if ks is None:
        ks = KeySet(name=name, title=title, values=list(values), source=source, labels=names)
        session.add(ks)
    else:
        ks.title, ks.values, ks.source, ks.labels = title, list(values), source, names
    audit.record(session, actor, "key_set.save", f"key_set:{name}", values=len(values))
    return ks


def key_sets(session: Session) -> dict[str, KeySet]:
    return {k.name: k for k in session.execute(select(KeySet)).scalars()}


def lineage(session: Session, dataset_id: int) -> tuple[list[tuple[Dataset, str]], list[tuple[Dataset, str]]]:
    ups = session.execute(
        select(Dataset, Lineage.via)
        .join(Lineage, Lineage.parent_id == Dataset.id)
        .where(Lineage.child_id == dataset_id)
    ).all()
    downs = session.execute(
        select(Dataset, Lineage.via)
        .join(Lineage, Lineage.child_id == Dataset.id)
        .where(Lineage.parent_id == dataset_id)
    ).all()
    return [(d, v) for d, v in ups], [(d, v) for d, v in downs]


def versions(session: Session, dataset_id: int) -> list[DatasetVersion]:
    return list(
        session.execute(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.version.desc())
        ).scalars()
    )


# -- search ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    q: str = ""
    department: int | None = None
    grade: str | None = None
    tag: str | None = None


def search_datasets(session: Session, filters: Filters) -> list[Dataset]:
    q = select(Dataset)
    if filters.department:
        q = q.where(Dataset.org_id == filters.department)
    if filters.grade:
        q = q.where(Dataset.grade == filters.grade)
    found = list(session.execute(q.order_by(Dataset.name)).scalars())
    if filters.tag:
        found = [d for d in found if filters.tag in (d.tags or [])]
    if not filters.q.strip():
        return found
    # ranked: 分词, synonyms, BM25F over title, tags, columns, description (catalog/search.py)
    return [d for d, _ in search_service.rank(session, found, filters.q)]
