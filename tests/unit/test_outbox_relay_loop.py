"""The outbox relay's forgetting loop when its rounds fail (`OutboxRelay.forget`; the sweeps
log through the same `_Streak`): it never stops, waits longer after each failure in a row (up
to the sweep interval), logs the trace once, not four times a second, and says when it
recovers. The intake is a stand-in: this is
the loop's own logic, the relay's publishing is tested against RabbitMQ elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog

from hub.intake import FORGET_INTERVAL_S, OutboxRelay


class FailingIntake:
    """`forget_published` fails `failures` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def forget_published(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("the store is away")


async def test_failed_rounds_back_off_log_once_and_say_when_they_recover(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 12:
            raise asyncio.CancelledError

    monkeypatch.setattr(asyncio, "sleep", sleep)  # the loop's pauses, recorded
    relay = OutboxRelay(FailingIntake(failures=10), interval_s=30.0, age_s=5.0)  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await relay.forget()
    events: list[MutableMapping[str, Any]] = [
        e for e in logs if e["event"].startswith("outbox_forget")
    ]
    assert [e["event"] for e in events] == ["outbox_forget_failed", "outbox_forget_recovered"]
    assert events[1]["failures"] == 10
    # Doubling from the usual pause, capped at the sweep interval; back to it once recovered.
    assert waits[0] == FORGET_INTERVAL_S
    assert waits[1:7] == [FORGET_INTERVAL_S * 2**n for n in range(1, 7)]  # 0.5 s ... 16 s
    assert waits[7:11] == [30.0] * 4
    assert waits[11:] == [FORGET_INTERVAL_S]
