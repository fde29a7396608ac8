"""The `webhook` connector: each enabled subscriber (core section `subscribers.<name>`) gets
its own queue, bound to its `events` patterns, and a consumer that POSTs what arrives."""

from __future__ import annotations

from typing import Any

from connectors.webhook.client import WebhookClient
from connectors.webhook.sink import WebhookSink, subject_of
from hub.plugins import Connector, ConnectorContext


class Webhook(Connector):
    name = "webhook"
    config_key = "subscribers"  # a section of the core: its model is the core's

    def watched_names(self, section: Any) -> list[str]:
        return [f"subscriber.{n}" for n, sub in section.items() if sub.enabled]

    def queues(self, section: Any) -> dict[str, list[float]]:
        return {f"subscriber.{n}": sub.delay_tiers_s for n, sub in section.items()}

    async def start(self, context: ConnectorContext) -> None:
        for name, sub in context.config.items():
            if not sub.enabled:
                continue
            client = WebhookClient(name, sub, context.http)
            sink = WebhookSink(client, context.store)
            await context.consume(
                sub, sub.events, sink, subject_of, client.guard, connector=client.connector
            )


connector = Webhook()
