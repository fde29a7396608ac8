"""Delivers dossier changes to DVCQG: the handler behind the `national_portal` work queue.

A message only says "dossier X changed". For each batch the sink reads from the store what DVCQG
still lacks (the newest snapshot if its version is ahead of what DVCQG confirmed, and every
step not yet confirmed), sends the snapshots with `DongBoHoSoMC` (`isUpdating` from whether
DVCQG already holds the dossier), then the steps with `CapNhatTienDoHoSoMC`, and records what
DVCQG confirmed. Because it always sends the newest state, a late, repeated or replayed message
changes nothing a second time.

What DVCQG confirmed is the store's delivery state for the destination `national_portal`
(`DeliveryState`, held like any destination's). This module must never ack messages: it
returns one outcome per envelope.

Two cases are settled by asking DVCQG (`TraCuuHoSo`) rather than by guessing:

* **Steps of a dossier the hub holds no record of.** At cut-over a dossier's record went to
  DVCQG directly, before the hub was installed. If DVCQG holds the dossier, its steps go now;
  if not, the message is refused with DVCQG's own code (06): the one-stop system must send the
  record (`DongBoHoSoMC`), which then takes the kept steps along (the parked message can be
  replayed or discarded; it sends nothing twice).
* **An uncertain send.** A message delivered again (after a crash, or retried after a failed
  call) may carry steps DVCQG already applied before the hub could record its reply. Before
  sending steps again, the sink reads the steps DVCQG holds (`QuaTrinhXuLy`) and counts those
  as confirmed: a crash does not send a step twice where DVCQG can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from connectors.national_portal.client import CONNECTOR, ItemReply, PortalClient
from connectors.national_portal.mapping import record_to_wire, step_to_wire
from hub import metrics
from hub.consumer import Envelope, Outcome, dossier_code_of
from hub.dlq import DeliveryJournal
from hub.errors import DestinationRejected, HubError, Unavailable, UndecodableMessage
from hub.store.base import Confirmation, DeliveryWork, PendingStep

log = structlog.get_logger(__name__)

DESTINATION = CONNECTOR  # the name DVCQG's delivery state is kept under in the store


class DeliveryState(DeliveryJournal, Protocol):
    """What the sink needs of the store: a destination's delivery state, and the journal."""

    async def delivery_work(self, destination: str, codes: list[str]) -> dict[str, DeliveryWork]:
        """What the destination still lacks of each dossier the hub holds."""
        ...

    async def delivery_done(self, destination: str, confirmations: list[Confirmation]) -> None:
        """Record what the destination confirmed, in one transaction."""
        ...


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
        # Dossiers whose steps went out in a call that failed without a reply: DVCQG may hold
        # them. Settled with TraCuuHoSo before their steps go again.
        self.uncertain: set[str] = set()

    async def __call__(self, envelopes: Sequence[Envelope]) -> Sequence[Outcome]:
        codes = sorted({dossier_code_of(e) for e in envelopes} - {""})
        uncertain = {dossier_code_of(e) for e in envelopes if _again(e)} | self.uncertain
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
        await self._push_steps(batch, due, uncertain)
        await self.store.delivery_done(
            DESTINATION, [Confirmation(c, 0, ids) for c, ids in sorted(batch.sent_steps.items())]
        )
        for code, error in batch.failed.items():
            await self.store.record_delivery(code, CONNECTOR, "refused", error.message, error.code)
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
            return UndecodableMessage("message names no dossier_code", code="no_dossier_code")
        if code not in batch.work:
            return UndecodableMessage(f"dossier {code} is not in the store", code="unknown_dossier")
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

    async def _settle(
        self, batch: _Batch, with_steps: list[DeliveryWork], uncertain: set[str]
    ) -> dict[str, set[StepKey]]:
        """Ask DVCQG about the dossiers whose steps cannot go on what the hub knows: those it
        holds no record of, and those delivered again. The steps DVCQG holds, per dossier."""
        held_steps: dict[str, set[StepKey]] = {}
        for w in with_steps:
            code = w.dossier_code
            if w.record is None and w.holds:
                batch.held.add(code)  # DVCQG confirmed holding it before
            if code in batch.held and code not in uncertain:
                continue
            if code not in batch.held and w.record is not None:
                log.info("portal_steps_wait_for_record", dossier_code=code)
                continue
            data = await self.client.lookup(code)
            if data is None:
                if code not in batch.held:
                    batch.failed[code] = _not_held(code, self.client.codes.not_held)
                continue
            batch.held.add(code)
            held_steps[code] = {_step_key(s) for s in data.get("QuaTrinhXuLy") or [] if s}
        return held_steps

    async def _push_steps(
        self, batch: _Batch, due: list[DeliveryWork], uncertain: set[str]
    ) -> None:
        with_steps = [w for w in due if w.steps and w.dossier_code not in batch.failed]
        held_steps = await self._settle(batch, with_steps, uncertain)
        self.uncertain -= set(held_steps)
        pending = _unsent(batch, with_steps, held_steps)
        if not pending:
            return
        codes = {code for code, _ in pending}
        try:
            replies = await self.client.push_steps([step_to_wire(s.step) for _, s in pending])
        except Unavailable:
            self.uncertain |= codes  # the reply was lost: DVCQG may have applied them
            raise
        self.uncertain -= codes
        for (code, step), reply in zip(pending, replies, strict=True):
            if reply.code == self.client.codes.success:
                batch.sent_steps.setdefault(code, []).append(step.event_id)
            elif code not in batch.failed:
                batch.failed[code] = _rejected("CapNhatTienDoHoSoMC", code, reply)


StepKey = tuple[str, str, str]


def _unsent(
    batch: _Batch, with_steps: list[DeliveryWork], held_steps: dict[str, set[StepKey]]
) -> list[tuple[str, PendingStep]]:
    """The steps to send: of dossiers DVCQG holds, those it does not hold yet (the others
    are counted as confirmed: DVCQG applied them before the hub could record the reply)."""
    pending: list[tuple[str, PendingStep]] = []
    for w in with_steps:
        if w.dossier_code not in batch.held:
            continue
        known = held_steps.get(w.dossier_code, set())
        for s in w.steps:
            if _step_key(step_to_wire(s.step)) in known:
                batch.sent_steps.setdefault(w.dossier_code, []).append(s.event_id)
            else:
                pending.append((w.dossier_code, s))
    return pending


def _step_key(step: Any) -> StepKey:
    """How DVCQG tells one processing step from another (its time, status and content)."""
    if not isinstance(step, dict):
        return ("", "", "")
    return (
        str(step.get("ThoiDiemXuLy", "")),
        str(step.get("TrangThai", "")),
        str(step.get("NoiDungXuLy", "")),
    )


def _again(envelope: Envelope) -> bool:
    """A message delivered again: DVCQG may already hold what it carries."""
    return envelope.attempt > 0 or bool(getattr(envelope.raw, "redelivered", False))


def _not_held(code: str, not_held: str) -> DestinationRejected:
    return DestinationRejected(
        f"DVCQG does not hold dossier {code} and the hub has no record of it: the one-stop "
        "system must send its record (DongBoHoSoMC); its steps are kept and go with it",
        connector=CONNECTOR,
        dossier_code=code,
        code=not_held,
    )


def _rejected(service: str, code: str, reply: ItemReply) -> DestinationRejected:
    return DestinationRejected(
        f"DVCQG refused {service} for {code}: {reply.code} {reply.message}".strip(),
        connector=CONNECTOR,
        dossier_code=code,
        code=reply.code,
    )
