"""The store contract: what every back-end of `hub.store.base.Store` must do, addressed directly.

Parametrized by back-end (`BACKENDS`): the SQLite store passes it now; a PostgreSQL back-end
is added to the list and must pass the same tests, unchanged. Each test opens a store of its
own. No broker, no HTTP: only the store's promises (idempotent ingest, the outbox, what DVCQG
still lacks, the change feed, sessions, the audit log, paused connectors).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.store.base import PortalDelivery, Store
from hub.store.sqlite import DOSSIER_CHANGED, SqliteStore
from schemas.canonical import DossierEvent, DossierRecord, DossierStatus, ProcessingStep

CODE = "000.00.41.H41-261201-0001"
OTHER = "000.00.41.H41-261201-0002"
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
S = DossierStatus

Opener = Callable[[Path], AbstractAsyncContextManager[SqliteStore]]
BACKENDS: dict[str, Opener] = {"sqlite": lambda folder: SqliteStore.open(folder / "hub.db")}


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with BACKENDS[request.param](tmp_path) as opened:
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


async def test_the_outbox_keeps_a_row_until_it_is_done(store: Store) -> None:
    outcome = await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    pending = await store.outbox_pending(older_than_s=0, limit=10)
    assert [m.id for m in pending] == [m.id for m in outcome.outbox]
    await store.outbox_done([m.id for m in pending])
    assert await store.outbox_pending(older_than_s=0, limit=10) == []


async def test_what_dvcqg_lacks_until_it_confirms(store: Store) -> None:
    await store.ingest(
        [
            record(CODE, S.accepted, T0, "r1"),
            step(CODE, S.processing, T0 + timedelta(hours=1), "s1"),
        ],
        T0,
    )
    work = (await store.portal_work([CODE, OTHER]))[CODE]
    assert OTHER not in await store.portal_work([OTHER])
    assert not work.up_to_date
    assert work.record is not None
    assert [s.step.status for s in work.steps] == [S.processing]
    await store.portal_delivered(
        [PortalDelivery(CODE, work.version, [s.event_id for s in work.steps], work.status_at)]
    )
    assert (await store.portal_work([CODE]))[CODE].up_to_date
    assert (await store.dossier(CODE)).portal_version == work.version


async def test_deliveries_are_recorded_in_the_dossiers_timeline(store: Store) -> None:
    await store.ingest([record(CODE, S.accepted, T0, "r1")], T0)
    await store.record_delivery(CODE, "national_portal", "refused", "DVCQG refused: 07")
    (entry,) = (await store.dossier(CODE)).deliveries
    assert (entry.connector, entry.outcome, entry.detail) == (
        "national_portal",
        "refused",
        "DVCQG refused: 07",
    )


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


async def test_ping_answers(store: Store) -> None:
    await store.ping()


def test_migrations_are_split_where_sqlite_ends_a_statement() -> None:
    from hub.store.sqlite import _split_sql

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
