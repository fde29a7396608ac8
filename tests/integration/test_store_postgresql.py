"""What only the PostgreSQL store has to promise, on a real server (the contract suite,
`tests/contract/test_store_contract.py`, proves the rest on both back-ends): its migrations are
the SQLite ones' twins, applied once even by two hubs starting together; a connector without
PostgreSQL migrations, or a database the store cannot compare text in, is refused by name; a
server it cannot reach is an outage (`StoreUnavailable`, no password in it), and after a
connection the server dropped the store comes back by itself.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from hub.errors import ConfigError, StoreUnavailable
from hub.plugins import Connector, built_in
from hub.store.postgresql import PostgresStore, postgresql_migrations
from hub.store.sqlite import _migrations
from schemas.canonical import DossierEvent, DossierRecord, DossierStatus
from sims.postgres_node import drop_database, psql
from sims.rabbitmq_node import find_free_port
from tests.plugins.echo import EchoConfig, EchoConnector

CODE = "000.00.41.H41-261201-0001"
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def event(event_id: str) -> DossierEvent:
    return DossierEvent(
        event_id=event_id,
        source_system="onestop",
        kind="record",
        dossier_code=CODE,
        status=DossierStatus.accepted,
        occurred_at=T0,
        record=DossierRecord(
            dossier_code=CODE, status=DossierStatus.accepted, procedure_code="1.001234"
        ),
    )


def test_every_migration_has_its_postgresql_twin() -> None:
    sqlite = [(v, n) for v, n, _ in _migrations(built_in())]
    twins = [(v, n) for v, n, _ in postgresql_migrations(built_in())]
    assert twins == sqlite
    assert len(sqlite) >= 9


class SqliteOnly(Connector):
    name = "sqlite_only"
    config_model = EchoConfig
    migrations = "tests.plugins.sqlite_only"  # 5101_sqlite_only.sql, no postgresql/ twin


def test_a_connector_without_postgresql_migrations_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"5101_sqlite_only\.sql has no PostgreSQL twin"):
        list(postgresql_migrations((*built_in(), SqliteOnly())))


def test_a_plug_in_with_its_twins_runs_on_postgresql() -> None:
    """The echo plug-in ships `migrations/postgresql/5001_echo_sent.sql` beside its migration."""
    names = [n for _, n, _ in postgresql_migrations((*built_in(), EchoConnector()))]
    assert names[-1] == "5001_echo_sent.sql"


async def test_two_hubs_starting_together_migrate_once(postgres_database: str) -> None:
    async def open_and_ingest(n: int) -> None:
        async with PostgresStore.connect(postgres_database) as store:
            await store.ingest([event(f"e{n}")], T0)

    await asyncio.gather(open_and_ingest(1), open_and_ingest(2))
    conn = await asyncpg.connect(postgres_database)
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        events = await conn.fetchval("SELECT COUNT(*) FROM dossier_events")
    finally:
        await conn.close()
    assert sorted(versions) == [v for v, _, _ in _migrations(built_in())]
    assert events == 2


@pytest.fixture
def ascii_database(postgres_server_url: str) -> Iterator[str]:
    name = f"a{secrets.token_hex(6)}"
    psql(
        postgres_server_url,
        f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'SQL_ASCII' LOCALE 'C'",
    )
    yield urlunsplit(urlsplit(postgres_server_url)._replace(path=f"/{name}"))
    drop_database(postgres_server_url, name)


async def test_a_database_that_is_not_utf8_with_c_collation_is_refused(ascii_database: str) -> None:
    with pytest.raises(ConfigError, match="SQL_ASCII with collation C: the hub needs UTF8"):
        async with PostgresStore.connect(ascii_database):
            pass


async def test_a_server_it_cannot_reach_is_unavailable_without_the_password() -> None:
    password = secrets.token_urlsafe(12)
    url = f"postgresql://hub:{password}@127.0.0.1:{find_free_port()}/hub"
    with pytest.raises(StoreUnavailable) as caught:
        async with PostgresStore.connect(url):
            pass
    assert "cannot reach the PostgreSQL store" in str(caught.value)
    assert password not in str(caught.value)
    assert caught.value.__cause__ is None  # the driver's exception, with its details, is dropped


async def test_a_dropped_connection_is_an_outage_then_the_store_comes_back(
    postgres_database: str,
) -> None:
    async with PostgresStore.connect(postgres_database) as store:
        await store.ingest([event("e1")], T0)
        admin = await asyncpg.connect(postgres_database)
        try:
            ended = await admin.fetchval(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert ended == 2  # the writer's connection and the quick reads' (`QUICK_READERS`)
        # The transaction that meets the dropped connection fails as an outage (or none does,
        # when the driver saw the connection close first); the pool then hands a new one:
        # nothing to restart, nothing lost, nothing twice. The quick reads' pool alike.
        try:
            outcome = await store.ingest([event("e2")], T0)
        except StoreUnavailable:
            outcome = await store.ingest([event("e2")], T0)
        assert [r.duplicate for r in outcome.results] == [False]
        try:
            known = await store.known_dossiers([CODE])
        except StoreUnavailable:
            known = await store.known_dossiers([CODE])
        assert known == {CODE}
        view = await store.dossier(CODE)
        assert [h.id for h in view.history] == sorted(h.id for h in view.history)
        assert len(view.history) == 2


def change(code: str, status: DossierStatus, minutes: int, event_id: str) -> DossierEvent:
    at = T0 + timedelta(minutes=minutes)
    return DossierEvent(
        event_id=event_id,
        source_system="onestop",
        kind="record",
        dossier_code=code,
        status=status,
        occurred_at=at,
        record=DossierRecord(dossier_code=code, status=status, procedure_code="1.001234"),
    )


async def test_two_replicas_writing_one_dossier_at_once_never_take_it_back(
    postgres_database: str,
) -> None:
    """Two stores on one database (two replicas' doors), each taking a change of the same
    dossier at the same moment, the older on one and the newer on the other: every time the
    dossier ends at the newer change, with both in its history and one version each. (Each
    write reads the dossier's state first: without a lock across processes, two such writes
    interleave and the later commit wins, older or not.)"""
    async with (
        PostgresStore.connect(postgres_database) as one,
        PostgresStore.connect(postgres_database, migrate=False) as other,
    ):
        for n in range(40):
            code = f"000.00.41.H41-261201-{1000 + n:04d}"
            first = one.ingest([change(code, DossierStatus.accepted, 0, f"r{n}")], T0)
            await first
            older = change(code, DossierStatus.processing, 1, f"p{n}")
            newer = change(code, DossierStatus.processed, 2, f"d{n}")
            stores = (one, other) if n % 2 else (other, one)
            await asyncio.gather(stores[0].ingest([older], T0), stores[1].ingest([newer], T0))
            view = await one.dossier(code)
            assert view.snapshot is not None
            assert view.snapshot.status is DossierStatus.processed, (n, view.snapshot)
            assert len(view.history) == 3, (n, view.history)


async def _swallowing_an_error(store: PostgresStore) -> None:
    async with store.transaction() as db:
        await db.execute(
            "INSERT INTO outbox (routing_key, body, created_at) VALUES (?,?,?)", ("lost", "{}", 0.0)
        )
        with pytest.raises(asyncpg.PostgresError):
            await db.execute("SELECT 1/0")


async def _failing(store: PostgresStore) -> None:
    async with store.transaction() as db:
        await db.execute(
            "INSERT INTO outbox (routing_key, body, created_at) VALUES (?,?,?)",
            ("undone", "{}", 0.0),
        )
        raise ZeroDivisionError  # a bug in a work: its writes undone, no commit


async def test_a_transaction_postgresql_aborted_is_not_taken_for_committed(
    postgres_database: str,
) -> None:
    """The store begins and commits its write transactions itself (`_BEGIN_WRITE`). A work
    that swallowed a statement's error leaves PostgreSQL's transaction aborted, and its COMMIT
    then answers ROLLBACK: the store says so (`StoreUnavailable`) instead of returning as if
    its writes were kept. A work that raises has its writes undone. The connection serves the
    next transaction."""
    async with PostgresStore.connect(postgres_database) as store:
        with pytest.raises(StoreUnavailable, match="rolled back at commit"):
            await _swallowing_an_error(store)
        with pytest.raises(ZeroDivisionError):
            await _failing(store)
        outcome = await store.ingest([event("e1")], T0)
        assert [r.duplicate for r in outcome.results] == [False]
        pending = await store.outbox_pending(older_than_s=0, limit=10)
        assert [m.routing_key for m in pending] == [m.routing_key for m in outcome.outbox]


async def test_no_lock_is_left_held_by_the_store_between_transactions(
    postgres_database: str,
) -> None:
    """Connections go back to the pools without asyncpg's reset query (`_keep_session`): so
    the store must leave nothing behind on them. Between its transactions no advisory lock is
    held on the database (the migration lock was released, the write lock ended with its
    transaction) and no session of the store is inside a transaction."""
    async with PostgresStore.connect(postgres_database) as store:
        await store.ingest([event("e1")], T0)
        with pytest.raises(ZeroDivisionError):
            await _failing(store)
        assert await store.known_dossiers([CODE]) == {CODE}
        admin = await asyncpg.connect(postgres_database)
        try:
            locks = await admin.fetchval(
                "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND a.datname = current_database()"
            )
            open_transactions = await admin.fetchval(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            )
        finally:
            await admin.close()
        assert (locks, open_transactions) == (0, 0)
