"""Accepting dossier events durably, then relaying them to RabbitMQ.

`Intake.accept` commits the events, the dossier snapshots and one outbox row per touched
dossier in a single store transaction; only then may a door answer success (guarantee 1).
It then publishes the outbox rows with confirms and deletes them; a door that answers after
the commit alone (`publish="later"`: the facades) has them published by a task of their own
while it answers, so its sender never waits for RabbitMQ (decision 0079). If the broker is down, the
rows stay and `OutboxRelay` publishes them later, so a crash or an outage between commit and
publish loses nothing; a row published twice is harmless because delivery is idempotent.
This module must never validate: doors hand it canonical events only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Literal, Protocol

import structlog

from hub import metrics
from hub.broker import Broker
from hub.errors import BrokerUnavailable
from hub.store.base import IngestOutcome, OutboxMessage
from schemas.canonical import DossierEvent

log = structlog.get_logger(__name__)


class Outbox(Protocol):
    """Outbox rows committed with the events, until they are published."""

    async def outbox_pending(self, older_than_s: float, limit: int) -> list[OutboxMessage]:
        """Rows at least `older_than_s` old, oldest first."""
        ...

    async def outbox_done(self, ids: list[int]) -> None: ...


class DossierLog(Outbox, Protocol):
    """Where accepted dossier events go: folded into the dossiers' states and history, with
    one outbox row per touched dossier, in one transaction; duplicates change nothing."""

    async def ingest(self, events: list[DossierEvent], received_at: datetime) -> IngestOutcome: ...


FORGET_INTERVAL_S = 0.25  # how often published outbox rows are deleted, in one transaction


class Intake:
    def __init__(self, store: DossierLog, broker: Broker | None) -> None:
        self.store = store
        self.broker = broker
        self._relays: set[asyncio.Task[int]] = set()  # publishes started by `accept(later)`
        # Published rows are deleted in bulk by `forget_published`, not one commit per call;
        # a crash before that only republishes them, which delivery shrugs off.
        self._published: list[int] = []

    async def forget_published(self) -> None:
        done, self._published = self._published, []
        try:
            await self.store.outbox_done(done)
        except Exception:
            self._published.extend(done)
            raise

    async def accept(
        self, events: list[DossierEvent], publish: Literal["now", "later"] = "now"
    ) -> IngestOutcome:
        """Commit `events`; then publish their outbox rows and return (`now`), or return at
        once and publish them in a task of their own (`later`). Either way a row that is not
        published stays in the outbox for the relay."""
        outcome = await self.store.ingest(events, datetime.now(UTC))
        if publish == "now":
            await self.relay(outcome.outbox)
        elif outcome.outbox and self.broker is not None:
            task = asyncio.create_task(self.relay(outcome.outbox), name="intake-relay")
            self._relays.add(task)
            task.add_done_callback(self._relays.discard)
        return outcome

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Let the publishes `accept(later)` started finish (at shutdown, before the last
        sweep); what does not finish stays in the outbox."""
        if self._relays:
            await asyncio.wait(set(self._relays), timeout=timeout_s)

    async def relay(self, messages: list[OutboxMessage]) -> int:
        """Publish outbox rows with confirms; leave them for the sweeper on failure."""
        if not messages or self.broker is None:
            return 0
        broker = self.broker
        results = await asyncio.gather(
            *(broker.publish_event(m.routing_key, m.body, f"outbox-{m.id}") for m in messages),
            return_exceptions=True,
        )
        done = [m.id for m, r in zip(messages, results, strict=True) if r is None]
        failed = [r for r in results if isinstance(r, BaseException)]
        self._published.extend(done)
        if failed:
            # Committed is durable: the rows stay in the outbox and the relay publishes them
            # later, so a publish failure never turns into an error for the sender.
            unexpected = [r for r in failed if not isinstance(r, BrokerUnavailable)]
            log.log(
                logging.ERROR if unexpected else logging.WARNING,
                "outbox_publish_deferred",
                count=len(failed),
                error=repr(failed[0]),
            )
        return len(done)


class OutboxRelay:
    """Publishes outbox rows that `accept` could not (broker down, or a crash mid-way)."""

    def __init__(self, intake: Intake, interval_s: float, age_s: float) -> None:
        self.intake = intake
        self.interval_s = interval_s
        self.age_s = age_s

    async def sweep(self, age_s: float | None = None) -> int:
        await self.intake.forget_published()
        pending = await self.intake.store.outbox_pending(
            self.age_s if age_s is None else age_s, limit=1000
        )
        metrics.OUTBOX_PENDING.set(len(pending))
        if not pending:
            return 0
        published = await self.intake.relay(pending)
        log.info("outbox_swept", published=published, pending=len(pending))
        return published

    async def final_sweep(self) -> None:
        """At shutdown: publish what is left if the broker is there; the rows stay if not."""
        try:
            await self.intake.drain()
            await asyncio.wait_for(self.sweep(age_s=0), 10)
            await self.intake.forget_published()
        except Exception as exc:
            log.warning("outbox_final_sweep_skipped", error=repr(exc))

    async def forget(self) -> None:
        """In every replica: delete the outbox rows this process published, in bulk. Rounds
        that fail in a row (the store away) wait longer each time, up to `interval_s`."""
        streak = _Streak("outbox_forget")
        while True:
            await asyncio.sleep(streak.pause(FORGET_INTERVAL_S, max(self.interval_s, 1.0)))
            try:
                await self.intake.forget_published()
            except Exception as exc:  # keep going: the rows stay listed for the next round
                streak.failed(exc)
            else:
                streak.succeeded()

    async def sweeps(self) -> None:
        """A once-only duty (`hub.duties`): every `interval_s`, publish the rows older than
        `age_s` that no process published (the broker was down, or a process died between
        commit and publish). Only one replica sweeps: the others' rows, published but not yet
        forgotten, are younger than `age_s`."""
        streak = _Streak("outbox_sweep")
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sweep()
            except Exception as exc:  # keep sweeping: one bad round must not end recovery
                streak.failed(exc)
            else:
                streak.succeeded()


class _Streak:
    """Failures in a row of one loop: the first logged with its trace, then once a minute
    with how many there were, and the recovery when a round succeeds again (a store that is
    away must not fill the log with a trace four times a second)."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.count = 0
        self.logged_at = 0.0

    def failed(self, exc: Exception) -> None:
        self.count += 1
        if self.count == 1:
            log.exception(f"{self.event}_failed")
            self.logged_at = time.monotonic()
        elif time.monotonic() - self.logged_at >= 60:
            log.warning(f"{self.event}_failing", failures=self.count, error=repr(exc))
            self.logged_at = time.monotonic()

    def succeeded(self) -> None:
        if self.count:
            log.info(f"{self.event}_recovered", failures=self.count)
        self.count = 0

    def pause(self, usual: float, longest: float) -> float:
        """`usual`, doubled for each failure in a row, at most `longest`."""
        return min(usual * (1 << min(self.count, 10)), max(longest, usual))
