"""The workflow configuration: the shipped default parses, bad files are refused with the key
named, rules the county cannot weaken, working days (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from countylab.catalog.grading import Grade
from countylab.errors import ValidationFailed
from countylab.labels import BEIJING
from countylab.operations.workflow_config import add_days, default_source, parse

SOURCE = default_source()


def test_default_paths_per_grade_and_purpose() -> None:
    c = parse(SOURCE)
    assert c.path_for(Grade.important, "public_good") == (
        ("consent",),
        ("security",),
        ("expert",),
        ("final",),
    )
    assert c.path_for(Grade.general_2, "industry") == (("consent", "security"), ("final",))
    assert c.path_for(Grade.general_4, "public_good") == (("consent",), ("security",))
    assert c.path_for(Grade.general_1, "public_good") == (("consent", "security"),)
    assert c.path_for(Grade.general_3, "industry", renewal=True) == (("security",),)
    # a renewal of important data still gets its expert review
    assert c.path_for(Grade.important, "industry", renewal=True) == (("security",), ("expert",))
    assert c.notice_days_for(renewal=False) == 5 and c.notice_days_for(renewal=True) == 3


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("notice_days = 5", "notice_days = 0"), "notice_days"),
        (("consent = 5 ", "consent = -1 "), "deadlines.consent"),
        (("agree = 2", "agree = 9"), "expert.agree"),
        (
            (
                'stages = [["consent"], ["security"], ["expert"], ["final"]]',
                'stages = [["consent"], ["security"], ["final"]]',
            ),
            "paths[1].stages",
        ),
        (
            ('stages = [["consent", "security"], ["final"]]', 'stages = [["security"], ["final"]]'),
            "paths[2].stages",
        ),
        (
            ('stages = [["consent", "security"], ["final"]]', 'stages = [["consent", "audit"]]'),
            "paths[2].stages",
        ),
        (('grades = ["core"]', 'grades = ["secret"]'), "paths[5].grades"),
        (('purposes = ["industry"]', 'purposes = ["public_good"]'), "paths"),
        (('deadline_unit = "working_days"', 'deadline_unit = "weeks"'), "deadline_unit"),
        (("[deadlines]", "[deadlines"), "source"),
    ],
)
def test_bad_configurations_name_the_key(change: tuple[str, str], key: str) -> None:
    old, new = change
    assert old in SOURCE, old
    with pytest.raises(ValidationFailed) as bad:
        parse(SOURCE.replace(old, new, 1))
    assert bad.value.details["field"] == key
    assert "审批流程配置有误" in bad.value.message_zh


def test_due_is_the_end_of_the_beijing_day_after_n_working_days() -> None:
    c = parse(SOURCE)
    friday_evening = datetime(2026, 12, 4, 20, 0, tzinfo=BEIJING)  # a Friday
    due = c.due("precheck", friday_evening.astimezone(UTC)).astimezone(BEIJING)
    assert due.date() == date(2026, 12, 9) and (due.hour, due.minute) == (23, 59)  # Mon, Tue, Wed


@given(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 1, 1)), st.integers(min_value=0, max_value=60)
)
def test_working_days_land_on_a_weekday_with_exactly_n_weekdays_between(day: date, n: int) -> None:
    end = add_days(day, n, working=True)
    between = [day + timedelta(days=i) for i in range(1, (end - day).days + 1)]
    assert sum(1 for d in between if d.weekday() < 5) == n
    if n:
        assert end.weekday() < 5
    assert add_days(day, n, working=False) == day + timedelta(days=n)
