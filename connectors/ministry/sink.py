"""Hands dossiers off to one ministry system: the handler behind `ministry.<system>.work`.

The queue receives every `dossier.changed` message (dossier code and version). For each, the
sink reads the dossier's newest state and hands it off when its procedure is one the system
decides, its status is one of `submit.statuses`, and it was not handed off to this system
before: the record is mapped by the system's mapping file and sent to its submit operation.
A reply the mapping reads as refused parks the message with the system's reason; after an
accepted reply the hand-off (and the system's receipt number) is recorded, so a redelivered
or later message does not send the dossier again. The window between the reply and that
record is the one place a crash can send a dossier twice; systems are expected to take a
repeated dossier code as the same dossier (both worked examples do).

This module must never ack messages: it returns one outcome per envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import structlog

from connectors.ministry.client import MinistryClient
from connectors.ministry.config import MinistryConfig
from connectors.ministry.mapping import MappingFailed, MinistryMapping
from connectors.ministry.store import Handoff
from hub import metrics
from hub.consumer import SKIPPED, Envelope, Outcome, dossier_code_of
from hub.errors import DestinationRejected, HubError, PermanentError, ValidationFailed
from schemas.canonical import DossierSnapshot

log = structlog.get_logger(__name__)


class Unmapped(PermanentError):
    """The mapping could not build the request, or read the reply: parked with the reason and
    the mapping's code (`missing`, `mapping_error`, ...)."""

    def __init__(self, message: str, cause: ValidationFailed) -> None:
        super().__init__(message, code=cause.code)


class HandoffStore(Protocol):
    async def snapshots(self, codes: list[str]) -> dict[str, DossierSnapshot]: ...


class HandoffLog(Protocol):
    async def handed_off(self, system: str, codes: list[str]) -> set[str]: ...

    async def record_handoff(self, handoff: Handoff) -> None: ...


class HandoffSink:
    def __init__(
        self,
        client: MinistryClient,
        config: MinistryConfig,
        mapping: MinistryMapping,
        store: HandoffStore,
        handoffs: HandoffLog,
    ) -> None:
        self.client = client
        self.system = client.system
        self.config = config
        self.mapping = mapping
        self.store = store
        self.handoffs = handoffs
        self.procedures = frozenset(config.procedures)
        self.statuses = frozenset(config.submit.statuses if config.submit else ())

    async def __call__(self, envelopes: Sequence[Envelope]) -> Sequence[Outcome]:
        codes = sorted({c for c in map(dossier_code_of, envelopes) if c})
        snapshots = await self.store.snapshots(codes)
        due = [c for c, s in snapshots.items() if self._wanted(s)]
        done = await self.handoffs.handed_off(self.system, due)
        results: dict[str, Outcome] = {}
        for code in due:
            if code not in done:
                results[code] = await self._hand_off(snapshots[code])
                done.add(code)
        # A dossier this system does not take (or took already) is skipped, not delivered: the
        # queue sees every dossier event, the card counts only this system's hand-offs.
        return [results.get(dossier_code_of(e), SKIPPED) for e in envelopes]

    def _wanted(self, snapshot: DossierSnapshot) -> bool:
        record = snapshot.record
        return (
            record is not None
            and record.procedure_code in self.procedures
            and snapshot.status in self.statuses
        )

    async def _hand_off(self, snapshot: DossierSnapshot) -> Outcome:
        code = snapshot.dossier_code
        assert snapshot.record is not None
        try:
            request = self.mapping.submit_request(snapshot.record.model_dump(mode="json"))
        except ValidationFailed as exc:
            self._count(exc)
            return self._failed(code, Unmapped(f"cannot map dossier {code}: {exc.message}", exc))
        try:
            reply = await self.client.submit(request)
        except HubError as exc:
            return self._failed(code, exc)
        try:
            outcome = self.mapping.submit_outcome(reply)
        except MappingFailed as exc:  # the system may have taken it: a replay sends it again
            self._count(exc)
            why = f"cannot read {self.system}'s reply to dossier {code}: {exc.message}"
            return self._failed(code, Unmapped(why, exc))
        if not outcome.accepted:
            reason = outcome.reason or "no reason given"
            return self._failed(
                code,
                DestinationRejected(
                    f"{self.system} refused dossier {code}: {reason}",
                    connector=self.client.connector,
                    dossier_code=code,
                    code="refused",
                ),
            )
        await self.handoffs.record_handoff(
            Handoff(
                system=self.system,
                dossier_code=code,
                procedure_code=snapshot.record.procedure_code,
                status=int(snapshot.status),
                reference=outcome.reference,
                submitted_at=datetime.now(UTC).isoformat(),
            )
        )
        metrics.MINISTRY_HANDOFFS.labels(self.system, "submitted").inc()
        log.info(
            "ministry_handoff", system=self.system, dossier_code=code, reference=outcome.reference
        )
        return None

    def _count(self, exc: ValidationFailed) -> None:
        if isinstance(exc, MappingFailed):
            metrics.MINISTRY_MAPPING_ERRORS.labels(self.system, exc.at).inc()

    def _failed(self, code: str, exc: HubError) -> HubError:
        outcome = "refused" if isinstance(exc, PermanentError) else "failed"
        metrics.MINISTRY_HANDOFFS.labels(self.system, outcome).inc()
        log.warning(
            "ministry_handoff_" + outcome, system=self.system, dossier_code=code, error=exc.message
        )
        return exc
