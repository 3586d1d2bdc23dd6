"""Small server-side SVG charts for the metrics dashboard: no JavaScript, no CDN.

Each function returns markup to put in a template: an <svg> with a <title> on every bar or
point (the browser shows it on hover) and a legend.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#417690", "#e08a3c", "#6a9f4c", "#c0392b", "#8e6bb8", "#b5a642", "#79aec8", "#5d6d7e")
STATUS_COLORS = {"completed": "#6a9f4c", "failed": "#c0392b", "cancelled": "#b5a642", "awaiting_approval": "#79aec8"}
WIDTH, HEIGHT = 760, 230
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 34
MAX_X_LABELS = 12


def color(name: str, index: int) -> str:
    return STATUS_COLORS.get(name, PALETTE[index % len(PALETTE)])


WHOLE_FROM = 100  # values this large are shown without decimals


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= WHOLE_FROM or value == int(value) else f"{value:,.2f}"


def _frame(body: list[str], top: float, unit: str, legend: Sequence[str]) -> SafeString:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img">']
    for step in range(5):  # horizontal grid with the axis labels
        value = top * step / 4
        y = TOP + plot_h - plot_h * step / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_number(value)}</text>')
    parts.append(f'<text x="4" y="14" font-size="11" fill="#666">{escape(unit)}</text>')
    x = LEFT
    for index, name in enumerate(legend):
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{color(name, index)}"/>')
        parts.append(f'<text x="{x + 14}" y="15" font-size="11">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    parts += body
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  # every label above is escaped


def _x_labels(labels: Sequence[str], centers: Sequence[float]) -> list[str]:
    every = max(1, -(-len(labels) // MAX_X_LABELS))
    return [
        f'<text x="{x:.1f}" y="{HEIGHT - 12}" text-anchor="middle" font-size="10">{escape(label)}</text>'
        for index, (label, x) in enumerate(zip(labels, centers, strict=True))
        if index % every == 0
    ]


def stacked_bars(labels: Sequence[str], series: dict[str, list[float]], unit: str = "") -> SafeString:
    """One bar per label, stacked by series (e.g. runs per hour, by status)."""
    if not labels:
        return empty()
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = max(*totals, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(labels)
    body: list[str] = []
    for i, label in enumerate(labels):
        y: float = TOP + plot_h
        for index, (name, values) in enumerate(series.items()):
            height = plot_h * values[i] / top
            if not height:
                continue
            y -= height
            body.append(
                f'<rect x="{LEFT + slot * i + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
                f'height="{height:.1f}" fill="{color(name, index)}">'
                f"<title>{escape(label)} · {escape(name)}: {_number(values[i])}</title></rect>"
            )
    body += _x_labels(labels, [LEFT + slot * (i + 0.5) for i in range(len(labels))])
    return _frame(body, top, unit, list(series))


def lines(labels: Sequence[str], series: dict[str, list[float | None]], unit: str = "") -> SafeString:
    """One line per series over the labels (e.g. p50 and p95 latency per hour)."""
    values = [v for line in series.values() for v in line if v is not None]
    if not labels or not values:
        return empty()
    top = max(*values, 1e-9)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(labels)
    body: list[str] = []
    for index, (name, line) in enumerate(series.items()):
        points = [
            (LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * value / top, value)
            for i, value in enumerate(line)
            if value is not None
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color(name, index)}" stroke-width="2"/>')
        body += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color(name, index)}">'
            f"<title>{escape(labels[i])} · {escape(name)}: {_number(v)}</title></circle>"
            for i, (x, y, v) in enumerate(points)
        ]
    body += _x_labels(labels, [LEFT + slot * (i + 0.5) for i in range(len(labels))])
    return _frame(body, top, unit, list(series))


def hbars(rows: Sequence[tuple[str, float]], unit: str = "") -> SafeString:
    """Horizontal bars, one per row (e.g. tokens by agent and model)."""
    if not rows:
        return empty()
    top = max(*(value for _, value in rows), 1e-9)
    row_h, label_w = 22, 230
    height = TOP + row_h * len(rows) + 8
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img">']
    parts.append(f'<text x="4" y="14" font-size="11" fill="#666">{escape(unit)}</text>')
    for i, (label, value) in enumerate(rows):
        y = TOP + row_h * i
        width = (WIDTH - label_w - 90) * value / top
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="11">{escape(label)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(width, 1):.1f}" height="{row_h - 6}" fill="{color("", i)}">'
            f"<title>{escape(label)}: {_number(value)}</title></rect>"
        )
        parts.append(f'<text x="{label_w + width + 6:.1f}" y="{y + 14}" font-size="11">{_number(value)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  # every label above is escaped


def empty() -> SafeString:
    return SafeString('<p class="help">No data in this window.</p>')
