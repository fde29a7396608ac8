"""The dashboard's half of the SQLite store: completeness, lag, samples, searches, log-ins.

Reads here run on whichever connection the `SqliteStore` holds; the hub gives the dashboard a
second, read-only one (`SqliteStore.open_reader`), so these queries never queue behind the
hub's writes. The overview's queries are bounded by an index and a limit, so they cost the
same with a thousand dossiers or a million: completeness counts a destination's dossiers
behind in a partial index (and those it never confirmed from a counter), the lag is read from
per-minute histograms per destination. Two lists scan on purpose, to give a true total: a
search for part of a code (any case, anywhere in it: about a second for a million dossiers)
and the stuck list of a destination that keeps state (every dossier is a candidate; a filter
on the agency narrows it to a range of codes). Writes
(samples, log-in failures) go through the writing store. This module must never interpolate a
value into SQL. Every subquery in FROM has an alias (PostgreSQL before 16 requires one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hub.store.base import reason_args_of

if TYPE_CHECKING:
    from hub.store.sqlite import SqliteStore

# One row per connector and interval: each replica's counts add up, the broker's figures
# are the latest, the last success the latest of all (no GREATEST: SQLite's max() of a NULL
# is NULL, PostgreSQL's GREATEST skips it).
_ADD_SAMPLE_SQL = (
    "INSERT INTO connector_samples VALUES (?,?,?,?,?,?,?,?) "
    "ON CONFLICT (connector, at) DO UPDATE SET done = connector_samples.done + excluded.done, "
    "retried = connector_samples.retried + excluded.retried, "
    "parked = connector_samples.parked + excluded.parked, "
    "queue_depth = excluded.queue_depth, dead_letters = excluded.dead_letters, "
    "last_success = CASE WHEN excluded.last_success IS NULL "
    "OR connector_samples.last_success > excluded.last_success "
    "THEN connector_samples.last_success ELSE excluded.last_success END"
)


@dataclass(frozen=True)
class Completeness:
    dossiers: int
    unconfirmed: int

    @property
    def confirmed(self) -> int:
        return self.dossiers - self.unconfirmed

    @property
    def ratio(self) -> float | None:
        return self.confirmed / self.dossiers if self.dossiers else None


@dataclass(frozen=True)
class Sample:
    at: float
    connector: str
    done: int
    retried: int
    parked: int
    queue_depth: int | None
    dead_letters: int | None
    last_success: float | None


@dataclass(frozen=True)
class LoginState:
    failures: int
    last_failure: float
    locked_until: float


@dataclass(frozen=True)
class DossierHit:
    code: str
    status: int | None
    updated_at: str
    procedure_code: str | None = None
    matched: str = "code"  # what matched: code | procedure | owner
    owner_name: str | None = None  # as stored: the board masks it before it leaves the hub


@dataclass(frozen=True)
class StuckFilter:
    """Which unconfirmed dossiers to list. `agency` is the receiving agency's code, the part
    of a dossier code before its first '-'; `older_than_s` keeps those waiting at least that
    long; `procedure` matches a procedure code and its localized forms (a prefix)."""

    destination: str | None = None
    agency: str | None = None
    procedure: str | None = None
    status: int | None = None
    older_than_s: float | None = None


@dataclass(frozen=True)
class StuckRow:
    code: str
    destination: str
    since: str  # since when the destination lacks it (see `stuck`)
    status: int | None
    procedure_code: str | None
    version: int
    confirmed_version: int | None  # state destinations: the newest it confirmed (None: none)
    outcome: str | None  # the trouble journaled: refused | retry | parked | replayed
    reason: str | None
    reason_at: str | None
    reason_code: str | None = None  # the journaled reason as a code (decision 0090)
    reason_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Trouble:
    destination: str
    outcome: str
    reason: str | None
    since: str
    at: str
    reason_code: str | None = None  # the journaled reason as a code (decision 0090)
    reason_args: dict[str, Any] = field(default_factory=dict)


class SqliteDashboard:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def _rows(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        async with self._store.reading():
            return list(await self._store.db.execute_fetchall(sql, params))

    # -- the two numbers ------------------------------------------------------------------------

    async def completeness(self, destination: str) -> Completeness:
        """Dossiers the hub holds a state for, and those whose newest state `destination` has
        not confirmed: those it confirmed nothing of, and those that changed since (a version
        ahead of what it confirmed, or a step it has not confirmed)."""
        # One statement, so one snapshot. Every dossiers row is written by an accepted event
        # (version 1 and up); a bare COUNT(*) is answered from the smallest index without
        # reading the rows, the dossiers a destination holds are a counter, and those behind
        # are counted in a partial index.
        rows = await self._rows(
            "SELECT (SELECT COUNT(*) FROM dossiers), "
            "(SELECT dossiers FROM destinations WHERE destination = ?), "
            "(SELECT COUNT(*) FROM destination_state WHERE destination = ? AND behind = 1)",
            (destination, destination),
        )
        total, held, behind = (int(v or 0) for v in rows[0])
        return Completeness(total, total - held + behind)

    async def lag_histogram(self, destination: str, since: float) -> dict[int, int]:
        rows = await self._rows(
            "SELECT bucket, SUM(n) FROM sync_lag WHERE destination = ? AND minute >= ? "
            "GROUP BY bucket",
            (destination, int(since // 60)),
        )
        return {int(r[0]): int(r[1]) for r in rows}

    async def lag_minutes(self, destination: str, since: float) -> list[tuple[int, int, int]]:
        """(minute, bucket, count) of `destination` since a time, for the lag chart."""
        rows = await self._rows(
            "SELECT minute, bucket, n FROM sync_lag WHERE destination = ? AND minute >= ? "
            "ORDER BY minute",
            (destination, int(since // 60)),
        )
        return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    # -- connector samples ----------------------------------------------------------------------

    async def add_samples(self, samples: list[Sample], keep_s: float) -> None:
        """Add each replica's counts of an interval to the interval's row (replicas sample
        the same interval start, `Sampler`): the charts draw the hub's total, whichever
        replica consumed. The queue's figures are the broker's, the same from every replica:
        the latest is kept; the last success is the latest of all."""
        async with self._store.transaction() as db:
            await db.executemany(
                _ADD_SAMPLE_SQL,
                [
                    (
                        s.at,
                        s.connector,
                        s.done,
                        s.retried,
                        s.parked,
                        s.queue_depth,
                        s.dead_letters,
                        s.last_success,
                    )
                    for s in samples
                ],
            )
            await db.execute("DELETE FROM connector_samples WHERE at < ?", (time.time() - keep_s,))
            await db.execute(
                "DELETE FROM sync_lag WHERE minute < ?", (int((time.time() - keep_s) // 60),)
            )

    async def samples(self, connector: str, since: float) -> list[Sample]:
        rows = await self._rows(
            "SELECT at, connector, done, retried, parked, queue_depth, dead_letters, last_success "
            "FROM connector_samples WHERE connector = ? AND at >= ? ORDER BY at",
            (connector, since),
        )
        return [Sample(*r) for r in rows]

    async def last_successes(self) -> dict[str, float]:
        """Each connector's last success recorded in a sample (it outlives a restart)."""
        rows = await self._rows(
            "SELECT connector, MAX(last_success) FROM connector_samples GROUP BY connector"
        )
        return {str(r[0]): float(r[1]) for r in rows if r[1] is not None}

    # -- stuck dossiers -------------------------------------------------------------------------

    async def state_destinations(self) -> list[str]:
        """The destinations that keep a delivery state per dossier (DVCQG): every dossier is
        theirs to confirm."""
        rows = await self._rows("SELECT destination FROM destinations ORDER BY destination")
        return [str(r[0]) for r in rows]

    async def stuck(
        self,
        state_destinations: list[str],
        where: StuckFilter,
        now: datetime,
        limit: int,
        offset: int,
    ) -> tuple[int, list[StuckRow]]:
        """Dossiers a destination has not confirmed the newest state of, oldest first, and how
        many there are in all (one snapshot for both).

        For a destination keeping state (`state_destinations`): the dossiers it is behind on
        or never confirmed anything of (the same ones completeness counts), waiting since the
        hub received the change it lacks. For any other destination: the dossiers its journal
        shows in trouble (refused, retrying, parked, replayed and not delivered since), since
        the first line of that trouble."""
        sql, params = _stuck_sql(state_destinations, where, now)
        async with self._store.reading():
            db = self._store.db
            # `sql` is made of this module's constant fragments only (`_stuck_sql`).
            count_sql = f"SELECT COUNT(*) FROM ({sql}) AS stuck"  # noqa: S608
            page_sql = (
                f"SELECT * FROM ({sql}) AS stuck ORDER BY since, code, destination LIMIT ? OFFSET ?"  # noqa: S608
            )
            total = next(iter(await db.execute_fetchall(count_sql, params)))
            rows = await db.execute_fetchall(page_sql, [*params, limit, offset])
        return int(total[0]), [_stuck_row(r) for r in rows]

    async def trouble(self, code: str) -> list[Trouble]:
        """The trouble each destination's journal shows for one dossier."""
        rows = await self._rows(
            "SELECT destination, outcome, reason, since, at, reason_code, reason_args "
            "FROM delivery_trouble WHERE dossier_code = ? ORDER BY at DESC",
            (code,),
        )
        return [Trouble(r[0], r[1], r[2], r[3], r[4], r[5], reason_args_of(r[6])) for r in rows]

    # -- searches -------------------------------------------------------------------------------

    async def find_dossiers(
        self, text: str, owner_key: str, limit: int, offset: int
    ) -> tuple[int, list[DossierHit]]:
        """Dossiers whose code holds `text` (any case, anywhere), whose procedure code starts
        with it, or whose owner's name key is `owner_key`; how many in all, and a page of them
        by code. The code is matched by a scan of the codes' index (a few hundred
        milliseconds for a million dossiers); the procedure and the owner through theirs."""
        params = [text.upper(), text, text + "\U0010ffff", owner_key]
        async with self._store.reading():
            db = self._store.db
            total = next(iter(await db.execute_fetchall(_FOUND_COUNT_SQL, params)))
            rows = await db.execute_fetchall(_FOUND_PAGE_SQL, [*params, limit, offset])
        return int(total[0]), [DossierHit(*r) for r in rows]

    async def search_dossiers(self, prefix: str, limit: int) -> list[DossierHit]:
        """Dossiers whose code starts with `prefix`: a range scan of the primary key (no LIKE,
        so no pattern characters to escape)."""
        rows = await self._rows(
            "SELECT code, status, updated_at FROM dossiers WHERE code >= ? AND code < ? "
            "ORDER BY code LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit),
        )
        return [DossierHit(str(r[0]), r[1], str(r[2])) for r in rows]

    # -- log-ins --------------------------------------------------------------------------------

    async def login_state(self, username: str) -> LoginState | None:
        rows = await self._rows(
            "SELECT failures, last_failure, locked_until FROM operator_logins WHERE username = ?",
            (username,),
        )
        return LoginState(int(rows[0][0]), rows[0][1], rows[0][2]) if rows else None

    async def login_summary(self, name: str) -> LoginState | None:
        """`name`'s failures from every client: their sum, the last, the latest lock."""
        rows = await self._rows(
            "SELECT sum(failures), max(last_failure), max(locked_until) FROM operator_logins "
            "WHERE substr(username, 1, ?) = ?",
            (len(name) + 1, f"{name}|"),
        )
        if not rows or rows[0][1] is None:
            return None
        return LoginState(int(rows[0][0]), rows[0][1], rows[0][2])

    async def login_failed(
        self, username: str, now: float, window_s: float, max_failures: int, lock_s: float
    ) -> LoginState:
        """Count a failure (failures older than the window start the count again); the one
        that reaches `max_failures` locks the name for `lock_s`."""
        async with self._store.transaction() as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT failures, last_failure, locked_until FROM operator_logins "
                    "WHERE username = ?",
                    (username,),
                )
            )
            # Keys nobody failed under for a window (unknown names too) are forgotten.
            await db.execute(
                "DELETE FROM operator_logins WHERE last_failure < ? AND locked_until < ?",
                (now - window_s, now),
            )
            failures = int(rows[0][0]) if rows and now - rows[0][1] <= window_s else 0
            failures += 1
            locked_until = rows[0][2] if rows else 0.0
            if failures >= max_failures:
                locked_until, failures = now + lock_s, 0
            await db.execute(
                "INSERT INTO operator_logins VALUES (?,?,?,?) ON CONFLICT (username) DO UPDATE "
                "SET failures = excluded.failures, last_failure = excluded.last_failure, "
                "locked_until = excluded.locked_until",
                (username, failures, now, locked_until),
            )
        return LoginState(failures, now, locked_until)

    async def login_succeeded(self, key: str) -> None:
        """Forget the failures counted under `key` (a name and a client)."""
        async with self._store.transaction() as db:
            await db.execute("DELETE FROM operator_logins WHERE username = ?", (key,))

    async def unlock(self, name: str) -> int:
        """Forget the failures of `name` from every client (an administrator's unlock); how
        many client addresses had some."""
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "DELETE FROM operator_logins WHERE substr(username, 1, ?) = ?",
                (len(name) + 1, f"{name}|"),
            )
            return max(cursor.rowcount, 0)


