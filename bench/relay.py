"""The raw broker relay ceiling: what aio-pika and this RabbitMQ node can do with no hub at all.

After a short warm-up round, N small persistent JSON messages are published with publisher
confirms to a quorum queue, in pipelined windows of gathered publishes (as the hub's outbox
relay does); a consumer takes each one, republishes it with a confirm to a second quorum queue,
then acks it. The figure is messages per second from the first publish to the last republish
confirmed. It is the ceiling
against which the hub's end-to-end throughput is judged.

This module must never import hub code (it measures the broker, not the hub) and must never
leave its queues behind: the broker deletes both once they have gone unused for `EXPIRES_MS`
(the queue argument `x-expires`), whatever happened to the run. They are not deleted at once:
deleting a quorum queue just after a burst of writes races RabbitMQ's segment writer, which
then crashes on the directory it finds gone (rabbitmq/ra#484, fixed in newer Ra than Debian's
RabbitMQ carries), closing the connection with INTERNAL_ERROR and, for a moment, every quorum
queue of the node with it: seen here twice in a dozen runs, each time failing the run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}
EXPIRES_MS = 300_000  # the relay's queues are deleted by the broker once unused this long
PUBLISH_WINDOW = 200  # publishes gathered at once by the producer
CONSUMER_PREFETCH = 200  # unacked deliveries in flight at the relaying consumer
WARM_UP = 1000  # messages relayed, and not counted, before the measured round


@dataclass(frozen=True)
class RelayResult:
    messages: int
    seconds: float
    message_bytes: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
            "message_bytes": self.message_bytes,
            "messages_per_s": round(self.rate, 1),
        }


def payload(index: int) -> bytes:
    """A ~300-byte JSON body, shaped like a hub message about a dossier."""
    body = {
        "dossier_code": f"000.00.41.H41-250101-{index:06d}",
        "version": index % 17 + 1,
        "kind": "record",
        "status": "processing",
        "source_system": "bench",
        "occurred_at": "2025-01-01T08:00:00+07:00",
        "note": "x" * 120,
    }
    return json.dumps(body).encode()


def persistent(body: bytes) -> aio_pika.Message:
    return aio_pika.Message(
        body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
    )


class _Relay:
    """Consumes the first queue, republishes each message to the second, then acks."""

    def __init__(self, exchange: AbstractExchange, target: str) -> None:
        self.exchange = exchange
        self.target = target
        self.expected = 0
        self.relayed = 0
        self.last_confirm = 0.0
        self.done = asyncio.Event()

    def expect(self, count: int) -> None:
        self.expected, self.relayed = count, 0
        self.done = asyncio.Event()

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        await self.exchange.publish(persistent(message.body), self.target, timeout=30)
        await message.ack()
        self.relayed += 1
        self.last_confirm = time.perf_counter()
        if self.relayed >= self.expected:
            self.done.set()


@asynccontextmanager
async def _queues(channel: AbstractChannel, prefix: str) -> AsyncIterator[tuple[str, str]]:
    names = (f"{prefix}.relay.in", f"{prefix}.relay.out")
    for name in names:
        await channel.declare_queue(
            name, durable=True, arguments={**QUORUM, "x-expires": EXPIRES_MS}
        )
    yield names  # left to expire (see the module's docstring)


async def _publish_all(exchange: AbstractExchange, queue: str, count: int) -> None:
    for start in range(0, count, PUBLISH_WINDOW):
        stop = min(start + PUBLISH_WINDOW, count)
        await asyncio.gather(
            *(
                exchange.publish(persistent(payload(i)), queue, timeout=30)
                for i in range(start, stop)
            )
        )


async def _round(relay: _Relay, exchange: AbstractExchange, queue: str, count: int) -> float:
    """Seconds from the first publish of `count` messages to the last republish confirmed."""
    relay.expect(count)
    started = time.perf_counter()
    await _publish_all(exchange, queue, count)
    await asyncio.wait_for(relay.done.wait(), timeout=max(120.0, count / 100))
    return relay.last_confirm - started


async def _measure(connection: AbstractRobustConnection, prefix: str, count: int) -> RelayResult:
    producer = await connection.channel(publisher_confirms=True)
    relayer = await connection.channel(publisher_confirms=True)
    await relayer.set_qos(prefetch_count=CONSUMER_PREFETCH)
    async with _queues(producer, prefix) as (inbound, outbound):
        relay = _Relay(relayer.default_exchange, outbound)
        queue = await relayer.get_queue(inbound, ensure=False)
        tag = await queue.consume(relay)
        await _round(relay, producer.default_exchange, inbound, min(WARM_UP, count))
        seconds = await _round(relay, producer.default_exchange, inbound, count)
        await queue.cancel(tag)
    await relayer.close()
    await producer.close()
    return RelayResult(count, seconds, len(payload(0)))


async def run_relay(broker_url: str, prefix: str, count: int) -> RelayResult:
    """Measure the relay ceiling with `count` messages under queue names starting `prefix`."""
    connection = await aio_pika.connect_robust(
        broker_url, client_properties={"connection_name": "bench-relay"}
    )
    try:
        return await _measure(connection, prefix, count)
    finally:
        await connection.close()
