"""One robust connection to a RabbitMQ cluster that moves to another node when it loses one.

aio-pika's robust connection reconnects to the one URL it was given, and restores its
channels, exchanges, queues and consumers there. A cluster gives several addresses
(`broker.urls`), so the connection here is opened through a transport factory (aiormq's own
extension point for opening the socket) that takes each new connection to the next address in
turn: the first listed at start, then, after a loss or a failed attempt, the node after the
last one tried, round the list. Within one attempt every address is tried once, each given
`broker.connect_timeout_s` to accept, so a loss is followed at once by a connection to a node
that is up. A node that accepts but refuses the AMQP handshake (still booting, or cut off from
the majority) fails that attempt; the next attempt begins at the node after it.

All the addresses log in with the first URL's user, password, virtual host and options (one
cluster, one set of users: `hub.config` refuses URLs that differ in anything but host and
port). `Failover.node` names the node (host:port) the last connection was opened to.

This module must never log a URL's password, nor decide anything about messages.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Any

import structlog
from aio_pika.abc import AbstractRobustConnection, ConnectionParameter
from aio_pika.robust_connection import RobustConnection
from aiormq.connection import TCPTransportFactory, TLSTransportFactory, TransportFactory
from aiormq.exceptions import AMQPConnectionError
from yarl import URL

log = structlog.get_logger(__name__)


class Failover(TransportFactory):
    """Opens each transport to the next address of the cluster in turn."""

    def __init__(self, addresses: Sequence[tuple[str, int]], connect_timeout_s: float) -> None:
        if not addresses:
            raise ValueError("a cluster needs at least one address")
        self.addresses = list(addresses)
        self.connect_timeout_s = connect_timeout_s
        self.node: str | None = None  # host:port of the last transport opened
        self._next = 0

    async def create(
        self, url: URL, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A transport to the first address, from the next in turn, that accepts one."""
        inner = TLSTransportFactory() if url.scheme == "amqps" else TCPTransportFactory()
        errors: list[str] = []
        for _ in self.addresses:
            host, port = self.addresses[self._next]
            self._next = (self._next + 1) % len(self.addresses)
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    # Each try gets its own copy: the inner factory pops what it uses.
                    streams = await inner.create(url.with_host(host).with_port(port), **kwargs)
            except (AMQPConnectionError, OSError, TimeoutError) as exc:
                errors.append(f"{host}:{port}: {type(exc).__name__}")
                # Info only: while no node answers this repeats every round, and the round's
                # failure (every node named) is what the caller reports.
                log.info("broker_node_unreachable", node=f"{host}:{port}", error=repr(exc))
                continue
            self.node = f"{host}:{port}"
            log.info("broker_node_connected", node=self.node)
            return streams
        raise AMQPConnectionError(f"no broker node accepted a connection ({'; '.join(errors)})")


class ClusterConnection(RobustConnection):
    """aio-pika's robust connection, handing `transport_factory` down to aiormq."""

    PARAMETERS = (
        *RobustConnection.PARAMETERS,
        ConnectionParameter(name="transport_factory", parser=lambda value: value, is_kwarg=True),
    )


def addresses_of(urls: Sequence[str]) -> list[tuple[str, int]]:
    """(host, port) of each URL, with AMQP's default port where none is written."""
    found = []
    for raw in urls:
        url = URL(raw)
        default = 5671 if url.scheme == "amqps" else 5672
        found.append((url.host or "localhost", url.explicit_port or default))
    return found


async def connect(
    urls: Sequence[str],
    connect_timeout_s: float,
    reconnect_interval_s: float,
    *,
    ssl_context: ssl.SSLContext | None,
    client_properties: dict[str, Any],
) -> tuple[AbstractRobustConnection, Failover]:
    """A robust connection to the first node of `urls` that answers, moving on its own to the
    next when it loses one (what `aio_pika.connect_robust` builds, with the failover under it:
    that function would write every keyword into the URL's query)."""
    failover = Failover(addresses_of(urls), connect_timeout_s)
    connection = ClusterConnection(
        URL(urls[0]),
        ssl_context=ssl_context,
        client_properties=client_properties,
        transport_factory=failover,
        reconnect_interval=reconnect_interval_s,
    )
    # Every address once, then the handshake: an attempt never hangs on a silent node.
    await connection.connect(timeout=connect_timeout_s * (len(urls) + 1))
    return connection, failover
