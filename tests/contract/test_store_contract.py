"""The store contract: what every back-end of the store must do, addressed directly.

There is no one `Store` class to implement: each part of the hub declares the Protocol it needs
beside its own code, and `Store` below is all of them at once. Assigning a back-end to it
(`BACKENDS`) makes the type checker prove it fits every part. Parametrized by back-end: the
SQLite store passes it now; a PostgreSQL back-end is added to the list and must pass the same
tests, unchanged. Each test opens a store of its own. No broker, no HTTP: only the store's
promises (idempotent ingest, the outbox, what each destination still lacks and has confirmed,
the change feed, sessions, the audit log, paused connectors, the sync figures, the once-only
duties' leases) and the upgrade
of a store written before delivery state was held per destination (`LEGACY`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, TypeVar, cast

import pytest

from connectors.ministry.store import SqliteMinistries
from connectors.national_portal.routes import DossierLookup
from connectors.national_portal.sink import DeliveryState
from connectors.payment_platform.store import SqlitePayments
from connectors.webhook.sink import DeliveryLog
from hub.alerts import KeptAlerts
from hub.api import ChangeFeed
from hub.auth import Sessions
from hub.dlq import ParkingLog
from hub.duties import Leases
from hub.httputil import writable
from hub.intake import DossierLog
from hub.plugins import built_in
from hub.runtime import Pauses
from hub.store.base import AuditEntry, Confirmation, FiringAlert, JournalLine, Lease
from hub.store.dashboard import (
    Completeness,
    DossierHit,
    LoginState,
    Sample,
    StuckFilter,
    StuckRow,
    Trouble,
)
from hub.store.postgresql import PostgresStore
from hub.store.sqlite import DOSSIER_CHANGED, SqliteStore, _migrations, _split_sql
from schemas.canonical import DossierEvent, DossierRecord, DossierStatus, ProcessingStep
from schemas.payment import PaymentOutcome, PaymentResult, PaymentSource
from tests.support import eventually

CODE = "000.00.41.H41-261201-0001"
OTHER = "000.00.41.H41-261201-0002"
THIRD = "000.00.41.H41-261201-0003"
FOURTH = "000.00.41.H41-261201-0004"
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
S = DossierStatus
PORTAL = "national_portal"  # DVCQG's delivery state
ELSEWHERE = "ministry.land_registry"  # any other destination's
T = TypeVar("T")


class SyncFigures(Protocol):
    """What the dashboard reads of a destination's delivery state."""

    async def completeness(self, destination: str) -> Completeness: ...

    async def lag_histogram(self, destination: str, since: float) -> dict[int, int]: ...

    async def add_samples(self, samples: list[Sample], keep_s: float) -> None: ...

    async def samples(self, connector: str, since: float) -> list[Sample]: ...

    async def login_failed(
        self, username: str, now: float, window_s: float, max_failures: int, lock_s: float
    ) -> LoginState: ...

    async def login_state(self, username: str) -> LoginState | None: ...

    async def find_dossiers(
        self, text: str, owner_key: str, limit: int, offset: int
    ) -> tuple[int, list[DossierHit]]: ...

    async def stuck(
        self,
        state_destinations: list[str],
        where: StuckFilter,
        now: datetime,
        limit: int,
        offset: int,
    ) -> tuple[int, list[StuckRow]]: ...

    async def trouble(self, code: str) -> list[Trouble]: ...


class Store(
    DossierLog,
    DeliveryState,
    DeliveryLog,
    ChangeFeed,
    Sessions,
    ParkingLog,
    Pauses,
    DossierLookup,
    KeptAlerts,
    Protocol,
):
    """Every part's Protocol at once, and what the readiness check and the dashboard read."""

    async def ping(self) -> None: ...

    async def known_dossiers(self, codes: list[str]) -> set[str]: ...

    def transaction(self) -> AbstractAsyncContextManager[object]: ...

    async def audit_entries(self, limit: int, before_id: int | None = None) -> list[AuditEntry]: ...

    @property
    def dashboard(self) -> SyncFigures: ...

    @property
    def leases(self) -> Leases: ...

    def slice(self, name: str, kind: type[T]) -> T: ...


# Each back-end's store for one test: in the test's folder (SQLite), or in a new database of
# the test's own on the session's PostgreSQL server (`postgres_database`).
Opener = Callable[[Path, pytest.FixtureRequest], AbstractAsyncContextManager[Store]]
BACKENDS: dict[str, Opener] = {
    "sqlite": lambda folder, _request: SqliteStore.open(folder / "hub.db"),
    "postgresql": lambda _folder, request: PostgresStore.connect(
        request.getfixturevalue("postgres_database")
    ),
}
MARKS = {"postgresql": [pytest.mark.postgres]}


