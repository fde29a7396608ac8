"""The store's small interface, and the plain records that cross it.

Everything the hub must remember goes through `Store`: idempotency keys, dossier snapshots and
history, the transactional outbox, what each destination confirmed (its delivery state), the
change feed, facade sessions and the audit log. SQLite is the embedded default
(`hub.store.sqlite`); another back-end implements the same Protocol and passes the same tests.
Implementations must never let two coroutines interleave inside one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from schemas.canonical import DossierEvent, DossierRecord, DossierSnapshot, ProcessingStep
from schemas.payment import PaymentRecord


@dataclass(frozen=True)
class IngestResult:
    """What happened to one event: stored now, or already known (a duplicate)."""

    idempotency_key: str
    duplicate: bool
    applied: bool  # False for a late event kept in history only


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    routing_key: str
    body: dict[str, Any]


# Publishes committed outbox rows (`hub.intake.Intake.relay`); the number published.
Relay = Callable[[list[OutboxMessage]], Awaitable[int]]


@dataclass(frozen=True)
class IngestOutcome:
    results: list[IngestResult]
    outbox: list[OutboxMessage]


@dataclass(frozen=True)
class PendingStep:
    event_id: int
    step: ProcessingStep


@dataclass(frozen=True)
class DeliveryWork:
    """What one destination still lacks of one dossier."""

    dossier_code: str
    version: int
    record: DossierRecord | None  # None while no whole record has arrived
    confirmed_version: int  # the newest version the destination confirmed (0: none)
    holds: bool  # the destination holds the dossier (DVCQG: send with isUpdating)
    changed_at: datetime  # when the hub received the change this version carries
    steps: list[PendingStep] = field(default_factory=list)  # steps it has not confirmed
    status_at: datetime | None = None  # the status's own time (the one-stop's clock)

    @property
    def up_to_date(self) -> bool:
        return self.confirmed_version >= self.version and not self.steps


@dataclass(frozen=True)
class Confirmation:
    """What a destination confirmed for one dossier: a snapshot version and/or some steps."""

    dossier_code: str
    version: int  # 0 when only steps were confirmed
    step_ids: list[int]  # history rows (`PendingStep.event_id`)
    status_at: datetime | None = None  # the status time of the confirmed version (sync lag)


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    kind: str
    status: int
    occurred_at: str
    received_at: str
    source_system: str
    applied: bool
    confirmed: dict[str, str]  # destination → when it confirmed this step
    event: dict[str, Any]


@dataclass(frozen=True)
class DeliveryEntry:
    connector: str
    outcome: str
    detail: str | None
    at: str


@dataclass(frozen=True)
class DossierView:
    snapshot: DossierSnapshot | None
    confirmed: dict[str, int]  # destination → the newest version it confirmed
    history: list[HistoryEntry]
    deliveries: list[DeliveryEntry]
    payments: list[PaymentRecord] = field(default_factory=list)


@dataclass(frozen=True)
class FeedItem:
    cursor: int
    snapshot: DossierSnapshot


@dataclass(frozen=True)
class PausedConnector:
    connector: str
    by: str
    at: float  # unix time
    reason: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class Store(Protocol):
    async def ping(self) -> None: ...

    async def ingest(self, events: list[DossierEvent], received_at: datetime) -> IngestOutcome: ...

    async def outbox_pending(self, older_than_s: float, limit: int) -> list[OutboxMessage]: ...

    async def outbox_done(self, ids: list[int]) -> None: ...

    async def delivery_work(
        self, destination: str, codes: list[str]
    ) -> dict[str, DeliveryWork]: ...

    async def delivery_done(self, destination: str, confirmations: list[Confirmation]) -> None: ...

    async def record_delivery(
        self, code: str, connector: str, outcome: str, detail: str
    ) -> None: ...

    async def dossier(self, code: str) -> DossierView: ...

    async def changes_after(self, cursor: int, limit: int) -> list[FeedItem]: ...

    async def create_session(self, token_sha256: str, source: str, expires_at: float) -> None: ...

    async def session_source(self, token_sha256: str, now: float) -> tuple[str, float] | None:
        """The source and expiry of a live session, or None."""
        ...

    async def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None: ...

    async def audit_entries(self, limit: int, before_id: int | None = None) -> list[AuditEntry]: ...

    async def set_paused(self, connector: str, actor: str, reason: str, paused: bool) -> bool:
        """Pause (or resume) a connector with an audit entry; False if nothing changed."""
        ...

    async def paused_connectors(self) -> dict[str, PausedConnector]: ...
