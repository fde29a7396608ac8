"""Once-only duties: work that runs on one replica at a time, kept by a lease in the store.

Several `hub run` processes may share one store (PostgreSQL) and one broker. The queues are
shared by the broker; the schedules are not: the outbox sweep, the alert checks and the
connectors' schedules (catalogue sync, ministry and axis polls, payment status checks, the
daily reconciliation) each run on the one replica that holds the lease named after them
(decision 0091). A `Keeper` per duty loops: take the lease; while it holds it, run the duty's
coroutine (made afresh by its factory each time) as a task and renew the lease every
`renew_every_s`; when a renewal finds the lease another's, fails, or has not answered by the
time the lease would lapse, the task is cancelled at once and the keeper goes back to trying.
A replica that does not hold a duty tries again every `renew_every_s`, or just after the
holder's lease lapses if that comes sooner. As the hub stops, each keeper cancels its task and
releases its lease, so another replica takes over at its next try instead of at expiry.

Each replica also keeps a lease of its own, `replica:<holder>` (`Duties.announce`): no other
replica ever wants it, so it is always taken and renewed, and the leases then name every live
replica, standing by or not (the dashboard's Replicas section, decision 0098). Its duty
deletes, now and then, the presence leases of replicas that stopped renewing them more than
`PRESENCE_KEPT_S` ago (killed; a replica that stops releases its own). It is not a duty in
`held()` or `kept()`.

The lease's expiry is judged on the database's clock; the holder counts its lease from the
moment it *sent* the request that took or renewed it (on its own monotonic clock), which is no
later than the database's moment, so it stops before any other replica can take the lease,
whatever the replicas' wall clocks say. A single hub takes every lease at once as it starts
and runs its duties as it always did.

This module must never run a duty without a lease it has just proved, and never let a duty's
failure end the keeper.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import structlog

from hub.store.base import Lease

log = structlog.get_logger(__name__)

# Makes a duty's coroutine: called again each time this replica takes the duty (back).
DutyFactory = Callable[[], Coroutine[Any, Any, None]]

EXPIRY_MARGIN_S = 0.05  # a standby tries this long after the holder's lease lapses
RELEASE_TIMEOUT_S = 2.0  # at stop, how long a release may take before it is given up
PRESENCE = "replica:"  # the name of a replica's presence lease: this, then its holder id
PRESENCE_KEPT_S = 3600.0  # a lapsed presence lease (a killed replica) is deleted after this
TIDY_EVERY_S = 300.0  # how often a replica's presence duty deletes the old lapsed ones


class Leases(Protocol):
    """The leases of the duties, in the store shared by the replicas (`hub.store.leases`)."""

    async def acquire(self, name: str, holder: str, ttl_s: float) -> Lease:
        """Take `name` for `ttl_s` if free, expired or `holder`'s own (renewed then); never a
        live lease of another holder. The lease as it stands after."""
        ...

    async def release(self, name: str, holder: str) -> bool:
        """Give it up; False if `holder` did not hold it."""
        ...

    async def leases(self) -> list[Lease]:
        """Every lease held (or lapsed and not yet taken), by name."""
        ...

    async def clear(self) -> int:
        """Drop every lease (a store one process uses alone, as it starts)."""
        ...

    async def forget_lapsed(self, prefix: str, lapsed_for_s: float) -> int:
        """Drop the leases named `prefix…` that lapsed more than `lapsed_for_s` ago."""
        ...


def is_presence(name: str) -> bool:
    """Whether the lease `name` is a replica's presence (`Duties.announce`), not a duty's."""
    return name.startswith(PRESENCE)


def replica_id(instance: str) -> str:
    """This process's name as a lease holder: the configuration's `instance` and a random
    suffix drawn at start, so two processes started from one configuration never share one
    (and a restarted process is a new holder, which takes its old leases only once free)."""
    return f"{instance}-{secrets.token_hex(4)}"


def standby_wait_s(seen: Lease | None, renew_every_s: float) -> float:
    """How long a replica that did not get a duty waits before trying again: its renewal
    interval, or until just after the holder's lease lapses (measured on the database's
    clock, `remaining_s`) if that comes sooner."""
    if seen is None or not seen.live:
        return renew_every_s
    return min(renew_every_s, seen.remaining_s + EXPIRY_MARGIN_S)


class Duties:
    """One replica's duties: a keeper each, all under one holder id."""

    def __init__(self, leases: Leases, holder: str, lease_s: float, renew_every_s: float) -> None:
        if not 0 < renew_every_s < lease_s:
            raise ValueError("a lease is renewed more often than it lasts")
        self.leases = leases
        self.holder = holder
        self.lease_s = lease_s
        self.renew_every_s = renew_every_s
        self.keepers: dict[str, Keeper] = {}

    async def keep(self, name: str, factory: DutyFactory) -> Keeper:
        """Start keeping the duty `name`: one try at its lease now (a hub alone gets it, and
        the duty starts at once), then a keeper task of its own. Stop it with `Keeper.stop`."""
        if name in self.keepers:
            raise ValueError(f"the duty {name!r} is kept already")
        keeper = Keeper(self, name, factory)
        self.keepers[name] = keeper
        await keeper.start()
        return keeper

    async def announce(self) -> Keeper:
        """Keep this replica's presence lease (see the module's docstring); stop it with
        `Keeper.stop`, which releases it."""
        return await self.keep(PRESENCE + self.holder, self._tidy)

    async def _tidy(self) -> None:
        """The presence duty: delete the lapsed presence leases of replicas long gone."""
        while True:
            try:
                await self.leases.forget_lapsed(PRESENCE, PRESENCE_KEPT_S)
            except Exception as exc:  # the store is away: the next round tries again
                log.warning("presence_tidy_failed", error=repr(exc))
            await asyncio.sleep(TIDY_EVERY_S)

    def held(self) -> list[str]:
        """The duties this replica runs now, by name."""
        return sorted(n for n, k in self.keepers.items() if k.holding and not is_presence(n))

    def kept(self) -> list[str]:
        """Every duty this replica keeps (runs, or stands by for), by name."""
        return sorted(n for n in self.keepers if not is_presence(n))


