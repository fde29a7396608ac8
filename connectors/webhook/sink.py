"""Delivers events to one subscriber: the handler behind its `subscriber.<name>` work queue.

The message body is the event itself. Before posting, the sink asks the store which of the
batch's events this subscriber already confirmed, and skips them, so a redelivered or replayed
message is not sent again; after each 2xx it records the confirmation. Events of one
procedure (the lane key) go out in order: once one fails, the later ones of the same
procedure in the batch fail with it and are retried together.

This module must never ack messages: it returns one outcome per envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import structlog

from connectors.webhook.client import WebhookClient
from hub import metrics
from hub.consumer import Envelope, Outcome
from hub.errors import HubError, UndecodableMessage

log = structlog.get_logger(__name__)


class DeliveryLog(Protocol):
    async def delivered(self, subscriber: str, event_ids: list[str]) -> set[str]: ...

    async def mark_delivered(
        self, subscriber: str, event_id: str, dossier_code: str | None, detail: str
    ) -> None: ...


def subject_of(envelope: Envelope) -> str:
    """The lane key: what the event is about (a procedure code, later a dossier code)."""
    for key in ("code", "dossier_code"):
        value = envelope.body.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _event_id(envelope: Envelope) -> str | None:
    value = envelope.body.get("event_id")
    return value if isinstance(value, str) and value else None


class WebhookSink:
    def __init__(self, client: WebhookClient, deliveries: DeliveryLog) -> None:
        self.client = client
        self.deliveries = deliveries

    async def __call__(self, envelopes: Sequence[Envelope]) -> Sequence[Outcome]:
        name = self.client.name
        ids = [i for i in (_event_id(e) for e in envelopes) if i]
        done = await self.deliveries.delivered(name, ids)
        blocked: dict[str, HubError] = {}
        outcomes: list[Outcome] = []
        for envelope in envelopes:
            outcomes.append(await self._one(envelope, done, blocked))
        return outcomes

    async def _one(
        self, envelope: Envelope, done: set[str], blocked: dict[str, HubError]
    ) -> Outcome:
        event_id = _event_id(envelope)
        if event_id is None:
            return UndecodableMessage("the event has no event_id", code="no_event_id")
        if event_id in done:
            log.info("event_already_delivered", connector=self.client.connector, event_id=event_id)
            return None
        subject = subject_of(envelope)
        if subject in blocked:
            return blocked[subject]
        try:
            await self.client.post(envelope.body)
        except HubError as exc:
            blocked[subject] = exc
            log.warning(
                "event_delivery_failed",
                connector=self.client.connector,
                event_id=event_id,
                error=str(exc),
            )
            return exc
        dossier = envelope.body.get("dossier_code")
        await self.deliveries.mark_delivered(
            self.client.name,
            event_id,
            dossier if isinstance(dossier, str) else None,
            f"{envelope.body.get('type', 'event')} {event_id}",
        )
        done.add(event_id)
        self._observe(envelope, event_id)
        return None

    def _observe(self, envelope: Envelope, event_id: str) -> None:
        occurred = envelope.body.get("occurred_at")
        if isinstance(occurred, str):
            try:
                lag = (datetime.now(UTC) - datetime.fromisoformat(occurred)).total_seconds()
                metrics.DELIVERY_LAG.labels(self.client.connector).observe(max(lag, 0.0))
            except ValueError:
                pass
        log.info(
            "event_delivered",
            connector=self.client.connector,
            event_id=event_id,
            type=envelope.body.get("type"),
        )
