"""The embedded store: SQLite in WAL mode through aiosqlite.

One connection, one lock: aiosqlite runs statements on its own thread, and the lock keeps
each transaction whole (no other coroutine's statements inside it). Writes that arrive
together can share one transaction and one commit (`grouped`: a group commit, each write in a
savepoint of its own); reads on the hot path that need no transaction of their own go through
a second, read-only connection (`known_dossiers`), so they never queue behind the writes.
Schema changes are the numbered files in `hub/migrations/`, applied in order at open and
recorded in `schema_migrations`. `synchronous=FULL` by default so that a success reply sent
after commit survives a power cut too, not only a process crash.

This module must never decide business rules: folding events is `hub.dossier_state`'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable
from urllib.parse import quote

import aiosqlite
import structlog

from hub.dossier_state import DossierState, OrderKey, apply
from hub.errors import StoreUnavailable
from hub.files import private_dir, private_file
from hub.masking import name_key
from hub.plugins import Connector, built_in, migration_floor, migration_folders
from hub.store.base import (
    AuditEntry,
    Confirmation,
    DeliveryEntry,
    DeliveryWork,
    DossierView,
    FeedItem,
    FiringAlert,
    HistoryEntry,
    IngestOutcome,
    IngestResult,
    JournalLine,
    OutboxMessage,
    PausedConnector,
    PendingStep,
    reason_args_of,
)
from hub.store.dashboard import SqliteDashboard
from hub.store.leases import SqliteLeases
from hub.synclag import bucket_of
from schemas.canonical import (
    DossierEvent,
    DossierRecord,
    DossierSnapshot,
    DossierStatus,
)
from schemas.payment import PaymentRecord

log = structlog.get_logger(__name__)
T = TypeVar("T")


@runtime_checkable
class PaymentsOf(Protocol):
    """A store slice that knows a dossier's payments (shown with the dossier)."""

    async def for_dossiers(self, codes: list[str]) -> list[PaymentRecord]: ...


DOSSIER_CHANGED = "dossier.changed"
_KNOWN_KEYS_SQL = "SELECT idem_key FROM dossier_events WHERE idem_key IN ({marks})"
_LOAD_ROWS_SQL = (
    "SELECT code, status, status_key, record_json, record_key, version FROM dossiers "
    "WHERE code IN ({marks})"
)
_INSERT_EVENT_SQL = (
    "INSERT INTO dossier_events (idem_key, dossier_code, kind, status, occurred_at, "
    "received_at, source_system, payload, applied) VALUES (?,?,?,?,?,?,?,?,?)"
)
_UPSERT_DOSSIER_SQL = (
    "INSERT INTO dossiers (code, status, status_key, record_json, record_key, version, "
    "feed_seq, updated_at, procedure_code, owner_key) VALUES (?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(code) DO UPDATE SET "
    "status=excluded.status, status_key=excluded.status_key, "
    "record_json=excluded.record_json, record_key=excluded.record_key, "
    "version=excluded.version, feed_seq=excluded.feed_seq, updated_at=excluded.updated_at, "
    "procedure_code=excluded.procedure_code, owner_key=excluded.owner_key"
)
# A dossier changed for every destination holding a state of it: a newer version or a new step.
_MARK_BEHIND_SQL = (
    "UPDATE destination_state SET behind = 1 WHERE behind = 0 AND dossier_code IN ({marks})"
)
_WORK_SQL = (
    "SELECT d.code, d.version, d.record_json, d.status, d.updated_at, d.status_key, "
    "s.version, s.holds, s.behind FROM dossiers d LEFT JOIN destination_state s "
    "ON s.dossier_code = d.code AND s.destination = ? WHERE d.code IN ({marks})"
)
_PENDING_STEPS_SQL = (
    "SELECT e.id, e.dossier_code, e.payload FROM dossier_events e WHERE e.kind = 'step' "
    "AND e.dossier_code IN ({marks}) AND NOT EXISTS (SELECT 1 FROM event_deliveries x "
    "WHERE x.event_id = e.id AND x.destination = ?) ORDER BY e.occurred_at, e.id"
)
_STATUS_BEFORE_SQL = (
    "SELECT d.code, s.status_at FROM dossiers d LEFT JOIN destination_state s "
    "ON s.dossier_code = d.code AND s.destination = ? WHERE d.code IN ({marks})"
)
# A confirmed step, for a history row the hub holds.
_STEP_DONE_SQL = (
    "INSERT OR IGNORE INTO event_deliveries (event_id, destination, sent_at) "
    "SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM dossier_events WHERE id = ?1)"
)
# ?1 dossier, ?2 destination, ?3 version confirmed (0: steps only), ?4 status time confirmed
# for the first time (or NULL). Nothing for a dossier the hub does not hold. Written after the
# confirmed steps, so `behind` says whether the destination still lacks anything: a version
# newer than the newest it confirmed, or a step it has not confirmed.
_UPSERT_STATE_SQL = (
    "INSERT INTO destination_state (dossier_code, destination, version, holds, status_at, "
    "behind) SELECT d.code, ?2, ?3, 1, ?4, CASE WHEN MAX(?3, COALESCE((SELECT s.version FROM "
    "destination_state s WHERE s.dossier_code = ?1 AND s.destination = ?2), 0)) < d.version "
    "OR EXISTS (SELECT 1 FROM dossier_events e WHERE e.dossier_code = ?1 AND e.kind = 'step' "
    "AND NOT EXISTS (SELECT 1 FROM event_deliveries x WHERE x.event_id = e.id "
    "AND x.destination = ?2)) THEN 1 ELSE 0 END FROM dossiers d WHERE d.code = ?1 "
    "ON CONFLICT (dossier_code, destination) DO UPDATE SET "
    "version = MAX(destination_state.version, excluded.version), holds = 1, "
    "status_at = COALESCE(excluded.status_at, destination_state.status_at), "
    "behind = excluded.behind"
)


