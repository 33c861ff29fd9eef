"""One page of a rendering, as plain data for the API and the preview page."""

from __future__ import annotations

from typing import Any

from countylab.airlock.render.model import PAGE_LINES, Rendering


def page_view(rendering: Rendering, page: int, page_lines: int = PAGE_LINES) -> dict[str, Any]:
    """Page ``page`` (1-based, clamped) with the navigation a checker needs to read every page."""
    pages = rendering.pages(page_lines)
    index = min(max(page, 1), len(pages))
    sec_i, first, end = pages[index - 1]
    sec = rendering.sections[sec_i]
    toc: list[dict[str, Any]] = []
    for n, (i, _a, _b) in enumerate(pages, start=1):
        if not toc or toc[-1]["section"] != i:
            s = rendering.sections[i]
            toc.append(
                {
                    "section": i,
                    "title_zh": s.title_zh,
                    "title_en": s.title_en,
                    "kind": s.kind,
                    "state": s.state,
                    "first_page": n,
                    "pages": 0,
                    "rows": len(s.rows),
                    "marked": len(s.marks) + len(s.header_marks),
                }
            )
        toc[-1]["pages"] += 1
    return {
        "kind": rendering.kind,
        "media_type": rendering.media_type,
        "sha256": rendering.sha256,
        "bytes": len(rendering.regenerated),
        "notes": [{"code": n.code, "zh": n.zh, "en": n.en} for n in rendering.notes],
        "page": index,
        "page_count": len(pages),
        "sections": toc,
        "section": {
            "index": sec_i,
            "kind": sec.kind,
            "title_zh": sec.title_zh,
            "title_en": sec.title_en,
            "state": sec.state,
            "columns": sec.columns,
            "header_marks": {str(k): v for k, v in sec.header_marks.items()},
            "first": first,
            "rows": [
                {
                    "number": sec.numbers[i] if i < len(sec.numbers) else i + 1,
                    "cells": sec.rows[i],
                    "mark": sec.marks.get(i, ""),
                }
                for i in range(first, end)
            ],
        },
    }