@pytest.fixture(params=[pytest.param(b, marks=MARKS.get(b, [])) for b in sorted(BACKENDS)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with BACKENDS[request.param](tmp_path, request) as opened:
        yield opened


def record(code: str, status: DossierStatus, at: datetime, event_id: str) -> DossierEvent:
    return DossierEvent(
        event_id=event_id,
        source_system="onestop",
        kind="record",
        dossier_code=code,
        status=status,
        occurred_at=at,
        record=DossierRecord(
            dossier_code=code, status=status, procedure_code="1.001234", received_at=at
        ),
    )


def step(code: str, status: DossierStatus, at: datetime, event_id: str) -> DossierEvent:
    return DossierEvent(
        event_id=event_id,
        source_system="onestop",
        kind="step",
        dossier_code=code,
        status=status,
        occurred_at=at,
        step=ProcessingStep(dossier_code=code, status=status, processed_at=at, content="x"),
    )


async def test_an_event_is_stored_once_and_queued_once(store: Store) -> None:
    first = await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    assert [(r.duplicate, r.applied) for r in first.results] == [(False, True)]
    assert [(m.routing_key, m.body["dossier_code"]) for m in first.outbox] == [
        (DOSSIER_CHANGED, CODE)
    ]
    again = await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    assert [r.duplicate for r in again.results] == [True]
    assert again.outbox == []
    view = await store.dossier(CODE)
    assert view.snapshot is not None
    assert view.snapshot.status is S.accepted
    assert len(view.history) == 1


async def test_the_known_dossiers_are_those_an_event_was_received_for(store: Store) -> None:
    """What the payment door asks before it takes a callback (`require_known_dossier`): read
    apart from the writer's transactions, it still sees every committed event."""
    assert await store.known_dossiers([]) == set()
    assert await store.known_dossiers([CODE, OTHER]) == set()
    await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    await store.ingest([step(THIRD, S.processing, T0, "s1")], T0)
    assert await store.known_dossiers([CODE, OTHER, THIRD, CODE]) == {CODE, THIRD}


async def test_the_known_dossiers_are_answered_while_a_write_is_under_way(store: Store) -> None:
    """Every payment callback asks it: it must not queue behind the writer's transactions
    (on PostgreSQL as on SQLite, it goes through connections of its own)."""
    await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    writing, release = asyncio.Event(), asyncio.Event()

    async def long_write() -> None:
        async with store.transaction():
            writing.set()
            await release.wait()

    writer = asyncio.create_task(long_write())
    try:
        await asyncio.wait_for(writing.wait(), 10)
        assert await asyncio.wait_for(store.known_dossiers([CODE, OTHER]), 5) == {CODE}
    finally:
        release.set()
        await writer


async def test_a_late_event_joins_the_history_but_never_regresses_the_state(
    store: Store,
) -> None:
    await store.ingest([step(CODE, S.processing, T0 + timedelta(hours=2), "s2")], T0)
    late = await store.ingest([step(CODE, S.accepted, T0 + timedelta(hours=1), "s1")], T0)
    assert [r.applied for r in late.results] == [False]
    view = await store.dossier(CODE)
    assert view.snapshot is not None
    assert view.snapshot.status is S.processing
    assert len(view.history) == 2


async def test_a_dossier_ends_at_its_newest_status_whatever_order_its_events_arrive_in(
    store: Store,
) -> None:
    """Seen in the bench under load: records carry only the date received, so a record at
    "processing" and one at "accepted" tie; the "processing" step, a day later, outranks
    both without changing what is sent, and the "accepted" step (stamped when received, and a
    step outranks a record at the same moment) arrived last and took the status back, because
    the later step's key had not been kept. Every order, each event in a call of its own,
    must end where one call with all four ends."""
    later = T0 + timedelta(days=1)
    events: list[Callable[[str], DossierEvent]] = [
        lambda code: record(code, S.processing, T0, f"{code}-r4"),
        lambda code: record(code, S.accepted, T0, f"{code}-r2"),
        lambda code: step(code, S.processing, later, f"{code}-s4"),
        lambda code: step(code, S.accepted, T0, f"{code}-s2"),
    ]
    together = "000.00.41.H41-261201-9999"
    await store.ingest([make(together) for make in events], T0)
    expected = (await store.dossier(together)).snapshot
    assert expected is not None
    assert expected.status is S.processing
    for n, order in enumerate(itertools.permutations(events)):
        code = f"000.00.41.H41-261201-{n + 1:04d}"
        for make in order:
            await store.ingest([make(code)], T0)
        snapshot = (await store.dossier(code)).snapshot
        assert snapshot is not None
        assert (snapshot.status, snapshot.record) == (
            expected.status,
            expected.record.model_copy(update={"dossier_code": code}) if expected.record else None,
        ), f"order {n}"


async def test_calls_folded_together_each_get_their_own_events_results(store: Store) -> None:
    """Calls that arrive together are folded in one go: each still gets its own events'
    results in order, an event sent in two calls is stored once (one of them is told it is
    a duplicate), and every dossier touched has an outbox row at its newest version."""
    codes = [f"000.00.41.H41-261201-{n:04d}" for n in range(5)]
    calls = [
        [record(codes[i % 5], S.accepted, T0 + timedelta(minutes=i), f"r{i % 12}")]
        for i in range(24)
    ]
    calls.append([step(codes[0], S.processing, T0 + timedelta(hours=9), "s0"), calls[3][0]])
    outcomes = await asyncio.gather(*(store.ingest(events, T0) for events in calls))
    for events, outcome in zip(calls, outcomes, strict=True):
        assert [r.idempotency_key for r in outcome.results] == [e.idempotency_key for e in events]
    fresh: dict[str, int] = {}
    for outcome in outcomes:
        for result in outcome.results:
            fresh.setdefault(result.idempotency_key, 0)
            fresh[result.idempotency_key] += not result.duplicate
    assert set(fresh.values()) == {1}, fresh  # each event stored by exactly one call
    newest: dict[str, int] = {}
    for outcome in outcomes:
        for message in outcome.outbox:
            code, version = message.body["dossier_code"], message.body["version"]
            newest[code] = max(newest.get(code, 0), version)
    for code in codes:
        snapshot = (await store.dossier(code)).snapshot
        assert snapshot is not None
        assert newest[code] == snapshot.version, code
    assert (await store.dossier(codes[0])).snapshot.status is S.processing  # type: ignore[union-attr]


async def test_a_call_whose_fold_fails_fails_alone(store: Store) -> None:
    """Folded together with others, a call whose events cannot be folded (here: not events
    at all, as a bug would hand over) gets the error; the calls beside it are stored."""
    good = [[record(f"000.00.41.H41-261201-{n:04d}", S.accepted, T0, f"g{n}")] for n in range(5)]
    poison = cast(list[DossierEvent], [object()])
    outcomes = await asyncio.gather(
        *(store.ingest(events, T0) for events in [*good[:2], poison, *good[2:]]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[2], AttributeError), outcomes[2]
    for n in range(5):
        view = await store.dossier(f"000.00.41.H41-261201-{n:04d}")
        assert view.snapshot is not None, n


def payment(transaction: str, outcome: str, amount: int = 150_000) -> PaymentResult:
    return PaymentResult(
        reference=f"ref-{transaction}",
        dossier_code=CODE,
        transaction_id=transaction,
        amount_vnd=amount,
        paid_at=T0,
        outcome=PaymentOutcome(outcome),
        source=PaymentSource.CALLBACK,
    )


async def test_payment_callbacks_folded_together_decide_as_one_by_one(store: Store) -> None:
    """Callbacks that arrive together are applied in one fold: each verdict is the one it
    would get alone in the same order (a later callback of a transaction sees the earlier),
    each new final outcome has its own outbox row, and every callback is logged."""
    payments = SqlitePayments(cast(SqliteStore, store))
    calls = [
        ("T1", "pending", "new"),
        ("T1", "paid", "resolved"),
        ("T1", "paid", "duplicate"),
        ("T2", "paid", "new"),
        ("T2", "failed", "conflict"),
        ("T3", "pending", "new"),
        ("T3", "pending", "duplicate"),
    ]
    recorded = await asyncio.gather(
        *(payments.record(payment(t, o), {"n": i}) for i, (t, o, _) in enumerate(calls))
    )
    assert [r.verdict.value for r in recorded] == [v for _, _, v in calls]
    delivered = [(i, m.body["type"]) for i, r in enumerate(recorded) for m in r.outbox]
    assert delivered == [(1, "payment.paid"), (3, "payment.paid")]
    assert len({m.id for r in recorded for m in r.outbox}) == 2
    assert recorded[4].held is not None
    assert recorded[4].held.outcome is PaymentOutcome.PAID
    held = {t: await payments.get(t, f"ref-{t}") for t in ("T1", "T2", "T3")}
    assert {t: r.result.outcome.value for t, r in held.items() if r} == {
        "T1": "paid",
        "T2": "paid",
        "T3": "pending",
    }
    logged = await payments.callbacks(None, 100)
    assert sorted(row.body["n"] for row in logged) == list(range(len(calls)))


async def test_confirmations_arriving_together_are_each_recorded(store: Store) -> None:
    """Subscribers' confirmations that arrive together are written in one fold: each dossier's
    timeline gets its line, in the order they came; an event confirmed twice keeps its first
    moment; an event about no dossier is recorded without a line; the payment whose event the
    one-stop confirmed is shown acknowledged, and only it."""
    codes = [f"000.00.41.H41-261201-{n:04d}" for n in range(3)]
    for code in codes:
        await store.ingest([record(code, S.accepted, T0, f"r-{code}")], T0)
    payments = SqlitePayments(cast(SqliteStore, store), subscriber="one_stop")
    paid = [(await payments.record(payment(t, "paid"), None)).outbox[0] for t in ("T1", "T2")]
    first = [store.mark_delivered("one_stop", paid[0].body["event_id"], None, "HTTP 200")]
    await asyncio.gather(*first)
    moment = (await payments.get("T1", "ref-T1")).acknowledged_at  # type: ignore[union-attr]
    calls = [
        store.mark_delivered("one_stop", f"e{n}", codes[n % 3], f"HTTP 200 #{n}") for n in range(9)
    ]
    calls.append(store.mark_delivered("one_stop", paid[0].body["event_id"], None, "again"))
    calls.append(store.mark_delivered("audit", paid[1].body["event_id"], None, "HTTP 204"))
    await asyncio.gather(*calls)
    for i, code in enumerate(codes):
        lines = (await store.dossier(code)).deliveries
        assert [(d.connector, d.outcome, d.detail) for d in lines] == [
            ("subscriber.one_stop", "delivered", f"HTTP 200 #{n}") for n in range(i, 9, 3)
        ]
    held = {t: await payments.get(t, f"ref-{t}") for t in ("T1", "T2")}
    assert moment is not None
    assert held["T1"].acknowledged_at == moment  # type: ignore[union-attr]
    assert held["T2"].acknowledged_at is None  # type: ignore[union-attr]


async def test_a_firing_alert_is_kept_until_its_own_episode_resolves(store: Store) -> None:
    first = FiringAlert("HubConnectorDown", "national_portal", "ep-1", 10.0, 310.0, 300.0,
                        300.0, "down: HTTP 503")  # fmt: skip
    hub_rule = FiringAlert("HubSyncLagHigh", "", "ep-2", 5.0, 6.0, None, 600.0, "")
    await store.alert_fired(first)
    await store.alert_fired(hub_rule)
    assert sorted(await store.firing_alerts(), key=lambda a: a.rule) == [first, hub_rule]

    again = FiringAlert("HubConnectorDown", "national_portal", "ep-3", 400.0, 700.0, 300.0,
                        300.0, "down: timeout")  # fmt: skip
    await store.alert_fired(again)  # the same rule and connector: one row, the newer
    await store.alert_resolved("HubConnectorDown", "national_portal", "ep-1")  # not that one
    assert sorted(await store.firing_alerts(), key=lambda a: a.rule) == [again, hub_rule]
    await store.alert_resolved("HubConnectorDown", "national_portal", "ep-3")
    assert await store.firing_alerts() == [hub_rule]


async def test_the_outbox_keeps_a_row_until_it_is_done(store: Store) -> None:
    outcome = await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    pending = await store.outbox_pending(older_than_s=0, limit=10)
    assert [m.id for m in pending] == [m.id for m in outcome.outbox]
    await store.outbox_done([m.id for m in pending])
    assert await store.outbox_pending(older_than_s=0, limit=10) == []


async def test_what_a_destination_lacks_until_it_confirms(store: Store) -> None:
    await store.ingest(
        [
            record(CODE, S.accepted, T0, "r1"),
            step(CODE, S.processing, T0 + timedelta(hours=1), "s1"),
        ],
        T0,
    )
    work = (await store.delivery_work(PORTAL, [CODE, OTHER]))[CODE]
    assert OTHER not in await store.delivery_work(PORTAL, [OTHER])
    assert not work.up_to_date
    assert (work.confirmed_version, work.holds) == (0, False)
    assert work.record is not None
    assert [s.step.status for s in work.steps] == [S.processing]
    await store.delivery_done(
        PORTAL,
        [Confirmation(CODE, work.version, [s.event_id for s in work.steps], work.status_at)],
    )
    after = (await store.delivery_work(PORTAL, [CODE]))[CODE]
    assert after.up_to_date
    assert (after.confirmed_version, after.holds, after.steps) == (work.version, True, [])
    view = await store.dossier(CODE)
    assert view.confirmed == {PORTAL: work.version}
    assert [list(h.confirmed) for h in view.history] == [[], [PORTAL]]
    assert [(d.connector, d.outcome) for d in view.deliveries] == [(PORTAL, "delivered")]


async def test_two_destinations_keep_their_state_apart(store: Store) -> None:
    await store.ingest(
        [
            record(CODE, S.accepted, T0, "r1"),
            step(CODE, S.processing, T0 + timedelta(hours=1), "s1"),
            record(OTHER, S.accepted, T0, "r2"),
        ],
        T0,
    )
    work = await store.delivery_work(PORTAL, [CODE, OTHER])
    steps = [s.event_id for s in work[CODE].steps]
    at = datetime.now(UTC) - timedelta(seconds=3)
    await store.delivery_done(PORTAL, [Confirmation(CODE, work[CODE].version, steps, at)])

    portal = await store.delivery_work(PORTAL, [CODE, OTHER])
    elsewhere = await store.delivery_work(ELSEWHERE, [CODE, OTHER])
    assert portal[CODE].up_to_date
    assert not portal[OTHER].up_to_date
    assert not elsewhere[CODE].up_to_date
    assert (elsewhere[CODE].confirmed_version, elsewhere[CODE].holds) == (0, False)
    assert [s.event_id for s in elsewhere[CODE].steps] == steps
    assert (await store.dashboard.completeness(PORTAL)).unconfirmed == 1
    assert (await store.dashboard.completeness(ELSEWHERE)).unconfirmed == 2
    assert sum((await store.dashboard.lag_histogram(PORTAL, 0)).values()) == 1
    assert await store.dashboard.lag_histogram(ELSEWHERE, 0) == {}

    # The other destination confirms only OTHER's version: DVCQG's state does not move.
    await store.delivery_done(ELSEWHERE, [Confirmation(OTHER, portal[OTHER].version, [])])
    elsewhere = await store.delivery_work(ELSEWHERE, [CODE, OTHER])
    assert elsewhere[OTHER].up_to_date
    assert not elsewhere[CODE].up_to_date
    assert not (await store.delivery_work(PORTAL, [OTHER]))[OTHER].up_to_date
    figures = await store.dashboard.completeness(PORTAL)
    assert (figures.dossiers, figures.unconfirmed) == (2, 1)
    assert (await store.dashboard.completeness(ELSEWHERE)).unconfirmed == 1
    view = await store.dossier(CODE)
    assert view.confirmed == {PORTAL: portal[CODE].version}
    assert (await store.dossier(OTHER)).confirmed == {ELSEWHERE: portal[OTHER].version}
    assert [h.confirmed.keys() for h in view.history if h.kind == "step"] == [{PORTAL}]

    # A new step is lacking for both; only the destination that confirms it moves on.
    await store.ingest([step(CODE, S.processing, T0 + timedelta(hours=2), "s2")], T0)
    portal = await store.delivery_work(PORTAL, [CODE])
    assert [s.step.processed_at for s in portal[CODE].steps] == [T0 + timedelta(hours=2)]
    assert len((await store.delivery_work(ELSEWHERE, [CODE]))[CODE].steps) == 2
    assert (await store.dashboard.completeness(PORTAL)).unconfirmed == 2
    new_steps = [s.event_id for s in portal[CODE].steps]
    await store.delivery_done(PORTAL, [Confirmation(CODE, 0, new_steps)])
    assert (await store.delivery_work(PORTAL, [CODE]))[CODE].up_to_date
    assert (await store.dashboard.completeness(PORTAL)).unconfirmed == 1
    assert (await store.dashboard.completeness(ELSEWHERE)).unconfirmed == 1


async def test_a_confirmed_version_never_moves_back_and_unknown_dossiers_change_nothing(
    store: Store,
) -> None:
    await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    await store.ingest([record(CODE, S.processing, T0 + timedelta(hours=1), "r2")], T0)
    await store.delivery_done(PORTAL, [Confirmation(CODE, 2, [])])
    await store.delivery_done(PORTAL, [Confirmation(CODE, 1, []), Confirmation(OTHER, 5, [])])
    work = await store.delivery_work(PORTAL, [CODE, OTHER])
    assert list(work) == [CODE]
    assert (work[CODE].confirmed_version, work[CODE].up_to_date) == (2, True)
    figures = await store.dashboard.completeness(PORTAL)
    assert (figures.dossiers, figures.unconfirmed) == (1, 0)


async def test_a_status_confirmed_again_counts_once_in_the_sync_lag(store: Store) -> None:
    await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    work = (await store.delivery_work(PORTAL, [CODE]))[CODE]
    assert work.status_at == T0
    for _ in range(2):
        await store.delivery_done(PORTAL, [Confirmation(CODE, work.version, [], work.status_at)])
    assert sum((await store.dashboard.lag_histogram(PORTAL, 0)).values()) == 1


async def test_deliveries_are_recorded_in_the_dossiers_timeline(store: Store) -> None:
    await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    await store.record_delivery(CODE, "national_portal", "refused", "DVCQG refused: 07")
    (entry,) = (await store.dossier(CODE)).deliveries
    assert (entry.connector, entry.outcome, entry.detail) == (
        "national_portal",
        "refused",
        "DVCQG refused: 07",
    )


async def test_a_journal_line_keeps_its_reason_code_and_values_beside_its_text(
    store: Store,
) -> None:
    """The code (DVCQG's 07, the hub's retry_budget …) and the values its words name go with
    the hub's text; a replay keeps the trouble's reason and code, a delivery ends it."""
    await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    refusal = "DVCQG refused DongBoHoSoMC for X: 07 bad"
    await store.record_delivery(CODE, PORTAL, "refused", refusal, "07")
    await store.record_delivery(CODE, "ministry.tax", "retry", "handler crashed: boom")
    await store.record_deliveries(
        [JournalLine(CODE, PORTAL, "replayed", f"by an: {refusal}", "07", {"by": "an"})]
    )
    lines = (await store.dossier(CODE)).deliveries
    assert [(d.outcome, d.reason_code, d.reason_args) for d in lines] == [
        ("refused", "07", {}),
        ("retry", None, {}),
        ("replayed", "07", {"by": "an"}),
    ]
    assert lines[2].detail == f"by an: {refusal}"
    trouble = {t.destination: t for t in await store.dashboard.trouble(CODE)}
    portal = trouble[PORTAL]
    assert (portal.outcome, portal.reason, portal.reason_code) == ("replayed", refusal, "07")
    assert (trouble["ministry.tax"].reason_code, trouble["ministry.tax"].reason_args) == (None, {})
    await store.record_delivery(
        CODE, PORTAL, "parked", "retry budget spent (3 tiers): x", "retry_budget", {"tiers": 3}
    )
    portal = {t.destination: t for t in await store.dashboard.trouble(CODE)}[PORTAL]
    assert (portal.outcome, portal.reason_code, portal.reason_args) == (
        "parked",
        "retry_budget",
        {"tiers": 3},
    )
    await store.delivery_done(PORTAL, [Confirmation(CODE, 1, [])])
    assert [t.destination for t in await store.dashboard.trouble(CODE)] == ["ministry.tax"]


async def test_the_change_feed_pages_in_commit_order_from_a_cursor(store: Store) -> None:
    await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    await store.ingest([record(OTHER, S.accepted, T0, "r2")], T0)
    first = await store.changes_after(0, 1)
    assert [i.snapshot.dossier_code for i in first] == [CODE]
    rest = await store.changes_after(first[-1].cursor, 10)
    assert [i.snapshot.dossier_code for i in rest] == [OTHER]
    assert await store.changes_after(rest[-1].cursor, 10) == []


async def test_a_session_answers_until_it_expires(store: Store) -> None:
    now = time.time()
    await store.create_session("a" * 64, "onestop", now + 60)
    found = await store.session_source("a" * 64, now)
    assert found is not None
    assert found[0] == "onestop"
    assert found[1] == pytest.approx(now + 60)
    assert await store.session_source("a" * 64, now + 61) is None
    assert await store.session_source("b" * 64, now) is None


async def test_the_audit_log_pages_newest_first(store: Store) -> None:
    for n in range(5):
        await store.audit("op", f"act.{n}", "target", {"n": n})
    newest = await store.audit_entries(2)
    assert [e.action for e in newest] == ["act.4", "act.3"]
    older = await store.audit_entries(10, before_id=newest[-1].id)
    assert [e.action for e in older] == ["act.2", "act.1", "act.0"]
    assert older[0].detail == {"n": 2}


async def test_a_pause_is_kept_audited_and_idempotent(store: Store) -> None:
    assert await store.paused_connectors() == {}
    assert await store.set_paused("national_portal", "op1", "bảo trì", True)
    assert not await store.set_paused("national_portal", "op2", "again", True)
    (paused,) = (await store.paused_connectors()).values()
    assert (paused.connector, paused.by, paused.reason) == ("national_portal", "op1", "bảo trì")
    assert await store.set_paused("national_portal", "op2", "", False)
    assert not await store.set_paused("national_portal", "op2", "", False)
    assert await store.paused_connectors() == {}
    actions = [(e.action, e.actor) for e in await store.audit_entries(10)]
    assert actions == [("connector.resume", "op2"), ("connector.pause", "op1")]


async def test_a_free_lease_is_taken_and_a_live_one_of_another_refused(store: Store) -> None:
    taken = await store.leases.acquire("outbox-sweep", "hub-a", 30)
    assert (taken.name, taken.holder) == ("outbox-sweep", "hub-a")
    assert taken.live
    assert 29 < taken.remaining_s <= 30
    assert taken.acquired_at == taken.renewed_at <= taken.now < taken.expires_at
    refused = await store.leases.acquire("outbox-sweep", "hub-b", 30)
    assert refused.holder == "hub-a"  # who holds it, for the one refused
    assert refused.acquired_at == taken.acquired_at
    assert refused.expires_at == taken.expires_at  # the refusal changed nothing
    other = await store.leases.acquire("alerts", "hub-b", 30)  # another duty is free
    assert other.holder == "hub-b"


async def test_the_holder_renews_its_lease_and_keeps_when_it_took_it(store: Store) -> None:
    first = await store.leases.acquire("alerts", "hub-a", 30)
    renewed = await eventually(
        lambda: _renewed_after(store, "alerts", "hub-a", first.renewed_at), 5, "a renewal"
    )
    assert renewed.holder == "hub-a"
    assert renewed.acquired_at == first.acquired_at
    assert renewed.expires_at > first.expires_at


async def _renewed_after(store: Store, name: str, holder: str, after: float) -> Lease | None:
    lease = await store.leases.acquire(name, holder, 30)
    return lease if lease.renewed_at > after else None


async def test_an_expired_lease_is_taken_over_and_begins_anew(store: Store) -> None:
    dead = await store.leases.acquire("ministry-poll-land", "hub-dead", 0.2)
    taken = await eventually(
        lambda: _taken_by(store, "ministry-poll-land", "hub-b"), 10, "the lapsed lease taken"
    )
    assert taken.acquired_at >= dead.expires_at  # never before it lapsed, on the store's clock
    assert taken.live
    again = await store.leases.acquire("ministry-poll-land", "hub-dead", 30)
    assert again.holder == "hub-b"  # the old holder, back, does not get it back


async def _taken_by(store: Store, name: str, holder: str) -> Lease | None:
    lease = await store.leases.acquire(name, holder, 30)
    return lease if lease.holder == holder else None


async def test_lapsed_leases_of_a_prefix_are_forgotten_after_a_while_and_no_others(
    store: Store,
) -> None:
    """Presence leases of replicas long gone are deleted (`forget_lapsed`): only those with the
    prefix, lapsed for longer than asked, on the database's clock; live ones, recently lapsed
    ones and other leases stay."""
    await store.leases.acquire("replica:hub-gone", "hub-gone", 0.1)
    await store.leases.acquire("replica:hub-live", "hub-live", 30)
    await store.leases.acquire("replica-like-duty", "hub-x", 0.1)
    await eventually(lambda: _all_lapsed(store, {"replica:hub-gone"}), 10, "the lease lapsed")
    assert await store.leases.forget_lapsed("replica:", 60) == 0  # lapsed, but not for long
    assert await store.leases.forget_lapsed("replica:", 0) == 1
    names = sorted(lease.name for lease in await store.leases.leases())
    assert names == ["replica-like-duty", "replica:hub-live"]


async def _all_lapsed(store: Store, names: set[str]) -> bool:
    return all(not x.live for x in await store.leases.leases() if x.name in names)


async def test_a_refused_ministry_result_sent_again_is_one_row_seen_twice(store: Store) -> None:
    """The ministry quarantine's upsert adds to the row it keeps: its `seen + 1` names the
    table's column (PostgreSQL finds a bare one ambiguous with the refused row's)."""
    ministries = store.slice("ministries", SqliteMinistries)
    for reason in ("first reason", "second reason"):
        await ministries.quarantine("land", "fp-1", "push", "bad_value", reason, CODE, {"a": 1})
    await ministries.quarantine("land", "fp-2", "poll", "missing", "no code", None, {"b": 2})
    await ministries.quarantine("tax", "fp-1", "push", "bad_value", "elsewhere", CODE, {"a": 1})
    kept = await ministries.quarantined("land")
    assert [(q.reason, q.dossier_code, q.item, q.seen) for q in kept] == [
        ("no code", None, {"b": 2}, 1),
        ("second reason", CODE, {"a": 1}, 2),  # the newest reason, counted twice
    ]
    assert kept[1].first_at <= kept[1].last_at
    assert len(await ministries.quarantined(None)) == 3


async def test_a_released_lease_is_free_at_once_and_only_its_holder_releases(
    store: Store,
) -> None:
    await store.leases.acquire("vdxp-poll", "hub-a", 30)
    assert not await store.leases.release("vdxp-poll", "hub-b")
    assert (await store.leases.acquire("vdxp-poll", "hub-b", 30)).holder == "hub-a"
    assert await store.leases.release("vdxp-poll", "hub-a")
    assert not await store.leases.release("vdxp-poll", "hub-a")
    assert (await store.leases.acquire("vdxp-poll", "hub-b", 30)).holder == "hub-b"


async def test_the_leases_are_listed_by_name_lapsed_ones_too(store: Store) -> None:
    assert await store.leases.leases() == []
    await store.leases.acquire("outbox-sweep", "hub-a", 30)
    lapsing = await store.leases.acquire("alerts", "hub-b", 0.2)
    await store.leases.acquire("payment_platform-checks", "hub-b", 30)
    await store.leases.release("payment_platform-checks", "hub-b")
    listed = await store.leases.leases()
    assert [(x.name, x.holder) for x in listed] == [("alerts", "hub-b"), ("outbox-sweep", "hub-a")]
    await eventually(lambda: _lapsed(store, "alerts"), 10, lambda: f"the lease lapsed ({lapsing})")
    alerts, sweep = await store.leases.leases()
    assert not alerts.live
    assert alerts.remaining_s == 0
    assert sweep.live


async def _lapsed(store: Store, name: str) -> bool:
    return any(x.name == name and not x.live for x in await store.leases.leases())


async def test_clearing_the_leases_frees_every_duty(store: Store) -> None:
    assert await store.leases.clear() == 0
    await store.leases.acquire("alerts", "hub-dead", 30)
    await store.leases.acquire("vdxp-poll", "hub-dead", 30)
    assert await store.leases.clear() == 2
    assert await store.leases.leases() == []
    assert (await store.leases.acquire("alerts", "hub-new", 30)).holder == "hub-new"


async def test_a_lease_lasts_a_positive_time(store: Store) -> None:
    for ttl in (0, -1.0):
        with pytest.raises(ValueError, match="positive"):
            await store.leases.acquire("alerts", "hub-a", ttl)
    assert await store.leases.leases() == []


async def test_ping_answers(store: Store) -> None:
    await store.ping()


async def test_two_replicas_samples_of_one_interval_add_up_and_old_ones_go(store: Store) -> None:
    """Replicas stamp a sample with its interval's start: their counts add up in one row, the
    queue's figures (the broker's, alike for all) are the latest, the last success the latest
    of all, whichever replica wrote it first."""
    now = time.time()
    old = Sample(now - 7200, "national_portal", 1, 0, 0, None, None, None)
    first = Sample(now, "national_portal", 5, 0, 2, 3, 0, now - 1)
    second = Sample(now, "national_portal", 2, 1, 0, 4, 1, now - 5)
    third = Sample(now, "national_portal", 0, 0, 0, 4, 1, None)
    await store.dashboard.add_samples([old], keep_s=86400)
    await store.dashboard.add_samples([first], keep_s=86400)
    await store.dashboard.add_samples([second], keep_s=3600)
    await store.dashboard.add_samples([third], keep_s=3600)
    assert await store.dashboard.samples("national_portal", 0) == [
        Sample(now, "national_portal", 7, 1, 2, 4, 1, now - 1)
    ]


async def test_dossiers_are_found_by_part_of_their_code_and_listed_while_unconfirmed(
    store: Store,
) -> None:
    await store.ingest(
        [record(CODE, S.accepted, T0, "r1"), record(OTHER, S.accepted, T0, "r2")], T0
    )
    total, hits = await store.dashboard.find_dossiers("h41-261201-000", "", 1, 0)
    assert (total, [h.code for h in hits]) == (2, [CODE])
    total, hits = await store.dashboard.find_dossiers("1.00123", "", 10, 1)
    assert (total, [(h.code, h.matched) for h in hits]) == (2, [(OTHER, "procedure")])
    now = datetime.now(UTC)
    total, rows = await store.dashboard.stuck([PORTAL], StuckFilter(), now, 10, 0)
    assert (total, [r.code for r in rows]) == (2, [CODE, OTHER])
    await store.delivery_done(PORTAL, [Confirmation(CODE, 1, [])])
    await store.record_delivery(OTHER, ELSEWHERE, "refused", "no such procedure")
    total, rows = await store.dashboard.stuck([PORTAL], StuckFilter(), now, 10, 0)
    assert sorted((r.code, r.destination, r.outcome) for r in rows) == [
        (OTHER, ELSEWHERE, "refused"),
        (OTHER, PORTAL, None),
    ]
    assert total == 2


async def test_failed_log_ins_lock_a_name_then_start_again(store: Store) -> None:
    now = time.time()
    for n in range(1, 3):
        state = await store.dashboard.login_failed("op|127.0.0.1", now + n, 60, 3, 300)
        assert (state.failures, state.locked_until) == (n, 0)
    locked = await store.dashboard.login_failed("op|127.0.0.1", now + 3, 60, 3, 300)
    assert locked.failures == 0
    assert locked.locked_until == pytest.approx(now + 303)
    assert await store.dashboard.login_state("op|127.0.0.1") == locked
    later = await store.dashboard.login_failed("op|127.0.0.1", now + 400, 60, 3, 300)
    assert later.failures == 1
    assert later.locked_until == pytest.approx(now + 303)


async def test_a_hostile_name_a_door_keeps_is_stored_and_found_again(store: Store) -> None:
    """A log-in's name is kept as the door wrote it (`writable`): a NUL, which PostgreSQL's
    text refuses, and a lone surrogate, which no UTF-8 store holds, both escaped."""
    now = time.time()
    name = writable("ad\x00min\ud800")
    key = f"{name}|127.0.0.1"
    failed = await store.dashboard.login_failed(key, now, 60, 3, 300)
    assert await store.dashboard.login_state(key) == failed
    assert await store.dashboard.login_state("admin|127.0.0.1") is None
    await store.audit(name, "login.failed", "dashboard", {"client": "127.0.0.1"})
    (entry,) = await store.audit_entries(10)
    assert entry.actor == name


# -- the upgrade from DVCQG's columns to delivery state per destination --------------------------

SENT_AT = "2026-12-01T03:00:01+00:00"


def sqlite_before_0008(folder: Path) -> None:
    """A SQLite store at the schema before migration 0008, holding what the hub wrote then:
    DVCQG's state in `dossiers.portal_*` and `dossier_events.portal_sent_at`.

    CODE: version 3 confirmed, its first step confirmed, the second not. OTHER: version 1 of 2
    confirmed. THIRD: nothing confirmed. FOURTH: everything confirmed."""
    db = sqlite3.connect(folder / "hub.db", isolation_level=None)
    db.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    db.execute("BEGIN")
    for version, name, sql in _migrations(built_in()):
        if version >= 8:
            continue
        for statement in _split_sql(sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, "then"))
    dossiers = [  # code, version, portal_version, portal_holds, portal_status_at
        (CODE, 3, 3, 1, (T0 + timedelta(hours=2)).timestamp()),
        (OTHER, 2, 1, 1, T0.timestamp()),
        (THIRD, 1, 0, 0, None),
        (FOURTH, 1, 1, 1, T0.timestamp()),
    ]
    for seq, (code, version, confirmed, holds, status_at) in enumerate(dossiers, 1):
        db.execute(
            "INSERT INTO dossiers (code, status, status_key, record_json, record_key, version, "
            "feed_seq, updated_at, portal_version, portal_holds, portal_status_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                code,
                int(S.accepted),
                json.dumps([T0.isoformat(), 0, int(S.accepted)]),
                DossierRecord(
                    dossier_code=code, status=S.accepted, procedure_code="1.001234", received_at=T0
                ).model_dump_json(),
                json.dumps([T0.isoformat(), 0, int(S.accepted)]),
                version,
                seq,
                T0.isoformat(),
                confirmed,
                holds,
                status_at,
            ),
        )
    events = [  # event, portal_sent_at
        (record(CODE, S.accepted, T0, "r1"), None),
        (step(CODE, S.processing, T0 + timedelta(hours=1), "s1"), SENT_AT),
        (step(CODE, S.processing, T0 + timedelta(hours=2), "s2"), None),
        (record(OTHER, S.accepted, T0, "r2"), None),
        (record(THIRD, S.accepted, T0, "r3"), None),
        (step(FOURTH, S.processing, T0, "s4"), SENT_AT),
    ]
    for event, sent_at in events:
        db.execute(
            "INSERT INTO dossier_events (idem_key, dossier_code, kind, status, occurred_at, "
            "received_at, source_system, payload, applied, portal_sent_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                event.idempotency_key,
                event.dossier_code,
                event.kind,
                int(event.status),
                event.occurred_at.isoformat(),
                T0.isoformat(),
                event.source_system,
                event.model_dump_json(),
                1,
                sent_at,
            ),
        )
    db.execute("UPDATE feed_sequence SET seq = 4")
    db.execute(
        "INSERT INTO sync_lag (minute, bucket, n) VALUES (?, 120, 3)", (int(T0.timestamp() // 60),)
    )
    db.execute("COMMIT")
    db.close()


# How to write each back-end's store as the hub did before migration 0008.
LEGACY: dict[str, Callable[[Path], None]] = {"sqlite": sqlite_before_0008}


@pytest.mark.parametrize("backend", sorted(LEGACY))
async def test_an_old_store_upgrades_with_what_dvcqg_confirmed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    LEGACY[backend](tmp_path)
    async with BACKENDS[backend](tmp_path, request) as store:
        codes = [CODE, OTHER, THIRD, FOURTH]
        work = await store.delivery_work(PORTAL, codes)
        assert {c: (w.version, w.confirmed_version, w.holds) for c, w in work.items()} == {
            CODE: (3, 3, True),
            OTHER: (2, 1, True),
            THIRD: (1, 0, False),
            FOURTH: (1, 1, True),
        }
        assert [s.step.processed_at for s in work[CODE].steps] == [T0 + timedelta(hours=2)]
        assert [c for c, w in work.items() if w.up_to_date] == [FOURTH]
        assert all(not w.steps for c, w in work.items() if c != CODE)
        view = await store.dossier(CODE)
        assert view.confirmed == {PORTAL: 3}
        assert [h.confirmed for h in view.history] == [{}, {PORTAL: SENT_AT}, {}]
        assert (await store.dossier(THIRD)).confirmed == {}
        figures = await store.dashboard.completeness(PORTAL)
        assert (figures.dossiers, figures.unconfirmed) == (4, 3)
        assert await store.dashboard.lag_histogram(PORTAL, 0) == {120: 3}
        # Nothing of DVCQG's state leaks to another destination.
        others = await store.delivery_work(ELSEWHERE, codes)
        assert all(w.confirmed_version == 0 and not w.holds for w in others.values())
        assert len(others[CODE].steps) == 2
        assert (await store.dashboard.completeness(ELSEWHERE)).unconfirmed == 4
        assert await store.dashboard.lag_histogram(ELSEWHERE, 0) == {}

        # The upgraded state goes on as any other: the status time DVCQG confirmed for
        # OTHER was kept, so confirming the same status again counts no new lag.
        await store.delivery_done(
            PORTAL,
            [
                Confirmation(OTHER, 2, [], T0),
                Confirmation(CODE, 0, [s.event_id for s in work[CODE].steps]),
            ],
        )
        assert await store.dashboard.lag_histogram(PORTAL, 0) == {120: 3}
        work = await store.delivery_work(PORTAL, codes)
        assert [c for c, w in work.items() if not w.up_to_date] == [THIRD]
        assert (await store.dashboard.completeness(PORTAL)).unconfirmed == 1
        await store.delivery_done(PORTAL, [Confirmation(THIRD, 1, [], T0 + timedelta(hours=3))])
        assert sum((await store.dashboard.lag_histogram(PORTAL, 0)).values()) == 4
        assert (await store.dashboard.completeness(PORTAL)).unconfirmed == 0


def test_the_sqlite_upgrade_drops_dvcqg_columns(tmp_path: Path) -> None:
    sqlite_before_0008(tmp_path)

    async def upgrade() -> None:
        async with SqliteStore.open(tmp_path / "hub.db"):
            pass

    asyncio.run(upgrade())
    db = sqlite3.connect(tmp_path / "hub.db")
    columns = {
        f"{table}.{row[1]}"
        for table in ("dossiers", "dossier_events")
        for row in db.execute(f"PRAGMA table_info({table})")
    }
    db.close()
    assert not [c for c in columns if "portal" in c]


def test_journal_lines_from_before_reason_codes_keep_their_text(tmp_path: Path) -> None:
    """A store journaled before migration 0010: its lines keep their text with no code (the
    console shows the text), and the trouble trigger goes on with codes after it."""
    path = tmp_path / "hub.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    for version, name, sql in _migrations(built_in()):
        if version >= 10:
            continue
        db.execute("BEGIN")
        for statement in _split_sql(sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, "then"))
        db.execute("COMMIT")
    db.execute(
        "INSERT INTO deliveries (dossier_code, connector, outcome, detail, at) "
        "VALUES (?, ?, 'refused', 'DVCQG refused: 07 old', ?)",
        (CODE, PORTAL, T0.isoformat()),
    )
    db.close()

    async def upgrade() -> tuple[list[tuple[str, str | None, str | None]], list[Trouble]]:
        async with SqliteStore.open(path) as store:
            await store.record_delivery(CODE, PORTAL, "replayed", "by an: old", "07", {"by": "an"})
            view = await store.dossier(CODE)
            return [
                (d.outcome, d.detail, d.reason_code) for d in view.deliveries
            ], await store.dashboard.trouble(CODE)

    lines, trouble = asyncio.run(upgrade())
    assert lines == [
        ("refused", "DVCQG refused: 07 old", None),
        ("replayed", "by an: old", "07"),
    ]
    assert [(t.outcome, t.reason, t.reason_code) for t in trouble] == [
        ("replayed", "DVCQG refused: 07 old", None)  # the replay keeps what it replays
    ]


def test_migrations_are_split_where_sqlite_ends_a_statement() -> None:
    sql = """-- a comment; with a semicolon
CREATE TABLE t (note TEXT DEFAULT 'a;b');  -- trailing; comment
CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
    UPDATE t SET note = 'x;y' WHERE rowid = NEW.rowid;
END;
INSERT INTO t (note) VALUES ('semi;colon');
"""
    statements = _split_sql(sql)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER")
    assert statements[1].endswith("END;")
    with pytest.raises(ValueError, match="ends inside a statement"):
        _split_sql("CREATE TABLE u (x TEXT")
