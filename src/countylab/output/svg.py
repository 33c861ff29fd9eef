"""Bar charts drawn from a checked table, as plain SVG (no plotting library).

The drawing is a pure function of the table's printed cells, the two column names and the
title, so the lab draws the same chart again from the released table and compares bytes: a
chart made here carries nothing the table does not show.  The lab uses this very function.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

MAX_TITLE = 80
MAX_BARS = 60


def parse_value(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def bar_chart(title: str, labels: Sequence[str], values: Sequence[str]) -> bytes:
    """A horizontal bar chart of ``values`` (the table's cell texts; empty or suppressed
    cells draw no bar) labelled by ``labels``."""
    if len(title) > MAX_TITLE:
        raise ValueError(f"chart titles are at most {MAX_TITLE} characters")
    if len(labels) != len(values) or len(labels) > MAX_BARS:
        raise ValueError(f"a chart has one value per label and at most {MAX_BARS} bars")
    numbers = [parse_value(v) for v in values]
    top = max([abs(n) for n in numbers if n is not None] or [1.0]) or 1.0
    bar_h, left, width = 22, 170, 360
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" '
        f'height="{60 + bar_h * len(labels)}" font-family="sans-serif">',
        f'<text x="10" y="22" font-size="15">{escape(title)}</text>',
    ]
    for i, (label, text, n) in enumerate(zip(labels, values, numbers, strict=True)):
        y = 40 + i * bar_h
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="12">{escape(label)}</text>'
        )
        if n is None:
            parts.append(f'<text x="{left + 6}" y="{y + 15}" font-size="11">{escape(text)}</text>')
            continue
        w = width * abs(n) / top
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="#2f6fb0"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="11">{escape(text)}</text>')
    parts.append("</svg>\n")
    return "".join(parts).encode("utf-8")
