"""The leases of the once-only duties, in the store (`duty_leases`, migration 0011).

A lease is taken, renewed and released by one statement each, so that two replicas racing for
one never both get it: the insert that finds the row already there updates it only when it is
free to take (expired) or is the caller's own; otherwise the row stays as it is and the caller
reads who holds it. Expiry is judged on the database's clock (`julianday('now')`, which the
PostgreSQL migrations define as the statement's time), never on a replica's: the replicas'
clocks need not agree (decision 0091). This module must never decide who should hold a duty;
`hub.duties` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.store.base import Lease

if TYPE_CHECKING:
    from hub.store.sqlite import SqliteStore

# The database's clock in unix seconds, `((julianday('now') - 2440587.5) * 86400.0)`, written
# out in each statement (SQLite: the same moment throughout a statement, to the millisecond).
_ACQUIRE_SQL = (
    "INSERT INTO duty_leases (name, holder, expires_at, acquired_at, renewed_at) "
    "VALUES (?1, ?2, (julianday('now') - 2440587.5) * 86400.0 + ?3, "
    "(julianday('now') - 2440587.5) * 86400.0, (julianday('now') - 2440587.5) * 86400.0) "
    "ON CONFLICT (name) DO UPDATE SET "
    "holder = excluded.holder, "
    "expires_at = excluded.expires_at, "
    # A renewal keeps when it was taken; a lease taken over (or taken again after it lapsed)
    # begins anew.
    "acquired_at = CASE WHEN duty_leases.holder = excluded.holder "
    "AND duty_leases.expires_at > excluded.renewed_at "
    "THEN duty_leases.acquired_at ELSE excluded.acquired_at END, "
    "renewed_at = excluded.renewed_at "
    "WHERE duty_leases.holder = excluded.holder OR duty_leases.expires_at <= excluded.renewed_at"
)
_ONE_SQL = (
    "SELECT name, holder, acquired_at, renewed_at, expires_at, "
    "(julianday('now') - 2440587.5) * 86400.0 FROM duty_leases WHERE name = ?"
)
_ALL_SQL = (
    "SELECT name, holder, acquired_at, renewed_at, expires_at, "
    "(julianday('now') - 2440587.5) * 86400.0 FROM duty_leases ORDER BY name"
)
_RELEASE_SQL = "DELETE FROM duty_leases WHERE name = ? AND holder = ?"
_FORGET_SQL = (
    "DELETE FROM duty_leases WHERE substr(name, 1, length(?1)) = ?1 "
    "AND expires_at < (julianday('now') - 2440587.5) * 86400.0 - ?2"
)


class SqliteLeases:
    """The leases, on either back-end (the SQL is shared, decision 0083)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def acquire(self, name: str, holder: str, ttl_s: float) -> Lease:
        """Take the lease `name` for `ttl_s` seconds if it is free, expired or `holder`'s
        already (then it is renewed); never one another holder keeps alive. The lease as it
        stands after: `holder` holds it exactly when its `holder` is that one."""
        if not ttl_s > 0:
            raise ValueError(f"a lease lasts a positive time, not {ttl_s!r} s")
        async with self._store.transaction() as db:
            await db.execute(_ACQUIRE_SQL, (name, holder, float(ttl_s)))
            rows = await db.execute_fetchall(_ONE_SQL, (name,))
        return _lease(next(iter(rows)))

    async def release(self, name: str, holder: str) -> bool:
        """Give the lease up, so another replica takes it without waiting for it to expire;
        False if `holder` did not hold it (nothing changes then)."""
        async with self._store.transaction() as db:
            cursor = await db.execute(_RELEASE_SQL, (name, holder))
            return bool(cursor.rowcount)

    async def clear(self) -> int:
        """Drop every lease; how many there were. Only for a store one hub process uses alone
        (SQLite), as that process starts: what is there was left by an earlier one, killed."""
        async with self._store.transaction() as db:
            cursor = await db.execute("DELETE FROM duty_leases")
            return max(cursor.rowcount, 0)

    async def forget_lapsed(self, prefix: str, lapsed_for_s: float) -> int:
        """Drop the leases whose name begins with `prefix` and that lapsed more than
        `lapsed_for_s` ago (on the database's clock); how many."""
        async with self._store.transaction() as db:
            cursor = await db.execute(_FORGET_SQL, (prefix, float(lapsed_for_s)))
            return max(cursor.rowcount, 0)

    async def leases(self) -> list[Lease]:
        """Every lease the store holds, by name, expired ones too (until taken or released)."""
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(_ALL_SQL)
        return [_lease(r) for r in rows]


def _lease(row: Any) -> Lease:
    return Lease(
        str(row[0]), str(row[1]), float(row[2]), float(row[3]), float(row[4]), float(row[5])
    )