GROUP_MAX = 256  # works committed together at most


@dataclass
class _Grouped(Generic[T]):
    work: Callable[[aiosqlite.Connection], Awaitable[T]]
    future: asyncio.Future[T]


Fold = Callable[[aiosqlite.Connection, list[Any]], Awaitable[list[Any]]]


@dataclass
class _Pending:
    item: Any
    future: asyncio.Future[Any]


class _Merger:
    """Items submitted while a fold of them commits are folded together in the next: `fold`
    takes the connection and the items, in the order they came, and gives one result per
    item, in one transaction shared with the group commit (`SqliteStore.grouped`). A merged
    fold that fails for a reason other than the store is folded again item by item, so that
    one item's fault fails that item only; a store failure fails them all."""

    def __init__(self, store: SqliteStore, name: str, fold: Fold) -> None:
        self.store, self.name, self.fold = store, name, fold
        self.pending: list[_Pending] = []
        self.task: asyncio.Task[None] | None = None

    async def submit(self, item: Any) -> Any:
        entry = _Pending(item, asyncio.get_running_loop().create_future())
        self.pending.append(entry)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._rounds(), name=f"store-{self.name}")
        return await entry.future

    async def _rounds(self) -> None:
        while self.pending:
            entries, self.pending = self.pending[:GROUP_MAX], self.pending[GROUP_MAX:]
            items = [e.item for e in entries]
            try:
                results = await self.store.grouped(_bound(self.fold, items))
            except StoreUnavailable as exc:
                _fail(entries, exc)
                continue
            except Exception as exc:
                if len(entries) == 1:
                    _fail(entries, exc)
                else:
                    await asyncio.gather(*(self._alone(e) for e in entries))
                continue
            except BaseException as exc:
                _fail(entries, StoreUnavailable(repr(exc)))
                raise
            for entry, result in zip(entries, results, strict=True):
                if not entry.future.done():
                    entry.future.set_result(result)

    async def _alone(self, entry: _Pending) -> None:
        try:
            (result,) = await self.store.grouped(_bound(self.fold, [entry.item]))
        except Exception as exc:
            _fail([entry], exc)
        else:
            if not entry.future.done():
                entry.future.set_result(result)


def _bound(fold: Fold, items: list[Any]) -> Callable[[aiosqlite.Connection], Awaitable[list[Any]]]:
    """`fold` of these `items`, as the work `grouped` runs."""

    async def work(db: aiosqlite.Connection) -> list[Any]:
        return await fold(db, items)

    return work


IngestCall = tuple[list[DossierEvent], datetime]


async def _ingest_calls(db: aiosqlite.Connection, items: list[IngestCall]) -> list[IngestOutcome]:
    """Several calls' events folded by one `ingest_in` (its set-based statements once for
    all); each call given back its own events' results, in order, and the outbox rows of the
    dossiers it was the last to touch (a dossier's row is written once per fold, one caller
    relays it)."""
    events = [e for call_events, _ in items for e in call_events]
    outcome = await ingest_in(db, events, max(at for _, at in items))
    owner: dict[str, int] = {}
    for index, (call_events, _) in enumerate(items):
        for event in call_events:
            owner[event.dossier_code] = index
    outbox: list[list[OutboxMessage]] = [[] for _ in items]
    for message in outcome.outbox:
        outbox[owner[message.body["dossier_code"]]].append(message)
    out, start = [], 0
    for index, (call_events, _) in enumerate(items):
        end = start + len(call_events)
        out.append(IngestOutcome(results=outcome.results[start:end], outbox=outbox[index]))
        start = end
    return out


Delivered = tuple[str, str, str | None, str, str]  # subscriber, event, dossier, detail, at


async def _delivered_all(db: aiosqlite.Connection, items: list[Delivered]) -> list[None]:
    """Subscribers' confirmations (`mark_delivered`): one statement for the events confirmed,
    one for the dossiers' timeline lines."""
    await db.executemany(
        "INSERT OR IGNORE INTO subscriber_deliveries VALUES (?,?,?)",
        [(subscriber, event_id, at) for subscriber, event_id, _, _, at in items],
    )
    await db.executemany(
        "INSERT INTO deliveries (dossier_code, connector, outcome, detail, at) "
        "VALUES (?, ?, 'delivered', ?, ?)",
        [
            (code, f"subscriber.{subscriber}", detail[:2000], at)
            for subscriber, _, code, detail, at in items
            if code
        ],
    )
    return [None] * len(items)


def _fail(entries: list[_Pending], exc: BaseException) -> None:
    for entry in entries:
        if not entry.future.done():
            entry.future.set_exception(exc)


async def _in_savepoint(
    db: aiosqlite.Connection, work: Callable[[aiosqlite.Connection], Awaitable[Any]]
) -> tuple[bool, Any]:
    """(True, result), or (False, the exception) with the work's writes undone. An error of
    SQLite itself is raised: the transaction cannot be trusted, the whole group fails."""
    await db.execute("SAVEPOINT grouped")
    try:
        result = await work(db)
    except sqlite3.Error:
        raise
    except Exception as exc:
        await db.execute("ROLLBACK TO grouped")
        await db.execute("RELEASE grouped")
        return False, exc
    await db.execute("RELEASE grouped")
    return True, result


# A line of the delivery journal (`JournalLine`, `_journal_row`).
_JOURNAL_SQL = (
    "INSERT INTO deliveries (dossier_code, connector, outcome, detail, reason_code, "
    "reason_args, at) VALUES (?,?,?,?,?,?,?)"
)


def _delivered_line(c: Confirmation, destination: str, at: str) -> tuple[Any, ...]:
    """A delivery's journal line: its text, and a code (`version`, `steps`) with its value so
    the console says it in the page's language (decision 0090)."""
    if c.version:
        text, code, args = f"version {c.version}", "version", {"version": c.version}
    else:
        steps = len(c.step_ids)
        text, code, args = f"{steps} step(s)", "steps", {"n": steps}
    return (c.dossier_code, destination, text, code, json.dumps(args), at)


