"""Rule (a'): was the file made by the output library?  Otherwise it is free-form.

A file with a sidecar that fits it (:mod:`.declared`) gets the automatic SDC checks with the
roles the library declared.  Every other file is free-form: this check warns "free-form:
human review required", the request is never released without a checker (at any grade),
and the checker is told to read the file whole.  A sidecar offered for release fails: its
top contributions are individual values.

Charts are accepted only when the lab, drawing the named table of the same request again
with the library's own function, gets the same bytes; metrics only when they are a flat
object of numbers over at least the threshold's number of units.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from countylab.airlock.checks.base import CheckContext, CheckResult, CheckStatus, Findings, OutputFile
from countylab.airlock.checks.declared import Declared, Rejected, check_header, load, verify_table
from countylab.airlock.checks.grid import is_total_label
from countylab.airlock.checks.tables import read_csv
from countylab.output import svg
from countylab.output.sidecar import SUFFIX, is_sidecar, sidecar_name

name = "output_library"
FREE_FORM = "free_form"
MAX_SIDECAR = 8 * 2**20  # larger claims are not read: the file is then free-form

__all__ = [
    "applies_to",
    "copy_sidecar",
    "is_free_form",
    "is_sidecar",
    "library_table",
    "name",
    "run",
    "stored_sidecar",
]


class _Entry(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def path(self) -> Path: ...


def copy_sidecar(entries: Sequence[_Entry], output_name: str, dest: Path) -> None:
    """Copy the sidecar of ``output_name`` (if the outbox has one, as a regular file of at most
    ``MAX_SIDECAR`` bytes) to ``<dest>.countylab.json`` in the airlock's store, at request time,
    so a later change in the job's outbox cannot change what was checked."""
    wanted = sidecar_name(output_name)
    entry = next((e for e in entries if e.name == wanted), None)
    if entry is None:
        return
    try:
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SIDECAR:
            return
        data = fh.read(MAX_SIDECAR + 1)
    target = Path(str(dest) + SUFFIX)
    target.write_bytes(data)
    target.chmod(0o400)


def stored_sidecar(stored_path: str | Path) -> Mapping[str, Any] | None:
    """The sidecar copied beside a stored file (None when the file has none)."""
    path = Path(str(stored_path) + SUFFIX)
    try:
        with path.open("rb") as fh:
            return load(fh.read(MAX_SIDECAR + 1))
    except FileNotFoundError:
        return None


def applies_to(file: OutputFile) -> bool:
    return True


def library_table(file: OutputFile, context: CheckContext) -> Declared | Rejected | None:
    """The verified declaration of a library CSV table, a rejection, or None (no sidecar)."""
    sidecar = context.table_spec(file).sidecar
    if sidecar is None:
        return None
    if file.suffix != ".csv":
        return Rejected("format", "输出库只生成 CSV 表格", "the output library writes tables as CSV only")
    data = file.read()
    try:
        parsed = read_csv(data.decode("utf-8"))
    except UnicodeDecodeError:
        return Rejected("format", "表格不是 UTF-8 文本", "the table is not UTF-8 text")
    if parsed.problems or len(parsed.tables) != 1:
        return Rejected("format", "表格格式不符", "the table is malformed")
    return verify_table(parsed.tables[0], data, sidecar)


def _chart(file: OutputFile, context: CheckContext) -> Rejected | None:
    sidecar = context.table_spec(file).sidecar or {}
    data = file.read()
    bad = check_header(sidecar, data, ("chart",))
    if bad is not None:
        return bad
    source = str(PurePosixPath(file.name).parent / str(sidecar.get("source", "")))
    wrong = Rejected(
        "chart", "图表不是由同一申请中的表格绘制", "the chart is not drawn from a table of this request"
    )
    path = context.paths.get(source)
    if path is None:
        return wrong
    table_file = OutputFile(source, path)
    if not isinstance(library_table(table_file, context), Declared):
        return wrong
    table = read_csv(path.read_text("utf-8")).tables[0]
    label, value, title = sidecar.get("label"), sidecar.get("value"), sidecar.get("title", "")
    if label not in table.header or value not in table.header or not isinstance(title, str):
        return wrong
    body = [r for r in table.rows if not is_total_label(r[0])]
    li, vi = table.header.index(str(label)), table.header.index(str(value))
    try:
        again = svg.bar_chart(title, [r[li] for r in body], [r[vi] for r in body])
    except ValueError:
        return wrong
    return None if again == data else wrong


def _metrics(file: OutputFile, context: CheckContext, found: Findings) -> Rejected | None:
    sidecar = context.table_spec(file).sidecar or {}
    data = file.read()
    bad = check_header(sidecar, data, ("metrics",))
    if bad is not None:
        return bad
    try:
        values = json.loads(data)
    except ValueError:
        values = None
    if not isinstance(values, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values.values()
    ):
        return Rejected(
            "metrics", "指标文件不是数字组成的扁平对象", "metrics are not a flat object of numbers"
        )
    n = sidecar.get("n_obs")
    if not isinstance(n, int) or isinstance(n, bool) or n < context.sdc.min_units:
        found.add(
            CheckStatus.fail,
            f"指标的计算样本少于 {context.sdc.min_units} 个个体",
            f"the metrics were computed on fewer than {context.sdc.min_units} units",
        )
        found.details["cells"] = [{"rule": "threshold"}]
    return None


def run(file: OutputFile, context: CheckContext) -> CheckResult:
    found = Findings(name)
    if is_sidecar(file.name):
        found.add(
            CheckStatus.fail,
            "输出库的元数据文件不能出域（其中含个体贡献值）",
            "an output library metadata file cannot be released (it holds individual contributions)",
        )
        found.details["reason"] = "sidecar"
        return found.result()
    sidecar = context.table_spec(file).sidecar
    verdict: Declared | Rejected | None
    if sidecar is None:
        verdict = None
    elif sidecar.get("kind") == "chart" and file.suffix == ".svg":
        verdict = _chart(file, context)
    elif sidecar.get("kind") == "metrics" and file.suffix == ".json":
        verdict = _metrics(file, context, found)
    else:
        verdict = library_table(file, context)
    if verdict is None and sidecar is not None or isinstance(verdict, Declared):
        found.details.update({"library": True, "kind": str(sidecar.get("kind") if sidecar else "")})
        return found.result()
    found.details[FREE_FORM] = True
    found.details["reason"] = "no_metadata" if verdict is None else verdict.reason
    why_zh = "" if verdict is None else f"（元数据不可信：{verdict.zh}）"
    why_en = "" if verdict is None else f" (metadata rejected: {verdict.en})"
    found.add(
        CheckStatus.warn,
        f"自由格式文件：须由审核员逐项完整阅读{why_zh}",
        f"free-form: human review required; the checker reads the whole file{why_en}",
    )
    return found.result()


def is_free_form(checks: list[dict[str, object]]) -> bool:
    """True when a stored file report says the file is free-form (or was never classified)."""
    for r in checks:
        if r.get("check") == name:
            details = r.get("details")
            return bool(isinstance(details, dict) and details.get(FREE_FORM))
    return True
