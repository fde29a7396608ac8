"""The private RabbitMQ node: the features the hub relies on work, and stopping leaves nothing.

Runs against `rabbit_url` (the session node, or HUB_TEST_BROKER_URL), and starts one more
node of its own to check the process clean-up.
"""

from __future__ import annotations

import socket
from pathlib import Path

import aio_pika
import psutil  # no types-psutil in the dev extras
import pytest

from sims.rabbitmq_node import MARKER_VAR, RabbitNode, RabbitNodeError, find_free_port
from tests.support import eventually


async def test_quorum_queue_with_confirms_and_delivery_limit(
    rabbit_url: str, broker_prefix: str
) -> None:
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            f"{broker_prefix}.work",
            durable=True,
            arguments={"x-queue-type": "quorum", "x-delivery-limit": 1},
        )
        try:
            bodies = [f"message {i}".encode() for i in range(20)]
            for body in bodies:
                # With confirms on, publish returns only once the broker has taken the message.
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue.name,
                )
            received = []
            for _ in bodies:
                message = await _next(queue)
                assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
                received.append(message.body)
                await message.ack()
            assert received == bodies

            await _check_delivery_limit(channel, queue)
        finally:
            await queue.delete(if_unused=False, if_empty=False)


async def _check_delivery_limit(
    channel: aio_pika.abc.AbstractChannel, queue: aio_pika.abc.AbstractQueue
) -> None:
    await channel.default_exchange.publish(aio_pika.Message(b"poison"), routing_key=queue.name)
    # Limit 1: the first return is redelivered once, the second drops it (no dead-letter
    # exchange here), so the broker enforces the limit rather than looping forever.
    for _ in range(2):
        message = await _next(queue)
        assert message.body == b"poison"
        await message.reject(requeue=True)
    # A message published after the second return comes next: had the broker returned the
    # poison message, it would be back at the head of the queue, before it.
    await channel.default_exchange.publish(aio_pika.Message(b"after"), routing_key=queue.name)
    message = await _next(queue)
    assert message.body == b"after"
    await message.ack()
    assert await queue.get(fail=False) is None


async def _next(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    """The next message in `queue` (a message returned to it comes back asynchronously)."""

    async def got() -> aio_pika.abc.AbstractIncomingMessage | None:
        return await queue.get(fail=False)

    return await eventually(got, 30, f"a message in {queue.name}")


def _processes_of(node: RabbitNode) -> list[str]:
    """Processes that mention the node's directory or name, or carry its marker."""
    marker = str(node.base_dir)
    found = []
    for proc in psutil.process_iter():
        try:
            cmdline = " ".join(proc.cmdline())
            environ = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if marker in cmdline or node.nodename in cmdline or environ.get(MARKER_VAR) == marker:
            found.append(f"{proc.pid} {cmdline}")
    return found


def test_a_second_node_runs_beside_the_first_and_leaves_no_process(tmp_path: Path) -> None:
    node = RabbitNode(tmp_path / "second")
    with node:
        assert node.is_running()
        assert node.url == f"amqp://guest:guest@127.0.0.1:{node.port}/"
        running = _processes_of(node)
        # beam.smp and our epmd at least: proves the check below can see the node at all.
        assert any("beam.smp" in p for p in running), running
        assert any("epmd" in p for p in running), running
    assert not node.is_running()
    assert _processes_of(node) == []
    node.stop()  # idempotent


def test_a_port_in_use_is_reported_at_once(tmp_path: Path) -> None:
    port = find_free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with pytest.raises(RabbitNodeError, match=f"port {port} is already in use"):
            RabbitNode(tmp_path / "clash", port=port).start()
