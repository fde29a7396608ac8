"""The procedure half of the SQLite store: versions, changes, quarantine, sync runs.

It shares the `SqliteStore`'s connection and lock (so a transaction here never interleaves
with a dossier transaction) and applies what `procedures.lifecycle` decided, one procedure
per transaction, with its event in the outbox and its sync item marked done in the
same commit: a crash at any instant leaves either all of it or none. It must never decide a
lifecycle rule itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiosqlite

from connectors.national_portal.procedures.lifecycle import Current, State, Transition, on_removed
from connectors.national_portal.procedures.records import (
    ChangeRow,
    ItemState,
    ListEntry,
    ProcedureRow,
    QuarantineRow,
    RunState,
    SyncRun,
    VersionRow,
)
from hub.errors import SyncBusy
from hub.store.base import OutboxMessage

if TYPE_CHECKING:
    from hub.store.sqlite import SqliteStore

Decide = Callable[[Current | None], Transition | None]
_RUN_COLUMNS = "id, kind, requested, trigger, state, owner, started_at, finished_at, detail, counts"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SqliteProcedures:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    # -- sync runs ----------------------------------------------------------------------------

    async def claim_stale_run(self, owner: str, stale_after_s: float) -> SyncRun | None:
        """Take over an unfinished run whose owner stopped beating (a crash), if any.

        Raises `SyncBusy` when an unfinished run is still owned by a live process.
        """
        async with self._store.transaction() as db:
            rows = await _fetch(
                db,
                f"SELECT {_RUN_COLUMNS}, heartbeat_at FROM procedure_sync_runs "  # noqa: S608
                "WHERE state IN ('listing', 'fetching') ORDER BY id",
            )
            for row in rows:
                if row["owner"] != owner and time.time() - row["heartbeat_at"] < stale_after_s:
                    raise SyncBusy(
                        f"catalogue sync run {row['id']} is in progress "
                        f"(owner {row['owner']}, started {row['started_at']})"
                    )
            if not rows:
                return None
            row = rows[0]
            await db.execute(
                "UPDATE procedure_sync_runs SET owner = ?, heartbeat_at = ? WHERE id = ?",
                (owner, time.time(), row["id"]),
            )
            return _run(row, owner=owner, resumed=True)

    async def begin_run(self, kind: str, requested: list[str], trigger: str, owner: str) -> SyncRun:
        async with self._store.transaction() as db:
            made = await db.execute_fetchall(
                "INSERT INTO procedure_sync_runs (kind, requested, trigger, state, owner, "
                "heartbeat_at, started_at) VALUES (?,?,?,?,?,?,?) RETURNING id",
                (
                    kind,
                    json.dumps(requested),
                    trigger,
                    RunState.listing,
                    owner,
                    time.time(),
                    _now(),
                ),
            )
            run_id = int(next(iter(made))[0])
            rows = await _fetch(
                db,
                f"SELECT {_RUN_COLUMNS} FROM procedure_sync_runs WHERE id = ?",  # noqa: S608
                (run_id,),
            )
        return _run(rows[0], owner=owner)

    async def heartbeat(self, run_id: int, owner: str) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "UPDATE procedure_sync_runs SET heartbeat_at = ? WHERE id = ? AND owner = ?",
                (time.time(), run_id, owner),
            )

    async def add_items(self, run_id: int, codes: list[str]) -> None:
        """Record the run's work list and move it to `fetching`, in one commit."""
        async with self._store.transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO procedure_sync_items (run_id, code, state) "
                "VALUES (?, ?, 'pending')",
                [(run_id, c) for c in codes],
            )
            await db.execute(
                "UPDATE procedure_sync_runs SET state = ? WHERE id = ?",
                (RunState.fetching, run_id),
            )

    async def pending_items(self, run_id: int) -> list[str]:
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                "SELECT code FROM procedure_sync_items WHERE run_id = ? AND state = 'pending' "
                "ORDER BY code",
                (run_id,),
            )
        return [r[0] for r in rows]

    async def item_counts(self, run_id: int) -> dict[str, int]:
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                "SELECT coalesce(outcome, state), count(*) FROM procedure_sync_items "
                "WHERE run_id = ? GROUP BY 1",
                (run_id,),
            )
        return {str(r[0]): int(r[1]) for r in rows}

    async def mark_item(self, run_id: int, code: str, state: ItemState, outcome: str) -> None:
        async with self._store.transaction() as db:
            await _set_item(db, run_id, code, state, outcome)

    async def finish_run(
        self, run_id: int, state: RunState, detail: str | None, counts: dict[str, int]
    ) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "UPDATE procedure_sync_runs SET state = ?, finished_at = ?, detail = ?, "
                "counts = ? WHERE id = ?",
                (state, _now(), detail, json.dumps(counts), run_id),
            )

    async def runs(self, limit: int) -> list[SyncRun]:
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                f"SELECT {_RUN_COLUMNS} FROM procedure_sync_runs "  # noqa: S608
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [_run(r) for r in rows]

    async def last_full_run(self) -> SyncRun | None:
        """The newest full run, finished or not."""
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                f"SELECT {_RUN_COLUMNS} FROM procedure_sync_runs "  # noqa: S608
                "WHERE kind = 'full' ORDER BY id DESC LIMIT 1",
            )
        return _run(rows[0]) if rows else None

    # -- applying what the catalogue says -----------------------------------------------------

    async def apply(
        self, run_id: int | None, code: str, decide: Decide
    ) -> tuple[Transition | None, list[OutboxMessage]]:
        """Decide against the stored state and apply, all in one transaction.

        The sync item (if `run_id`) is marked done in the same commit, and any open
        quarantine entry of the procedure is resolved: it has now been read well.
        """
        async with self._store.transaction() as db:
            return await _apply_in(db, run_id, code, decide)

    async def apply_many(
        self, run_id: int | None, decisions: list[tuple[str, Decide]]
    ) -> list[tuple[Transition | None, list[OutboxMessage]]]:
        """`apply` for several procedures in one transaction (one commit for all: the sync's
        applier hands over what its readers fetched meanwhile). Each is decided against the
        state the ones before it left."""
        out: list[tuple[Transition | None, list[OutboxMessage]]] = []
        async with self._store.transaction() as db:
            for code, decide in decisions:
                out.append(await _apply_in(db, run_id, code, decide))
        return out

    async def lock_missing(self, run_id: int) -> tuple[list[Transition], list[OutboxMessage]]:
        """Lock every active procedure the run's national list did not name."""
        async with self._store.transaction() as db:
            rows = await _fetch(
                db,
                "SELECT code, version, revision, state, record_json FROM procedures "
                "WHERE state = 'active' AND code NOT IN "
                "(SELECT code FROM procedure_sync_items WHERE run_id = ?)",
                (run_id,),
            )
            done: list[Transition] = []
            outbox: list[OutboxMessage] = []
            for row in rows:
                transition = on_removed(_current_of(row))
                if transition is not None:
                    outbox += await _write(db, transition, run_id)
                    done.append(transition)
        return done, outbox

    async def active_count(self) -> int:
        async with self._store.reading():
            rows = await _fetch(
                self._store.db, "SELECT count(*) FROM procedures WHERE state = 'active'"
            )
        return int(rows[0][0])

    async def missing_count(self, run_id: int) -> int:
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                "SELECT count(*) FROM procedures WHERE state = 'active' AND code NOT IN "
                "(SELECT code FROM procedure_sync_items WHERE run_id = ?)",
                (run_id,),
            )
        return int(rows[0][0])

    async def quarantine(
        self,
        run_id: int | None,
        code: str,
        reason: str,
        field: str | None,
        excerpt: str | None,
        reason_code: str | None = None,
    ) -> None:
        async with self._store.transaction() as db:
            # One open entry per procedure: a record still bad in the next sync replaces it.
            await db.execute(
                "DELETE FROM procedure_quarantine WHERE code = ? AND resolved_at IS NULL", (code,)
            )
            await db.execute(
                "INSERT INTO procedure_quarantine (code, run_id, field, reason, excerpt, at, "
                "reason_code) VALUES (?,?,?,?,?,?,?)",
                (code, run_id, field, reason, excerpt, _now(), reason_code),
            )
            if run_id is not None:
                await _set_item(db, run_id, code, ItemState.quarantined, "quarantined")

    async def save_list(self, kind: str, entries: list[ListEntry]) -> None:
        now = _now()
        async with self._store.transaction() as db:
            await db.executemany(
                "INSERT INTO catalogue_lists (kind, code, name, extra, updated_at) "
                "VALUES (?,?,?,?,?) ON CONFLICT(kind, code) DO UPDATE SET "
                "name = excluded.name, extra = excluded.extra, updated_at = excluded.updated_at",
                [(kind, e.code, e.name, e.extra, now) for e in entries],
            )

    # -- reading --------------------------------------------------------------------------------

    async def changed(
        self, after_seq: int, changed_after: str | None, limit: int
    ) -> list[ProcedureRow]:
        sql = (
            "SELECT code, version, revision, state, changed_at, change_seq, record_json "
            "FROM procedures WHERE change_seq > ?"
        )
        params: list[Any] = [after_seq]
        if changed_after is not None:
            sql += " AND changed_at > ?"
            params.append(changed_after)
        sql += " ORDER BY change_seq LIMIT ?"
        params.append(limit)
        async with self._store.reading():
            rows = await _fetch(self._store.db, sql, params)
        return [_procedure_row(r) for r in rows]

    async def procedure(self, code: str) -> ProcedureRow | None:
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                "SELECT code, version, revision, state, changed_at, change_seq, record_json "
                "FROM procedures WHERE code = ?",
                (code,),
            )
        return _procedure_row(rows[0]) if rows else None

    async def versions(self, code: str) -> list[VersionRow]:
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                "SELECT code, version, revision, created_at, locked_at, lock_reason, record_json "
                "FROM procedure_versions WHERE code = ? ORDER BY version",
                (code,),
            )
        return [_version_row(r) for r in rows]

    async def changes(self, code: str) -> list[ChangeRow]:
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                "SELECT event_id, version, revision, type, change, diff_json, at "
                "FROM procedure_changes WHERE code = ? ORDER BY id",
                (code,),
            )
        return [ChangeRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    async def quarantined(self, limit: int, include_resolved: bool = False) -> list[QuarantineRow]:
        where = "" if include_resolved else "WHERE resolved_at IS NULL "
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                "SELECT id, code, run_id, field, reason, excerpt, at, reason_code "  # noqa: S608
                f"FROM procedure_quarantine {where}ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [QuarantineRow(*tuple(r)) for r in rows]

    async def catalogue_list(self, kind: str) -> list[ListEntry]:
        async with self._store.reading():
            rows = await _fetch(
                self._store.db,
                "SELECT code, name, extra FROM catalogue_lists WHERE kind = ? ORDER BY code",
                (kind,),
            )
        return [ListEntry(r[0], r[1], r[2]) for r in rows]


async def _fetch(db: aiosqlite.Connection, sql: str, params: Any = ()) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


# -- rows -----------------------------------------------------------------------------------------


async def _set_item(
    db: aiosqlite.Connection, run_id: int, code: str, state: ItemState, outcome: str
) -> None:
    await db.execute(
        "INSERT INTO procedure_sync_items (run_id, code, state, outcome) VALUES (?,?,?,?) "
        "ON CONFLICT(run_id, code) DO UPDATE SET state = excluded.state, "
        "outcome = excluded.outcome",
        (run_id, code, state, outcome),
    )


async def _current(db: aiosqlite.Connection, code: str) -> Current | None:
    rows = await _fetch(
        db,
        "SELECT code, version, revision, state, record_json FROM procedures WHERE code = ?",
        (code,),
    )
    return _current_of(rows[0]) if rows else None


def _current_of(row: Any) -> Current:
    return Current(
        row["code"], row["version"], row["revision"], State(row["state"]),
        json.loads(row["record_json"]),
    )  # fmt: skip


async def _write(
    db: aiosqlite.Connection, t: Transition, run_id: int | None
) -> list[OutboxMessage]:
    now = datetime.now(UTC)
    # Always with microseconds: `changed_after` compares these texts.
    at = now.isoformat(timespec="microseconds")
    record_json = json.dumps(t.record, ensure_ascii=False)
    if t.lock_version is not None:
        await db.execute(
            "UPDATE procedure_versions SET locked_at = ?, lock_reason = ? "
            "WHERE code = ? AND version = ? AND locked_at IS NULL",
            (at, t.lock_reason, t.code, t.lock_version),
        )
    if t.new_version:
        await db.execute(
            "INSERT INTO procedure_versions (code, version, revision, content_hash, record_json, "
            "created_at) VALUES (?,?,?,?,?,?)",
            (t.code, t.version, t.revision, t.content_hash, record_json, at),
        )
    elif t.state is State.active:  # an editorial revision rewrites its version's wording
        await db.execute(
            "UPDATE procedure_versions SET revision = ?, content_hash = ?, record_json = ? "
            "WHERE code = ? AND version = ?",
            (t.revision, t.content_hash, record_json, t.code, t.version),
        )
    made = await db.execute_fetchall(
        "INSERT INTO procedure_changes (event_id, code, version, revision, type, change, "
        "diff_json, at, run_id) VALUES (?,?,?,?,?,?,?,?,?) RETURNING id",
        (
            t.event_id, t.code, t.version, t.revision, t.event_type, str(t.change),
            json.dumps([d.as_json() for d in t.diff], ensure_ascii=False), at, run_id,
        ),
    )  # fmt: skip
    seq = int(next(iter(made))[0])
    await db.execute(
        "INSERT INTO procedures (code, version, revision, state, content_hash, substance_hash, "
        "record_json, change_seq, changed_at, first_seen_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(code) DO UPDATE SET version = excluded.version, "
        "revision = excluded.revision, state = excluded.state, "
        "content_hash = excluded.content_hash, substance_hash = excluded.substance_hash, "
        "record_json = excluded.record_json, change_seq = excluded.change_seq, "
        "changed_at = excluded.changed_at",
        (
            t.code, t.version, t.revision, t.state, t.content_hash, t.substance_hash,
            record_json, seq, at, at,
        ),
    )  # fmt: skip
    if t.event_type is None:
        return []
    body = json.dumps(t.event(now, run_id), ensure_ascii=False)
    rows = await _fetch(
        db,
        "INSERT INTO outbox (routing_key, body, created_at) VALUES (?,?,?) RETURNING id",
        (t.event_type, body, time.time()),
    )
    return [OutboxMessage(id=rows[0][0], routing_key=t.event_type, body=json.loads(body))]


def _run(row: Any, owner: str | None = None, resumed: bool = False) -> SyncRun:
    return SyncRun(
        id=row["id"],
        kind=row["kind"],
        requested=json.loads(row["requested"]),
        trigger=row["trigger"],
        state=RunState(row["state"]),
        owner=owner or row["owner"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        detail=row["detail"],
        counts=json.loads(row["counts"] or "{}"),
        resumed=resumed,
    )


def _procedure_row(r: Any) -> ProcedureRow:
    return ProcedureRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))


def _version_row(r: Any) -> VersionRow:
    return VersionRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))


async def _apply_in(
    db: aiosqlite.Connection, run_id: int | None, code: str, decide: Decide
) -> tuple[Transition | None, list[OutboxMessage]]:
    """`apply`'s work inside the caller's transaction."""
    current = await _current(db, code)
    transition = decide(current)
    outbox = await _write(db, transition, run_id) if transition else []
    await db.execute(
        "UPDATE procedure_quarantine SET resolved_at = ? WHERE code = ? AND resolved_at IS NULL",
        (_now(), code),
    )
    if run_id is not None:
        outcome = transition.change if transition else "unchanged"
        await _set_item(db, run_id, code, ItemState.done, str(outcome))
    return transition, outbox
