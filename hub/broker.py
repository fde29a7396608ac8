"""RabbitMQ: the topology, declared idempotently at start, and confirmed publishing.

Per connector `<c>` (names prefixed with `broker.prefix`, default `hub`):

* `hub.<c>.work`: quorum queue the connector consumes. Explicit `x-delivery-limit` (a message
  that crashes its consumer again and again is dead-lettered rather than looping),
  `x-dead-letter-strategy: at-least-once` with `x-overflow: reject-publish` (dead-lettering
  cannot lose a message), dead letters to `hub.dlx` under routing key `<c>`.
* `hub.<c>.retry.<n>`: one quorum queue per delay tier, with `x-message-ttl`; expired messages
  dead-letter (at-least-once) back into the work queue through the default exchange.
* `hub.<c>.parking`: the connector's dead-letter (parking) queue, bound to `hub.dlx`; operators
  list, replay or discard its messages with `hub dlq`.

Every queue is a quorum queue, replicated on `broker.quorum_replicas` nodes of the cluster (by
default the broker's choice: every node on 3.10), so it survives the loss of a minority of them.

Inbound changes are published to the topic exchange `hub.events`; each connector binds its
work queue to the routing keys it serves. Every publish waits for the broker's confirm; a
refusal or a time-out is translated into `BrokerUnavailable` in `publish` and nowhere else.
Only features of RabbitMQ 3.10 and later are used. This module must never ack a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)

from hub import tls
from hub.config import BrokerConfig
from hub.errors import BrokerUnavailable, ConfigError
from hub.failover import Failover
from hub.failover import connect as connect_cluster

log = structlog.get_logger(__name__)

ATTEMPT_HEADER = "x-hub-attempt"
REASON_HEADER = "x-hub-reason"
CONNECTOR_HEADER = "x-hub-connector"
PARKED_AT_HEADER = "x-hub-parked-at"
ERROR_CODE_HEADER = "x-hub-error-code"  # the destination's own refusal code, when it gave one
QUEUED_AT_HEADER = "x-hub-queued-at"  # unix time the message first entered a queue
PARKING_DELIVERY_LIMIT = 1_000_000
RENEW_TIMEOUT_S = 10.0  # closing and opening again a channel the broker nacked
CLOSE_TIMEOUT_S = 10.0  # closing the connection as the hub stops


@dataclass(frozen=True)
class ConnectorQueues:
    connector: str
    work: str
    retry: tuple[tuple[str, float], ...]  # (queue, delay in seconds), shortest first
    parking: str


async def _declared(
    channel: AbstractChannel, name: str, arguments: dict[str, Any]
) -> AbstractQueue:
    """Declare a durable queue; one that exists with other arguments is a configuration
    problem, named with what the broker said (a queue's arguments are fixed when it is made:
    `quorum_replicas`, `single_active_consumer`, `delivery_limit`)."""
    try:
        return await channel.declare_queue(name, durable=True, arguments=arguments)
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise ConfigError(
            f"the queue {name} exists on the broker with other arguments than this "
            "configuration gives it",
            [
                f"the broker said: {exc}"[:400],
                "a queue's arguments are fixed when it is created: put the setting back, or "
                "drain the queue, delete it (rabbitmqctl delete_queue) and start the hub again",
            ],
        ) from None


class Topology:
    """Names and arguments of every exchange and queue, from configuration."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.events_exchange = f"{config.prefix}.events"
        self.dead_letter_exchange = f"{config.prefix}.dlx"

    def queues(self, connector: str, delay_tiers_s: list[float]) -> ConnectorQueues:
        base = f"{self.config.prefix}.{connector}"
        retry = tuple((f"{base}.retry.{i + 1}", d) for i, d in enumerate(delay_tiers_s))
        return ConnectorQueues(connector, f"{base}.work", retry, f"{base}.parking")

    def _quorum(self, **extra: Any) -> dict[str, Any]:
        return {
            **self._replicated(),
            "x-overflow": "reject-publish",
            "x-max-length": self.config.max_queue_length,
            **extra,
        }

    def _replicated(self) -> dict[str, Any]:
        """A quorum queue, on `broker.quorum_replicas` nodes if set (else the broker's default:
        every node of the cluster). Left out when unset, so that queues declared before the
        setting existed are declared again unchanged (the broker checks it for equivalence)."""
        replicas = self.config.quorum_replicas
        group = {} if replicas is None else {"x-quorum-initial-group-size": replicas}
        return {"x-queue-type": "quorum", **group}

    async def declare(
        self, channel: AbstractChannel, queues: ConnectorQueues, routing_keys: list[str]
    ) -> None:
        events = await channel.declare_exchange(
            self.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        dlx = await channel.declare_exchange(
            self.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )
        single = {"x-single-active-consumer": True} if self.config.single_active_consumer else {}
        work = await _declared(
            channel,
            queues.work,
            self._quorum(
                **{
                    "x-delivery-limit": self.config.delivery_limit,
                    "x-dead-letter-exchange": self.dead_letter_exchange,
                    "x-dead-letter-routing-key": queues.connector,
                    "x-dead-letter-strategy": "at-least-once",
                    **single,
                }
            ),
        )
        for key in routing_keys:
            await work.bind(events, key)
        for name, delay_s in queues.retry:
            await channel.declare_queue(
                name,
                durable=True,
                arguments=self._quorum(
                    **{
                        "x-message-ttl": int(delay_s * 1000),
                        "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": queues.work,
                        "x-dead-letter-strategy": "at-least-once",
                    }
                ),
            )
        # Browsing returns messages to the queue, which counts as a delivery; brokers from 4.0
        # default to a limit of 20, so say explicitly that parked messages never expire.
        parking = await channel.declare_queue(
            queues.parking,
            durable=True,
            arguments={**self._replicated(), "x-delivery-limit": PARKING_DELIVERY_LIMIT},
        )
        await parking.bind(dlx, queues.connector)
        log.info("topology_declared", connector=queues.connector, work_queue=queues.work)


class Broker:
    """A robust connection with one confirming channel for publishing. Given several broker
    addresses (`broker.urls`), the connection moves to another node when it loses one
    (`hub.failover`); `node` names the one it is on."""

    def __init__(
        self,
        config: BrokerConfig,
        connection: AbstractRobustConnection,
        failover: Failover | None = None,
    ) -> None:
        self.config = config
        self.topology = Topology(config)
        self.connection = connection
        self._failover = failover
        self._channel: AbstractChannel | None = None
        self._events: AbstractExchange | None = None
        self._renewing = asyncio.Lock()
        self._renewals = 0  # times the publishing channel was opened afresh after a nack

    @classmethod
    @asynccontextmanager
    async def connect(cls, config: BrokerConfig, name: str = "hub") -> AsyncIterator[Broker]:
        urls = config.addresses()
        if not urls:
            raise BrokerUnavailable("no broker URL is configured (broker.url or broker.urls)")
        connection, failover = await connect_cluster(
            urls,
            config.connect_timeout_s,
            config.reconnect_interval_s,
            client_properties={"connection_name": name},
            # amqps:// only: the broker's CA and the hub's client certificate (`broker.tls`).
            ssl_context=tls.broker_context(config.tls),
        )
        broker = cls(config, connection, failover)
        try:
            broker._channel = await connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            broker._events = await broker._channel.declare_exchange(
                broker.topology.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            yield broker
        finally:
            # Bounded: a connection in the middle of reconnecting may never answer its close,
            # and nothing is lost by leaving it (every message is acknowledged after commit).
            try:
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_S)
            except TimeoutError:
                log.error("broker_close_timed_out", after_s=CLOSE_TIMEOUT_S)

    @property
    def node(self) -> str | None:
        """The broker node (host:port) the hub is connected to; None while it is not."""
        if self._failover is None or not self.is_ready():
            return None
        return self._failover.node

    @property
    def channel(self) -> AbstractChannel:
        assert self._channel is not None, "use Broker.connect()"
        return self._channel

    def is_ready(self) -> bool:
        return not self.connection.is_closed and not self.channel.is_closed

    async def consumer_channel(self, prefetch: int) -> AbstractChannel:
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def publish_event(self, routing_key: str, body: dict[str, Any], message_id: str) -> None:
        assert self._events is not None
        await self.publish(self._events, routing_key, message(body, message_id, {}))

    async def publish(
        self, exchange: AbstractExchange, routing_key: str, message: aio_pika.Message
    ) -> None:
        """Publish and wait for the confirm; every refusal becomes `BrokerUnavailable`."""
        renewals = self._renewals
        try:
            await exchange.publish(
                message, routing_key, mandatory=True, timeout=self.config.publish_timeout_s
            )
        except aiormq.exceptions.PublishError as exc:  # returned: no queue took it
            raise BrokerUnavailable(f"broker refused the publish: {exc!r}") from exc
        except aiormq.exceptions.DeliveryError as exc:  # nacked
            await self._after_nack(exchange, renewals)
            raise BrokerUnavailable(f"broker refused the publish: {exc!r}") from exc
        except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException) as exc:
            raise BrokerUnavailable(f"broker refused the publish: {exc!r}") from exc
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            raise BrokerUnavailable(f"broker did not confirm the publish: {exc!r}") from exc

    async def _after_nack(self, exchange: AbstractExchange, renewals: int) -> None:
        """Open the publishing channel afresh after the broker nacked a publish on it. A nack
        means a queue the message was routed to had no leader at that moment (a node of the
        cluster went away), and on RabbitMQ 3.10 a channel that met one goes on nacking that
        queue after a new leader is elected, while a fresh channel does not (decision 0088).
        Reopened in place, its exchanges stay usable; once for the publishes nacked together.
        Other channels (a dead-letter walk's) are their owner's, closed after their work."""
        channel = self._channel
        if channel is None or exchange not in (self._events, channel.default_exchange):
            return
        try:
            async with self._renewing:
                if self._renewals != renewals:
                    return  # opened afresh since this publish began
                self._renewals += 1
                log.warning("publish_channel_renewed", node=self.node)
                with contextlib.suppress(Exception):  # gone already: reopening is what counts
                    await asyncio.wait_for(channel.close(), RENEW_TIMEOUT_S)
                await asyncio.wait_for(channel.reopen(), RENEW_TIMEOUT_S)
        except Exception as exc:
            # The connection is going too: when it is back it restores the channel (reopening
            # left it restorable), and /readyz answers 503 until then.
            log.error("publish_channel_renew_failed", error=repr(exc))


def message(body: dict[str, Any], message_id: str, headers: dict[str, Any]) -> aio_pika.Message:
    """A persistent JSON message, the only shape the hub publishes. It keeps the time it first
    entered a queue across retries (`x-hub-queued-at`), for the dashboard's oldest-waiting age."""
    if QUEUED_AT_HEADER not in headers:
        headers = {**headers, QUEUED_AT_HEADER: time.time()}
    return aio_pika.Message(
        json.dumps(body, ensure_ascii=False).encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        headers=headers,
    )
