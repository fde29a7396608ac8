"""The store on PostgreSQL through asyncpg (`store.backend: postgresql`).

It is the SQLite store's logic on another engine: every query of `SqliteStore`, of its
dashboard half and of the connectors' store slices runs here as written, rewritten for
PostgreSQL by `hub.store.dialect` (decision 0083). What differs lives here: the connection (a
pool of one, which replaces a connection the server dropped, so the store comes back by itself
after a PostgreSQL restart), transactions, migrations and the translation of errors.

Like SQLite's, the store keeps one lock: no two coroutines of a process interleave inside a
transaction, and the connection a slice reaches through `db` is the one of the transaction or
read it is inside (`transaction()`, `reading()`); outside them `db` refuses. Several processes
on one database (replicas) are issue 21's second step, not this module's promise yet.

Migrations are the SQLite ones' twins: `migrations/postgresql/NNNN_name.sql` beside each
SQLite folder (the core's and every connector's), the same numbers and names, one sequence.
A connector whose migration has no PostgreSQL twin cannot run on PostgreSQL: the store says
which and refuses to open. Each migration runs whole in one transaction, under an advisory
lock, so two hubs starting at once never apply one twice. The database must be UTF-8 with
the C collation (the store compares codes and times byte by byte, as SQLite does).

This module must never log or raise the store's URL: it holds the password.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, NoReturn, cast

import aiosqlite
import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from hub.errors import ConfigError, StoreUnavailable
from hub.plugins import Connector, built_in, migration_folders
from hub.store.dialect import postgresql
from hub.store.sqlite import SqliteStore, _migrations, _now_iso

log = structlog.get_logger(__name__)

# Errors of the server or the connection: the store is unavailable (the caller answers 503 or
# "99", the message waits). A statement the dialect cannot rewrite is a bug, not an outage.
_UNAVAILABLE = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)
# Of those, the ones after which the connection cannot be trusted: it is closed, not pooled.
_BROKEN = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # the server ended the session
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)
_MIGRATION_LOCK = 0x4855_4253_544F_5245  # "HUBSTORE": the advisory lock migrations run under
_WRITE_LOCK = 0x4855_4257_5249_5445  # "HUBWRITE": every write transaction takes it, to its end
# A write transaction's start and its lock in one round trip (the simple-query protocol runs
# both statements of the string in order; the lock's number is a constant, not an input).
_BEGIN_WRITE = f"BEGIN; SELECT pg_advisory_xact_lock({_WRITE_LOCK})"
_C_COLLATIONS = {"C", "POSIX", "C.UTF-8", "C.utf8"}
_CONNECT_TIMEOUT_S = 10.0
QUICK_READERS = 2  # connections for reads that need no consistent view (`_quick_read`)


class PgResult:
    """What the store's code reads of a statement it ran: how many rows it changed."""

    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount


class PgConnection:
    """The part of aiosqlite's `Connection` the store's SQL uses (`execute`, `executemany`,
    `execute_fetchall`), on one asyncpg connection: statements are rewritten for PostgreSQL,
    rows are asyncpg `Record`s (read by position or by name, like `aiosqlite.Row`)."""

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> PgResult:
        status = await self._conn.execute(postgresql(sql), *parameters)
        return PgResult(_rowcount(status))

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> None:
        rows = list(parameters)
        if rows:
            await self._conn.executemany(postgresql(sql), rows)

    async def execute_fetchall(
        self, sql: str, parameters: Sequence[Any] = ()
    ) -> list[asyncpg.Record]:
        return list(await self._conn.fetch(postgresql(sql), *parameters))


class _Outside:
    """`db` outside a transaction or a read: every use is a bug the store names."""

    def __getattr__(self, name: str) -> NoReturn:
        raise RuntimeError("the store's connection is used only inside transaction()/reading()")


