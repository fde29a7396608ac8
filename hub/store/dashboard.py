"""The dashboard's half of the SQLite store: completeness, lag, samples, searches, log-ins.

Reads here run on whichever connection the `SqliteStore` holds; the hub gives the dashboard a
second, read-only one (`SqliteStore.open_reader`), so these queries never queue behind the
hub's writes. Every query is bounded by an index and a limit, so a page costs the same with a
thousand dossiers or a million: completeness counts a destination's dossiers behind in a
partial index (and those it never confirmed from a counter), searches are range scans of the
primary key, the lag is read from per-minute histograms per destination. Writes
(samples, log-in failures) go through the writing store. This module must never interpolate a
value into SQL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.store.sqlite import SqliteStore


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
        async with self._store.transaction() as db:
            await db.executemany(
                "INSERT OR REPLACE INTO connector_samples VALUES (?,?,?,?,?,?,?,?)",
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

    # -- searches -------------------------------------------------------------------------------

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
                "INSERT OR REPLACE INTO operator_logins VALUES (?,?,?,?)",
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