# The search: part of the code (any case), the start of the procedure code, the owner's key.
_FOUND_SQL = (
    "SELECT code, MIN(matched) AS matched FROM ("
    "SELECT code, 'code' AS matched FROM dossiers WHERE instr(upper(code), ?) > 0 "
    "UNION SELECT code, 'procedure' FROM dossiers "
    "WHERE procedure_code >= ? AND procedure_code < ? "
    "UNION SELECT code, 'owner' FROM dossiers WHERE owner_key = ? AND owner_key <> ''"
    ") AS hits GROUP BY code"
)
_FOUND_COUNT_SQL = "SELECT COUNT(*) FROM (" + _FOUND_SQL + ") AS found"  # noqa: S608 (constants)
_FOUND_COLUMNS = "d.code, d.status, d.updated_at, d.procedure_code, f.matched"
_OWNER_SQL = "json_extract(d.record_json, '$.owner_name')"
_FOUND_PAGE_SQL = (
    f"SELECT {_FOUND_COLUMNS}, {_OWNER_SQL} FROM ({_FOUND_SQL}) f "  # noqa: S608 (constants)
    "JOIN dossiers d ON d.code = f.code ORDER BY d.code LIMIT ? OFFSET ?"
)

# The stuck list's parts: fixed SQL, values only as parameters.
_BEHIND_SQL = (
    "SELECT d.code AS code, ? AS destination, d.updated_at AS since, d.status AS status, "
    "d.procedure_code AS procedure_code, d.version AS version, s.version AS confirmed, "
    "t.outcome AS outcome, t.reason AS reason, t.at AS reason_at, "
    "t.reason_code AS reason_code, t.reason_args AS reason_args FROM dossiers d "
    "LEFT JOIN destination_state s ON s.dossier_code = d.code AND s.destination = ? "
    "LEFT JOIN delivery_trouble t ON t.dossier_code = d.code AND t.destination = ? "
    "WHERE (s.behind IS NULL OR s.behind = 1)"
)
_TROUBLE_SQL = (
    "SELECT d.code AS code, t.destination AS destination, t.since AS since, "
    "d.status AS status, d.procedure_code AS procedure_code, d.version AS version, "
    "NULL AS confirmed, t.outcome AS outcome, t.reason AS reason, t.at AS reason_at, "
    "t.reason_code AS reason_code, t.reason_args AS reason_args "
    "FROM delivery_trouble t JOIN dossiers d ON d.code = t.dossier_code WHERE 1 = 1"
)