def _journal_row(line: JournalLine, at: str) -> tuple[Any, ...]:
    args = json.dumps(dict(line.reason_args), ensure_ascii=False) if line.reason_args else None
    return (
        line.dossier_code,
        line.connector,
        line.outcome,
        line.detail[:2000],
        line.reason_code[:100] if line.reason_code else None,
        args,
        at,
    )


def _first_statuses(
    confirmed: list[Confirmation], before: dict[str, float | None]
) -> dict[str, float]:
    """The status times (unix) the destination confirms for the first time, by dossier: each
    counts once in its sync lag, however often it is confirmed again."""
    first: dict[str, float] = {}
    for c in confirmed:
        if not c.version or c.status_at is None or c.status_at.year < 2000:
            continue  # steps only, or an undated record: no status time to count
        at = c.status_at.timestamp()
        if c.dossier_code in before and (before[c.dossier_code] or 0) < at:
            first[c.dossier_code] = max(at, first.get(c.dossier_code, 0))
    return first


async def _count_lag(
    db: aiosqlite.Connection, destination: str, first: dict[str, float], now: float
) -> None:
    """The first-time status confirmations into the destination's sync-lag histogram."""
    buckets: dict[int, int] = {}
    for at in first.values():
        bucket = bucket_of(now - at)
        buckets[bucket] = buckets.get(bucket, 0) + 1
    if buckets:
        await db.executemany(
            "INSERT INTO sync_lag (destination, minute, bucket, n) VALUES (?,?,?,?) "
            "ON CONFLICT (destination, minute, bucket) DO UPDATE SET n = sync_lag.n + excluded.n",
            [(destination, int(now // 60), b, n) for b, n in buckets.items()],
        )


def _newest(confirmations: list[Confirmation]) -> dict[str, int]:
    """The newest version confirmed per dossier (0 for steps only), one entry each."""
    newest: dict[str, int] = {}
    for c in confirmations:
        newest[c.dossier_code] = max(c.version, newest.get(c.dossier_code, 0))
    return newest


def _readonly_uri(path: Path) -> str:
    return f"file:{quote(os.path.abspath(path))}?mode=ro"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _key_json(key: OrderKey | None) -> str | None:
    return json.dumps([key[0].isoformat(), key[1], key[2]]) if key else None


def _key_load(text: str | None) -> OrderKey | None:
    if not text:
        return None
    at, rank, code = json.loads(text)
    return (datetime.fromisoformat(at), int(rank), int(code))


class SqliteStore:
    """The store on SQLite: it fits every Protocol the hub's parts declare (see
    `hub.store.base`). Open with `async with SqliteStore.open(path)`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        # A read-only connection for reads that need no consistent view with others (WAL:
        # they see every committed write, and neither waits for the other); `db` if none.
        self._fast_reader = db
        self._group: list[_Grouped[Any]] = []
        self._group_task: asyncio.Task[None] | None = None
        self._mergers: dict[str, _Merger] = {}
        self.dashboard = SqliteDashboard(self)
        self.leases = SqliteLeases(self)  # the once-only duties' (`hub.duties`)
        # The connectors' store slices (`Connector.attach`), by name: `slice(name, kind)`.
        self.slices: dict[str, Any] = {}

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        path: Path,
        synchronous: str = "FULL",
        connectors: tuple[Connector, ...] | None = None,
    ) -> AsyncIterator[SqliteStore]:
        """The store, migrated: the core's migrations and those of `connectors` (by default
        the built-in ones). The file is the hub's user's alone (0600, its folder 0700 when
        the hub makes it); SQLite gives its -wal and -shm files the same mode."""
        private_dir(path.parent)
        for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
            if file == path or file.exists():
                private_file(file)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={synchronous}")
            await db.execute("PRAGMA busy_timeout=5000")
            store = cls(db)
            found = connectors if connectors is not None else built_in()
            await store._migrate(found)
            await store._fill_owner_keys()
            store._attach(found)
            reader = await aiosqlite.connect(_readonly_uri(path), uri=True, isolation_level=None)
            try:
                await reader.execute("PRAGMA busy_timeout=5000")
                store._fast_reader = reader
                yield store
            finally:
                await store._end_group()
                await reader.close()
        finally:
            await db.close()

    @classmethod
    @asynccontextmanager
    async def open_reader(
        cls, path: Path, connectors: tuple[Connector, ...] | None = None
    ) -> AsyncIterator[SqliteStore]:
        """A second, read-only connection to a store another connection has opened (and
        migrated): the dashboard reads through it, so its queries never wait for the hub's
        writes, nor the writes for them (WAL lets readers and the writer run side by side)."""
        db = await aiosqlite.connect(_readonly_uri(path), uri=True, isolation_level=None)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA busy_timeout=5000")
            store = cls(db)
            store._attach(connectors if connectors is not None else built_in())
            yield store
        finally:
            await db.close()

    def _attach(self, connectors: tuple[Connector, ...]) -> None:
        for c in connectors:
            self.slices.update(c.store_slices(self))

    def slice(self, name: str, kind: type[T]) -> T:
        """A connector's store slice (`LookupError` if no connector attached one)."""
        found = self.slices.get(name)
        if not isinstance(found, kind):
            raise LookupError(f"the store has no {name} slice (is its connector loaded?)")
        return found

    @property
    def db(self) -> aiosqlite.Connection:
        """The connection, for a connector's store slice: use it inside `transaction()` or
        `reading()`, never bare."""
        return self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction, whole: no other coroutine's statements inside it."""
        async with self._tx() as db:
            yield db

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """Reads that see one state (no transaction of another coroutine in between)."""
        async with self._read():
            yield

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException as exc:
                # Also on cancellation or a failed COMMIT: never leave a transaction open,
                # or every later write fails.
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        await self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreUnavailable(f"store transaction failed: {exc}") from exc
                raise

    async def grouped(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run `work` in a write transaction shared with the works submitted while the previous
        group was committing (a group commit: one BEGIN, one COMMIT and one fsync for all).
        Each work runs in a savepoint of its own, so one that raises is undone alone and its
        caller gets the exception; the others' callers resume only after the shared COMMIT
        (so an acknowledgement sent then is still sent after the commit). A failed COMMIT
        fails every work of the group with `StoreUnavailable`."""
        entry: _Grouped[T] = _Grouped(work, asyncio.get_running_loop().create_future())
        self._group.append(entry)
        if self._group_task is None or self._group_task.done():
            self._group_task = asyncio.create_task(self._commit_groups(), name="store-group")
        return await entry.future

    async def _commit_groups(self) -> None:
        while self._group:
            group, self._group = self._group[:GROUP_MAX], self._group[GROUP_MAX:]
            try:
                outcomes = await self._commit_group(group)
            except BaseException as exc:
                failure = exc if isinstance(exc, Exception) else StoreUnavailable(repr(exc))
                for entry in group:
                    if not entry.future.done():
                        entry.future.set_exception(failure)
                if not isinstance(exc, Exception):
                    raise
                continue
            for entry, (ok, value) in zip(group, outcomes, strict=True):
                if entry.future.done():
                    continue  # its caller was cancelled; the work is committed all the same
                if ok:
                    entry.future.set_result(value)
                else:
                    entry.future.set_exception(value)

    async def _commit_group(self, group: list[_Grouped[Any]]) -> list[tuple[bool, Any]]:
        async with self._tx() as db:
            if len(group) == 1:  # alone: its failure undoes the transaction, nothing more
                return [(True, await group[0].work(db))]
            return [await _in_savepoint(db, entry.work) for entry in group]

    async def _end_group(self) -> None:
        """At close: let a fold and a group being committed finish."""
        for task in (*(m.task for m in self._mergers.values()), self._group_task):
            if task is not None and not task.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 10)

    @asynccontextmanager
    async def _quick_read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A connection for one read that needs no consistent view with others: the read-only
        one, which neither waits for the writer nor holds it up."""
        try:
            yield self._fast_reader
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"store read failed: {exc}") from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[None]:
        async with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"store read failed: {exc}") from exc

    async def _migrate(self, connectors: tuple[Connector, ...]) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {
            row[0]
            for row in await self._db.execute_fetchall("SELECT version FROM schema_migrations")
        }
        for version, name, sql in _migrations(connectors):
            if version in done:
                continue
            async with self._tx() as db:
                for statement in _split_sql(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, _now_iso())
                )
            log.info("store_migrated", version=version, migration=name)

    async def _fill_owner_keys(self, batch: int = 1000) -> None:
        """Owner search keys for the dossiers stored before the hub kept them (migration
        0009): computed here, where the name can be folded, once; a partial index finds the
        rows still without one."""
        while True:
            async with self._tx() as db:
                rows = list(
                    await db.execute_fetchall(
                        "SELECT code, json_extract(record_json, '$.owner_name') FROM dossiers "
                        "WHERE owner_key IS NULL LIMIT ?",
                        (batch,),
                    )
                )
                await db.executemany(
                    "UPDATE dossiers SET owner_key = ? WHERE code = ?",
                    [(name_key(r[1] if isinstance(r[1], str) else None), r[0]) for r in rows],
                )
            if len(rows) < batch:
                return

    async def ping(self) -> None:
        async with self._read():
            await self._db.execute_fetchall("SELECT 1")

    # -- ingest -------------------------------------------------------------------------------

    async def merged(self, name: str, fold: Fold, item: Any) -> Any:
        """`item` folded by `fold` together with the items of the same `name` submitted
        while the previous fold of them committed (`_Merger`): a handful of set-based
        statements per group instead of per item. The caller resumes after the commit."""
        merger = self._mergers.get(name)
        if merger is None:
            merger = self._mergers[name] = _Merger(self, name, fold)
        return await merger.submit(item)

    async def ingest(self, events: list[DossierEvent], received_at: datetime) -> IngestOutcome:
        """Fold `events` in. The calls that arrive while a fold is committing are folded
        together in the next (`merged`): one set of statements for all their events (a
        one-stop that sends one item per call costs a handful of statements per group, not
        per item), in a transaction shared with the other writes of the group commit. Each
        caller gets its own events' results, after the commit; a call that cannot be folded
        fails alone."""
        outcome: IngestOutcome = await self.merged("ingest", _ingest_calls, (events, received_at))
        return outcome

    async def known_dossiers(self, codes: list[str]) -> set[str]:
        """Which of `codes` the hub has received a dossier event for."""
        if not codes:
            return set()
        async with self._quick_read() as db:
            rows = await _fetch_in(db, "SELECT code FROM dossiers WHERE code IN ({marks})", codes)
        return {r[0] for r in rows}

    # -- outbox -------------------------------------------------------------------------------

    async def outbox_pending(self, older_than_s: float, limit: int) -> list[OutboxMessage]:
        async with self._read():
            rows = await self._db.execute_fetchall(
                "SELECT id, routing_key, body FROM outbox WHERE created_at <= ? ORDER BY id "
                "LIMIT ?",
                (time.time() - older_than_s, limit),
            )
        return [OutboxMessage(r[0], r[1], json.loads(r[2])) for r in rows]

    async def outbox_done(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self._tx() as db:
            await db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    # -- delivery state per destination -----------------------------------------------------

    async def delivery_work(self, destination: str, codes: list[str]) -> dict[str, DeliveryWork]:
        """What `destination` still lacks of each of `codes` the hub holds: the newest version
        if it confirmed an older one, and every step it has not confirmed. Two reads for the
        batch; the steps are read only for dossiers that changed since its last confirmation."""
        if not codes:
            return {}
        async with self._read():
            rows = await _fetch_in(self._db, _WORK_SQL, codes, [destination])
            behind = [r[0] for r in rows if r[8] is None or r[8]]
            steps = await _fetch_in(self._db, _PENDING_STEPS_SQL, behind, after=[destination])
        pending: dict[str, list[PendingStep]] = {}
        for step_id, code, payload in steps:
            event = DossierEvent.model_validate_json(payload)
            if event.step is not None:
                pending.setdefault(code, []).append(PendingStep(step_id, event.step))
        return {r[0]: _delivery_work(r, pending.get(r[0], [])) for r in rows}

    async def delivery_done(self, destination: str, confirmations: list[Confirmation]) -> None:
        """Record what `destination` confirmed (a version, steps, or both per dossier), with a
        line in each dossier's delivery journal and its sync lag, in one transaction of at most
        five statements whatever the batch. A version never moves back; confirmations of
        dossiers the hub does not hold change no state (they are still journaled)."""
        if not confirmations:
            return
        now = time.time()
        at = datetime.fromtimestamp(now, UTC).isoformat()
        dated = [c for c in confirmations if c.version and c.status_at is not None]
        steps = [(i, destination, at) for c in confirmations for i in c.step_ids]
        async with self._tx() as db:
            # Statements: the status times before (for the lag), the steps, the states, the
            # lag, the journal; each only when it has something to read or write. A new
            # state row is counted in `destinations` by a trigger.
            first: dict[str, float] = {}
            if dated:
                codes = sorted({c.dossier_code for c in dated})
                rows = await _fetch_in(db, _STATUS_BEFORE_SQL, codes, [destination])
                first = _first_statuses(dated, {r[0]: r[1] for r in rows})
            if steps:
                await db.executemany(_STEP_DONE_SQL, steps)
            await db.executemany(
                _UPSERT_STATE_SQL,
                [(c, destination, v, first.get(c)) for c, v in _newest(confirmations).items()],
            )
            await _count_lag(db, destination, first, now)
            await db.executemany(
                "INSERT INTO deliveries (dossier_code, connector, outcome, detail, reason_code, "
                "reason_args, at) VALUES (?, ?, 'delivered', ?, ?, ?, ?)",
                [_delivered_line(c, destination, at) for c in confirmations],
            )

    async def record_delivery(
        self,
        code: str,
        connector: str,
        outcome: str,
        detail: str,
        reason_code: str | None = None,
        reason_args: Mapping[str, Any] | None = None,
    ) -> None:
        """A line of the dossier's journal: the hub's text, and its reason as a code with the
        values its words name where the hub knows one (decision 0090)."""
        async with self._tx() as db:
            await db.execute(
                _JOURNAL_SQL,
                _journal_row(
                    JournalLine(code, connector, outcome, detail, reason_code, reason_args),
                    _now_iso(),
                ),
            )

    async def record_deliveries(self, lines: list[JournalLine]) -> None:
        """Journal lines in one transaction."""
        if not lines:
            return
        at = _now_iso()
        async with self._tx() as db:
            await db.executemany(_JOURNAL_SQL, [_journal_row(line, at) for line in lines])

    # -- subscribers --------------------------------------------------------------------------

    async def delivered(self, subscriber: str, event_ids: list[str]) -> set[str]:
        """Which of `event_ids` the subscriber has confirmed (2xx) already."""
        if not event_ids:
            return set()
        async with self._read():
            rows = await self._db.execute_fetchall(
                "SELECT event_id FROM subscriber_deliveries WHERE subscriber = ? "  # noqa: S608
                f"AND event_id IN ({','.join('?' * len(event_ids))})",
                [subscriber, *event_ids],
            )
        return {r[0] for r in rows}

    async def mark_delivered(
        self, subscriber: str, event_id: str, dossier_code: str | None, detail: str
    ) -> None:
        """Record a confirmed event; one about a dossier also joins the dossier's timeline.
        The confirmations of a subscriber's lanes that arrive together are written together
        (`merged`, `_delivered_all`): two statements and one commit for all of them."""
        await self.merged(
            "delivered", _delivered_all, (subscriber, event_id, dossier_code, detail, _now_iso())
        )

    # -- reads --------------------------------------------------------------------------------

    async def dossier(self, code: str) -> DossierView:
        async with self._read():
            rows = await self._db.execute_fetchall(
                "SELECT code, status, status_key, version, record_json, updated_at "
                "FROM dossiers WHERE code = ?",
                (code,),
            )
            confirmed = await self._db.execute_fetchall(
                "SELECT destination, version FROM destination_state WHERE dossier_code = ?",
                (code,),
            )
            history = await self._db.execute_fetchall(
                "SELECT id, kind, status, occurred_at, received_at, source_system, applied, "
                "payload FROM dossier_events WHERE dossier_code = ? ORDER BY id",
                (code,),
            )
            steps = await self._db.execute_fetchall(
                "SELECT x.event_id, x.destination, x.sent_at FROM dossier_events e "
                "JOIN event_deliveries x ON x.event_id = e.id "
                "WHERE e.dossier_code = ? AND e.kind = 'step'",
                (code,),
            )
            deliveries = await self._db.execute_fetchall(
                "SELECT connector, outcome, detail, at, reason_code, reason_args FROM deliveries "
                "WHERE dossier_code = ? ORDER BY id",
                (code,),
            )
        row = next(iter(rows), None)
        sent: dict[int, dict[str, str]] = {}
        for event_id, destination, sent_at in steps:
            sent.setdefault(event_id, {})[destination] = sent_at
        return DossierView(
            snapshot=_snapshot(row) if row else None,
            confirmed={r[0]: int(r[1]) for r in confirmed},
            history=[_history(h, sent.get(h[0], {})) for h in history],
            deliveries=[
                DeliveryEntry(d[0], d[1], d[2], d[3], d[4], reason_args_of(d[5]))
                for d in deliveries
            ],
            payments=await self._payments_of(code),
        )

    async def _payments_of(self, code: str) -> list[PaymentRecord]:
        """The dossier's payments, when a connector keeps them (the payment platform)."""
        payments = self.slices.get("payments")
        return await payments.for_dossiers([code]) if isinstance(payments, PaymentsOf) else []

    async def snapshots(self, codes: list[str]) -> dict[str, DossierSnapshot]:
        """The newest state of each of `codes` the hub holds."""
        async with self._read():
            rows = await _fetch_in(
                self._db,
                "SELECT code, status, status_key, version, record_json, updated_at FROM dossiers "
                "WHERE status IS NOT NULL AND code IN ({marks})",
                codes,
            )
        return {r["code"]: _snapshot(r) for r in rows}

    async def changes_after(self, cursor: int, limit: int) -> list[FeedItem]:
        async with self._read():
            rows = await self._db.execute_fetchall(
                "SELECT code, status, status_key, version, record_json, updated_at, feed_seq "
                "FROM dossiers WHERE feed_seq > ? ORDER BY feed_seq LIMIT ?",
                (cursor, limit),
            )
        return [FeedItem(cursor=r["feed_seq"], snapshot=_snapshot(r)) for r in rows]

    # -- sessions and audit -------------------------------------------------------------------

    async def create_session(self, token_sha256: str, source: str, expires_at: float) -> None:
        async with self._tx() as db:
            await db.execute("DELETE FROM sessions WHERE expires_at < ?", (time.time(),))
            await db.execute(
                "INSERT INTO sessions VALUES (?,?,?)", (token_sha256, source, expires_at)
            )

    async def end_session(self, token_sha256: str) -> None:
        async with self._tx() as db:
            await db.execute("DELETE FROM sessions WHERE token_sha256 = ?", (token_sha256,))

    async def end_sessions(self, source: str) -> int:
        """End every live session of `source` (each of its log-ins); how many there were."""
        async with self._tx() as db:
            await db.execute("DELETE FROM sessions WHERE expires_at < ?", (time.time(),))
            cursor = await db.execute("DELETE FROM sessions WHERE source = ?", (source,))
            return max(cursor.rowcount, 0)

    async def live_sessions(self, source: str, now: float) -> int:
        async with self._read():
            rows = await self._db.execute_fetchall(
                "SELECT COUNT(*) FROM sessions WHERE source = ? AND expires_at > ?", (source, now)
            )
        return int(next(iter(rows))[0])

    async def session_source(self, token_sha256: str, now: float) -> tuple[str, float] | None:
        async with self._read():
            rows = await self._db.execute_fetchall(
                "SELECT source, expires_at FROM sessions WHERE token_sha256 = ? AND expires_at > ?",
                (token_sha256, now),
            )
        row = next(iter(rows), None)
        return (str(row[0]), float(row[1])) if row else None

    async def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?,?,?,?,?)",
                (_now_iso(), actor, action, target, json.dumps(detail, ensure_ascii=False)),
            )

    async def audit_open(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> int:
        """An audit entry for an action that runs a while (a bulk replay): written before it
        starts, so an interrupted one is never unaudited; its id, for `audit_close`."""
        async with self._tx() as db:
            rows = await db.execute_fetchall(
                "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?,?,?,?,?) "
                "RETURNING id",
                (_now_iso(), actor, action, target, json.dumps(detail, ensure_ascii=False)),
            )
        return int(next(iter(rows))[0])

    async def audit_close(self, entry_id: int, detail: dict[str, Any]) -> None:
        """The entry `audit_open` wrote, completed with what the action did."""
        async with self._tx() as db:
            await db.execute(
                "UPDATE audit_log SET detail = ? WHERE id = ?",
                (json.dumps(detail, ensure_ascii=False), entry_id),
            )

    # -- paused connectors ----------------------------------------------------------------------

    async def set_paused(self, connector: str, actor: str, reason: str, paused: bool) -> bool:
        """Pause or resume a connector, with an audit entry, in one transaction; False when it
        already was in that state (nothing written)."""
        async with self._tx() as db:
            if paused:
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO connector_pauses VALUES (?, ?, ?, ?)",
                    (connector, actor, time.time(), reason),
                )
            else:
                cursor = await db.execute(
                    "DELETE FROM connector_pauses WHERE connector = ?", (connector,)
                )
            if cursor.rowcount == 0:
                return False
            await db.execute(
                "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?,?,?,?,?)",
                (
                    _now_iso(),
                    actor,
                    "connector.pause" if paused else "connector.resume",
                    connector,
                    json.dumps({"reason": reason}, ensure_ascii=False),
                ),
            )
            return True

    # -- alerts firing -------------------------------------------------------------------------

    async def firing_alerts(self) -> list[FiringAlert]:
        """The alerts that fired and have not resolved (`hub.alerts`)."""
        async with self._read():
            rows = await self._db.execute_fetchall(
                "SELECT rule, connector, episode, since, fired_at, value, threshold, detail "
                "FROM alerts_firing"
            )
        return [
            FiringAlert(
                r[0], r[1], r[2], float(r[3]), float(r[4]),
                None if r[5] is None else float(r[5]), float(r[6]), r[7],
            )
            for r in rows
        ]  # fmt: skip

    async def alert_fired(self, alert: FiringAlert) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO alerts_firing (rule, connector, episode, since, fired_at, value, "
                "threshold, detail) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (rule, connector) DO "
                "UPDATE SET episode = excluded.episode, since = excluded.since, "
                "fired_at = excluded.fired_at, value = excluded.value, "
                "threshold = excluded.threshold, detail = excluded.detail",
                (
                    alert.rule, alert.connector, alert.episode, alert.since, alert.fired_at,
                    alert.value, alert.threshold, alert.detail[:2000],
                ),
            )  # fmt: skip

    async def alert_resolved(self, rule: str, connector: str, episode: str) -> None:
        """Forget a firing alert, if it is still that episode."""
        async with self._tx() as db:
            await db.execute(
                "DELETE FROM alerts_firing WHERE rule = ? AND connector = ? AND episode = ?",
                (rule, connector, episode),
            )

    async def paused_connectors(self) -> dict[str, PausedConnector]:
        async with self._read():
            rows = await self._db.execute_fetchall(
                "SELECT connector, paused_by, paused_at, reason FROM connector_pauses"
            )
        return {r[0]: PausedConnector(r[0], r[1], float(r[2]), r[3]) for r in rows}

    async def audit_entries(self, limit: int, before_id: int | None = None) -> list[AuditEntry]:
        """The newest entries (older than `before_id` when given), newest first."""
        async with self._read():
            rows = await self._db.execute_fetchall(
                "SELECT id, at, actor, action, target, detail FROM audit_log WHERE id < ? "
                "ORDER BY id DESC LIMIT ?",
                (before_id if before_id is not None else 2**63 - 1, limit),
            )
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}")) for r in rows]


