"""Charts as inline SVG for the static report: no JavaScript, no fonts or scripts to fetch.

Every chart is a ``<figure class="chart">`` whose marks (lines, bars, cells) carry the
class ``mark``; a chart without data is a ``<figure class="chart empty">`` saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 30, 46
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


@dataclass
class Line:
    """One line of a line chart; ``band`` adds shaded (lower, upper) ranges at the same xs."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    dashed: bool = False
    bands: list[tuple[Sequence[float], Sequence[float]]] = field(default_factory=list)
    reference: bool = False  # a yardstick (perfect calibration, random order, the test figure): grey


def _figure(title: str, body: str, note: str = "", kind: str = "") -> str:
    caption = f"<figcaption>{escape(title)}{f'<small>{escape(note)}</small>' if note else ''}</figcaption>"
    return f'<figure class="chart" data-kind="{escape(kind)}">{caption}{body}</figure>'


def empty(title: str, why: str, kind: str = "") -> str:
    """A chart that has nothing to draw yet, saying why."""
    return f'<figure class="chart empty" data-kind="{escape(kind)}"><figcaption>{escape(title)}</figcaption><p>{escape(why)}</p></figure>'


def _scale(low: float, high: float, start: float, end: float) -> tuple[float, float]:
    span = (high - low) or 1.0
    return (end - start) / span, start - low * (end - start) / span


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def line_chart(
    title: str,
    lines: list[Line],
    x_label: str,
    y_label: str,
    x_ticks: dict[float, str] | None = None,
    y_range: tuple[float, float] | None = None,
    note: str = "",
    kind: str = "line",
) -> str:
    """Lines (with optional shaded bands) on shared axes."""
    xs = [x for line in lines for x in line.xs]
    ys = [y for line in lines for y in line.ys] + [
        v for line in lines for b in line.bands for s in b for v in s
    ]
    if not xs:
        return empty(title, "no data yet", kind)
    x0, x1 = min(xs), max(xs)
    if x0 == x1:  # one point in time: give it some room
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = y_range or (min(0.0, min(ys)), max(ys) * 1.05 or 1.0)
    sx, cx = _scale(x0, x1, LEFT, WIDTH - RIGHT)
    sy, cy = _scale(y0, y1, HEIGHT - BOTTOM, TOP)
    parts = [_axes(x0, x1, y0, y1, sx, cx, sy, cy, x_label, y_label, x_ticks)]
    drawn = 0
    for i, line in enumerate(lines):
        colour = "#888" if line.reference else COLOURS[drawn % len(COLOURS)]
        drawn += not line.reference
        for opacity, (lower, upper) in zip((0.25, 0.15, 0.1), line.bands, strict=False):
            points = [*zip(line.xs, upper, strict=True), *reversed(list(zip(line.xs, lower, strict=True)))]
            path = " ".join(f"{x * sx + cx:.1f},{y * sy + cy:.1f}" for x, y in points)
            parts.append(f'<polygon class="mark" points="{path}" fill="{colour}" fill-opacity="{opacity}"/>')
        path = " ".join(f"{x * sx + cx:.1f},{y * sy + cy:.1f}" for x, y in zip(line.xs, line.ys, strict=True))
        dash = ' stroke-dasharray="5,4"' if line.dashed else ""
        parts.append(
            f'<polyline class="mark" points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        if len(line.xs) == 1:
            x, y = line.xs[0] * sx + cx, line.ys[0] * sy + cy
            parts.append(f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        parts.append(_legend(i, line.name, colour))
    return _figure(title, _svg(parts), note, kind)


def bar_chart(
    title: str,
    labels: list[str],
    groups: dict[str, list[float]],
    x_label: str,
    note: str = "",
    kind: str = "bar",
) -> str:
    """Horizontal bars, one row per label and one bar per group in it."""
    if not labels or not groups:
        return empty(title, "no data yet", kind)
    high = max(max(values) for values in groups.values()) or 1.0
    sx, cx = _scale(0.0, high * 1.05, LEFT + 90, WIDTH - RIGHT)
    row = (HEIGHT - TOP - BOTTOM) / len(labels)
    bar = row * 0.8 / len(groups)
    parts = []
    for r, label in enumerate(labels):
        y = TOP + r * row
        parts.append(
            f'<text x="{LEFT + 84}" y="{y + row / 2 + 4:.1f}" text-anchor="end">{escape(label[:22])}</text>'
        )
        for g, values in enumerate(groups.values()):
            width = max(values[r] * sx + cx - (LEFT + 90), 0.5)
            colour = COLOURS[g % len(COLOURS)]
            parts.append(
                f'<rect class="mark" x="{LEFT + 90}" y="{y + g * bar:.1f}" width="{width:.1f}" height="{bar:.1f}" '
                f'fill="{colour}"><title>{escape(label)}: {values[r]:.4g}</title></rect>'
            )
    for g, name in enumerate(groups):
        parts.append(_legend(g, name, COLOURS[g % len(COLOURS)]))
    parts.append(
        f'<text x="{(LEFT + 90 + WIDTH - RIGHT) / 2}" y="{HEIGHT - 10}" text-anchor="middle">{escape(x_label)}</text>'
    )
    return _figure(title, _svg(parts), note, kind)


def heat_map(
    title: str,
    rows: list[str],
    columns: list[str],
    values: list[list[float | None]],
    note: str = "",
    kind: str = "heat",
    darkest_at: float = 1.0,
) -> str:
    """Cells coloured by value: white at 0, dark red at ``darkest_at`` and above."""
    if not rows or not columns:
        return empty(title, "no data yet", kind)
    left = LEFT + 90
    cell_w = (WIDTH - RIGHT + 100 - left) / len(columns)
    cell_h = min(18.0, (HEIGHT - TOP - BOTTOM) / len(rows))
    parts = []
    for r, name in enumerate(rows):
        y = TOP + r * cell_h
        parts.append(
            f'<text x="{left - 6}" y="{y + cell_h - 4:.1f}" text-anchor="end">{escape(name[:24])}</text>'
        )
        for c, value in enumerate(values[r]):
            if value is None:
                continue
            shade = min(value / darkest_at, 1.0)
            colour = f"rgb(255,{int(255 * (1 - shade))},{int(255 * (1 - shade))})"
            parts.append(
                f'<rect class="mark" x="{left + c * cell_w:.1f}" y="{y:.1f}" width="{cell_w:.1f}" '
                f'height="{cell_h:.1f}" fill="{colour}" stroke="#ddd"><title>{escape(name)} {escape(columns[c])}: '
                f"{value:.3f}</title></rect>"
            )
    for c, name in enumerate(columns):
        if len(columns) <= 8 or c in (0, len(columns) - 1):
            x = left + (c + 0.5) * cell_w
            parts.append(
                f'<text x="{x:.1f}" y="{TOP + len(rows) * cell_h + 14:.1f}" text-anchor="middle">{escape(name)}</text>'
            )
    height = TOP + len(rows) * cell_h + BOTTOM
    return _figure(title, _svg(parts, height=height), note, kind)


def _axes(
    x0: float,
    x1: float,
    y0: float,
    y1: float,
    sx: float,
    cx: float,
    sy: float,
    cy: float,
    x_label: str,
    y_label: str,
    x_ticks: dict[float, str] | None,
) -> str:
    parts = [
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#444"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#444"/>',
    ]
    for y in _ticks(y0, y1):
        py = y * sy + cy
        parts.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{_number(y)}</text>')
        parts.append(f'<line x1="{LEFT}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" y2="{py:.1f}" stroke="#eee"/>')
    ticks = x_ticks or {x: _number(x) for x in _ticks(x0, x1)}
    for x, label in ticks.items():
        parts.append(
            f'<text x="{x * sx + cx:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(14,{(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    return "".join(parts)


def _legend(i: int, name: str, colour: str) -> str:
    y = TOP + 8 + i * 18
    x = WIDTH - RIGHT + 12
    return (
        f'<rect x="{x}" y="{y - 8}" width="12" height="10" fill="{colour}"/>'
        f'<text x="{x + 18}" y="{y + 1}">{escape(name[:20])}</text>'
    )


def _svg(parts: list[str], height: float = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="sans-serif" font-size="11">{"".join(parts)}</svg>'
    )