class Keeper:
    """Keeps one duty: its lease, and its task while the lease is held."""

    def __init__(self, duties: Duties, name: str, factory: DutyFactory) -> None:
        self.duties = duties
        self.name = name
        self.factory = factory
        self.holding = False  # the duty's task runs (the lease was proved at the last renewal)
        self.taken = 0  # how many times this replica took the duty, for whoever watches
        self._seen: Lease | None = None  # the lease as the last try found it
        self._loop_task: asyncio.Task[None] | None = None
        self._work: asyncio.Task[None] | None = None  # the duty's task, while it runs
        self._may_hold = False  # the store may still name this replica: release it at stop

    @property
    def _log(self) -> Any:
        return log.bind(duty=self.name, holder=self.duties.holder)

    async def start(self) -> None:
        deadline = await self._try()
        if deadline is not None:
            self._begin()  # running before `start` returns: a hub alone never waits for it
        self._loop_task = asyncio.create_task(self._keep(deadline), name=f"duty-{self.name}")

    async def stop(self) -> None:
        """Cancel the duty and release its lease (given up after `RELEASE_TIMEOUT_S` if the
        store does not answer: the lease then lapses by itself)."""
        if self._loop_task is not None:
            await _finish(self._loop_task)
        await self._end_work()  # if the keeper was stopped before it ever ran
        if not self._may_hold:
            return
        self._may_hold = False
        d = self.duties
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_S):
                released = await d.leases.release(self.name, d.holder)
        except Exception as exc:  # the store is away: the lease lapses after lease_s
            self._log.warning("duty_release_failed", error=repr(exc))
            return
        if released:
            self._log.info("duty_handed_over")

    async def _keep(self, deadline: float | None) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if deadline is not None:
                await self._hold(deadline)
                wait = self.duties.renew_every_s  # lost or ended: others get their chance
            else:
                wait = standby_wait_s(self._seen, self.duties.renew_every_s)
            await asyncio.sleep(max(wait, 0.0))
            deadline = await self._try()
            if deadline is not None and deadline <= loop.time():
                deadline = None  # the answer came too late to prove anything

    async def _try(self) -> float | None:
        """One try at the lease: the moment (loop time) until which it is this replica's if
        taken, else None (another holds it, or the store did not answer)."""
        d = self.duties
        sent = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(d.lease_s):
                lease = await d.leases.acquire(self.name, d.holder, d.lease_s)
        except Exception as exc:  # the store is away (or too slow): try again later
            self._seen = None
            self._log.warning("duty_lease_unread", error=repr(exc))
            return None
        before, self._seen = self._seen, lease
        if lease.holder != d.holder:
            return None
        self._may_hold = True
        previous = before.holder if before is not None and before.holder != d.holder else None
        self._log.info("duty_taken", previous=previous)
        return sent + d.lease_s

    def _begin(self) -> asyncio.Task[None]:
        """The duty's task, started (the lease was just proved)."""
        self._work = asyncio.create_task(self.factory(), name=f"duty-{self.name}-work")
        self.holding = True
        self.taken += 1
        return self._work

    async def _end_work(self) -> None:
        self.holding = False
        task, self._work = self._work, None
        if task is not None:
            await _finish(task)

    async def _hold(self, deadline: float) -> None:
        """Run the duty while every renewal proves the lease; return once one does not, or the
        duty ended by itself, with its task cancelled."""
        d = self.duties
        loop = asyncio.get_running_loop()
        task = self._work if self._work is not None else self._begin()
        try:
            while True:
                await asyncio.wait({task}, timeout=d.renew_every_s)
                if task.done():
                    self._ended(task)
                    return
                sent = loop.time()
                why = await self._renew(deadline - sent)
                if why is not None:
                    self._log.warning("duty_lost", reason=why)
                    return
                deadline = sent + d.lease_s
        finally:
            await self._end_work()

    async def _renew(self, left_s: float) -> str | None:
        """Renew the lease before `left_s` runs out; None if renewed, else why not."""
        d = self.duties
        try:
            async with asyncio.timeout(max(left_s, 0.0)):
                lease = await d.leases.acquire(self.name, d.holder, d.lease_s)
        except TimeoutError:
            return "the store did not answer before the lease would lapse"
        except Exception as exc:  # cannot prove it still holds the lease: stop
            return f"the store failed: {exc!r}"[:300]
        self._seen = lease
        if lease.holder != d.holder:
            self._may_hold = False
            return f"taken by {lease.holder}"
        return None

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The duty's coroutine returned or raised (it should run until cancelled): logged.
        The keeper starts it afresh after one renewal interval, its lease still its own (a
        duty that fails here would fail on another replica too)."""
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            self._log.error("duty_crashed", error=repr(failure))
        else:
            self._log.warning("duty_ended")


async def _finish(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended. Waiting never raises what the task raised,
    and never swallows a cancellation of the caller (Python 3.11's `wait_for`, or
    suppressing CancelledError around `await task`, can: a keeper would then run on)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled():
        task.exception()  # retrieved: what a duty raised was logged when it ended
