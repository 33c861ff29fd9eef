"""countylab.yaml: good specs parse; each kind of bad spec is refused with its line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from countylab.errors import ValidationFailed
from countylab.jobs import OutputKind, Quota, Resources, parse_spec, topological_order, validate_spec

GOOD = """\
version: 1
actions:
  train:
    run: python train.py --folds 5
    needs: [prepare]
    outputs:
      - {path: model.pkl, kind: model}
      - {path: metrics.json, kind: metrics}
    resources: {cpu: 2, memory_mb: 1024, time_s: 600}
  prepare:
    run: python prepare.py
    datasets: [households]
    outputs:
      - path: tables/by_town.csv
        kind: table
"""

QUOTA = Quota(max_cpu=4, max_memory_mb=4096, max_time_s=3600, cpu_seconds=10_000)


def refused(text: str, *, known: set[str] | None = None, quota: Quota = QUOTA, folder: Path | None = None):
    with pytest.raises(ValidationFailed) as info:
        validate_spec(parse_spec(text), known_datasets=known or {"households"}, quota=quota, folder=folder)
    return info.value.details


def test_good_spec_parses_and_orders_actions() -> None:
    spec = parse_spec(GOOD)
    order = validate_spec(spec, known_datasets={"households"}, quota=QUOTA)
    assert [a.name for a in order] == ["prepare", "train"]
    train = spec.actions[0]
    assert train.argv == ("python", "train.py", "--folds", "5")
    assert train.resources == Resources(cpu=2, memory_mb=1024, time_s=600, gpu=0)
    assert [o.kind for o in train.outputs] == [OutputKind.model, OutputKind.metrics]
    assert spec.cpu_seconds == 2 * 600 + 1 * 600
    assert spec.line_of("actions", "prepare", "outputs", 0, "path") == 14
    again = type(spec).from_dict(spec.to_dict())  # the JSON column round-trips
    assert again.actions == spec.actions


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        (
            GOOD.replace("    needs: [prepare]\n", "    needs: [prepare]\n    gpus: 1\n"),
            6,
            "actions.train.gpus",
            "unknown_key",
        ),
        (
            GOOD.replace("resources: {cpu: 2,", "resources: {cpus: 2,"),
            9,
            "actions.train.resources.cpus",
            "unknown_key",
        ),
        ("version: 1\nactions:\n  a:\n    run: python a.py\n", 3, "actions.a", "missing_output"),
        (
            "version: 1\nactions:\n  a:\n    run: python a.py\n    outputs:\n      - {kind: table}\n",
            6,
            "actions.a.outputs.0.path",
            "missing_output",
        ),
        (
            "version: 1\nactions:\n  a:\n    outputs: [{path: x, kind: table}]\n",
            3,
            "actions.a.run",
            "missing_run",
        ),
        (
            "version: 1\nactions:\n  a:\n    run: x\n    outputs: [{path: x, kind: video}]\n",
            5,
            "actions.a.outputs.0.kind",
            "kind",
        ),
        ("version: 1\nactions:\n  a: &x\n    run: x\n  b: *x\n", 5, "actions.b", "alias"),
        ("version: 1\nactions:\n  a:\n    run: x\n  a:\n    run: y\n", 5, "actions.a", "duplicate_key"),
        ("actions: [\n", 2, "(root)", "yaml_syntax"),
    ],
)
def test_bad_shape_is_refused_with_line(text: str, line: int, field: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_spec(text)
    assert (info.value.details["line"], info.value.details["field"], info.value.details["reason"]) == (
        line,
        field,
        reason,
    )
    assert f"line {line}" in info.value.message_en and f"第 {line} 行" in info.value.message_zh


def test_unknown_dataset() -> None:
    d = refused(GOOD, known={"enterprises"})
    assert (d["line"], d["reason"], d["field"]) == (12, "unknown_dataset", "actions.prepare.datasets")


def test_cycle_between_actions() -> None:
    text = GOOD.replace("    datasets: [households]\n", "    datasets: [households]\n    needs: [train]\n")
    d = refused(text)
    assert d["reason"] == "cycle" and d["line"] == 5  # train.needs, first action of the cycle


def test_unknown_needed_action() -> None:
    d = refused(GOOD.replace("needs: [prepare]", "needs: [prepare, clean]"))
    assert (d["line"], d["reason"]) == (5, "unknown_action")


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ("{cpu: 8}", "cpu"),
        ("{memory_mb: 99999}", "memory_mb"),
        ("{time_s: 7200}", "time_s"),
        ("{gpu: 1}", "gpu"),
    ],
)
def test_resources_over_quota(resources: str, field: str) -> None:
    d = refused(GOOD.replace("{cpu: 2, memory_mb: 1024, time_s: 600}", resources))
    assert (d["line"], d["reason"], d["field"]) == (9, "quota", f"actions.train.resources.{field}")


def test_total_cpu_seconds_over_quota() -> None:
    d = refused(GOOD, quota=Quota(max_cpu=4, max_memory_mb=4096, max_time_s=3600, cpu_seconds=1000))
    assert (d["line"], d["reason"], d["field"]) == (2, "quota", "resources.cpu")


@pytest.mark.parametrize("path", ["../escape.csv", "/etc/passwd", "a/../../b", "logs/stdout.txt"])
def test_output_path_escaping_the_outbox(path: str) -> None:
    d = refused(GOOD.replace("path: tables/by_town.csv", f"path: {path}"))
    assert d["line"] == 14 and d["reason"] in {"path_escape", "reserved_path"}


@pytest.mark.parametrize("arg", ["../other/train.py", "/home/x/train.py", "data/../../x.py"])
def test_command_path_escaping_the_folder(arg: str) -> None:
    d = refused(GOOD.replace("python prepare.py", f"python {arg}"))
    assert (d["line"], d["reason"]) == (11, "path_escape")


def test_script_missing_from_folder(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    d = refused(GOOD, folder=tmp_path)
    assert (d["line"], d["reason"]) == (11, "missing_file")
    (tmp_path / "prepare.py").write_text("")
    validate_spec(parse_spec(GOOD), known_datasets={"households"}, quota=QUOTA, folder=tmp_path)


def test_topological_order_keeps_file_order_for_independent_actions() -> None:
    text = "actions:\n" + "".join(
        f"  {n}:\n    run: python {n}.py\n    needs: {needs}\n    outputs: [{{path: o, kind: log}}]\n"
        for n, needs in [("c", "[a, b]"), ("b", "[]"), ("a", "[]"), ("d", "[b]")]
    )
    assert [a.name for a in topological_order(parse_spec(text))] == ["b", "a", "c", "d"]
