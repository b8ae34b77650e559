"""Inline SVG charts for the HTML report: no JavaScript, no fonts or files from the network.

Each function takes plain numbers and labels and returns one ``<svg>`` element as a string
(pure, deterministic). Every chart carries ``class="chart"`` and a ``data-chart`` name so the
report's tests (and readers' browsers) can find it.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from html import escape

# The report's font stack, CJK faces included (experiment titles and step names may be
# Chinese or Japanese): the first one installed wins.
FONT_STACK = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Noto Sans CJK SC', "
    "'Source Han Sans SC', 'PingFang SC', 'Hiragino Sans', 'Microsoft YaHei', sans-serif"
)
FONT = f'font-family="{FONT_STACK}" font-size="11"'
AXIS = "#555"
GRID = "#e3e3e3"
# Row labels of the row charts (codes, split, timeline): the left margin grows with the
# longest label (about 6.3 px a character at 11 px, 11 px for a wide CJK one) up to
# LABEL_CHARS characters; a longer label is cut and shown whole as its tooltip.
LABEL_CHARS = 64
LABEL_ROOM = 240  # the margin the charts were designed around; the plot keeps its width


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _fmt(value: float) -> str:
    # Quarter ticks of a 5 or 2.5 axis (1.25, 3.75, 0.375) keep their digits.
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.3g}"


def _fmt_seconds(value: float) -> str:
    if value == 0:
        return "0"
    if value < 1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.3g} s"


def _open(name: str, width: int, height: int, title: str) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f"<title>{escape(title)}</title>"
    )


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> str:
    parts = []
    for label, colour in items:
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.1f}" y="{y:.1f}" {FONT}>{escape(label)}</text>'
        )
        x += 24 + 7 * len(label)
    return "".join(parts)


def grouped_bars(
    name: str,
    title: str,
    groups: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[tuple[str, str]],
    unit: str,
    width: int = 720,
    height: int = 260,
) -> str:
    """Bars per group (e.g. p50/p90/p99 per load result); ``series`` = (label, colour)."""
    left, right, top, bottom = 56, 12, 28, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for _, vals in groups for v in vals if v is not None), default=0.0)
    ymax = _nice_max(peak)
    out = [_open(name, width, height, title)]
    out.append(_legend(series, left, 14))
    for i in range(5):
        tick = ymax * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="{AXIS}">'
            f"{_fmt(tick)}</text>"
        )
    out.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" {FONT} fill="{AXIS}" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})" text-anchor="middle">'
        f"{escape(unit)}</text>"
    )
    slot = plot_w / max(len(groups), 1)
    bar_w = max(min(slot * 0.8 / max(len(series), 1), 40), 2)
    for gi, (label, values) in enumerate(groups):
        x0 = left + gi * slot + (slot - bar_w * len(series)) / 2
        for si, value in enumerate(values):
            if value is None:
                continue
            h = plot_h * value / ymax
            colour = series[si][1]
            out.append(
                f'<rect class="bar" x="{x0 + si * bar_w:.1f}" y="{top + plot_h - h:.1f}" '
                f'width="{bar_w - 1:.1f}" height="{max(h, 1):.1f}" fill="{colour}">'
                f"<title>{escape(label)} {escape(series[si][0])}: {value:.2f} {escape(unit)}"
                "</title></rect>"
            )
        out.append(
            f'<text x="{left + gi * slot + slot / 2:.1f}" y="{top + plot_h + 16}" '
            f'text-anchor="middle" {FONT}>{escape(_cut(label, int(slot / 6.5)))}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{AXIS}"/>'
    )
    out.append("</svg>")
    return "".join(out)


def stacked_rows(
    name: str,
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, float, str]]]],
    width: int = 860,
    row_height: int = 26,
) -> str:
    """One 100 % bar per row, split into (label, share, colour) parts (codes, traffic split)."""
    left, right, top = label_room([label for label, _ in rows]), 12, 8
    width += left - LABEL_ROOM
    plot_w = width - left - right
    height = top + row_height * len(rows) + 8
    out = [_open(name, width, height, title)]
    for ri, (label, parts) in enumerate(rows):
        y = top + ri * row_height
        out.append(_label(label, left - 8, y + row_height / 2 + 4))
        total = sum(v for _, v, _ in parts) or 1.0
        x = float(left)
        for part, value, colour in parts:
            w = plot_w * value / total
            if w <= 0:
                continue
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" '
                f'height="{row_height - 6}" fill="{colour}"><title>{escape(part)}: '
                f"{value:g} ({value / total * 100:.1f}%)</title></rect>"
            )
            if w > 7 * len(part) + 40:
                out.append(
                    f'<text x="{x + 4:.1f}" y="{y + row_height / 2 + 4:.1f}" {FONT} fill="#fff">'
                    f"{escape(part)} {value / total * 100:.1f}%</text>"
                )
            x += w
    out.append("</svg>")
    return "".join(out)


def timeline(
    name: str,
    title: str,
    rows: Sequence[tuple[str, float, float, str, str]],
    total: float,
    width: int = 860,
    row_height: int = 20,
) -> str:
    """Activities on a time axis: (label, start s, end s, colour, tooltip) per row."""
    left, right, top, bottom = label_room([row[0] for row in rows]), 30, 8, 24
    width += left - LABEL_ROOM
    plot_w = width - left - right
    height = top + row_height * len(rows) + bottom
    span = total if total > 0 else 1.0
    out = [_open(name, width, height, title)]
    for i in range(5):
        x = left + plot_w * i / 4
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" stroke="{GRID}"/>'
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" {FONT} fill="{AXIS}">'
            f"{_fmt_seconds(span * i / 4)}</text>"
        )
    for ri, (label, start, end, colour, tip) in enumerate(rows):
        y = top + ri * row_height
        x = left + plot_w * max(start, 0) / span
        w = max(plot_w * max(end - start, 0) / span, 3)
        out.append(
            _label(label, left - 8, y + row_height / 2 + 4)
            + f'<rect class="bar" x="{min(x, width - right - 3):.1f}" y="{y + 3}" width="{w:.1f}" '
            f'height="{row_height - 6}" fill="{colour}"><title>{escape(tip)}</title></rect>'
        )
    out.append("</svg>")
    return "".join(out)


def lines(
    name: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    unit: str,
    width: int = 720,
    height: int = 240,
) -> str:
    """A line per series across runs: (label, colour, values) with None for a gap."""
    left, right, top, bottom = 56, 48, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for _, _, vals in series for v in vals if v is not None), default=0.0)
    ymax = _nice_max(peak)
    n = max(len(x_labels), 1)
    step = plot_w / max(n - 1, 1)
    out = [_open(name, width, height, title)]
    out.append(_legend([(label, colour) for label, colour, _ in series], left, 14))
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="{AXIS}">'
            f"{_fmt(ymax * i / 4)}</text>"
        )
    out.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" {FONT} fill="{AXIS}" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})" text-anchor="middle">'
        f"{escape(unit)}</text>"
    )
    for i, label in enumerate(x_labels):
        x = left + (i * step if n > 1 else plot_w / 2)
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" {FONT}>'
            f"{escape(label)}</text>"
        )
    for label, colour, values in series:
        points = [
            (left + (i * step if n > 1 else plot_w / 2), top + plot_h - plot_h * v / ymax, v)
            for i, v in enumerate(values)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="3"/>'
            )
        for x, y, v in points:
            out.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}">'
                f"<title>{escape(label)}: {v:.2f} {escape(unit)}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out)


def _cut(label: str, width: int) -> str:
    width = max(width, 4)
    return label if len(label) <= width else label[: width - 1] + "…"


def _text_px(text: str) -> float:
    return sum(11.0 if unicodedata.east_asian_width(c) in "WF" else 6.3 for c in text)


def label_room(labels: Sequence[str]) -> int:
    """The left margin the row labels need (at least 80 px)."""
    widest = max((_text_px(_cut(label, LABEL_CHARS)) for label in labels), default=0.0)
    return max(80, math.ceil(widest) + 16)


def _label(label: str, x: float, y: float) -> str:
    cut = _cut(label, LABEL_CHARS)
    tip = f"<title>{escape(label)}</title>" if cut != label else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="end" {FONT}>{tip}{escape(cut)}</text>'