async def ingest_in(
    db: aiosqlite.Connection, events: list[DossierEvent], received_at: datetime
) -> IngestOutcome:
    """Fold `events` in, inside the caller's transaction; the outbox rows it wrote."""
    # Set-based: a handful of statements per batch, not per event, because each statement
    # is a hop to aiosqlite's thread and the lock is held meanwhile.
    keys = [e.idempotency_key for e in events]
    codes = sorted({e.dossier_code for e in events})
    known = await _fetch_in(db, _KNOWN_KEYS_SQL, keys)
    rows = {r[0]: _row(r) for r in await _fetch_in(db, _LOAD_ROWS_SQL, codes)}
    held = set(rows)  # only a dossier held before this batch can have a destination's state
    fold = _fold(events, {r[0] for r in known}, rows, received_at)
    if fold.inserts:
        await db.executemany(_INSERT_EVENT_SQL, fold.inserts)
    await _save_states(db, [(c, r) for c, r in rows.items() if r.dirty], received_at)
    await _save_keys(db, [(c, r) for c, r in rows.items() if r.rekeyed and not r.dirty])
    await _fetch_in(db, _MARK_BEHIND_SQL, sorted(fold.changed & held))
    outbox = await _enqueue(db, fold.touched)
    return IngestOutcome(results=fold.results, outbox=outbox)


