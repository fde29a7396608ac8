"""Each connector's state and counts, the one answer `/readyz`, `/metrics`, `hub status` and
the dashboard all give.

A connector's state, one at a time, most serious first:

* `paused`: an operator paused it (`hub connectors pause`, the dashboard): nothing is sent;
* `credentials_refused`: the destination refuses the hub's login or token: messages wait;
* `down`: the destination is unavailable (5xx, 429, time-out, connection refused), or the
  connector's consumer is not subscribed to its queue: messages wait, a probe goes at a bounded
  interval; the reason is the last error and `since` when the outage began;
* `degraded`: still delivering, but more than 5 % of what it settled in the last five minutes
  failed, or the oldest message it holds has waited longer than `STALE_S`;
* `up` otherwise.

Counts come from the broker at the moment they are asked for: a passive queue declare on a
plain channel of the probe's own, never a cached one (aio-pika's robust channel answers a
repeated passive declare from its cache). A passive declare counts ready messages only, so
waiting adds what the consumer holds, and the parking count is read between two walks of the
dead-letter pages (which hold what they read), not in the middle of one. This module must never
change what it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel

from hub.broker import Broker, ConnectorQueues
from hub.consumer import BatchConsumer
from hub.dlq import ParkingQueue
from hub.masking import mask_text
from hub.outage import Outage, State
from hub.resilience import Guard

log = structlog.get_logger(__name__)

STALE_S = 300.0
DEGRADED_ERROR_RATE = 0.05


@dataclass
class Watched:
    """One connector: a queue consumer with its guard, or only a guard (a poller's calls)."""

    name: str
    guard: Guard | None
    consumer: BatchConsumer | None = None
    queues: ConnectorQueues | None = None
    parking: ParkingQueue | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one parking walk at a time


@dataclass(frozen=True)
class Condition:
    state: State
    since: float | None
    reason: str
    code: str = ""  # the reason as a code for words (`reason.<code>` or `cause.<code>`)
    args: dict[str, Any] = field(default_factory=dict)  # values its words name


def condition_of(w: Watched, now: float | None = None) -> Condition:
    now = time.time() if now is None else now
    gate = w.guard.gate if w.guard else None
    if gate is not None and gate.state() is not State.up:
        pause = gate.pause
        args = {"by": pause.by, "note": pause.reason} if pause else {}
        return Condition(gate.state(), gate.since, gate.reason(), gate.reason_code(), args)
    consumer = w.consumer
    if consumer is None:
        return Condition(State.up, gate.since if gate else None, "")
    if not consumer.is_ready():
        return Condition(
            State.down, None, "not subscribed to its queue (is the broker there?)", "not_consuming"
        )
    _, error_rate = consumer.stats.rates()
    if (error_rate or 0) > DEGRADED_ERROR_RATE:
        share = round((error_rate or 0) * 100)
        return Condition(
            State.degraded,
            None,
            f"{share}% of the messages settled failed",
            "error_rate",
            {"share": share},
        )
    oldest = consumer.stats.oldest_held_age_s()
    if oldest is not None and oldest > STALE_S:
        return Condition(
            State.degraded,
            None,
            f"a message has waited {round(oldest)} s",
            "stale",
            {"seconds": round(oldest)},
        )
    return Condition(State.up, gate.since if gate else None, "")


def describe(w: Watched) -> dict[str, Any]:
    """State, reason, since and the current outage: cheap, no broker call. Reasons and errors
    are masked (they may quote a destination's reply)."""
    c = condition_of(w)
    gate = w.guard.gate if w.guard else None
    outage = gate.outage if gate else None
    return {
        "state": str(c.state),
        "since": iso(c.since) if c.since else None,
        "reason": mask_text(c.reason),
        "reason_code": c.code,
        "reason_args": {k: mask_text(v) if isinstance(v, str) else v for k, v in c.args.items()},
        "consuming": w.consumer.is_ready() if w.consumer else None,
        "held": w.consumer.in_flight() if w.consumer else None,
        "outage": outage_json(outage) if outage else None,
    }


def outage_json(outage: Outage) -> dict[str, Any]:
    record = outage.as_json()
    return {
        **record,
        "started_at": iso(outage.started_at),
        "ended_at": iso(outage.ended_at) if outage.ended_at else None,
        "cause": mask_text(outage.cause),
        "last_error": mask_text(outage.last_error),
    }


class QueueProbe:
    """Message counts of queues, read from the broker each time."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()

    async def count(self, queue: str) -> int | None:
        if not self.broker.is_ready():
            return None  # away or reconnecting: unknown, at once
        async with self._lock:
            try:
                if self._channel is None or self._channel.is_closed:
                    self._channel = await self.broker.connection.channel()
                # The plain AMQP channel under it: declared afresh each time, never cached.
                underlay = await asyncio.wait_for(self._channel.get_underlay_channel(), 2)
                result = await asyncio.wait_for(underlay.queue_declare(queue, passive=True), 2)
                return int(result.message_count or 0)
            except Exception as exc:  # a missing queue or a broker away: unknown, not fatal
                log.debug("queue_count_failed", queue=queue, error=repr(exc))
                channel, self._channel = self._channel, None
                if channel is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(channel.close(), 2)
                return None


@dataclass(frozen=True)
class Counts:
    waiting: int | None  # in the work and retry queues, plus what the consumer holds
    parked: int | None


async def counts_of(w: Watched, probe: QueueProbe) -> Counts:
    if w.queues is None or w.consumer is None:
        return Counts(None, None)
    names = [w.queues.work, *(q for q, _ in w.queues.retry)]
    found = [await probe.count(name) for name in names]
    waiting = None
    if all(c is not None for c in found):
        # What the consumer holds is unacknowledged: the broker no longer counts it as ready.
        waiting = sum(c or 0 for c in found) + w.consumer.in_flight()
    return Counts(waiting, await _parked_count(w, probe))


# How long a count waits for a walk of the parking queue (the dead-letter pages, a replay) to
# hand its messages back; past that it is the broker's ready count, short of what the walk holds.
PARKING_WALK_WAIT_S = 2.0


async def _parked_count(w: Watched, probe: QueueProbe) -> int | None:
    """The parking queue's messages. The broker's count leaves out messages a client holds
    unacknowledged, and the dead-letter pages read parked messages by holding them; so the count
    is read between two walks (under the connector's parking lock, which a walk keeps until the
    broker counts its messages again), never in the middle of one."""
    assert w.queues is not None
    try:
        async with asyncio.timeout(PARKING_WALK_WAIT_S):
            await w.lock.acquire()
    except TimeoutError:
        # A long walk (a bulk replay): the broker's ready count and what the walk holds.
        log.info("parked_count_during_walk", connector=w.name)
        ready = await probe.count(w.queues.parking)
        held = w.parking.holding if w.parking else 0
        return None if ready is None else ready + held
    try:
        return await probe.count(w.queues.parking)
    finally:
        w.lock.release()


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
