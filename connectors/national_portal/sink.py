"""Delivers dossier changes to DVCQG: the handler behind the `national_portal` work queue.

A message only says "dossier X changed". For each batch the sink reads from the store what DVCQG
still lacks (the newest snapshot if its version is ahead of what DVCQG confirmed, and every
step not yet confirmed), sends the snapshots with `DongBoHoSoMC` (`isUpdating` from whether
DVCQG already holds the dossier), then the steps with `CapNhatTienDoHoSoMC`, and records what
DVCQG confirmed. Because it always sends the newest state, a late, repeated or replayed message
changes nothing a second time.

What DVCQG confirmed is the store's delivery state for the destination `national_portal`
(`DeliveryState`, held like any destination's). Steps of a dossier whose whole record has not
arrived yet wait in the store; the record's own message sends them. This module must never ack
messages: it returns one outcome per envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog

from connectors.national_portal.client import CONNECTOR, ItemReply, PortalClient
from connectors.national_portal.mapping import record_to_wire, step_to_wire
from hub import metrics
from hub.consumer import Envelope, Outcome, dossier_code_of
from hub.errors import DestinationRejected, HubError, UndecodableMessage
from hub.store.base import Confirmation, DeliveryWork

log = structlog.get_logger(__name__)

DESTINATION = CONNECTOR  # the name DVCQG's delivery state is kept under in the store


class DeliveryState(Protocol):
    """What the sink needs of the store: a destination's delivery state, and the journal."""

    async def delivery_work(self, destination: str, codes: list[str]) -> dict[str, DeliveryWork]:
        """What the destination still lacks of each dossier the hub holds."""
        ...

    async def delivery_done(self, destination: str, confirmations: list[Confirmation]) -> None:
        """Record what the destination confirmed, in one transaction."""
        ...

    async def record_delivery(
        self, code: str, connector: str, outcome: str, detail: str
    ) -> None: ...


@dataclass
class _Batch:
    """Per-dossier bookkeeping for one batch."""

    work: dict[str, DeliveryWork]
    failed: dict[str, HubError] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    records_sent: set[str] = field(default_factory=set)
    sent_steps: dict[str, list[int]] = field(default_factory=dict)


class PortalSink:
    def __init__(self, client: PortalClient, store: DeliveryState) -> None:
        self.client = client
        self.store = store

    async def __call__(self, envelopes: Sequence[Envelope]) -> Sequence[Outcome]:
        codes = sorted({dossier_code_of(e) for e in envelopes} - {""})
        batch = _Batch(work=await self.store.delivery_work(DESTINATION, codes))
        due = [w for w in batch.work.values() if not w.up_to_date]
        await self._push_records(batch, [w for w in due if w.record is not None])
        # Save what DVCQG confirmed before the next call, so a failure there does not make
        # the records go out again.
        await self.store.delivery_done(
            DESTINATION,
            [
                Confirmation(c, batch.work[c].version, [], batch.work[c].status_at)
                for c in sorted(batch.records_sent)
            ],
        )
        await self._push_steps(batch, due)
        await self.store.delivery_done(
            DESTINATION, [Confirmation(c, 0, ids) for c, ids in sorted(batch.sent_steps.items())]
        )
        for code, error in batch.failed.items():
            await self.store.record_delivery(code, CONNECTOR, "refused", error.message)
        self._observe(batch)
        return [self._outcome(batch, e) for e in envelopes]

    def _observe(self, batch: _Batch) -> None:
        now = datetime.now(UTC)
        for code in batch.records_sent | set(batch.sent_steps):
            lag = (now - batch.work[code].changed_at).total_seconds()
            metrics.DELIVERY_LAG.labels(CONNECTOR).observe(max(lag, 0.0))
        if batch.records_sent or batch.sent_steps or batch.failed:
            log.info(
                "portal_batch_done",
                connector=CONNECTOR,
                records=len(batch.records_sent),
                steps=sum(len(v) for v in batch.sent_steps.values()),
                refused=len(batch.failed),
            )

    def _outcome(self, batch: _Batch, envelope: Envelope) -> Outcome:
        code = dossier_code_of(envelope)
        if not code:
            return UndecodableMessage("message names no dossier_code")
        if code not in batch.work:
            return UndecodableMessage(f"dossier {code} is not in the store")
        return batch.failed.get(code)

    async def _push_records(self, batch: _Batch, works: list[DeliveryWork]) -> None:
        stale = [w for w in works if w.confirmed_version < w.version]
        for w in works:
            if w.holds:
                batch.held.add(w.dossier_code)
        fresh = [w for w in stale if not w.holds]
        known = [w for w in stale if w.holds]
        # A belief about what DVCQG holds can be stale (a crash between its reply and our
        # commit): answers 05 / 06 flip isUpdating once.
        retry_known = await self._send(batch, fresh, updating=False)
        retry_fresh = await self._send(batch, known, updating=True)
        await self._send(batch, retry_known, updating=True, final=True)
        await self._send(batch, retry_fresh, updating=False, final=True)

    async def _send(
        self, batch: _Batch, works: list[DeliveryWork], *, updating: bool, final: bool = False
    ) -> list[DeliveryWork]:
        if not works:
            return []
        items = [record_to_wire(w.record) for w in works if w.record is not None]
        replies = await self.client.push_dossiers(items, updating)
        flip = self.client.codes.already_held if not updating else self.client.codes.not_held
        again: list[DeliveryWork] = []
        for w, reply in zip(works, replies, strict=True):
            if reply.code == self.client.codes.success:
                batch.held.add(w.dossier_code)
                batch.records_sent.add(w.dossier_code)
            elif reply.code == flip and not final:
                again.append(w)
            else:
                batch.failed[w.dossier_code] = _rejected("DongBoHoSoMC", w.dossier_code, reply)
        return again

    async def _push_steps(self, batch: _Batch, due: list[DeliveryWork]) -> None:
        ready = [
            w
            for w in due
            if w.steps and w.dossier_code in batch.held and w.dossier_code not in batch.failed
        ]
        for w in due:
            if w.steps and w.dossier_code not in batch.held:
                log.info("portal_steps_wait_for_record", dossier_code=w.dossier_code)
        pending = [(w.dossier_code, s) for w in ready for s in w.steps]
        if not pending:
            return
        replies = await self.client.push_steps([step_to_wire(s.step) for _, s in pending])
        for (code, step), reply in zip(pending, replies, strict=True):
            if reply.code == self.client.codes.success:
                batch.sent_steps.setdefault(code, []).append(step.event_id)
            elif code not in batch.failed:
                batch.failed[code] = _rejected("CapNhatTienDoHoSoMC", code, reply)


def _rejected(service: str, code: str, reply: ItemReply) -> DestinationRejected:
    return DestinationRejected(
        f"DVCQG refused {service} for {code}: {reply.code} {reply.message}".strip(),
        connector=CONNECTOR,
        dossier_code=code,
        code=reply.code,
    )
