"""Turns one run's results into a readable table with each target beside its figure.

The targets are the product's: hub throughput at least half the raw relay ceiling, p99 step
latency under 500 ms at 200 events/s, peak RSS under 300 MB and flat over a long stream.
This module must never measure anything: it only formats what the phases returned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RATIO_TARGET = 0.5
P99_TARGET_MS = 500.0
PEAK_RSS_TARGET_MB = 300.0
FLAT_SLOPE_MB_PER_10K = 1.0
MIN_EVENTS_TO_JUDGE_SLOPE = 50_000  # below this, a second-half slope is mostly noise

Row = tuple[str, str, str, str]


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISS")


def _num(value: Any, unit: str = "", digits: int = 0) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _failed(figure: str, result: dict[str, Any]) -> list[Row]:
    """One short line; the whole error is in the JSON file."""
    first = str(result["error"]).splitlines()[0] if result["error"] else "unknown error"
    short = first if len(first) <= 90 else first[:87] + "..."
    return [(figure, f"failed: {short}", "", "FAIL")]


def _relay_rows(relay: dict[str, Any]) -> list[Row]:
    if "error" in relay:
        return _failed("raw relay ceiling", relay)
    return [("raw relay ceiling", _num(relay["messages_per_s"], " msg/s"), "(reference)", "")]


def ratio(results: dict[str, Any]) -> float | None:
    relay, hub = results.get("relay", {}), results.get("throughput", {})
    ceiling, rate = relay.get("messages_per_s"), hub.get("events_per_s")
    if not isinstance(ceiling, int | float) or not isinstance(rate, int | float) or not ceiling:
        return None
    return round(rate / ceiling, 3)


def _throughput_rows(tput: dict[str, Any], share: float | None) -> list[Row]:
    if "error" in tput:
        return _failed("hub throughput", tput)
    ok = None if share is None else share >= RATIO_TARGET
    return [
        ("hub throughput (delivered)", _num(tput["events_per_s"], " events/s"), "", ""),
        ("  hub / raw ceiling", _num(share, "", 2), f">= {RATIO_TARGET}", _verdict(ok)),
        ("  accepted at the facade", _num(tput["accepted_events_per_s"], " events/s"), "", ""),
    ]


def _latency_rows(lat: dict[str, Any]) -> list[Row]:
    if "error" in lat:
        return _failed("step latency", lat)
    p99 = lat["p99_ms"]
    rate = _num(lat["offered_events_per_s"], " events/s")
    return [
        (f"step latency at {rate} p50", _num(lat["p50_ms"], " ms", 1), "", ""),
        ("  p99", _num(p99, " ms", 1), f"< {P99_TARGET_MS:.0f} ms", _verdict(p99 < P99_TARGET_MS)),
        ("  max", _num(lat["max_ms"], " ms", 1), "", ""),
    ]


def _soak_rows(soak: dict[str, Any]) -> list[Row]:
    if "error" in soak:
        return _failed("hub RSS (soak)", soak)
    peak, slope = soak["rss_peak_mb"], soak["slope_mb_per_10k_events"]
    judged = slope is not None and soak["events"] >= MIN_EVENTS_TO_JUDGE_SLOPE
    flat = abs(slope) <= FLAT_SLOPE_MB_PER_10K if judged else None
    flat_target = f"|x| <= {FLAT_SLOPE_MB_PER_10K} (flat)" if judged else "(run too short)"
    events = _num(soak["events"])
    return [
        (f"hub RSS over {events} events: start", _num(soak["rss_start_mb"], " MB", 1), "", ""),
        (
            "  peak",
            _num(peak, " MB", 1),
            f"< {PEAK_RSS_TARGET_MB:.0f} MB",
            _verdict(peak < PEAK_RSS_TARGET_MB),
        ),
        ("  end", _num(soak["rss_end_mb"], " MB", 1), "", ""),
        (
            "  slope, second half",
            _num(slope, " MB/10k events", 2),
            flat_target,
            _verdict(flat),
        ),
        ("  soak throughput", _num(soak["events_per_s"], " events/s"), "", ""),
    ]


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    if "relay" in results:
        out += _relay_rows(results["relay"])
    if "throughput" in results:
        out += _throughput_rows(results["throughput"], ratio(results))
    if "latency" in results:
        out += _latency_rows(results["latency"])
    if "soak" in results:
        out += _soak_rows(results["soak"])
    return out


def table(results: dict[str, Any]) -> str:
    header: Row = ("figure", "measured", "target", "")
    lines = [header, *rows(results)]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in text)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
