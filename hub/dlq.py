"""Operator actions on a connector's parking (dead-letter) queue: list, show, replay, discard.

Browsing takes messages without acking and closes the channel, which returns them all to
the queue untouched. A replay republishes a parked message to the connector's work queue with
its attempt count reset and waits for the confirm before acking the parked copy, so a crash
mid-replay duplicates at worst (harmless: delivery is idempotent) and never loses. Every replay
and discard is written to the audit log with who, what and the message's reason.

A message can sit in the parking queue twice: the consumer parks (or sends to a delay tier) by
publishing a copy and acking the original only after the broker confirmed the copy; when the
confirm comes later than `broker.publish_timeout_s` (a busy broker), the hub nacks the original,
the broker delivers it again, and the copy it did keep is a second one. That is the price of
never losing a message, and it is why a replay or a discard acts on the first copy of each
message id and drops the others it meets in the same pass (logged, not audited twice).
This module must never change a message's body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from hub.broker import (
    ATTEMPT_HEADER,
    ERROR_CODE_HEADER,
    PARKED_AT_HEADER,
    QUEUED_AT_HEADER,
    REASON_HEADER,
    Broker,
    ConnectorQueues,
)
from hub.consumer import RETRY_BUDGET_PREFIX
from hub.store.base import JournalLine

log = structlog.get_logger(__name__)

DELIVERY_LIMIT_REASON = "dead-lettered by the broker (delivery limit reached)"

REPLAYED_AT_HEADER = "x-hub-replayed-at"


class AuditLog(Protocol):
    """Every operator action, with who did it and to what."""

    async def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None: ...


class DeliveryJournal(Protocol):
    """Each dossier's outbound timeline: a line per delivery, refusal, replay or discard, with
    its reason as a code and the values its words name where the hub knows one."""

    async def record_delivery(
        self,
        code: str,
        connector: str,
        outcome: str,
        detail: str,
        reason_code: str | None = None,
        reason_args: Mapping[str, Any] | None = None,
    ) -> None: ...


class ParkingLog(AuditLog, DeliveryJournal, Protocol):
    """What a replay or a discard writes: an audit entry, and a line in the dossier's journal
    (in batches when many messages are acted on at once)."""

    async def record_deliveries(self, lines: list[JournalLine]) -> None: ...


def own_code(reason: str) -> str | None:
    """The code of one of the hub's own parking reasons, told by its fixed opening: the
    broker's delivery limit, or a spent retry budget (their text never names a code)."""
    if reason.startswith(DELIVERY_LIMIT_REASON):
        return "delivery_limit"
    if reason.startswith(RETRY_BUDGET_PREFIX):
        return "retry_budget"
    return None


Progress = Callable[[int], None]  # the messages acted on so far


# The messages one pass of `act` takes at most (held unacknowledged until the pass ends); a
# bulk action (`act_all`) runs passes until one takes fewer. Journal lines are written per
# `JOURNAL_BATCH` messages in one transaction.
PASS_MAX = 10_000
JOURNAL_BATCH = 500


@dataclass(frozen=True)
class ParkedMessage:
    message_id: str
    reason: str
    code: str | None  # the destination's refusal code, when it gave one
    parked_at: str
    attempts: int
    body: dict[str, Any]
    headers: dict[str, Any]


def _parked(raw: AbstractIncomingMessage) -> ParkedMessage:
    headers = dict(raw.headers or {})
    try:
        body = json.loads(raw.body)
    except (ValueError, RecursionError):
        body = {"undecodable": raw.body[:200].decode(errors="replace")}
    reason = headers.get(REASON_HEADER)
    if reason is None and headers.get("x-death"):
        reason = DELIVERY_LIMIT_REASON
    attempt = headers.get(ATTEMPT_HEADER, 0)
    return ParkedMessage(
        message_id=raw.message_id or "",
        reason=str(reason or "unknown"),
        code=str(headers[ERROR_CODE_HEADER]) if headers.get(ERROR_CODE_HEADER) else None,
        parked_at=str(headers.get(PARKED_AT_HEADER, "")),
        attempts=attempt if isinstance(attempt, int) else 0,
        body=body if isinstance(body, dict) else {"value": body},
        headers={k: str(v) for k, v in headers.items()},
    )


# A quorum queue takes the returned messages back through its log: on a machine whose cores
# are all busy that has taken more than ten seconds.
HAND_BACK_WAIT_S = 30.0