@dataclass
class _Fold:
    results: list[IngestResult] = field(default_factory=list)
    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    touched: dict[str, int] = field(default_factory=dict)  # dossier code → version
    changed: set[str] = field(default_factory=set)  # a new version or a new step to deliver


def _fold(
    events: list[DossierEvent], known: set[str], rows: dict[str, _Row], received_at: datetime
) -> _Fold:
    """Fold new events into the rows (in place); duplicates, also within the batch, skip."""
    fold = _Fold()
    seen = set(known)
    for event in events:
        key, code = event.idempotency_key, event.dossier_code
        if key in seen:
            fold.results.append(IngestResult(key, duplicate=True, applied=False))
            continue
        seen.add(key)
        row = rows.get(code) or _Row(DossierState(), 0)
        new_state, changed = apply(row.state, event)
        if changed:
            rows[code] = row.bump(new_state)
        elif new_state != row.state:
            # The same status and record, vouched for by a later event: nothing to send, but
            # the later order key must be kept, or an older event arriving next would outrank
            # the kept one and take the status back.
            rows[code] = row.rekey(new_state)
        fold.touched[code] = rows[code].version
        if changed or event.kind == "step":
            fold.changed.add(code)
        fold.results.append(IngestResult(key, duplicate=False, applied=changed))
        fold.inserts.append(
            (
                key,
                code,
                event.kind,
                int(event.status),
                event.occurred_at.isoformat(),
                received_at.isoformat(),
                event.source_system,
                event.model_dump_json(),
                int(changed),
            )
        )
    return fold


