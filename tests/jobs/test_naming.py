"""Job names people can tell apart, and the listing facts beside them.

Pins: the order typed name > spec ``name``/``title`` > ``<folder>: <entry script>``; a job is
never called by its bare action word; spec titles are one line and bounded; the listing gives
project members coarse CPU buckets and whole minutes while oversight roles get exact figures.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from countylab.errors import ValidationFailed
from countylab.jobs import parse_spec
from countylab.jobs.facts import BUCKETS_S, declared_outputs, listing
from countylab.jobs.naming import entry_script, job_name, source_name


def spec(run: str = "python train.py", head: str = "", action: str = "train"):  # type: ignore[no-untyped-def]
    return parse_spec(
        f"version: 1\n{head}actions:\n  {action}:\n    run: {run}\n"
        "    outputs:\n      - {path: metrics.json, kind: metrics}\n"
    )


def test_typed_name_wins_then_spec_title_then_folder_and_script() -> None:
    titled = spec(head="name: 养老服务需求预测\n")
    assert job_name(titled, explicit="  第二轮  调参 ", source="elder-care.tar.gz") == "第二轮 调参"
    assert job_name(titled, source="elder-care.tar.gz") == "养老服务需求预测"
    assert job_name(spec(head="title: Care demand v2\n")) == "Care demand v2"
    assert job_name(spec(), source="elder-care.tar.gz") == "elder-care: train.py"
    assert job_name(spec(), source="/home/dev/elder-care") == "elder-care: train.py"
    assert job_name(spec(), source="code.tar.gz") == "train.py"  # a generic archive name says nothing
    assert job_name(spec(), source="code.archive") == "train.py"


@pytest.mark.parametrize(
    ("run", "script"),
    [
        ("python train.py --folds 5", "train.py"),
        ("python3 -u src/fit_model.py", "fit_model.py"),
        ("python -m care.train", "care.train"),
        ("Rscript analysis/model.R", "model.R"),
        ("./run.sh", "run.sh"),
        ("bash scripts/go.sh x", "go.sh"),
    ],
)
def test_entry_script_is_what_a_person_would_call_it(run: str, script: str) -> None:
    assert entry_script(spec(run)) == script


@pytest.mark.parametrize(
    ("filename", "folder"),
    [
        ("elder-care.tar.gz", "elder-care"),
        ("养老 模型.zip", "养老 模型"),
        ("C:\\x\\care.tgz", "care"),
        ("", ""),
    ],
)
def test_source_name_strips_archive_suffixes(filename: str, folder: str) -> None:
    assert source_name(filename) == folder


def test_spec_title_is_checked() -> None:
    with pytest.raises(ValidationFailed) as both:
        spec(head="name: a\ntitle: b\n")
    assert both.value.details["reason"] == "title"
    with pytest.raises(ValidationFailed) as long:
        spec(head=f"name: {'长' * 201}\n")
    assert long.value.details["reason"] == "too_long" and long.value.details["line"] == 2
    with pytest.raises(ValidationFailed) as typed:
        spec(head="name: [1, 2]\n")
    assert typed.value.details["reason"] == "type"
    assert spec(head="name: '  养老\n  模型 '\n").title == "养老 模型"
    assert spec(head="name: 2026\n").to_dict()["title"] == "2026"  # kept in the stored spec
    assert "title" not in spec().to_dict()


action_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
scripts = st.from_regex(r"[a-z][a-z0-9_]{0,8}\.py", fullmatch=True)
folders = st.text(st.characters(categories=["L", "N"], max_codepoint=0x9FFF), min_size=1, max_size=20)


@given(action=action_names, script=scripts, folder=st.one_of(st.just(""), folders))
def test_a_job_is_never_called_by_its_bare_action_word(action: str, script: str, folder: str) -> None:
    name = job_name(spec(f"python {script}", action=action), source=folder)
    assert name and len(name) <= 200
    assert name != action or action == script  # the script is named, not the action
    assert script in name
    if folder and folder.lower() not in {"code", "archive", "upload", "job"}:
        assert name == f"{folder}: {script}"


def _job(start: datetime | None, end: datetime | None) -> SimpleNamespace:
    return SimpleNamespace(
        started_at=start,
        finished_at=end,
        spec=spec().to_dict(),
    )


def test_listing_is_coarse_for_members_and_exact_for_oversight() -> None:
    job = _job(datetime(2026, 1, 1, 8, 0, 59, tzinfo=UTC), datetime(2026, 1, 1, 8, 3, 1, tzinfo=UTC))
    acts = [{"cpu_s": 12.34}, {"cpu_s": 30.0}]
    member = listing(job, acts, full=False)
    assert member["cpu_s"] == 60 and member["cpu_coarse"] is True
    assert member["duration_s"] == 180.0  # 08:00 → 08:03, the minutes the member already sees
    full = listing(job, acts, full=True)
    assert full["cpu_s"] == 42.3 and full["cpu_coarse"] is False
    assert full["duration_s"] == 122.0
    assert member["outputs"] == [
        {"action": "train", "path": "metrics.json", "kind": "metrics", "selector": "train/metrics.json"}
    ]
    running = listing(_job(datetime(2026, 1, 1, tzinfo=UTC), None), [], full=False)
    assert running["duration_s"] is None and running["cpu_s"] == 0


@given(cpu=st.floats(min_value=0, max_value=10 * 86400, allow_nan=False))
def test_member_cpu_is_always_a_bucket_at_least_the_real_figure(cpu: float) -> None:
    shown = listing(_job(None, None), [{"cpu_s": cpu}], full=False)["cpu_s"]
    assert shown >= cpu - 1e-9
    assert shown == 0 or shown in BUCKETS_S or shown % 86400 == 0


def test_declared_outputs_tolerate_odd_stored_specs() -> None:
    assert declared_outputs({}) == []
    assert declared_outputs(
        {"actions": {"a": None, "b": {"outputs": [{"path": "/x.csv", "kind": "table"}]}}}
    ) == [{"action": "b", "path": "x.csv", "kind": "table", "selector": "b/x.csv"}]
