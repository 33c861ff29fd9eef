"""Project stories and the gallery: what a chart may be built from, and what is refused (and why)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from countylab.errors import Conflict, NotFound, ValidationFailed
from countylab.lab import Lab
from countylab.showcase import charts, gallery, stories
from countylab.showcase.chartspec import Source, SourceKind
from countylab.showcase.releases import ReleasedTable
from countylab.storage.airlock_models import ReleaseFile, ReleaseRequest
from countylab.storage.models import AuditEvent, Project
from tests.showcase.portal_fixtures import demo_lab
from tests.showcase.portal_fixtures import principal as _principal

SOURCE = Source(SourceKind.release, "出域编号 R-1", "release:1")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = demo_lab(tmp_path_factory.mktemp("stories"))
    yield lab
    lab.close()


def _ids(lab: Lab) -> dict[str, tuple[int, int]]:
    """slug → (project id, its released file id)."""
    out = {}
    with lab.read() as s:
        demo = ("elderly-care-demand", "crop-yield")
        for slug, pid in s.execute(select(Project.slug, Project.id).where(Project.slug.in_(demo))):
            fid = s.execute(
                select(ReleaseFile.id)
                .join(ReleaseRequest, ReleaseRequest.id == ReleaseFile.request_id)
                .where(ReleaseRequest.project_id == pid, ReleaseRequest.state == "released")
            ).scalar_one()
            out[slug] = (pid, fid)
    return out


def test_a_text_cell_drawn_as_a_number_is_refused_by_row_and_column(lab: Lab) -> None:
    pid, fid = _ids(lab)["elderly-care-demand"]
    with lab.tx() as s, pytest.raises(ValidationFailed) as info:
        stories.add_release_chart(
            s,
            _principal(lab, "operator"),
            pid,
            fid,
            kind="bar",
            category_column="数值",
            value_columns=["指标"],
        )
    assert info.value.details["row"] == 2 and info.value.details["column"] == "指标"
    with lab.tx() as s, pytest.raises(ValidationFailed) as info:
        stories.add_release_chart(
            s, _principal(lab, "operator"), pid, fid, kind="bar", value_columns=["没有"]
        )
    assert "没有" in info.value.message("zh-CN") and info.value.details["column"] == "没有"


def test_a_story_shows_only_its_own_projects_releases(lab: Lab) -> None:
    ids = _ids(lab)
    elderly, _ = ids["elderly-care-demand"]
    _, crop_file = ids["crop-yield"]
    with lab.tx() as s, pytest.raises(ValidationFailed):
        stories.add_release_chart(s, _principal(lab, "operator"), elderly, crop_file, kind="table")


def test_only_released_files_make_charts(lab: Lab) -> None:
    pid, fid = _ids(lab)["elderly-care-demand"]
    dev = _principal(lab, "developer")
    with lab.read() as s:
        job_id = (
            s.execute(select(ReleaseRequest.job_id).where(ReleaseRequest.project_id == pid)).scalars().first()
        )
    from countylab.airlock.service import FileChoice

    with lab.tx() as s:
        draft = lab.airlock.create(s, dev, job_id, [FileChoice("train/metrics.csv")])
        draft_file = s.execute(select(ReleaseFile.id).where(ReleaseFile.request_id == draft.id)).scalar_one()
    with lab.tx() as s, pytest.raises(NotFound):
        stories.add_release_chart(s, _principal(lab, "operator"), pid, draft_file, kind="table")
    with lab.tx() as s, pytest.raises(NotFound):
        gallery.add_item(s, _principal(lab, "operator"), draft_file)


def test_a_dp_number_without_its_interval_is_refused() -> None:
    answer = {"columns": ["town_code", "n"], "rows": [["330729001", 9]], "intervals": {}}
    source = Source(SourceKind.dp, "差分隐私统计", "query:1")
    with pytest.raises(ValidationFailed):
        charts.from_dp_answer(
            answer, title="t", source=source, category_column="town_code", value_column="n", labels={}
        )
    answer["intervals"] = {"n": [[3.0, 15.0]]}
    chart = charts.from_dp_answer(
        answer,
        title="t",
        source=source,
        category_column="town_code",
        value_column="n",
        labels={"330729001": "禾城街道"},
    )
    assert (
        chart.categories == ["禾城街道"] and chart.series[0].low == [3.0] and chart.series[0].high == [15.0]
    )


def test_publishing_needs_a_summary_and_is_audited(lab: Lab) -> None:
    operator = _principal(lab, "operator")
    pid, _ = _ids(lab)["crop-yield"]
    with lab.tx() as s:
        story = stories.get_story(s, pid)
        assert story is not None
        title, summary = story.title, story.summary
        stories.save_story(s, operator, pid, title=title, summary="")
        with pytest.raises(ValidationFailed):
            stories.set_published(s, operator, pid, True)
        stories.save_story(s, operator, pid, title=title, summary=summary)
        stories.set_published(s, operator, pid, True)
    with lab.read() as s:
        actions = [
            a for (a,) in s.execute(select(AuditEvent.action).where(AuditEvent.action.like("showcase.%")))
        ]
    assert {
        "showcase.story.save",
        "showcase.story.publish",
        "showcase.story.chart_add",
        "showcase.gallery.add",
    } <= set(actions)


def test_a_result_is_in_the_gallery_once(lab: Lab) -> None:
    _, fid = _ids(lab)["elderly-care-demand"]
    with lab.tx() as s, pytest.raises(Conflict):
        gallery.add_item(s, _principal(lab, "operator"), fid)


def test_the_leader_cannot_write_stories(lab: Lab) -> None:
    from countylab.errors import PermissionDenied

    pid, _ = _ids(lab)["crop-yield"]
    with lab.tx() as s, pytest.raises(PermissionDenied):
        stories.save_story(s, _principal(lab, "leader"), pid, title="x", summary="y")


numbers = st.one_of(st.none(), st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), numbers, numbers), min_size=1, max_size=30))
def test_a_table_chart_draws_every_number_of_its_columns(rows: list[tuple[str, object, object]]) -> None:
    table = ReleasedTable(1, "t.csv", "", ["k", "a", "b"], [list(r) for r in rows])
    chart = charts.from_table(
        table, kind="bar", title="t", source=SOURCE, category_column="k", value_columns=["a", "b"]
    )
    assert chart.categories == [r[0] for r in rows]
    drawn = [v for s in chart.series for v in s.values if v is not None]
    expected = [float(r[j]) for j in (1, 2) for r in rows if r[j] is not None]  # type: ignore[arg-type]
    assert sorted(drawn) == sorted(expected)
    assert len(chart.numbers()) == len(expected)
