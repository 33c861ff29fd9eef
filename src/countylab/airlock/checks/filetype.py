"""Rule (a): only known output formats, recognised by content, under a size cap per kind.

Allowed: CSV, XLSX, PNG, SVG, TXT/log and JSON.  A file whose bytes are something else
fails, whatever its name; model weights fail with a pointer to the model registry, because a
trained model can memorise rows and is served in-domain instead of released (DESIGN.md §5).
"""

from __future__ import annotations

from countylab.airlock.checks.base import CheckContext, CheckResult, CheckStatus, Findings, OutputFile
from countylab.airlock.checks.sniff import MODEL_SUFFIXES, SUFFIX_CONTENT, Content, sniff_file

name = "file_type"


def applies_to(file: OutputFile) -> bool:
    return True


def run(file: OutputFile, context: CheckContext) -> CheckResult:
    found = Findings(name)
    sniffed = sniff_file(file)
    found.details.update(content=sniffed.content.value, format=sniffed.detail, size=file.size)
    if sniffed.content is Content.model or file.suffix in MODEL_SUFFIXES:
        found.add(
            CheckStatus.fail,
            f"模型文件（{sniffed.detail}）永不出域：请将其登记为模型，在域内提供预测服务",
            f"model files ({sniffed.detail}) are never releasable: register it as a model instead",
        )
        found.details["reason"] = "model"
        return found.result()
    allowed = SUFFIX_CONTENT.get(file.suffix)
    if allowed is None:
        found.add(
            CheckStatus.fail,
            f"不允许的文件类型“{file.suffix or '无扩展名'}”：仅允许 CSV、XLSX、PNG、SVG、TXT/日志、JSON",
            f"file type {file.suffix or '(none)'!r} is not allowed: only CSV, XLSX, PNG, SVG, TXT/log, JSON",
        )
        found.details["reason"] = "type_not_allowed"
        return found.result()
    kind, contents = allowed
    if sniffed.content not in contents:
        found.add(
            CheckStatus.fail,
            f"文件内容是{sniffed.detail}，与扩展名“{file.suffix}”不符（伪装文件）",
            f"the content is {sniffed.detail}, not what the name {file.suffix!r} says (disguised file)",
        )
        found.details["reason"] = "content_mismatch"
        return found.result()
    cap = context.size_caps[kind]
    if file.size > cap:
        found.add(
            CheckStatus.fail,
            f"文件过大：{file.size} 字节，{kind.value} 上限 {cap} 字节",
            f"file too large: {file.size} bytes, the {kind.value} limit is {cap} bytes",
        )
        found.details["reason"] = "too_large"
        return found.result()
    found.details["kind"] = kind.value
    return found.result()
