"""``countylab.yaml``: what a job's actions run, read, write and need.

Parsing keeps the line of every key (``yaml.compose`` gives each node its position), so a bad
spec is refused at submission with the line, the field and the reason rather than failing an
hour later inside the sandbox.  :func:`parse_spec` checks the shape (known keys, types);
:func:`validate_spec` checks the meaning against the lab (granted datasets, quota, cycles,
paths).  Example::

    version: 1
    name: 养老服务需求预测        # optional: how the job is listed (or ``title``)
    actions:
      prepare:
        run: python prepare.py
        datasets: [households]
        outputs:
          - {path: tables/by_town.csv, kind: table}
        resources: {cpu: 1, memory_mb: 512, time_s: 600}
      train:
        run: python train.py
        needs: [prepare]          # prepare's outbox appears read-only at /data/needs.prepare
        outputs:
          - {path: metrics.json, kind: metrics}
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from countylab.errors import ValidationFailed

MAX_SPEC_BYTES = 64 * 1024
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
Path_ = tuple[str | int, ...]


class OutputKind(StrEnum):
    table = "table"
    figure = "figure"
    text = "text"
    metrics = "metrics"
    model = "model"
    log = "log"


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    memory_mb: int = 512
    time_s: int = 600
    gpu: int = 0


@dataclass(frozen=True)
class Output:
    path: str  # relative to the action's outbox
    kind: OutputKind


@dataclass(frozen=True)
class Action:
    name: str
    run: str
    argv: tuple[str, ...]
    needs: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    outputs: tuple[Output, ...] = ()
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True)
class JobSpec:
    actions: tuple[Action, ...]  # in file order
    lines: Mapping[Path_, int] = field(default_factory=dict, compare=False, repr=False)
    title: str = ""  # ``name:`` or ``title:`` at the top: how people tell this job from the others

    def line_of(self, *path: str | int) -> int:
        """The line of ``path`` in the file, or of its nearest ancestor that has one."""
        p: Path_ = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return 1

    @property
    def cpu_seconds(self) -> float:
        """What the job reserves against the project's CPU-second quota: Σ cpu × time_s."""
        return float(sum(a.resources.cpu * a.resources.time_s for a in self.actions))

    @property
    def gpu_seconds(self) -> float:
        return float(sum(a.resources.gpu * a.resources.time_s for a in self.actions))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the ``jobs.spec`` JSON column and for shipping to a Ray node."""
        return {
            "version": 1,
            **({"title": self.title} if self.title else {}),
            "actions": {
                a.name: {
                    "run": a.run,
                    "needs": list(a.needs),
                    "datasets": list(a.datasets),
                    "outputs": [{"path": o.path, "kind": o.kind.value} for o in a.outputs],
                    "resources": {
                        "cpu": a.resources.cpu,
                        "memory_mb": a.resources.memory_mb,
                        "time_s": a.resources.time_s,
                        "gpu": a.resources.gpu,
                    },
                }
                for a in self.actions
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        return _build(dict(data), {})


def problem(line: int, fld: str, reason: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed(
        f"countylab.yaml 第 {line} 行（{fld}）：{zh}",
        f"countylab.yaml line {line} ({fld}): {en}",
        line=line,
        field=fld,
        reason=reason,
    )


# -- reading the YAML with positions ------------------------------------------------------------


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], seen: set[int]) -> None:
    if id(node) in seen:
        raise problem(
            lines.get(path, node.start_mark.line + 1),
            _dotted(path),
            "alias",
            "不允许使用锚点/别名",
            "anchors and aliases are not allowed",
        )
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in keys:
                raise problem(
                    key_node.start_mark.line + 1,
                    _dotted((*path, key)),
                    "duplicate_key",
                    "键重复",
                    "duplicate key",
                )
            keys.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*path, key), lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index_lines(item, (*path, i), lines, seen)


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path) or "(root)"


def parse_spec(text: str | bytes) -> JobSpec:
    """Read ``countylab.yaml``; raise :class:`ValidationFailed` (line=, field=, reason=) on bad shape."""
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_SPEC_BYTES:
        raise problem(
            1,
            "(root)",
            "too_large",
            f"文件超过 {MAX_SPEC_BYTES} 字节",
            f"file exceeds {MAX_SPEC_BYTES} bytes",
        )
    try:
        source = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise problem(
            1, "(root)", "encoding", "文件不是 UTF-8 编码", f"the file is not UTF-8 text ({exc.reason})"
        ) from exc
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        # one line: PyYAML's own text spans several lines with a caret drawing
        what = " ".join(str(getattr(exc, "problem", None) or exc).split())
        column = f", column {mark.column + 1}" if mark is not None else ""
        raise problem(
            line,
            "(root)",
            "yaml_syntax",
            f"YAML 语法错误：{what}{column}",
            f"YAML syntax error: {what}{column}",
        ) from exc
    lines: dict[Path_, int] = {}
    if root is not None:
        _index_lines(root, (), lines, set())
    if not isinstance(data, dict):
        raise problem(1, "(root)", "type", "顶层必须是映射", "the top level must be a mapping")
    return _build(data, lines)


# -- building typed objects --------------------------------------------------------------------

_TOP_KEYS = {"version", "name", "title", "description", "actions"}
MAX_TITLE = 200
_ACTION_KEYS = {"run", "needs", "datasets", "outputs", "resources", "description"}
_OUTPUT_KEYS = {"path", "kind"}
_RESOURCE_KEYS = {"cpu", "memory_mb", "time_s", "gpu"}


class _Ctx:
    def __init__(self, lines: Mapping[Path_, int]) -> None:
        self.lines = lines

    def line(self, path: Path_) -> int:
        return JobSpec((), self.lines).line_of(*path)

    def fail(self, path: Path_, reason: str, zh: str, en: str) -> ValidationFailed:
        return problem(self.line(path), _dotted(path), reason, zh, en)

    def keys(self, data: Mapping[str, Any], allowed: set[str], path: Path_) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    (*path, str(key)),
                    "unknown_key",
                    f"未知的键“{key}”，可用：{', '.join(sorted(allowed))}",
                    f"unknown key '{key}'; allowed: {', '.join(sorted(allowed))}",
                )

    def names(self, value: Any, path: Path_) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(path, "type", "必须是名称列表", "must be a list of names")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not NAME.match(item):
                raise self.fail((*path, i), "name", f"名称无效：{item!r}", f"invalid name: {item!r}")
        return tuple(value)

    def number(self, value: Any, path: Path_, *, integer: bool) -> float:
        ok = isinstance(value, int) or (not integer and isinstance(value, float))
        if isinstance(value, bool) or not ok or value < 0:
            kind_zh, kind_en = (
                ("非负整数", "a non-negative integer") if integer else ("非负数", "a non-negative number")
            )
            raise self.fail(path, "type", f"必须是{kind_zh}", f"must be {kind_en}")
        return float(value)


def _build(data: dict[str, Any], lines: Mapping[Path_, int]) -> JobSpec:
    ctx = _Ctx(lines)
    ctx.keys(data, _TOP_KEYS, ())
    if data.get("version", 1) != 1:
        raise ctx.fail(("version",), "version", "只支持 version: 1", "only version: 1 is supported")
    actions = data.get("actions")
    if not isinstance(actions, dict) or not actions:
        raise ctx.fail(
            ("actions",),
            "missing_actions",
            "必须列出至少一个步骤（actions）",
            "at least one action must be listed under 'actions'",
        )
    built = tuple(_action(ctx, str(name), body) for name, body in actions.items())
    return JobSpec(built, lines, _title(ctx, data))


def _title(ctx: _Ctx, data: Mapping[str, Any]) -> str:
    """``name`` or ``title`` (one of them): free text, one line, at most MAX_TITLE characters."""
    if "name" in data and "title" in data:
        raise ctx.fail(("title",), "title", "name 和 title 只能写一个", "give either name or title, not both")
    key = "name" if "name" in data else "title"
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ctx.fail((key,), "type", f"{key} 必须是文字", f"{key} must be text")
    text = " ".join(str(value).split())
    if len(text) > MAX_TITLE:
        raise ctx.fail(
            (key,), "too_long", f"{key} 最长 {MAX_TITLE} 个字符", f"{key} is at most {MAX_TITLE} characters"
        )
    return text


def _action(ctx: _Ctx, name: str, body: Any) -> Action:
    path: Path_ = ("actions", name)
    if not NAME.match(name):
        raise ctx.fail(
            path, "name", "步骤名只能用小写字母、数字和下划线", "action names use a-z, 0-9 and _ only"
        )
    if not isinstance(body, dict):
        raise ctx.fail(path, "type", "步骤必须是映射", "an action must be a mapping")
    ctx.keys(body, _ACTION_KEYS, path)
    run = body.get("run")
    if not isinstance(run, str) or not run.strip():
        raise ctx.fail(
            (*path, "run"), "missing_run", "缺少要运行的命令（run）", "missing the command to run ('run')"
        )
    try:
        argv = tuple(shlex.split(run))
    except ValueError as exc:
        raise ctx.fail(
            (*path, "run"), "run_syntax", f"命令无法解析：{exc}", f"cannot split the command: {exc}"
        ) from exc
    if "outputs" not in body or not body["outputs"]:
        raise ctx.fail(
            path,
            "missing_output",
            "每个步骤必须声明输出（outputs）",
            "every action must declare its outputs ('outputs')",
        )
    return Action(
        name=name,
        run=run,
        argv=argv,
        needs=ctx.names(body.get("needs"), (*path, "needs")),
        datasets=ctx.names(body.get("datasets"), (*path, "datasets")),
        outputs=_outputs(ctx, body["outputs"], (*path, "outputs")),
        resources=_resources(ctx, body.get("resources"), (*path, "resources")),
    )


def _outputs(ctx: _Ctx, value: Any, path: Path_) -> tuple[Output, ...]:
    if not isinstance(value, list):
        raise ctx.fail(path, "type", "outputs 必须是列表", "outputs must be a list")
    outs: list[Output] = []
    for i, item in enumerate(value):
        here = (*path, i)
        if not isinstance(item, dict):
            raise ctx.fail(
                here,
                "type",
                "每个输出是含 path 和 kind 的映射",
                "each output is a mapping with path and kind",
            )
        ctx.keys(item, _OUTPUT_KEYS, here)
        p, kind = item.get("path"), item.get("kind")
        if not isinstance(p, str) or not p:
            raise ctx.fail((*here, "path"), "missing_output", "输出缺少路径", "the output has no path")
        if kind not in OutputKind.__members__:
            raise ctx.fail(
                (*here, "kind"),
                "kind",
                f"输出类型必须是：{', '.join(OutputKind)}",
                f"output kind must be one of: {', '.join(OutputKind)}",
            )
        outs.append(Output(p, OutputKind(str(kind))))
    return tuple(outs)


def _resources(ctx: _Ctx, value: Any, path: Path_) -> Resources:
    if value is None:
        return Resources()
    if not isinstance(value, dict):
        raise ctx.fail(path, "type", "resources 必须是映射", "resources must be a mapping")
    ctx.keys(value, _RESOURCE_KEYS, path)
    d = Resources()
    return Resources(
        cpu=ctx.number(value.get("cpu", d.cpu), (*path, "cpu"), integer=False),
        memory_mb=int(ctx.number(value.get("memory_mb", d.memory_mb), (*path, "memory_mb"), integer=True)),
        time_s=int(ctx.number(value.get("time_s", d.time_s), (*path, "time_s"), integer=True)),
        gpu=int(ctx.number(value.get("gpu", d.gpu), (*path, "gpu"), integer=True)),
    )
