"""The plain records that cross the store's interfaces.

Everything the hub must remember is in the store: idempotency keys, dossier snapshots and
history, the transactional outbox, what each destination confirmed (its delivery state), the
change feed, facade sessions, the audit log, paused connectors. There is no one `Store` type:
each part of the hub states what it needs in a small Protocol beside its own code (the intake's
`DossierLog` in `hub.intake`, the facade sessions' in `hub.auth`, the change feed's in `hub.api`,
the parking queue's audit log and delivery journal in `hub.dlq`, the pauses in `hub.runtime`,
the DVCQG sink's `DeliveryState` in `connectors.national_portal.sink`), and the hub hands it the
store, so the type checker proves the store fits each. SQLite is the embedded default
(`hub.store.sqlite`); another back-end fits the same Protocols and passes the same tests
(`tests/contract/test_store_contract.py`). Implementations must never let two coroutines
interleave inside one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.canonical import DossierRecord, DossierSnapshot, ProcessingStep
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
    step_ids: list[int]  # the dossier's history rows (`PendingStep.event_id`)
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
    reason_code: str | None = None  # the reason as a code, where the hub knew one
    reason_args: dict[str, Any] = field(default_factory=dict)  # values its words name


@dataclass(frozen=True)
class JournalLine:
    """A line of a dossier's delivery journal: what happened at a connector (delivered,
    refused, retry, parked, replayed, discarded …), the hub's own text of it (`detail`), and
    its reason as a code with the values its words name, where the hub knows one (the
    destination's refusal code, `retry_budget` …): the console words the code, never the
    text (decision 0090)."""

    dossier_code: str
    connector: str
    outcome: str
    detail: str
    reason_code: str | None = None
    reason_args: Mapping[str, Any] | None = None


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
class FiringAlert:
    """An alert firing, as the store keeps it until it resolves (`hub.alerts`): its rule, its
    connector ('' for the hub's own rules), its episode and figures; times in unix seconds."""

    rule: str
    connector: str
    episode: str
    since: float
    fired_at: float
    value: float | None
    threshold: float
    detail: str


@dataclass(frozen=True)
class Lease:
    """A once-only duty's lease as the store holds it (`hub.duties`). Its times are unix
    seconds on the database's own clock, and `now` is that clock when the lease was read, so
    what is left of it is measured on one clock whatever the replicas' clocks say."""

    name: str  # the duty's name
    holder: str  # the replica holding it (`hub.duties.replica_id`)
    acquired_at: float  # when this holder took it (renewals keep it)
    renewed_at: float
    expires_at: float
    now: float  # the database's clock as it answered

    @property
    def live(self) -> bool:
        return self.expires_at > self.now

    @property
    def remaining_s(self) -> float:
        """Seconds until it expires (0 once it has)."""
        return max(self.expires_at - self.now, 0.0)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def reason_args_of(text: str | None) -> dict[str, Any]:
    """A journal line's `reason_args` column as the values its words name ({} for none)."""
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
