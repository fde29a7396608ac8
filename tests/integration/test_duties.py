"""Once-only duties (`hub.duties`) on a real store, each back-end: the keepers of two replicas
share one store (two connections to one SQLite file, or to one PostgreSQL database), as two
`hub run` processes would. A duty runs on one replica at a time, starts at once on a replica
alone, moves when its holder stops (at the next try, within the lease time), waits for the
lease a dead replica left to lapse, stops at once when its lease is found another's, stops
when the store refuses the renewal and (on PostgreSQL, where another session can hold a lock
the renewal waits for) when the store does not answer before the lease would lapse, then comes
back. No broker: the runner needs only the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from hub.duties import Duties, Keeper
from hub.store.postgresql import PostgresStore
from hub.store.sqlite import SqliteStore
from tests.support import eventually

LEASE_S = 1.0
RENEW_S = 0.25
DUTY = "ministry-poll-land"

Opener = Callable[[Path, pytest.FixtureRequest], AbstractAsyncContextManager[SqliteStore]]
BACKENDS: dict[str, Opener] = {
    "sqlite": lambda folder, _request: SqliteStore.open(folder / "hub.db"),
    "postgresql": lambda _folder, request: PostgresStore.connect(
        request.getfixturevalue("postgres_database")
    ),
}


@dataclass
class Stores:
    """Two connections to one store, as two replicas have; `url` on PostgreSQL."""

    a: SqliteStore
    b: SqliteStore
    url: str | None


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=[pytest.mark.postgres]),
    ]
)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    opener = BACKENDS[request.param]
    async with opener(tmp_path, request) as a, opener(tmp_path, request) as b:
        url = (
            request.getfixturevalue("postgres_database") if request.param == "postgresql" else None
        )
        yield Stores(a, b, url)


@dataclass
class Work:
    """A duty that runs until cancelled, counting across replicas how many run at once."""

    running: int = 0
    most: int = 0  # the most that ever ran at once
    started: int = 0
    cancelled: int = 0
    first_run_raises: type[BaseException] | None = None

    async def run(self) -> None:
        self.running += 1
        self.started += 1
        self.most = max(self.most, self.running)
        try:
            if self.first_run_raises is not None and self.started == 1:
                raise self.first_run_raises("the duty's first run ends")
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1


def replica(store: SqliteStore, holder: str) -> Duties:
    return Duties(store.leases, holder, LEASE_S, RENEW_S)


async def keep(stack: AsyncExitStack, duties: Duties, work: Work) -> Keeper:
    keeper = await duties.keep(DUTY, work.run)
    stack.push_async_callback(keeper.stop)
    return keeper


async def renewals(store: SqliteStore, holder: str, n: int) -> None:
    """Wait until `holder` renewed its lease `n` times more (its lease's renewal time moved
    on `n` times, read on the store), so that the others had as many tries."""
    seen: list[float] = []

    async def moved() -> bool:
        lease = next(x for x in await store.leases.leases() if x.name == DUTY)
        assert lease.holder == holder
        if not seen or lease.renewed_at > seen[-1]:
            seen.append(lease.renewed_at)
        return len(seen) > n

    await eventually(moved, 20, f"{n} renewals by {holder}")


async def test_a_replica_alone_runs_its_duty_at_once(stores: Stores) -> None:
    work = Work()
    async with AsyncExitStack() as stack:
        keeper = await keep(stack, replica(stores.a, "hub-a"), work)
        assert keeper.holding  # taken before `keep` returned: no wait before the first run
        await eventually(lambda: work.running == 1, 5, "the duty running")
        (lease,) = await stores.b.leases.leases()
        assert (lease.name, lease.holder) == (DUTY, "hub-a")
    assert work.running == 0
    assert work.cancelled == 1
    assert await stores.b.leases.leases() == []  # handed over at stop: released


async def test_two_replicas_run_a_duty_one_at_a_time_and_hand_it_over_at_stop(
    stores: Stores,
) -> None:
    work = Work()
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        a_duties, b_duties = replica(stores.a, "hub-a"), replica(stores.b, "hub-b")
        a = await keep(stack, a_duties, work)
        b = await keep(stack, b_duties, work)
        assert a.holding
        assert not b.holding
        await renewals(stores.b, "hub-a", 4)  # B tried at least as often, in vain
        assert (work.most, work.started) == (1, 1)
        assert (a_duties.held(), b_duties.held()) == ([DUTY], [])
        await a.stop()
        stopped = loop.time()
        await eventually(lambda: b.holding, LEASE_S, "hub-b taking the duty within the lease")
        taken_after_s = loop.time() - stopped
        await eventually(lambda: work.running == 1, 5, "the duty running on hub-b")
        assert (work.most, work.started, work.cancelled) == (1, 2, 1)
        assert taken_after_s < LEASE_S
        (lease,) = await stores.a.leases.leases()
        assert lease.holder == "hub-b"


async def test_the_lease_of_a_dead_replica_is_taken_once_it_lapses(stores: Stores) -> None:
    dead = await stores.a.leases.acquire(DUTY, "hub-dead", LEASE_S)
    work = Work()
    async with AsyncExitStack() as stack:
        b = await keep(stack, replica(stores.b, "hub-b"), work)
        assert not b.holding
        assert work.started == 0
        await eventually(lambda: b.holding, LEASE_S + 5, "hub-b taking the lapsed lease")
        (lease,) = await stores.a.leases.leases()
        assert lease.holder == "hub-b"
        assert lease.acquired_at >= dead.expires_at  # not before, on the store's clock
        await eventually(lambda: work.running == 1, 5, "the duty running on hub-b")


async def test_a_duty_stops_at_once_when_its_lease_is_found_another_s(stores: Stores) -> None:
    work = Work()
    async with AsyncExitStack() as stack:
        a = await keep(stack, replica(stores.a, "hub-a"), work)
        await eventually(lambda: work.running == 1, 5, "the duty running")
        # Another replica holds the lease now (as after a pause of hub-a longer than the lease):
        # hub-a must find it at its next renewal and stop the duty then.
        async with stores.b.transaction() as db:
            await db.execute(
                "UPDATE duty_leases SET holder = 'hub-other', "
                "expires_at = (julianday('now') - 2440587.5) * 86400.0 + 1.0"
            )
        await eventually(lambda: work.cancelled == 1, 5, "the duty cancelled")
        assert not a.holding
        assert work.running == 0
        # Once the other's lease lapses, hub-a takes the duty back.
        await eventually(lambda: a.holding and work.running == 1, LEASE_S + 5, "taken back")
        assert (work.most, a.taken) == (1, 2)


@pytest.mark.parametrize("ending", [RuntimeError, asyncio.CancelledError])
async def test_a_duty_that_fails_is_started_again(
    stores: Stores, ending: type[BaseException]
) -> None:
    work = Work(first_run_raises=ending)
    async with AsyncExitStack() as stack:
        a = await keep(stack, replica(stores.a, "hub-a"), work)
        await eventually(lambda: work.started == 2 and work.running == 1, 5, "a second run")
        assert a.holding
        assert a.taken == 2


async def test_a_store_that_fails_under_the_holder_stops_its_duty_until_it_answers(
    stores: Stores,
) -> None:
    """The store refuses the holder's renewal (its table is away, renamed by another
    session): the holder cannot prove it still holds the lease, so the duty stops; once the
    store answers again, the duty is taken back."""
    work = Work()
    async with AsyncExitStack() as stack:
        a = await keep(stack, replica(stores.a, "hub-a"), work)
        await eventually(lambda: work.running == 1, 5, "the duty running")
        async with stores.b.transaction() as db:
            await db.execute("ALTER TABLE duty_leases RENAME TO duty_leases_away")
        await eventually(lambda: work.cancelled == 1, 5, "the duty stopped")
        assert not a.holding
        async with stores.b.transaction() as db:
            await db.execute("ALTER TABLE duty_leases_away RENAME TO duty_leases")
        await eventually(lambda: a.holding and work.running == 1, 10, "the duty taken back")
        assert (work.most, a.taken) == (1, 2)


@pytest.mark.postgres
async def test_a_store_that_does_not_answer_stops_the_duty_before_the_lease_lapses(
    postgres_database: str,
) -> None:
    """A renewal that waits (here for a lock another session holds on the leases) is given up
    when the lease would lapse: the duty stops by then, so a replica that takes the lapsed
    lease never runs beside it. Once the store answers again the duty is taken back."""
    work = Work()
    async with PostgresStore.connect(postgres_database) as store, AsyncExitStack() as stack:
        a = await keep(stack, replica(store, "hub-a"), work)
        await eventually(lambda: work.running == 1, 5, "the duty running")
        conn = await asyncpg.connect(postgres_database)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE duty_leases IN ACCESS EXCLUSIVE MODE")
                await eventually(lambda: work.cancelled == 1, LEASE_S + 5, "the duty stopped")
                assert not a.holding
        finally:
            await conn.close()
        await eventually(lambda: a.holding and work.running == 1, 10, "the duty taken back")
        assert work.most == 1
