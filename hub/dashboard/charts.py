"""Line charts, planned on the server and drawn by the browser.

`line_chart` turns named series of (moment, value or None) points into a plan the page embeds
as JSON (`data-chart`) and `static/app.js` draws as SVG at the size the chart has on the
screen, so its text stays 13 px on a wide screen and on a phone alike: the whole selected
range on the x axis (not only where there are points), round ticks on both axes (0, 5, 10 …;
every 3 hours at local full hours …), the unit, the title and the range, lines broken where
samples are missing, and each point's values in the order they are shown on hover. Every word
comes from the caller; the numbers are formatted in the page's language. Pure logic.

Decision 0069: hand-made SVG rather than a charting library: three line charts with hover
values need about 150 lines of script, which the tests can measure (tick text in the DOM,
not on a canvas) and which fit the page's content security policy as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.dashboard.flows import TIMEZONE

COLOURS = ("#0b5cad", "#c4281c", "#7d5700", "#1a7f37")

# Point = (epoch seconds, value or None)
Series = tuple[str, list[tuple[float, float | None]]]

# Steps of the time axis, in seconds, the smallest giving at most MAX_TIME_TICKS ticks is used.
TIME_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800)
MAX_TIME_TICKS = 8


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above `value` (1 for nothing to show)."""
    if value <= 0 or math.isnan(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return float(10 * power)


def value_ticks(top: float) -> list[float]:
    """Round ticks from 0 to `top` (a `nice_max`): 0, 0.2 … 1; 0, 0.5 … 2; 0, 1 … 5."""
    lead = round(top / 10 ** math.floor(math.log10(top)))
    parts = 4 if lead == 2 else 5
    return [round(top * i / parts, 12) for i in range(parts + 1)]


def time_ticks(start: float, end: float) -> list[float]:
    """Moments at round local times (full hours, every 3 hours, midnights …) inside the range."""
    span = max(end - start, 60.0)
    step = next((s for s in TIME_STEPS if span / s <= MAX_TIME_TICKS), TIME_STEPS[-1])
    offset = TIMEZONE.utcoffset(datetime.now(UTC).replace(tzinfo=None)) or timedelta()
    shift = offset.total_seconds()  # the province keeps no summer time: one offset
    first = math.ceil((start + shift) / step) * step - shift
    ticks = []
    at = first
    while at <= end + 1e-6:
        ticks.append(at)
        at += step
    return ticks


def time_label(at: float, with_date: bool) -> str:
    local = datetime.fromtimestamp(at, TIMEZONE)
    return local.strftime("%d/%m %H:%M") if with_date else local.strftime("%H:%M")


def seconds_unit(largest_s: float) -> tuple[float, str]:
    """The unit that writes durations up to `largest_s` in small numbers: s, min or h."""
    if largest_s >= 2 * 3600:
        return 3600.0, "h"
    if largest_s >= 120:
        return 60.0, "min"
    return 1.0, "s"


def with_gaps(
    points: list[tuple[float, float | None]], interval_s: float
) -> list[tuple[float, float | None]]:
    """`points` with a break (None) wherever samples are missing for over 2.5 intervals."""
    out: list[tuple[float, float | None]] = []
    for at, value in points:
        if out and at - out[-1][0] > 2.5 * interval_s:
            out.append(((at + out[-1][0]) / 2, None))
        out.append((at, value))
    return out


def line_chart(
    title: str,
    series: list[Series],
    *,
    start: float,
    end: float,
    unit: str = "",
    number: Callable[[float], str] = str,
    scale: float = 1.0,
    chart_id: str = "",
) -> dict[str, Any]:
    """The plan of one chart over [`start`, `end`] (epoch seconds); values are divided by
    `scale` (seconds shown in hours…) and written with `number`, followed by `unit`."""
    values = [v / scale for _, points in series for _, v in points if v is not None]
    top = nice_max(max(values) if values else 0.0)
    moments = time_ticks(start, end)
    days = {datetime.fromtimestamp(t, TIMEZONE).date() for t in (start, end)}
    with_date = len(days) > 1
    suffix = f" {unit}" if unit else ""
    return {
        "id": chart_id,
        "title": title,
        "unit": unit,
        "x": {
            "min": start * 1000,
            "max": end * 1000,
            "ticks": [[t * 1000, time_label(t, with_date)] for t in moments],
        },
        "y": {"max": top, "ticks": [[v, number(v)] for v in value_ticks(top)]},
        "series": [
            {
                "name": name,
                "colour": COLOURS[i % len(COLOURS)],
                "points": [
                    [
                        at * 1000,
                        None if v is None else round(v / scale, 6),
                        datetime.fromtimestamp(at, TIMEZONE).strftime("%Y-%m-%d %H:%M:%S"),
                        "-" if v is None else number(v / scale) + suffix,
                    ]
                    for at, v in points
                ],
            }
            for i, (name, points) in enumerate(series)
        ],
        "empty": not values,
    }


def _epoch(iso: str) -> float:
    at = datetime.fromisoformat(iso)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def connector_charts(data: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """The charts of a connector's page (`Board.connector`'s data) over its selected range:
    throughput and errors a minute, waiting and dead letters, and DVCQG's sync lag."""
    from hub.dashboard import i18n  # words only; the plan's logic above needs none
    from hub.dashboard.formats import grouped

    def t(key: str, **values: object) -> str:
        return i18n.translate(lang, key, **values)

    def num(v: float) -> str:
        return grouped(v, 0 if float(v).is_integer() else 1, lang)

    end = datetime.now(UTC).timestamp()
    start = end - float(data["hours"]) * 3600
    interval = float(data.get("interval_s") or 60.0)
    series = data["series"]

    def points(key: str) -> list[tuple[float, float | None]]:
        return with_gaps([(_epoch(s["at"]), s[key]) for s in series], interval)

    charts = [
        line_chart(
            t("chart.throughput"),
            [
                (t("chart.done_per_min"), points("throughput_per_min")),
                (t("chart.errors_per_min"), points("errors_per_min")),
            ],
            start=start,
            end=end,
            unit=t("chart.unit_per_min"),
            number=num,
            chart_id="throughput",
        ),
        line_chart(
            t("chart.queue"),
            [
                (t("card.queue_depth"), points("queue_depth")),
                (t("card.dead_letters"), points("dead_letters")),
            ],
            start=start,
            end=end,
            unit=t("chart.unit_messages"),
            number=num,
            chart_id="queue",
        ),
    ]
    lag = data.get("lag_series") or []
    if lag:
        largest = max((p["p95_s"] or 0.0) for p in lag)
        scale, unit = seconds_unit(largest)
        step = float(data.get("lag_step_s") or 1800.0)
        charts.append(
            line_chart(
                t("chart.lag"),
                [
                    (
                        t("chart.lag_p50"),
                        with_gaps([(_epoch(p["at"]), p["p50_s"]) for p in lag], step),
                    ),
                    (
                        t("chart.lag_p95"),
                        with_gaps([(_epoch(p["at"]), p["p95_s"]) for p in lag], step),
                    ),
                ],
                start=start,
                end=end,
                unit=unit,
                number=num,
                scale=scale,
                chart_id="lag",
            )
        )
    return charts
