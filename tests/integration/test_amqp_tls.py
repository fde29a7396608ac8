"""AMQP over TLS: a private RabbitMQ node with a TLS listener that demands client certificates;
the hub connects over amqps:// with its own certificate and relays an event through it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiormq
import pytest

from hub.broker import Broker
from hub.config import BrokerConfig, deep_merge, load_config
from hub.runtime import Hub
from sims.rabbitmq_node import NodeTls, RabbitNode
from sims.webhook.simulator import WebhookReceiver
from tests.support import hub_overrides
from tests.support.tls import Authority

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SUB_TOKEN = "sub-token"


@dataclass(frozen=True)
class TlsBroker:
    node: RabbitNode
    url: str
    ca_file: Path
    hub_cert: tuple[Path, Path]


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    folder = tmp_path_factory.mktemp("amqps")
    ca = Authority("Broker CA")
    ca_file = ca.write(folder / "ca.pem")
    cert, key = ca.issue("broker", server=True).write(folder, "broker")
    hub_cert = ca.issue("hub", client=True).write(folder, "hub")
    with RabbitNode(folder / "node", tls=NodeTls(ca_file, cert, key)) as node:
        assert node.tls_url is not None
        yield TlsBroker(node, node.tls_url, ca_file, hub_cert)


async def test_the_hub_relays_through_a_broker_over_tls_with_its_client_certificate(
    tmp_path: Path, tls_broker: TlsBroker, broker_prefix: str
) -> None:
    broker_tls = {
        "ca_file": str(tls_broker.ca_file),
        "cert_file": str(tls_broker.hub_cert[0]),
        "key_file": str(tls_broker.hub_cert[1]),
    }
    async with WebhookReceiver(token=SUB_TOKEN) as receiver:
        overrides = deep_merge(
            hub_overrides(tmp_path, tls_broker.url, broker_prefix, "http://127.0.0.1:9/api"),
            {
                "broker": {"tls": broker_tls},
                "subscribers": {"motcua": {"url": receiver.url, "token": SUB_TOKEN}},
            },
        )
        async with Hub(load_config(None, overrides)) as hub:
            assert hub.broker is not None
            assert hub.broker.is_ready()
            event_id = str(uuid.uuid4())
            event = {"event_id": event_id, "type": "procedure.created", "code": "1.000002"}
            await hub.broker.publish_event("procedure.created", event, event_id)
            assert await receiver.wait_for(1, 30), receiver.state()
            assert receiver.events[0]["event_id"] == event_id

            # Every connection the node holds came over TLS, with the hub's certificate.
            listed = tls_broker.node.ctl("list_connections", "ssl", "peer_cert_subject")
            rows = [line.split("\t") for line in listed.splitlines()[1:] if line.strip()]
            assert rows, listed
            assert all(r[0] == "true" and "CN=hub" in r[1] for r in rows), listed


async def test_without_a_client_certificate_the_broker_refuses_the_hub(
    tls_broker: TlsBroker,
) -> None:
    config = BrokerConfig.model_validate(
        {"url": tls_broker.url, "tls": {"ca_file": tls_broker.ca_file}}
    )
    # The broker's alert ("certificate required") or a reset, as the timing falls.
    with pytest.raises(aiormq.exceptions.AMQPConnectionError):
        async with asyncio.timeout(60), Broker.connect(config):
            pass
