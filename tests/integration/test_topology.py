"""The RabbitMQ topology on a real broker: idempotent declaration, delay tiers that return to
the work queue, and the delivery limit that dead-letters a message into the parking queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

from hub.broker import Broker, ConnectorQueues, message
from hub.config import BrokerConfig
from hub.dlq import ParkingQueue
from hub.health import QueueProbe
from tests.support import eventually
from tests.support.parking import in_place
from tests.support.stores import open_test_store


@pytest.fixture
async def broker(rabbit_url: str, broker_prefix: str) -> AsyncIterator[Broker]:
    config = BrokerConfig.model_validate(
        {"url": rabbit_url, "prefix": broker_prefix, "delivery_limit": 2}
    )
    async with Broker.connect(config, "topology-test") as b:
        yield b


async def declared(broker: Broker) -> ConnectorQueues:
    queues = broker.topology.queues("demo", [0.3])
    for _ in range(2):  # a second declaration with the same arguments is harmless
        await broker.topology.declare(broker.channel, queues, ["dossier.#"])
    return queues


async def get_one(
    broker: Broker, queue_name: str, timeout_s: float = 30
) -> aio_pika.abc.AbstractIncomingMessage:
    queue = await broker.channel.get_queue(queue_name, ensure=False)

    async def got() -> aio_pika.abc.AbstractIncomingMessage | None:
        return await queue.get(no_ack=False, fail=False)

    return await eventually(got, timeout_s, f"a message in {queue_name}")


async def park_many(broker: Broker, queues: ConnectorQueues, count: int) -> None:
    """`count` refused messages parked straight in the parking queue, `p-0` first."""
    for i in range(count):
        await broker.publish(
            broker.channel.default_exchange,
            queues.parking,
            message({"dossier_code": f"c-{i}"}, f"p-{i}", {"x-hub-reason": "refused"}),
        )


async def test_a_delay_tier_returns_the_message_to_the_work_queue(broker: Broker) -> None:
    queues = await declared(broker)
    tier, delay_s = queues.retry[0]
    started = time.monotonic()
    await broker.publish(
        broker.channel.default_exchange, tier, message({"dossier_code": "x"}, "m-1", {})
    )
    got = await get_one(broker, queues.work)
    assert time.monotonic() - started >= delay_s * 0.8
    assert got.message_id == "m-1"
    await got.ack()


async def test_the_delivery_limit_parks_a_message_that_keeps_coming_back(
    broker: Broker, tmp_path: Path
) -> None:
    queues = await declared(broker)
    await broker.publish_event("dossier.changed", {"dossier_code": "poison"}, "m-2")
    for _ in range(3):  # delivery_limit is 2: the third return dead-letters it
        got = await get_one(broker, queues.work)
        await got.nack(requeue=True)
    async with open_test_store(tmp_path) as store:
        parking = ParkingQueue(broker, queues, store)
        found = await eventually(parking.browse, 30, "the message parked")
        assert len(found) == 1
        assert found[0].message_id == "m-2"
        assert "delivery limit" in found[0].reason
        # Browsing leaves the message where it is.
        await in_place(broker, queues.parking, 1)
        assert len(await parking.browse(wait_s=10)) == 1


async def test_browsing_a_full_parking_queue_reads_all_in_order_and_leaves_them(
    broker: Broker, tmp_path: Path
) -> None:
    queues = await declared(broker)
    await park_many(broker, queues, 300)
    async with open_test_store(tmp_path) as store:
        parking = ParkingQueue(broker, queues, store)
        # A generous gap between two deliveries: a loaded machine is no reason to stop early.
        await in_place(broker, queues.parking, 300)
        found = await parking.browse(wait_s=10)
        assert [m.message_id for m in found] == [f"p-{i}" for i in range(300)]
        await in_place(broker, queues.parking, 300)
        assert [m.message_id for m in await parking.browse(limit=50, wait_s=10)] == [
            f"p-{i}" for i in range(50)
        ]
        # Nothing was taken: an act still finds every one, and the queue is empty after.
        await in_place(broker, queues.parking, 300)
        discarded = await parking.discard(lambda m: True, "tester")
        assert discarded == 300
        assert await parking.browse() == []


async def test_a_message_parked_twice_is_replayed_once_and_its_second_copy_dropped(
    broker: Broker, tmp_path: Path
) -> None:
    # Two copies of one message id: what a confirm arriving after publish_timeout_s leaves.
    queues = await declared(broker)
    for message_id in ("twice", "other", "twice"):
        await broker.publish(
            broker.channel.default_exchange,
            queues.parking,
            message({"dossier_code": message_id}, message_id, {"x-hub-reason": "refused"}),
        )
    async with open_test_store(tmp_path) as store:
        parking = ParkingQueue(broker, queues, store)
        await in_place(broker, queues.parking, 3)
        assert len(await parking.browse(wait_s=10)) == 3
        await in_place(broker, queues.parking, 3)
        assert await parking.replay(lambda m: m.message_id == "twice", actor="tester") == 1
        await in_place(broker, queues.parking, 1)
        assert [m.message_id for m in await parking.browse()] == ["other"]
        got = await get_one(broker, queues.work)
        assert got.message_id == "twice"
        await got.ack()
        assert await QueueProbe(broker).count(queues.work) == 0  # read afresh, not cached
        audit = await store.audit_entries(10)
        assert [a.action for a in audit] == ["dlq.replay"]


async def test_queue_counts_are_read_afresh_each_time(broker: Broker) -> None:
    """aio-pika's robust channel answers a repeated passive declare from its cache; the probe
    the dashboard, /metrics and `hub status` use must not."""
    queues = await declared(broker)
    probe = QueueProbe(broker)
    assert await probe.count(queues.parking) == 0
    for i in range(3):
        await broker.publish(
            broker.channel.default_exchange, queues.parking, message({}, f"c-{i}", {})
        )
        assert await probe.count(queues.parking) == i + 1
    assert await probe.count("no-such-queue") is None
    assert await probe.count(queues.parking) == 3  # a failed count leaves the probe usable


async def test_a_browse_while_another_replica_browses_waits_and_sees_every_message(
    broker: Broker, rabbit_url: str, tmp_path: Path
) -> None:
    """Another replica's browse holds every parked message until it ends (the queue's ready
    count is then 0). A browse here meanwhile waits for it, instead of showing an operator an
    empty dead-letter list: played by a consumer of our own on another connection that holds
    all 300 unacknowledged, then lets go."""
    queues = await declared(broker)
    await park_many(broker, queues, 300)
    await in_place(broker, queues.parking, 300)
    other = await aio_pika.connect(rabbit_url)
    try:
        channel = await other.channel()
        await channel.set_qos(prefetch_count=300)
        held: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def hold(raw: aio_pika.abc.AbstractIncomingMessage) -> None:
            held.append(raw)

        queue = await channel.get_queue(queues.parking, ensure=False)
        await queue.consume(hold, no_ack=False)
        await eventually(lambda: len(held) == 300, 30, "the other browse holding all 300")
        async with open_test_store(tmp_path) as store:
            browse = asyncio.create_task(ParkingQueue(broker, queues, store).browse(wait_s=10))
            await asyncio.sleep(0.5)
            assert not browse.done()  # waiting for the other browse, not answering "none"
            await channel.close()  # the other browse ends: every message goes back in place
            found = await browse
        assert [m.message_id for m in found] == [f"p-{i}" for i in range(300)]
    finally:
        await other.close()