async def _fetch_in(
    db: aiosqlite.Connection,
    sql: str,
    values: list[str],
    before: list[Any] | None = None,
    after: list[Any] | None = None,
) -> list[Any]:
    """`sql` with `{marks}` as one "?" per value (and the parameters `before` and `after`
    around them); nothing is run for no values. Only "?" are interpolated."""
    if not values:
        return []
    marks = ",".join("?" * len(values))
    params = [*(before or []), *values, *(after or [])]
    return list(await db.execute_fetchall(sql.format(marks=marks), params))


async def _save_states(
    db: aiosqlite.Connection, dirty: list[tuple[str, _Row]], at: datetime
) -> None:
    if not dirty:
        return
    rows = await db.execute_fetchall(
        "UPDATE feed_sequence SET seq = seq + ? WHERE id = 1 RETURNING seq", (len(dirty),)
    )
    first = next(iter(rows))[0] - len(dirty) + 1
    await db.executemany(
        _UPSERT_DOSSIER_SQL,
        [
            (
                code,
                int(row.state.status) if row.state.status else None,
                _key_json(row.state.status_key),
                _record_json(row.state.record) if row.state.record else None,
                _key_json(row.state.record_key),
                row.version,
                first + i,
                at.isoformat(),
                row.state.record.procedure_code if row.state.record else None,
                name_key(row.state.record.owner_name if row.state.record else None),
            )
            for i, (code, row) in enumerate(dirty)
        ],
    )


