"""Composing dashboards: each widget kind from each source, through the real API, on the demo county."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from countylab.lab import Lab
from countylab.showcase import dashboards, metrics
from countylab.showcase.widgets import WidgetSpec
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from tests.showcase.dashboard_fixtures import *  # noqa: F403 - the fixtures dash_template and dash_lab
from tests.showcase.dashboard_fixtures import ELDERLY_SQL, dataset_id, open_bar, principal
from tests.support import finished_job


def _board(lab: Lab, slug: str = "t-board") -> int:
    with lab.tx() as s:
        return dashboards.create(s, principal(lab, "steward"), slug=slug, title="测试看板").id


def _add(lab: Lab, board: int, spec: dict[str, Any]) -> dict[str, Any]:
    with lab.tx() as s:
        w = dashboards.add_widget(
            s,
            principal(lab, "steward"),
            lab.ingestion,
            board,
            WidgetSpec(
                spec["kind"], spec["title"], spec["source_kind"], spec["source"], spec.get("unit", "")
            ),
        )
        return dashboards.widget_view(w)


def released_file(
    lab: Lab, body: bytes = b"town,rate\n\xe5\x9f\x8e\xe5\x85\xb3\xe9\x95\x87,0.82\nB,0.7\n"
) -> int:
    """A released CSV of a finished job, as the airlock leaves it (state released, released_path)."""
    with lab.tx() as s:
        from countylab.storage.models import Project

        project = s.execute(select(Project).where(Project.slug == "elderly-care-demand")).scalar_one()
        job = finished_job(
            s,
            lab,
            project_id=project.id,
            submitted_by=project.created_by or 1,
            datasets=[],
            files={"metrics.csv": body},
        )
        path = lab.settings.data_dir / "airlock" / "released-test" / f"{job}-metrics.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        req = ReleaseRequest(
            project_id=project.id,
            job_id=job,
            title="模型评估指标",
            state="released",
            grade="general_3",
            datasets=[],
        )
        s.add(req)
        s.flush()
        f = ReleaseFile(
            request_id=req.id,
            name="analyse/metrics.csv",
            stored_path=str(path),
            sha256="0" * 64,
            kind="table",
            released_path=str(path),
            released_sha256="0" * 64,
        )
        s.add(f)
        s.flush()
        return int(f.id)


def dp_metric(lab: Lab, name: str = "test_alone_by_town") -> int:
    steward = principal(lab, "steward")
    with lab.tx() as s:
        m = metrics.create(
            s,
            steward,
            name=name,
            title="独居高龄老人",
            sql=ELDERLY_SQL,
            epsilon=0.5,
            schedule="daily",
            gateway=lab.gateway,
        )
        mid = m.id
    metrics.refresh(lab, steward, mid)
    return mid


@pytest.mark.parametrize("kind", ["bar", "line", "map", "table", "card"])
def test_open_data_widget_of_each_kind(dash_lab: Lab, kind: str) -> None:
    board = _board(dash_lab)
    spec = open_bar(dash_lab, kind=kind)
    w = _add(dash_lab, board, spec)
    chart = w["chart"]
    assert chart["kind"] == kind and chart["source"]["kind"] == "open"
    assert chart["source"]["ref"].startswith(f"dataset:{dataset_id(dash_lab, 'air_quality')}@v")
    if kind == "table":
        assert chart["rows"] and all(isinstance(r[1], float) for r in chart["rows"])
    elif kind == "map":
        assert chart["level"] == "town" and len(chart["categories"]) == len(chart["category_names"])
        assert any(v is not None for v in chart["series"][0]["values"])
    else:
        assert chart["series"][0]["values"]


def test_open_line_by_day(dash_lab: Lab) -> None:
    board = _board(dash_lab)
    w = _add(
        dash_lab,
        board,
        open_bar(
            dash_lab,
            kind="line",
            source={
                "dataset_id": dataset_id(dash_lab, "air_quality"),
                "group_by": "hour",
                "bucket": "day",
                "value": "aqi",
                "aggregate": "avg",
                "last": 7,
            },
        ),
    )
    cats = w["chart"]["categories"]
    assert 1 <= len(cats) <= 7 and cats == sorted(cats) and len(cats[0]) == 10  # 2026-…-…


def test_released_table_widgets(dash_lab: Lab) -> None:
    board = _board(dash_lab)
    fid = released_file(dash_lab)
    table = _add(
        dash_lab,
        board,
        {"kind": "table", "title": "模型指标", "source_kind": "release", "source": {"file_id": fid}},
    )
    assert table["chart"]["columns"] == ["town", "rate"]
    assert table["chart"]["rows"] == [["城关镇", 0.82], ["B", 0.7]]
    assert table["chart"]["source"]["label"].startswith("出域编号 R-")
    bar = _add(
        dash_lab,
        board,
        {
            "kind": "bar",
            "title": "比率",
            "source_kind": "release",
            "source": {"file_id": fid, "label_column": "town", "value_column": "rate"},
        },
    )
    assert bar["chart"]["series"][0]["values"] == [0.82, 0.7]
    card = _add(
        dash_lab,
        board,
        {
            "kind": "card",
            "title": "城关镇",
            "source_kind": "release",
            "source": {"file_id": fid, "category": "城关镇"},
        },
    )
    assert card["chart"]["series"][0]["values"] == [0.82]


def test_dp_metric_widgets_carry_intervals(dash_lab: Lab) -> None:
    board = _board(dash_lab)
    mid = dp_metric(dash_lab)
    for kind in ("bar", "map", "table", "card"):
        w = _add(
            dash_lab,
            board,
            {
                "kind": kind,
                "title": "独居高龄老人",
                "unit": "人",
                "source_kind": "dp",
                "source": {"metric_id": mid},
            },
        )
        chart = w["chart"]
        assert chart["source"]["kind"] == "dp" and chart["source"]["ref"] == f"metric:{mid}"
        if kind == "table":
            assert chart["columns"][-2:] == ["95% 下限", "95% 上限"]
            continue
        s = chart["series"][0]
        shown = [i for i, v in enumerate(s["values"]) if v is not None]
        assert shown and all(s["low"][i] <= s["values"][i] <= s["high"][i] for i in shown)


@pytest.mark.parametrize(
    ("source_kind", "source", "words"),
    [
        ("open", {"dataset_id": "residents", "aggregate": "count"}, "dataset_id"),
        ("open", {"aggregate": "count"}, "dataset_id"),
        ("dp", {"metric_id": 999}, "999"),
        ("release", {"file_id": 999}, "999"),
    ],
)
def test_bad_sources_are_refused_with_their_reason(
    dash_lab: Lab, source_kind: str, source: dict[str, Any], words: str
) -> None:
    board = _board(dash_lab)
    from countylab.errors import CountylabError

    with pytest.raises(CountylabError) as err:
        _add(dash_lab, board, {"kind": "bar", "title": "x", "source_kind": source_kind, "source": source})
    assert words in err.value.message("en")
    with dash_lab.read() as s:
        assert dashboards.widgets(s, board) == []


def test_a_dataset_that_is_not_open_is_refused(dash_lab: Lab) -> None:
    board = _board(dash_lab)
    from countylab.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as err:
        _add(
            dash_lab,
            board,
            {
                "kind": "card",
                "title": "人口",
                "source_kind": "open",
                "source": {"dataset_id": dataset_id(dash_lab, "residents"), "aggregate": "count"},
            },
        )
    assert err.value.details["reason"] == "not_open"