def _stuck_row(r: Any) -> StuckRow:
    """A row of `_BEHIND_SQL` or `_TROUBLE_SQL` (their columns, in order)."""
    return StuckRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                    reason_args_of(r[11]))  # fmt: skip


def _stuck_sql(
    state_destinations: list[str], where: StuckFilter, now: datetime
) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    conditions, values = _dossier_conditions(where, now)
    for destination in state_destinations:
        if where.destination in (None, destination):
            parts.append(_BEHIND_SQL + conditions.replace("{since}", "d.updated_at"))
            params += [destination, destination, destination, *values]
    if where.destination is None or where.destination not in state_destinations:
        sql = _TROUBLE_SQL + conditions.replace("{since}", "t.since")
        extra: list[Any] = []
        for destination in state_destinations:
            sql += " AND t.destination <> ?"
            extra.append(destination)
        if where.destination is not None:
            sql += " AND t.destination = ?"
            extra.append(where.destination)
        parts.append(sql)
        params += [*values, *extra]
    return " UNION ALL ".join(parts), params


def _dossier_conditions(where: StuckFilter, now: datetime) -> tuple[str, list[Any]]:
    """The filters on the dossier (`d`), and `{since}` for the part's own time column."""
    sql, values = "", list[Any]()
    if where.agency:
        sql += " AND d.code >= ? AND d.code < ?"
        values += [f"{where.agency}-", f"{where.agency}-\U0010ffff"]
    if where.procedure:
        sql += " AND d.procedure_code >= ? AND d.procedure_code < ?"
        values += [where.procedure, where.procedure + "\U0010ffff"]
    if where.status is not None:
        sql += " AND d.status = ?"
        values.append(where.status)
    if where.older_than_s:
        sql += " AND {since} <= ?"
        values.append((now - timedelta(seconds=where.older_than_s)).isoformat())
    return sql, values