async def _save_keys(db: aiosqlite.Connection, rekeyed: list[tuple[str, _Row]]) -> None:
    """Rows whose order keys alone moved on: no new version, no place in the change feed."""
    if rekeyed:
        await db.executemany(
            "UPDATE dossiers SET status_key = ?, record_key = ? WHERE code = ?",
            [
                (_key_json(row.state.status_key), _key_json(row.state.record_key), code)
                for code, row in rekeyed
            ],
        )


async def _enqueue(db: aiosqlite.Connection, touched: dict[str, int]) -> list[OutboxMessage]:
    if not touched:
        return []
    now = time.time()
    bodies = [json.dumps({"dossier_code": c, "version": v}) for c, v in touched.items()]
    values = ",".join("(?,?,?)" for _ in bodies)
    params = [p for body in bodies for p in (DOSSIER_CHANGED, body, now)]
    # RETURNING order is not guaranteed: read the body back with each id.
    rows = await db.execute_fetchall(
        f"INSERT INTO outbox (routing_key, body, created_at) VALUES {values} "  # noqa: S608
        "RETURNING id, body",
        params,
    )
    found = sorted((r[0], r[1]) for r in rows)
    return [OutboxMessage(id=i, routing_key=DOSSIER_CHANGED, body=json.loads(b)) for i, b in found]


