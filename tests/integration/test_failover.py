"""The failover transport takes each new broker connection to the next node in turn, on real
loopback sockets (servers that accept, and ports where nothing listens)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiormq.exceptions import AMQPConnectionError
from yarl import URL

from hub.failover import Failover
from sims.rabbitmq_node import find_free_port

URL_OF_FIRST = URL("amqp://hub:pw@first-node:5672/")


@pytest.fixture
async def listening() -> AsyncIterator[list[int]]:
    """Two loopback servers that accept connections (and count them), by port."""
    accepted: list[int] = []
    servers = []

    def on_connect(port: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(port)
            writer.close()

        return accept

    for _ in range(2):
        port = find_free_port()
        servers.append(await asyncio.start_server(on_connect(port), "127.0.0.1", port))
    yield [s.sockets[0].getsockname()[1] for s in servers]
    for server in servers:
        server.close()
        await server.wait_closed()


async def open_one(failover: Failover) -> str | None:
    _, writer = await failover.create(URL_OF_FIRST)
    writer.close()
    return failover.node


async def test_each_connection_goes_to_the_next_node_that_accepts(listening: list[int]) -> None:
    dead = find_free_port()
    a, b = listening
    failover = Failover([("127.0.0.1", dead), ("127.0.0.1", a), ("127.0.0.1", b)], 2.0)
    # The first that accepts; then, as after a loss, the one after it; then round the list,
    # past the node that refuses.
    assert await open_one(failover) == f"127.0.0.1:{a}"
    assert await open_one(failover) == f"127.0.0.1:{b}"
    assert await open_one(failover) == f"127.0.0.1:{a}"


async def test_no_node_accepting_fails_the_attempt_naming_each() -> None:
    ports = [find_free_port(), find_free_port()]
    failover = Failover([("127.0.0.1", p) for p in ports], 2.0)
    with pytest.raises(AMQPConnectionError) as info:
        await failover.create(URL_OF_FIRST)
    for port in ports:
        assert f"127.0.0.1:{port}" in str(info.value)
    assert failover.node is None
