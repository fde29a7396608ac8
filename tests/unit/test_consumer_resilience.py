"""The consumer wrapper outlives failures of the broker channel under it.

A broker restart closes the consumer channel while a lane holds a batch: acking then raises.
The lane must log, drop that envelope (the broker takes it back by itself) and go on with the
next batch. The broker is not needed to show this: the messages here are stand-ins whose ack
can fail, and only the wrapper's own logic runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, cast

from aio_pika.abc import AbstractIncomingMessage

from hub.broker import Broker, ConnectorQueues
from hub.consumer import BatchConsumer, BatchHandler, Envelope, Outcome
from tests.support import eventually


class StandInMessage:
    def __init__(self, code: str, ack_fails: bool) -> None:
        self.body = json.dumps({"dossier_code": code}).encode()
        self.headers: dict[str, Any] = {}
        self.message_id = f"m-{code}"
        self.ack_fails = ack_fails
        self.acked = False

    async def ack(self) -> None:
        if self.ack_fails:
            raise RuntimeError("channel is closed")
        self.acked = True

    async def nack(self, requeue: bool = True) -> None:
        raise RuntimeError("channel is closed")


def brokerless_consumer(name: str, handler: BatchHandler, **options: Any) -> BatchConsumer:
    """One lane, no broker: a publish (retry or parking) would crash the lane."""
    queues = ConnectorQueues(name, f"{name}.work", ((f"{name}.retry.1", 1.0),), f"{name}.parking")
    return BatchConsumer(
        cast(Broker, None), queues, handler, lane_key=lambda e: "same lane", lanes=1, **options
    )


async def test_a_lane_survives_an_ack_on_a_closed_channel_and_a_handler_miscount() -> None:
    handled: list[str] = []

    async def handler(batch: Sequence[Envelope]) -> Sequence[Outcome]:
        handled.extend(e.body["dossier_code"] for e in batch)
        if any(e.body["dossier_code"] == "miscount" for e in batch):
            return []  # a handler bug: no outcome at all
        return [None] * len(batch)

    consumer = brokerless_consumer("demo", handler, batch_size=1, linger_s=0)
    lane = asyncio.create_task(consumer._lane_loop(0))
    first = StandInMessage("first", ack_fails=True)
    miscount = StandInMessage("miscount", ack_fails=False)
    second = StandInMessage("second", ack_fails=False)
    for m in (first, miscount, second):
        await consumer._on_message(cast(AbstractIncomingMessage, m))
    await eventually(lambda: second.acked, 30, "the message after the miscount acked")
    assert handled == ["first", "miscount", "second"]
    assert second.acked
    assert not first.acked
    assert not lane.done(), "the lane died"
    assert consumer.in_flight() == 0
    lane.cancel()


async def test_a_batch_that_meets_an_outage_is_held_and_handled_again_never_retried() -> None:
    """No broker here (`broker` is None): a retry or a parking would publish and crash the
    lane, so the test shows that an outage does neither; the same batch is handled again
    when the gate lets its probe through, and only then acked."""
    from hub.errors import DestinationUnavailable
    from hub.outage import Gate, State

    answers = ["down", "down", "down", "up"]
    seen: list[list[str]] = []

    async def handler(batch: Sequence[Envelope]) -> Sequence[Outcome]:
        seen.append([e.body["dossier_code"] for e in batch])
        if answers.pop(0) == "down":
            return [DestinationUnavailable("HTTP 503 from DVCQG", http_status=503)] * len(batch)
        return [None] * len(batch)

    gate = Gate("held", first_probe_s=0.01, max_probe_interval_s=0.02)
    consumer = brokerless_consumer("held", handler, batch_size=2, linger_s=0.05, gate=gate)
    lane = asyncio.create_task(consumer._lane_loop(0))
    messages = [StandInMessage(c, ack_fails=False) for c in ("a", "b")]
    for m in messages:
        await consumer._on_message(cast(AbstractIncomingMessage, m))

    def all_acked() -> bool:
        if len(seen) == 2:  # in the outage: held, nothing acked
            assert gate.state() is State.down
            assert not any(m.acked for m in messages)
        return all(m.acked for m in messages)

    await eventually(
        all_acked, 30, lambda: f"both messages acked after the outage: {seen}", every_s=0.01
    )
    assert seen == [["a", "b"]] * 4
    assert gate.state() is State.up
    (outage,) = gate.outages
    assert outage.probes == 3
    assert "503" in outage.cause
    assert consumer.stats.retried == consumer.stats.parked == 0
    assert not lane.done(), "the lane died"
    lane.cancel()