class ParkingQueue:
    def __init__(self, broker: Broker, queues: ConnectorQueues, store: ParkingLog) -> None:
        self.broker = broker
        self.queues = queues
        self.store = store
        # What the last browse or act handed back by closing its channel, and when: the broker
        # puts them back a moment after the close, and until then its count leaves them out.
        self._handed_back = 0
        self._handed_back_at = 0.0
        # What a walk holds unacknowledged right now (the broker leaves it out of its count).
        self.holding = 0

    async def _ready_count(self, channel: AbstractChannel) -> int:
        """The queue's ready messages, once what this queue's last pass handed back is in
        again (waited for at most `HAND_BACK_WAIT_S`: another client may have taken some)."""
        return (await self._counts(channel))[0]

    async def _counts(self, channel: AbstractChannel) -> tuple[int, int]:
        """`_ready_count`, and the queue's consumers: nothing but a browse consumes from a
        parking queue, so a consumer there is another replica's browse, holding every
        message it read (left out of the ready count) until it ends."""
        while True:
            declared = await channel.declare_queue(self.queues.parking, passive=True)
            result = declared.declaration_result
            count = int(result.message_count or 0)
            settling = time.monotonic() - self._handed_back_at < HAND_BACK_WAIT_S
            if count >= self._handed_back or not settling:
                return count, int(result.consumer_count or 0)
            await asyncio.sleep(0.02)

    def _hand_back(self, count: int) -> None:
        self._handed_back, self._handed_back_at = count, time.monotonic()

    async def _settle_hand_back(self, expected: int) -> None:
        """Wait until the broker counts again what this pass handed back by closing its
        channel, so that a count read after the pass (the dashboard's, under the same lock) is
        the whole queue: until its ready messages are at least `expected` (what was ready
        before the pass, less what it acked), or nobody holds any
        (a quorum queue returns a consumer's messages in the step that removes it). Waited for
        at most `HAND_BACK_WAIT_S`; a broker away ends the wait at once."""
        if self._handed_back == 0:
            return
        wanted = max(0, expected)
        with contextlib.suppress(Exception):
            channel = await self.broker.connection.channel()
            try:
                underlay = await channel.get_underlay_channel()
                deadline = time.monotonic() + HAND_BACK_WAIT_S
                while time.monotonic() < deadline:
                    ok = await underlay.queue_declare(self.queues.parking, passive=True)
                    if (ok.message_count or 0) >= wanted or not ok.consumer_count:
                        return
                    await asyncio.sleep(0.02)
            finally:
                await channel.close()

    async def browse(
        self, limit: int = 10_000, wait_s: float = 1.0, first_wait_s: float = 10.0
    ) -> list[ParkedMessage]:
        """Up to `limit` parked messages, oldest first, none removed.

        It subscribes with a prefetch as large as the queue (capped at `limit`) instead of
        taking messages one `basic.get` at a time (a round trip each: 1,000 parked messages
        took 350 ms), then closes the channel, which returns every one of them in place. The
        first message may take a while on a busy broker (or while an earlier browse's channel
        is still handing its messages back): it is waited for up to `first_wait_s`, the next
        ones `wait_s` each (fewer than counted means another client took some meanwhile).
        While another replica browses, the count leaves out what it holds: then this browse
        takes up to `limit`, which reach it as soon as the other hands them back, and ends
        `wait_s` after the last (instead of showing an operator no dead letters at all).
        """
        channel = await self.broker.connection.channel()
        found: list[ParkedMessage] = []
        wanted_before = 0
        try:
            wanted_before, others = await self._counts(channel)
            wanted = limit if others else min(limit, wanted_before)
            if wanted == 0:
                return found
            declared = await channel.get_queue(self.queues.parking, ensure=False)
            await channel.set_qos(prefetch_count=min(wanted, 65_535))
            arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            await declared.consume(arrived.put, no_ack=False)
            while len(found) < wanted:
                try:
                    raw = await asyncio.wait_for(arrived.get(), wait_s if found else first_wait_s)
                except TimeoutError:
                    break  # fewer than counted: another client took some meanwhile
                found.append(_parked(raw))
                self.holding = len(found)
        finally:
            # Closing returns every message we did not ack to the queue, in place.
            with contextlib.suppress(Exception):
                await channel.close()
            self.holding = 0
            self._hand_back(len(found))
        await self._settle_hand_back(wanted_before)
        return found

    async def replay(self, select: Callable[[ParkedMessage], bool], actor: str) -> int:
        return len(await self.act(select, actor, "dlq.replay"))

    async def discard(self, select: Callable[[ParkedMessage], bool], actor: str) -> int:
        return len(await self.act(select, actor, "dlq.discard"))

    async def act(
        self,
        select: Callable[[ParkedMessage], bool],
        actor: str,
        action: str,
        audit_each: bool = True,
        progress: Progress | None = None,
        taken: list[int] | None = None,
    ) -> list[ParkedMessage]:
        """Replay (`dlq.replay`) or discard (`dlq.discard`) every parked message `select`
        takes, in one pass of at most `PASS_MAX` messages; the messages acted on. Each is
        audited before it is acted on, unless `audit_each` is off (a bulk action audits itself
        once); `progress` hears the running count, `taken` gets how many the pass took."""
        acted: list[ParkedMessage] = []
        seen: set[str] = set()
        journal: list[JournalLine] = []
        channel = await self.broker.connection.channel(publisher_confirms=True)
        held = acked = 0
        before = 0
        try:
            before = await self._ready_count(channel)
            queue = await channel.get_queue(self.queues.parking, ensure=False)
            for _ in range(PASS_MAX):
                raw = await queue.get(no_ack=False, fail=False)
                if raw is None:
                    break
                held += 1
                self.holding = held
                parked = _parked(raw)
                if parked.message_id and parked.message_id in seen:
                    await raw.ack()  # a second copy of one acted on in this pass
                    held -= 1
                    acked += 1
                    self.holding = held
                    log.warning(
                        "parked_copy_dropped",
                        connector=self.queues.connector,
                        message_id=parked.message_id,
                        action=action,
                    )
                    continue
                if select(parked):
                    seen.add(parked.message_id)
                    if audit_each:
                        # Audit before acting: an interrupted run never leaves an unaudited act.
                        await self.store.audit(
                            actor,
                            action,
                            f"{self.queues.connector}:{parked.message_id}",
                            {
                                "reason": parked.reason,
                                "dossier_code": parked.body.get("dossier_code"),
                            },
                        )
                    if action == "dlq.replay":
                        await self._republish(raw)
                    await raw.ack()
                    acked += 1
                    held -= 1
                    self.holding = held
                    acted.append(parked)
                    journal += self._journal_line(parked, action, actor)
                    if len(journal) >= JOURNAL_BATCH:
                        await self._journal(journal)
                    if progress is not None:
                        progress(len(acted))
        finally:
            # Closing returns every message we did not ack to the queue, in place.
            with contextlib.suppress(Exception):
                await channel.close()
            self.holding = 0
            self._hand_back(held)
            await self._journal(journal)
        if taken is not None:
            taken.append(held + acked)
        await self._settle_hand_back(before - acked)
        return acted

    async def act_all(
        self,
        select: Callable[[ParkedMessage], bool],
        actor: str,
        action: str,
        progress: Progress | None = None,
    ) -> list[ParkedMessage]:
        """`act` pass after pass until one takes fewer than `PASS_MAX` messages (or acts on
        none): every parked message `select` takes, however many are parked. Audited by the
        caller (once for the whole action)."""
        done: list[ParkedMessage] = []
        while True:
            taken: list[int] = []

            def running(n: int, base: int = len(done)) -> None:
                if progress is not None:
                    progress(base + n)

            acted = await self.act(select, actor, action, False, running, taken)
            done += acted
            if not acted or (taken and taken[0] < PASS_MAX):
                return done

    def _journal_line(self, parked: ParkedMessage, action: str, actor: str) -> list[JournalLine]:
        """The replay or discard in the dossier's journal, with the parked message's reason:
        its code (the destination's, or the hub's own) and who acted, for its words."""
        code = parked.body.get("dossier_code")
        if not isinstance(code, str) or not code:
            return []
        outcome = "replayed" if action == "dlq.replay" else "discarded"
        return [
            JournalLine(
                code,
                self.queues.connector,
                outcome,
                f"by {actor}: {parked.reason}",
                parked.code or own_code(parked.reason),
                {"by": actor},
            )
        ]

    async def _journal(self, lines: list[JournalLine]) -> None:
        """The replays or discards in the dossiers' timelines (after the act: the audit log
        already holds it, so a failure here loses no record of it); `lines` is emptied."""
        if not lines:
            return
        batch, lines[:] = list(lines), []
        try:
            await self.store.record_deliveries(batch)
        except Exception as exc:
            log.warning("parking_journal_failed", connector=self.queues.connector, error=repr(exc))

    async def _republish(self, raw: AbstractIncomingMessage) -> None:
        headers = {
            k: v
            for k, v in dict(raw.headers or {}).items()
            if k not in (ATTEMPT_HEADER, "x-death", "x-delivery-count")
        }
        headers[REPLAYED_AT_HEADER] = datetime.now(UTC).isoformat()
        headers[QUEUED_AT_HEADER] = time.time()  # it waits again from now
        message = aio_pika.Message(
            raw.body,
            content_type=raw.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=raw.message_id,
            headers=headers,
        )
        await self.broker.publish(self.broker.channel.default_exchange, self.queues.work, message)