def _rowcount(status: str) -> int:
    """Rows a command changed, from its status ("DELETE 3", "INSERT 0 1"); 0 for others."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _as_db(conn: PgConnection | _Outside) -> aiosqlite.Connection:
    # The shared store code is typed for aiosqlite's connection; PgConnection answers the part
    # of it that code uses, which the contract and integration suites run on PostgreSQL.
    return cast(aiosqlite.Connection, conn)


class PostgresStore(SqliteStore):
    """The store on PostgreSQL: `async with PostgresStore.connect(url) as store`."""

    def __init__(self, pool: asyncpg.Pool, quick: asyncpg.Pool | None = None) -> None:
        super().__init__(_as_db(_Outside()))
        self._pool = pool
        # Reads that need no consistent view with the writes (`_quick_read`: is this dossier
        # known, asked by every payment callback) go through connections of their own, as
        # SQLite's read-only connection: they never queue behind the writer's transactions.
        self._quick_pool = quick

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        connectors: tuple[Connector, ...] | None = None,
        *,
        migrate: bool = True,
    ) -> AsyncIterator[PostgresStore]:
        """The store on the database at `url`, migrated (the core's migrations and those of
        `connectors`, by default the built-in ones) unless `migrate` is False (a second
        connection for the dashboard's reads, to a store another one migrated)."""
        found = connectors if connectors is not None else built_in()
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=1, timeout=_CONNECT_TIMEOUT_S, command_timeout=60.0,
                reset=_keep_session,
            )  # fmt: skip
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"cannot reach the PostgreSQL store: {_why(exc)}") from None
        quick: asyncpg.Pool | None = None
        try:
            if migrate:  # the writer's store; a reader's store reads through its one pool
                quick = await asyncpg.create_pool(
                    url, min_size=1, max_size=QUICK_READERS, timeout=_CONNECT_TIMEOUT_S,
                    command_timeout=60.0, reset=_keep_session,
                )  # fmt: skip
        except _UNAVAILABLE as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot reach the PostgreSQL store: {_why(exc)}") from None
        try:
            store = cls(pool, quick)
            if migrate:
                await store._check_database()
                await store._migrate(found)
                await store._fill_owner_keys()
            store._attach(found)
            yield store
        finally:
            if quick is not None:
                await quick.close()
            await pool.close()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        path: Path,
        synchronous: str = "FULL",
        connectors: tuple[Connector, ...] | None = None,
    ) -> AsyncIterator[SqliteStore]:
        raise TypeError("a PostgreSQL store is opened by URL: PostgresStore.connect(url)")
        yield  # pragma: no cover - makes this a generator, as the context manager needs

    @classmethod
    @asynccontextmanager
    async def open_reader(
        cls, path: Path, connectors: tuple[Connector, ...] | None = None
    ) -> AsyncIterator[SqliteStore]:
        raise TypeError("a PostgreSQL store is opened by URL: PostgresStore.connect(url)")
        yield  # pragma: no cover - makes this a generator, as the context manager needs

    # -- connections and transactions ---------------------------------------------------------

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                async with self._pool.acquire() as conn, _discarding_broken(conn):
                    # One writer at a time across every process on this database, as SQLite's
                    # BEGIN IMMEDIATE: the store's writes read the state they change first
                    # (a dossier's newest change, a delivery's version), and two replicas'
                    # writes interleaved would let the later commit win, older or not.
                    await conn.execute(_BEGIN_WRITE)
                    self._db = _as_db(PgConnection(conn))
                    try:
                        yield self._db
                    except BaseException:
                        await _roll_back(conn)
                        raise
                    finally:
                        self._db = _as_db(_Outside())
                    if await conn.execute("COMMIT") != "COMMIT":  # PostgreSQL ended it in error
                        raise StoreUnavailable("store transaction failed: rolled back at commit")
            except _UNAVAILABLE as exc:
                raise StoreUnavailable(f"store transaction failed: {_why(exc)}") from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[None]:
        async with self._lock:
            try:
                async with self._pool.acquire() as conn, _discarding_broken(conn):
                    self._db = _as_db(PgConnection(conn))
                    try:
                        yield
                    finally:
                        self._db = _as_db(_Outside())
            except _UNAVAILABLE as exc:
                raise StoreUnavailable(f"store read failed: {_why(exc)}") from exc

    @asynccontextmanager
    async def _quick_read(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._quick_pool is None:
            async with self._read():
                yield self.db
            return
        try:
            async with self._quick_pool.acquire() as conn, _discarding_broken(conn):
                yield _as_db(PgConnection(conn))
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"store read failed: {_why(exc)}") from exc

    # -- the database and its schema ----------------------------------------------------------

    async def _check_database(self) -> None:
        async with self._read():
            rows = await self.db.execute_fetchall(
                "SELECT current_setting('server_encoding'), datcollate FROM pg_database "
                "WHERE datname = current_database()"
            )
        encoding, collation = next(iter(rows))
        if encoding != "UTF8" or collation not in _C_COLLATIONS:
            raise ConfigError(
                f"the PostgreSQL store's database is {encoding} with collation {collation}: "
                "the hub needs UTF8 and the C collation (CREATE DATABASE ... TEMPLATE template0 "
                "ENCODING 'UTF8' LOCALE 'C'; see docs/how-to/production.md)"
            )

    async def _migrate(self, connectors: tuple[Connector, ...]) -> None:
        wanted = list(postgresql_migrations(connectors))
        async with self._lock:
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
                    try:
                        await _apply(conn, wanted)
                    finally:
                        try:
                            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
                        except _UNAVAILABLE:
                            conn.terminate()  # the session, and so its lock, ends with it
            except _UNAVAILABLE as exc:
                raise StoreUnavailable(f"store migration failed: {_why(exc)}") from exc


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """What the pools run when a connection is given back, instead of asyncpg's reset query
    (one more round trip each time): nothing. The store keeps no session state: its write
    lock is the transaction's, the migration lock is released by `_migrate` (or its
    connection closed), and asyncpg itself rolls back a transaction left open."""


