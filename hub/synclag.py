"""Sync lag as a histogram: log-spaced buckets of milliseconds, and percentiles from them.

The lag of a status change is the time from the change at the one-stop system (the status's
own time) to DVCQG's confirmation of a state that carries it. Lags are counted into buckets
whose bounds grow by `RATIO` (4 %), so a percentile read from them is within about 2 % of the
exact value, whatever the traffic: the store keeps a few dozen counters per minute instead of
one row per change, and the dashboard's percentiles over a day cost the same at 10 or 10 million
changes. This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

RATIO = 1.04
_LOG_RATIO = math.log(RATIO)


def bucket_of(lag_s: float) -> int:
    """Bucket 0 holds lags under 1 ms; bucket b ≥ 1 holds [RATIO**(b-1), RATIO**b) ms."""
    ms = max(lag_s, 0.0) * 1000
    if ms < 1:
        return 0
    return math.floor(math.log(ms) / _LOG_RATIO) + 1


def bucket_value_s(bucket: int) -> float:
    """The bucket's representative lag in seconds: the geometric middle of its bounds."""
    if bucket <= 0:
        return 0.0
    return float(RATIO ** (bucket - 0.5)) / 1000


def percentiles(counts: Mapping[int, int], qs: Iterable[float]) -> dict[float, float | None]:
    """Nearest-rank percentiles (q in (0, 1]) of a histogram; None when it is empty."""
    total = sum(n for n in counts.values() if n > 0)
    out: dict[float, float | None] = {}
    ordered = sorted((b, n) for b, n in counts.items() if n > 0)
    for q in qs:
        if total == 0:
            out[q] = None
            continue
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bucket, n in ordered:
            seen += n
            if seen >= rank:
                out[q] = bucket_value_s(bucket)
                break
    return out
