"""Line charts drawn on the server as SVG: no script, no library in the browser.

`line_chart` takes one or more named series of (time label, value or None) points on a shared
time axis and returns SVG markup: polylines broken at missing values, a y axis from 0 to a
rounded maximum with three grid lines, and the first and last time labels. Every text that
enters the markup is escaped here; the numbers are formatted by this module. Pure logic.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 12, 28
COLOURS = ("#1f6feb", "#d1242f", "#9a6700", "#1a7f37")

Series = tuple[str, list[tuple[str, float | None]]]


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above `value` (1 for nothing to show)."""
    if value <= 0 or math.isnan(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return float(10 * power)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def line_chart(title: str, series: list[Series], unit: str = "") -> str:
    labels = series[0][1] if series else []
    n = len(labels)
    values = [v for _, points in series for _, v in points if v is not None]
    top = nice_max(max(values) if values else 0.0)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(i: int) -> float:
        return PAD_LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - min(v, top) / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" data-testid="chart" class="chart">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(4):
        v = top * k / 3
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#d0d7de" stroke-width="1"/>'
            f'<text x="{PAD_LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(_fmt(v) + unit)}</text>"
        )
    for index, (name, points) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        run: list[str] = []
        for i, (_, point) in enumerate(points):
            if point is None:
                parts.extend(_polyline(run, colour))
                run = []
                continue
            run.append(f"{x(i):.1f},{y(point):.1f}")
        parts.extend(_polyline(run, colour))
        parts.append(
            f'<text x="{PAD_LEFT + 8 + 150 * index}" y="{PAD_TOP + 10}" font-size="11" '
            f'fill="{colour}">{escape(name)}</text>'
        )
    if n:
        parts.append(
            f'<text x="{PAD_LEFT}" y="{HEIGHT - 8}" font-size="11">{escape(labels[0][0])}</text>'
            f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">'
            f"{escape(labels[-1][0])}</text>"
        )
    else:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="12">-</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _polyline(run: list[str], colour: str) -> list[str]:
    if not run:
        return []
    if len(run) == 1:
        cx, cy = run[0].split(",")
        return [f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>']
    return [f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>']
