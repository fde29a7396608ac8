"""The SQLite store's group commit and its read-only connection for the hot path's reads.

A real store in a temporary folder, a second plain sqlite3 connection as an outside observer:
works submitted while a group commits share the next transaction (none of them is visible to
the observer before all of them are, and no caller resumes before that), a work that raises is
undone alone, and `known_dossiers` answers while a write transaction holds the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest

from hub.store.sqlite import SqliteStore
from schemas.canonical import DossierEvent, DossierRecord, DossierStatus

CODE = "000.00.41.H41-261201-0001"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore.open(tmp_path / "hub.db") as opened:
        yield opened


def observed(path: Path, actor: str) -> int:
    """Audit rows of `actor` that another connection sees (committed ones only)."""
    with sqlite3.connect(path) as outside:
        return int(
            outside.execute("SELECT COUNT(*) FROM audit_log WHERE actor = ?", (actor,)).fetchone()[
                0
            ]
        )


async def _insert(db: aiosqlite.Connection, actor: str, target: str) -> int:
    rows = await db.execute_fetchall(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ('t', ?, 'x', ?, '{}') "
        "RETURNING id",
        (actor, target),
    )
    return int(next(iter(rows))[0])


async def test_works_submitted_together_share_one_commit(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "hub.db"
    release = asyncio.Event()
    seen_while_grouped: list[int] = []

    async def first(db: aiosqlite.Connection) -> int:
        await release.wait()  # holds the group open while the others are submitted
        return await _insert(db, "first", "0")

    def later(n: int) -> Callable[[aiosqlite.Connection], Awaitable[int]]:
        async def work(db: aiosqlite.Connection) -> int:
            row = await _insert(db, "later", str(n))
            seen_while_grouped.append(await asyncio.to_thread(observed, path, "later"))
            return row

        return work

    holding = asyncio.create_task(store.grouped(first))
    await asyncio.sleep(0)  # the first group is running
    others = [asyncio.create_task(store.grouped(later(n))) for n in range(10)]
    resumed_seeing: list[int] = []
    for task in others:
        task.add_done_callback(lambda _: resumed_seeing.append(observed(path, "later")))
    release.set()
    ids = await asyncio.gather(holding, *others)

    assert len(set(ids)) == 11
    assert seen_while_grouped == [0] * 10  # none committed while the group ran
    assert resumed_seeing == [10] * 10  # every caller resumed after the one commit of all ten


async def test_a_failing_work_is_undone_alone(store: SqliteStore, tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    release = asyncio.Event()

    async def hold(db: aiosqlite.Connection) -> None:
        await release.wait()

    async def good(db: aiosqlite.Connection) -> int:
        return await _insert(db, "good", "-")

    async def bad(db: aiosqlite.Connection) -> int:
        await _insert(db, "bad", "-")
        raise ValueError("refused after writing")

    holding = asyncio.create_task(store.grouped(hold))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(store.grouped(w)) for w in (good, bad, good)]
    release.set()
    await holding
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(outcomes[1], ValueError)
    assert all(isinstance(o, int) for o in (outcomes[0], outcomes[2]))
    assert observed(path, "good") == 2
    assert observed(path, "bad") == 0


async def test_known_dossiers_do_not_wait_for_a_write_transaction(store: SqliteStore) -> None:
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    event = DossierEvent(
        event_id="e1",
        source_system="onestop",
        dossier_code=CODE,
        kind="record",
        status=DossierStatus.accepted,
        occurred_at=at,
        record=DossierRecord(dossier_code=CODE, status=DossierStatus.accepted, received_at=at),
    )
    await store.ingest([event], at)
    inside, leave = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with store.transaction():
            inside.set()
            await leave.wait()

    holding = asyncio.create_task(writer())
    await inside.wait()
    try:
        known = await asyncio.wait_for(store.known_dossiers([CODE, "unknown"]), 5)
    finally:
        leave.set()
        await holding
    assert known == {CODE}