async def _roll_back(conn: PoolConnectionProxy[asyncpg.Record]) -> None:
    """End a write transaction that failed. A connection that cannot even do that is closed
    (the pool opens a new one), so no transaction stays open on it."""
    try:
        await conn.execute("ROLLBACK")
    except (*_UNAVAILABLE, asyncio.CancelledError):
        conn.terminate()


@asynccontextmanager
async def _discarding_broken(conn: PoolConnectionProxy[asyncpg.Record]) -> AsyncIterator[None]:
    """Close the connection when what went wrong leaves it in doubt (the server ended the
    session, the socket failed, a time-out mid-reply): the pool then opens a new one for the
    next transaction, instead of handing out a connection that fails again."""
    try:
        yield
    except _BROKEN:
        conn.terminate()
        raise


async def _apply(
    conn: PoolConnectionProxy[asyncpg.Record], wanted: list[tuple[int, str, str]]
) -> None:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    for version, name, sql in wanted:
        if version in done:
            continue
        async with conn.transaction():
            await conn.execute(sql)  # a whole file: PostgreSQL runs its statements in order
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2, $3)", version, name, _now_iso()
            )
        log.info("store_migrated", version=version, migration=name, backend="postgresql")


def postgresql_migrations(connectors: tuple[Connector, ...]) -> Iterable[tuple[int, str, str]]:
    """The PostgreSQL twins of the SQLite migrations (`_migrations`), in the same order: the
    file of the same name in the `postgresql/` folder beside each. A missing twin is refused
    (`ConfigError`), naming it."""
    folders = [resources.files("hub") / "migrations", *migration_folders(connectors)]
    twins: dict[str, Traversable] = {}
    for folder in folders:
        pg = folder / "postgresql"
        if pg.is_dir():
            twins.update({f.name: f for f in pg.iterdir() if f.name.endswith(".sql")})
    for version, name, _sql in _migrations(connectors):
        twin = twins.get(name)
        if twin is None:
            raise ConfigError(
                f"migration {name} has no PostgreSQL twin (migrations/postgresql/{name} beside "
                "it): its connector runs on SQLite only"
            )
        yield version, name, twin.read_text(encoding="utf-8")


def _why(exc: BaseException) -> str:
    """What went wrong, without the URL (asyncpg's messages never carry the password)."""
    return f"{type(exc).__name__}: {exc}"[:300]
