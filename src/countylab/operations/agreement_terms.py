"""Approved terms to and from the JSON an agreement stores, and the words the agreement prints.

The agreement keeps the terms it printed (``Agreement.terms``), and the authorisation applies
*those* terms when the second signature lands: what was signed is what takes effect, even if
the application's review were changed afterwards.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from countylab.operations.terms import ApprovedTerms, Channel, DatasetTerms, QuotaTerms

CHANNEL_ZH = {
    Channel.dp_query: "差分隐私查询",
    Channel.sandbox_job: "沙箱作业",
    Channel.model_serving: "模型服务",
}
CHANNEL_EN = {
    Channel.dp_query: "DP queries",
    Channel.sandbox_job: "sandbox jobs",
    Channel.model_serving: "model serving",
}
PURPOSE_ZH = {"public_good": "公共治理/公益", "industry": "产业/行业"}


def channels_zh(channels: list[str] | frozenset[str] | tuple[str, ...] | None) -> str:
    if channels is None:
        return "全部方式"
    return "、".join(CHANNEL_ZH[Channel(c)] for c in sorted(channels)) or "无"


def to_json(t: ApprovedTerms) -> dict[str, Any]:
    return {
        "application_id": t.application_id,
        "application_number": t.application_number,
        "scenario_id": t.scenario_id,
        "org_id": t.org_id,
        "purpose": t.purpose,
        "datasets": [
            {
                "dataset_id": d.dataset_id,
                "columns": list(d.columns) if d.columns is not None else None,
                "epsilon": d.epsilon,
                "delta": d.delta,
            }
            for d in t.datasets
        ],
        "channels": sorted(c.value for c in t.channels),
        "starts_on": t.starts_on.isoformat(),
        "ends_on": t.ends_on.isoformat(),
        "member_ids": list(t.member_ids),
        "quota": None if t.quota is None else dict(t.quota.__dict__),
        "output_rules": t.output_rules,
        "conditions": t.conditions,
        "renewal_of": t.renewal_of,
    }


def from_json(d: dict[str, Any]) -> ApprovedTerms:
    return ApprovedTerms(
        application_id=int(d["application_id"]),
        application_number=str(d["application_number"]),
        scenario_id=int(d["scenario_id"]),
        org_id=int(d["org_id"]),
        purpose=str(d["purpose"]),
        datasets=tuple(
            DatasetTerms(
                dataset_id=int(x["dataset_id"]),
                columns=tuple(x["columns"]) if x.get("columns") is not None else None,
                epsilon=x.get("epsilon"),
                delta=x.get("delta"),
            )
            for x in d["datasets"]
        ),
        channels=frozenset(Channel(c) for c in d["channels"]),
        starts_on=date.fromisoformat(d["starts_on"]),
        ends_on=date.fromisoformat(d["ends_on"]),
        member_ids=tuple(int(u) for u in d["member_ids"]),
        quota=QuotaTerms(**d["quota"]) if d.get("quota") else None,
        output_rules=str(d.get("output_rules", "")),
        conditions=str(d.get("conditions", "")),
        renewal_of=d.get("renewal_of"),
    )