# Parsed records by their stored JSON, the most recently used kept. Every ingest folds into
# the touched dossiers' records and every delivery reads them: parsing the same text with
# pydantic again was a tenth of the hub's CPU per dossier event (issue 17's profile). The
# models are frozen and the text is what was written, so a hit is exactly what a parse gives.
RECORD_CACHE_SIZE = 2048
_RECORDS: OrderedDict[str, DossierRecord] = OrderedDict()


def _record_of(text: str) -> DossierRecord:
    """The record stored as `text`, parsed once while it stays in use."""
    found = _RECORDS.get(text)
    if found is None:
        found = DossierRecord.model_validate_json(text)
        _remember(text, found)
    else:
        _RECORDS.move_to_end(text)
    return found


def _record_json(record: DossierRecord) -> str:
    """The record as it is stored, remembered for the reads that follow."""
    text = record.model_dump_json()
    _remember(text, record)
    return text


def _remember(text: str, record: DossierRecord) -> None:
    _RECORDS[text] = record
    _RECORDS.move_to_end(text)
    if len(_RECORDS) > RECORD_CACHE_SIZE:
        _RECORDS.popitem(last=False)


class _Row:
    """A dossier row being folded within one transaction."""

    def __init__(
        self, state: DossierState, version: int, dirty: bool = False, rekeyed: bool = False
    ) -> None:
        self.state = state
        self.version = version
        self.dirty = dirty  # a new version: saved, in the change feed, delivered
        self.rekeyed = rekeyed  # only its order keys moved on: saved as they are, nothing more

    def bump(self, state: DossierState) -> _Row:
        return _Row(state, self.version + 1, dirty=True)

    def rekey(self, state: DossierState) -> _Row:
        return _Row(state, self.version, dirty=self.dirty, rekeyed=True)


def _row(row: Any) -> _Row:
    """A `_LOAD_ROWS_SQL` row → the dossier's fold state."""
    state = DossierState(
        status=DossierStatus(row[1]) if row[1] is not None else None,
        status_key=_key_load(row[2]),
        record=_record_of(row[3]) if row[3] else None,
        record_key=_key_load(row[4]),
    )
    return _Row(state, row[5])


def _delivery_work(row: Any, steps: list[PendingStep]) -> DeliveryWork:
    """A `_WORK_SQL` row and the steps the destination lacks → its `DeliveryWork`."""
    record = _record_of(row[2]) if row[2] else None
    if record is not None and row[3] is not None and record.status != row[3]:
        record = record.model_copy(update={"status": DossierStatus(row[3])})
    return DeliveryWork(
        dossier_code=row[0],
        version=row[1],
        record=record,
        confirmed_version=row[6] or 0,
        holds=bool(row[7]),
        changed_at=datetime.fromisoformat(row[4]),
        steps=steps,
        status_at=key[0] if (key := _key_load(row[5])) else None,
    )


def _snapshot(row: Any) -> DossierSnapshot:
    key = _key_load(row["status_key"])
    record = _record_of(row["record_json"]) if row["record_json"] else None
    status = DossierStatus(row["status"])
    if record is not None and record.status != status:
        record = record.model_copy(update={"status": status})
    return DossierSnapshot(
        dossier_code=row["code"],
        status=status,
        status_at=key[0] if key else datetime.fromisoformat(row["updated_at"]),
        version=row["version"],
        record=record,
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def _history(row: Any, confirmed: dict[str, str]) -> HistoryEntry:
    return HistoryEntry(
        id=row[0],
        kind=row[1],
        status=row[2],
        occurred_at=row[3],
        received_at=row[4],
        source_system=row[5],
        applied=bool(row[6]),
        confirmed=confirmed,
        event=json.loads(row[7]),
    )


def _migrations(connectors: tuple[Connector, ...]) -> Iterable[tuple[int, str, str]]:
    """The core's migrations and the connectors', in the order of their numbers (one
    sequence for the whole hub, so that a store migrated before connectors owned their tables
    is recognised); two files with one number are refused."""
    folders = [
        (1, resources.files("hub") / "migrations"),
        *((migration_floor(f, connectors), f) for f in migration_folders(connectors)),
    ]
    found: dict[int, Traversable] = {}
    for floor, folder in folders:
        for f in folder.iterdir():
            if not f.name.endswith(".sql"):
                continue
            version = int(f.name.split("_", 1)[0])
            if version < floor:
                raise ValueError(
                    f"migration {f} is numbered {version}: a plug-in's migrations are numbered "
                    f"from {floor} (below are the core's and the built-in connectors')"
                )
            if version in found:
                raise ValueError(f"two migrations numbered {version}: {found[version]} and {f}")
            found[version] = f
    for version in sorted(found):
        yield version, found[version].name, found[version].read_text(encoding="utf-8")


def _split_sql(sql: str) -> list[str]:
    """A migration's statements, one by one, ended where SQLite itself says a statement ends
    (`sqlite3.complete_statement`): a ';' in a string, a comment or a trigger's body does not
    end one. A statement must end its line. Each runs in the migration's one transaction."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if _code_of(buffer):
        raise ValueError(f"a migration ends inside a statement: {buffer.strip()[:200]!r}")
    return statements


def _code_of(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("--")).strip()
