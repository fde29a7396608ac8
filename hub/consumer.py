"""The one consumer wrapper: it alone acks, retries and parks.

Handlers receive a batch of parsed `Envelope`s and return one outcome per envelope: `None`
(done), `SKIPPED` (not this connector's business: acked, but counted apart from what it
delivered, so a queue that sees every dossier event shows only its own work), an
`Unavailable` error (the destination, broker or store is not there: an outage), any other
`TransientError` (try again later) or a `PermanentError` (park it). Raising applies the error
to the whole batch. The wrapper then:

* acks what is done;
* holds what met an outage: it stays unacknowledged in its lane, the destination's gate
  (`hub.outage.Gate`) closes, and the lane waits there, like every other lane of the connector,
  until a probe succeeds; then the same batch is handled again. No retry budget is spent and
  nothing is parked, however long the outage. A batch held longer than `broker.hold_max_s`
  goes back to the end of the work queue unchanged (the broker would otherwise take it back
  at its consumer_timeout and count a delivery), and the lane takes the next;
* republishes any other transient failure (a handler crash, say), with its attempt count and
  reason, to the next delay tier (`hub.<c>.retry.<n>`), and acks the original only after the
  broker confirmed the copy;
* parks a permanent failure, or one whose delay tiers are spent, in `hub.<c>.parking` with the
  reason, again acking only after the confirm;
* nacks with requeue when even that publish fails, so the broker keeps the message (its
  delivery limit dead-letters a message that keeps coming back).

A watch task checks every `broker.watch_interval_s` that the consumer is still subscribed;
after a broker restart, a killed node or a cut connection it opens a new channel, declares the
connector's queues again and subscribes again. Messages taken on the lost channel are dropped
unhandled (the broker delivers them again).

Messages are spread over `lanes` by a key (the dossier code): one lane works one batch at a
time, so two batches never carry the same dossier at once, while lanes run side by side.
Stopping cancels the subscription, lets the lanes finish what they hold, then returns.
This module must never interpret message bodies beyond the envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from hub import metrics
from hub.broker import (
    ATTEMPT_HEADER,
    CONNECTOR_HEADER,
    ERROR_CODE_HEADER,
    PARKED_AT_HEADER,
    QUEUED_AT_HEADER,
    REASON_HEADER,
    Broker,
    ConnectorQueues,
    message,
)
from hub.errors import (
    HubError,
    PermanentError,
    TransientError,
    Unavailable,
    UndecodableMessage,
)
from hub.outage import Admission, Gate
from hub.watch import ConnectorStats

log = structlog.get_logger(__name__)

RETRY_BUDGET_PREFIX = "retry budget spent"  # a parked message's reason begins so

SUBSCRIBE_TIMEOUT_S = 10.0
# Messages the broker may have delivered unacknowledged, in batches per lane (capped at AMQP's
# 65,535): also what a consumer holds at most during an outage. Eight instead of two changed
# nothing in the bench's catch-up after an outage (1,082 against 1,060 messages/s).
PREFETCH_BATCHES = 2


@dataclass(frozen=True)
class Envelope:
    """A delivered message, parsed once; `raw` is kept for the wrapper only."""

    message_id: str
    body: dict[str, Any]
    attempt: int
    headers: dict[str, Any]
    raw: AbstractIncomingMessage = field(repr=False)
    taken_at: float = field(default_factory=time.monotonic, compare=False)

    @classmethod
    def parse(cls, raw: AbstractIncomingMessage) -> Envelope:
        try:
            body = json.loads(raw.body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise UndecodableMessage(f"message body is not JSON: {exc}", code="not_json") from None
        if not isinstance(body, dict):
            raise UndecodableMessage("message body is not a JSON object", code="not_object")
        headers = dict(raw.headers or {})
        attempt = headers.get(ATTEMPT_HEADER, 0)
        return cls(
            message_id=raw.message_id or "",
            body=body,
            attempt=attempt if isinstance(attempt, int) else 0,
            headers=headers,
            raw=raw,
        )


def dossier_code_of(envelope: Envelope) -> str:
    """The lane key of dossier messages: one dossier is never in two batches at once."""
    code = envelope.body.get("dossier_code")
    return code if isinstance(code, str) else ""


class Skipped:
    """The outcome of a message the connector had nothing to do for (a ministry that does not
    decide the dossier's procedure, say): acked, counted as `skipped`, not as throughput."""

    def __repr__(self) -> str:
        return "SKIPPED"


SKIPPED = Skipped()
Outcome = HubError | Skipped | None
BatchHandler = Callable[[Sequence[Envelope]], Awaitable[Sequence[Outcome]]]


class Journal(Protocol):
    """Writes a hop of a dossier's timeline: the dossier, the connector, the outcome, the
    hub's text of it, and its reason as a code with the values its words name (when known)."""

    async def __call__(
        self,
        code: str,
        connector: str,
        outcome: str,
        detail: str,
        reason_code: str | None = None,
        reason_args: Mapping[str, Any] | None = None,
    ) -> None: ...


# Declares the connector's queues (and bindings) on a channel, idempotently.
Declare = Callable[[AbstractChannel], Awaitable[None]]


class BatchConsumer:
    def __init__(
        self,
        broker: Broker,
        queues: ConnectorQueues,
        handler: BatchHandler,
        *,
        lane_key: Callable[[Envelope], str],
        batch_size: int,
        linger_s: float,
        lanes: int,
        journal: Journal | None = None,
        gate: Gate | None = None,
        declare: Declare | None = None,
        hold_max_s: float = 900.0,
        watch_interval_s: float = 1.0,
    ) -> None:
        self.broker = broker
        self.journal = journal
        self.stats = ConnectorStats()
        self.queues = queues
        self.handler = handler
        self.lane_key = lane_key
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.gate = gate or Gate(queues.connector)
        self.declare = declare
        self.hold_max_s = hold_max_s
        self.watch_interval_s = watch_interval_s
        self.resubscribed = 0  # times the watch had to subscribe again
        self.shelved = 0  # held messages put back at the end of the queue (held too long)
        self._lanes: list[asyncio.Queue[Envelope]] = [asyncio.Queue() for _ in range(lanes)]
        self._tasks: list[asyncio.Task[None]] = []
        self._holding = [0] * lanes  # unsettled messages each lane's batch holds
        self._waiting: list[list[Envelope]] = [[] for _ in range(lanes)]  # held at the gate
        self._channel: AbstractChannel | None = None
        self._underlay: Any = None  # the aiormq channel the subscription lives on
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._watch_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Subscribe first: the lanes' queues already exist, and a failed subscription then
        # leaves no task behind.
        await self._subscribe()
        self._tasks = [
            asyncio.create_task(self._lane_loop(i), name=f"{self.queues.connector}-lane-{i}")
            for i in range(len(self._lanes))
        ]
        self._watch_task = asyncio.create_task(self._watch(), name=f"{self.queues.connector}-watch")
        log.info("consumer_started", connector=self.queues.connector, lanes=len(self._lanes))

    async def _subscribe(self) -> None:
        prefetch = min(self.batch_size * len(self._lanes) * PREFETCH_BATCHES, 65_535)
        channel = await self.broker.consumer_channel(prefetch)
        if self.declare is not None:
            await self.declare(channel)
        queue = await channel.get_queue(self.queues.work, ensure=False)
        self._underlay = await channel.get_underlay_channel()
        self._tag = await queue.consume(self._on_message)
        self._channel, self._queue = channel, queue

    def subscribed(self) -> bool:
        """True while the broker knows this consumer: its channel is open and its tag alive."""
        underlay = self._underlay
        return (
            underlay is not None
            and not underlay.is_closed
            and self._tag is not None
            and self._tag in underlay.consumers
        )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watch_interval_s)
            if self.subscribed():
                continue
            log.warning("consumer_lost", connector=self.queues.connector)
            await self._close_channel()
            try:
                await asyncio.wait_for(self._subscribe(), SUBSCRIBE_TIMEOUT_S)
            except Exception as exc:  # the broker is still away: the next round tries again
                log.warning(
                    "consumer_resubscribe_failed", connector=self.queues.connector, error=repr(exc)
                )
                continue
            self.resubscribed += 1
            log.warning("consumer_resubscribed", connector=self.queues.connector)

    async def _close_channel(self) -> None:
        channel, self._channel, self._tag, self._underlay = self._channel, None, None, None
        if channel is not None and not channel.is_closed:
            # Whatever was not settled goes back to the queue when the channel closes.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(channel.close(), 5)

    async def stop(self, timeout_s: float = 15.0) -> None:
        """Stop taking messages, finish the ones held (up to `timeout_s`), close the channel.
        Lanes waiting out an outage do not wait for it to end: what they hold goes back."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        if self._queue is not None and self._tag is not None:
            # The broker may be gone already; stopping must not hang on it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.cancel(self._tag), 5)
        if self.gate.is_open():
            try:
                await asyncio.wait_for(asyncio.gather(*(q.join() for q in self._lanes)), timeout_s)
            except TimeoutError:
                log.warning("consumer_drain_timeout", connector=self.queues.connector)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._shelve_held()
        await self._close_channel()
        log.info("consumer_stopped", connector=self.queues.connector, left=self.in_flight())

    async def _shelve_held(self) -> None:
        """At a stop during an outage: what waited at the gate, and what the lanes had not
        started, goes back to the end of the queue as it is. Closing the channel would return
        it too, but the broker would count a delivery each time (towards its delivery limit)."""
        held = [e for waiting in self._waiting for e in waiting]
        for lane in self._lanes:
            while not lane.empty():
                held.append(lane.get_nowait())
        held = [e for e in held if not _taken_on_lost_channel(e)]
        if held:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._shelve(held), 10)

    def is_ready(self) -> bool:
        """Subscribed, with every lane alive."""
        return self.subscribed() and not any(t.done() for t in self._tasks)

    def in_flight(self) -> int:
        return sum(q.qsize() for q in self._lanes) + sum(self._holding)

    async def _on_message(self, raw: AbstractIncomingMessage) -> None:
        try:
            envelope = Envelope.parse(raw)
        except UndecodableMessage as exc:
            await self._park_raw(raw, exc.message, exc.code)
            return
        queued_at = envelope.headers.get(QUEUED_AT_HEADER)
        self.stats.took(
            id(envelope), float(queued_at) if isinstance(queued_at, int | float) else None
        )
        lane = zlib.crc32(self.lane_key(envelope).encode()) % len(self._lanes)
        self._lanes[lane].put_nowait(envelope)

    async def _lane_loop(self, index: int) -> None:
        lane = self._lanes[index]
        while True:
            batch = [await lane.get()]
            self._holding[index] = 1
            try:
                await self._fill(lane, batch, index)
                await self._run(batch, index)
            except Exception:
                # A lane must outlive any failure: its unsettled messages stay unacked and the
                # broker redelivers them when their channel goes.
                log.exception("lane_batch_failed", connector=self.queues.connector, lane=index)
            finally:
                self._holding[index] = 0
                for envelope in batch:
                    self.stats.released(id(envelope))  # settled or not, no longer held here
                    lane.task_done()

    async def _fill(self, lane: asyncio.Queue[Envelope], batch: list[Envelope], index: int) -> None:
        deadline = time.monotonic() + self.linger_s
        while len(batch) < self.batch_size:
            if not lane.empty():
                batch.append(lane.get_nowait())
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    batch.append(await asyncio.wait_for(lane.get(), left))
                except TimeoutError:
                    return
            self._holding[index] = len(batch)  # counted as held the moment it left the lane

    async def _run(self, batch: list[Envelope], index: int) -> None:
        """Handle the batch; what meets an outage is held and handled again once the gate
        lets it (as the probe, or when the destination is back)."""
        pending = batch
        while pending:
            pending = [e for e in pending if not _taken_on_lost_channel(e)]
            self._holding[index] = len(pending)
            if not pending:
                return
            deadline = min(e.taken_at for e in pending) + self.hold_max_s
            # Kept if the wait is cancelled (a stop): `_shelve_held` puts these back.
            self._waiting[index] = pending
            admission = await self.gate.admit(deadline)
            self._waiting[index] = []
            if admission is Admission.expired:
                await self._shelve(pending)
                self._holding[index] = 0
                return
            probe = admission is Admission.probe
            if probe and not self.gate.take_probe():
                continue  # another lane took it
            with self.gate.probing() if probe else contextlib.nullcontext():
                outcomes = await self._handle(pending)
            held: list[Envelope] = []
            outage: HubError | None = None
            for envelope, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, Unavailable):
                    held.append(envelope)
                    outage = outcome
                else:
                    await self._settle(envelope, outcome)
            if outage is not None:
                self.gate.failed(outage, at_once=True)
                self.gate.note_held(self.in_flight())
                if probe:
                    self.gate.probe_failed()
            elif probe:
                self.gate.succeeded()
            pending = held

    async def _handle(self, batch: list[Envelope]) -> Sequence[Outcome]:
        try:
            outcomes: Sequence[Outcome] = await self.handler(batch)
        except HubError as exc:
            outcomes = [exc] * len(batch)
        except Exception as exc:  # a bug must not lose messages: retry them, then park
            log.exception("handler_crashed", connector=self.queues.connector)
            crashed = TransientError(f"handler crashed: {exc!r}", code="handler_crashed")
            outcomes = [crashed] * len(batch)
        if len(outcomes) != len(batch):
            log.error("handler_outcome_count_wrong", connector=self.queues.connector)
            wrong = TransientError(
                "handler returned a wrong number of outcomes", code="outcome_count"
            )
            outcomes = [wrong] * len(batch)
        return outcomes

    async def _shelve(self, batch: list[Envelope]) -> None:
        """Held too long: back to the end of the work queue as it is (same attempt count), so
        the broker never takes it back itself and counts a delivery."""
        for envelope in batch:
            try:
                await self.broker.publish(
                    self.broker.channel.default_exchange,
                    self.queues.work,
                    message(envelope.body, envelope.message_id, envelope.headers),
                )
                await envelope.raw.ack()
                self.shelved += 1
                metrics.MESSAGES.labels(self.queues.connector, "shelved").inc()
            except Exception as exc:  # the broker is away too: it keeps the original
                log.warning("shelve_failed", connector=self.queues.connector, error=repr(exc))
                await _nack_quietly(envelope)
        log.info("held_messages_shelved", connector=self.queues.connector, count=len(batch))

    async def _settle(self, envelope: Envelope, outcome: Outcome) -> None:
        connector = self.queues.connector
        kind, reason = "done", ""
        why: str | None = None  # the reason's code, for the journal
        args: dict[str, Any] = {}
        try:
            if outcome is None:
                await envelope.raw.ack()
                metrics.MESSAGES.labels(connector, "done").inc()
            elif isinstance(outcome, Skipped):
                kind = "skipped"
                await envelope.raw.ack()
                metrics.MESSAGES.labels(connector, "skipped").inc()
            elif isinstance(outcome, PermanentError):
                kind, reason, why = "parked", outcome.message, outcome.code
                await self._park(envelope, reason, outcome.code)
            elif envelope.attempt < len(self.queues.retry):
                kind, reason, why = "retry", outcome.message, outcome.code
                await self._retry(envelope, outcome)
            else:
                tiers = len(self.queues.retry)
                kind, reason = "parked", f"{RETRY_BUDGET_PREFIX} ({tiers} tiers): {outcome.message}"
                why, args = "retry_budget", {"tiers": tiers}
                await self._park(envelope, reason)
        except HubError as exc:
            log.warning("settle_failed", connector=connector, error=exc.message)
            self.stats.released(id(envelope))
            await _nack_quietly(envelope)
            return
        except Exception as exc:
            # Typically the consumer channel closed under us (broker restart): the broker
            # already took the message back and will redeliver it on the new channel.
            log.warning("settle_abandoned", connector=connector, error=repr(exc))
            self.stats.released(id(envelope))
            return
        code = envelope.body.get("dossier_code")
        code = code if isinstance(code, str) else None
        self.stats.settled(id(envelope), kind, reason, envelope.message_id, code)
        if kind in ("retry", "parked") and code and self.journal is not None:
            await self._journal(code, kind, reason, why, args)

    async def _journal(
        self, code: str, kind: str, reason: str, why: str | None, args: dict[str, Any]
    ) -> None:
        """The retry or parking in the dossier's timeline, with its reason's code (the
        destination's refusal code, or the hub's own); a failure here is only logged."""
        assert self.journal is not None
        try:
            await self.journal(code, self.queues.connector, kind, reason, why, args or None)
        except Exception as exc:
            log.warning("journal_failed", connector=self.queues.connector, error=repr(exc))

    async def _retry(self, envelope: Envelope, error: HubError) -> None:
        queue, delay_s = self.queues.retry[envelope.attempt]
        headers = {
            **envelope.headers,
            ATTEMPT_HEADER: envelope.attempt + 1,
            REASON_HEADER: error.message[:500],
        }
        await self.broker.publish(
            self.broker.channel.default_exchange,
            queue,
            message(envelope.body, envelope.message_id, headers),
        )
        await envelope.raw.ack()
        metrics.MESSAGES.labels(self.queues.connector, "retry").inc()
        log.info(
            "message_retry_scheduled",
            connector=self.queues.connector,
            message_id=envelope.message_id,
            attempt=envelope.attempt + 1,
            delay_s=delay_s,
            reason=error.message,
        )

    async def _park(self, envelope: Envelope, reason: str, code: str | None = None) -> None:
        headers = {**envelope.headers, ERROR_CODE_HEADER: code} if code else envelope.headers
        await self._publish_parked(envelope.body, envelope.message_id, headers, reason)
        await envelope.raw.ack()

    async def _park_raw(
        self, raw: AbstractIncomingMessage, reason: str, code: str | None = None
    ) -> None:
        try:
            await self.broker.publish(
                self.broker.channel.default_exchange,
                self.queues.parking,
                _parked_raw(raw, reason, self.queues.connector, code),
            )
            await raw.ack()
            self.stats.settled(0, "parked", reason, raw.message_id or "")
        except HubError:
            await raw.nack(requeue=True)

    async def _publish_parked(
        self, body: dict[str, Any], message_id: str, headers: dict[str, Any], reason: str
    ) -> None:
        parked_headers = {
            **headers,
            REASON_HEADER: reason[:1000],
            CONNECTOR_HEADER: self.queues.connector,
            PARKED_AT_HEADER: datetime.now(UTC).isoformat(),
        }
        await self.broker.publish(
            self.broker.channel.default_exchange,
            self.queues.parking,
            message(body, message_id, parked_headers),
        )
        metrics.MESSAGES.labels(self.queues.connector, "parked").inc()
        log.warning(
            "message_parked",
            connector=self.queues.connector,
            message_id=message_id,
            reason=reason,
        )


def _taken_on_lost_channel(envelope: Envelope) -> bool:
    """Its channel closed: it can no longer be acked, and the broker delivers it again.
    aio-pika 10 raises `ChannelInvalidStateError` on reading a closed channel: that is lost
    too (the lane must go on; a test kills the broker node under it)."""
    try:
        channel = getattr(envelope.raw, "channel", None)
    except aiormq.exceptions.ChannelInvalidStateError:
        return True
    return bool(getattr(channel, "is_closed", False))


async def _nack_quietly(envelope: Envelope) -> None:
    with contextlib.suppress(Exception):
        await envelope.raw.nack(requeue=True)


def _parked_raw(
    raw: AbstractIncomingMessage, reason: str, connector: str, code: str | None = None
) -> aio_pika.Message:
    headers = {
        **dict(raw.headers or {}),
        REASON_HEADER: reason[:1000],
        CONNECTOR_HEADER: connector,
        PARKED_AT_HEADER: datetime.now(UTC).isoformat(),
    }
    if code:
        headers[ERROR_CODE_HEADER] = code
    return aio_pika.Message(
        raw.body,
        content_type=raw.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=raw.message_id,
        headers=headers,
    )
