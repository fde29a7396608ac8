"""What a connector's consumer has been doing, kept in memory for the dashboard.

`ConnectorStats` counts settled messages (done, retried, parked) per minute for the last
`WINDOW_MIN` minutes (messages a connector skipped as none of its business are counted apart and
are not throughput), remembers the last success and the most recent failures with their
reasons, and the time each message it holds first entered a queue, so the dashboard can show
the age of the oldest waiting message. It is cheap to update (a dict and a deque per message)
and never touches the store or the broker. This module must never keep message bodies.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_MIN = 5  # throughput and error rate are over the last five minutes
WINDOW_S = WINDOW_MIN * 60
RECENT_FAILURES = 50


@dataclass(frozen=True)
class Failure:
    at: float
    outcome: str  # retry | parked
    reason: str
    message_id: str
    dossier_code: str | None


class ConnectorStats:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._now = clock
        self.started_at = self._now()
        self.done = self.retried = self.parked = self.skipped = 0
        self.last_success_at: float | None = None
        self.last_taken_queued_at: float | None = None
        self.failures: deque[Failure] = deque(maxlen=RECENT_FAILURES)
        self._held: dict[int, float] = {}
        self._minutes: dict[int, list[int]] = {}  # minute → [done, failed]

    def took(self, key: int, queued_at: float | None) -> None:
        """A message reached the consumer; `queued_at` is when it first entered a queue."""
        at = queued_at if queued_at is not None else self._now()
        self._held[key] = at
        self.last_taken_queued_at = at

    def settled(
        self,
        key: int,
        outcome: str,
        reason: str = "",
        message_id: str = "",
        dossier_code: str | None = None,
    ) -> None:
        """`outcome` is done, retry, parked or skipped (none of this connector's business:
        neither throughput nor failure); anything else (a nack) only releases it."""
        self._held.pop(key, None)
        if outcome == "skipped":
            self.skipped += 1
            return
        now = self._now()
        counts = self._minute(now)
        if outcome == "done":
            self.done += 1
            self.last_success_at = now
            counts[0] += 1
        elif outcome in ("retry", "parked"):
            if outcome == "retry":
                self.retried += 1
            else:
                self.parked += 1
            counts[1] += 1
            self.failures.appendleft(Failure(now, outcome, reason[:500], message_id, dossier_code))

    def released(self, key: int) -> None:
        self._held.pop(key, None)

    def oldest_held_age_s(self) -> float | None:
        """Age of the oldest message the consumer holds unsettled, or None when it holds none."""
        if not self._held:
            return None
        return max(0.0, self._now() - min(self._held.values()))

    def rates(self) -> tuple[float, float | None]:
        """(settled successfully per minute, share of failures) over the last minutes."""
        now = self._now()
        first = int(now // 60) - WINDOW_MIN + 1
        done = failed = 0
        for minute, (d, f) in self._minutes.items():
            if minute >= first:
                done += d
                failed += f
        span_min = max(min(WINDOW_MIN, (now - self.started_at) / 60), 1 / 60)
        total = done + failed
        return done / span_min, (failed / total if total else None)

    def _minute(self, now: float) -> list[int]:
        minute = int(now // 60)
        counts = self._minutes.get(minute)
        if counts is None:
            counts = self._minutes[minute] = [0, 0]
            for old in [m for m in self._minutes if m < minute - WINDOW_MIN]:
                del self._minutes[old]
        return counts
