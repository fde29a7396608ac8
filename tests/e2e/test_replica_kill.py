"""Three competing replicas under a steady stream, killed with SIGKILL one after another.

Three `hub run` processes share one PostgreSQL store and one broker prefix, with
`broker.single_active_consumer: true` and short leases (`duties.lease_s` LEASE_S). The
one-stop system sends a steady stream of dossier changes (each change a record and a step, a
dossier's next change only once its last was acknowledged) through the replicas' doors in
turn; a door of a killed replica is skipped, and a request cut off by a kill is sent again to
another replica, as a client resends what was not acknowledged. At random moments (a seeded
`random.Random`; the seed is printed, and `HUB_TEST_KILL_SEED` replays a run) one replica is
killed with SIGKILL, restarted once its duties have moved, then another: first the replica
holding the once-only duties, then the one delivering to DVCQG (the active consumer), then
any, KILLS in all.

What the product promises, and what is asserted:

* Nothing acknowledged is lost: every dossier ends at its newest status at DVCQG, with every
  step the one-stop was told was accepted.
* No regression: each dossier's history at DVCQG (every `TrangThaiHoSo` it was sent, in the
  order it came) never goes back. A snapshot may come twice (a replica killed after DVCQG
  applied it, before it recorded that): full state, harmless (guarantee 2).
* No step twice: DVCQG's step call has no idempotency key, and decision 0005 allows a repeat
  where DVCQG applied a step but its reply was lost; but the sink settles every message
  delivered again (as the killed replica's unacknowledged ones are, to the next replica) by
  asking DVCQG which steps it holds (`TraCuuHoSo`) before sending any again, and this DVCQG
  answers that. So here, as in the single-hub crash test, no step reaches DVCQG twice.
* Every duty the killed replica held runs on another replica (as that replica's `/readyz`
  says) within LEASE_S + RENEW_S + MARGIN_S of the kill: the lease lapses at most LEASE_S
  after the killed holder's last renewal, and a standby tries just after it lapses.

The delivery pause after each kill (from the kill to the next call that reaches DVCQG from
another process) is measured and printed as `replica-kill pause_s=...` for the bench; each
hand-over as `replica-kill handover_s=...`. Every hub process logs in to DVCQG under an
account of its own, so the simulator knows which process delivered.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from tests.support import (
    ONESTOP_TOKEN,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    HubProcess,
    eventually,
    hub_overrides,
)
from tests.support.streaming import LIFE, NUMBERS, life_record

pytestmark = pytest.mark.slow

LEASE_S = 6.0
RENEW_S = 2.0
# What a busy two-core machine adds to LEASE_S + RENEW_S: the standby's try after the lapse,
# the store's answer, and /readyz polled while three hubs, PostgreSQL and RabbitMQ share it.
MARGIN_S = 4.0
KILLS = 3  # the duty holder, the active consumer, then any
TICK_S = 0.25  # one POST per tick: a new dossier, and the next change of those under way
AUTH = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}
PUSHES = ("DongBoHoSoMC", "CapNhatTienDoHoSoMC")
SEED_VAR = "HUB_TEST_KILL_SEED"
REPLY_LATE_S = 0.1  # DVCQG applies each call, then answers this much later

# A dossier's life, each status later than the one before (DVCQG's TrangThaiHoSo is its number).


class Portal(DvcqgSimulator):
    """DVCQG that takes each hub process's own account (the one password), notes when each
    push call reached it and under which account (`deliveries`), and which accounts have a
    push call applied but not yet answered (`unanswered`): every reply comes REPLY_LATE_S
    after the call was applied, so a kill can fall between the two."""

    def __init__(self) -> None:
        super().__init__(username=PORTAL_USER, password=PORTAL_PASSWORD)
        self.faults.update({"mode": "lost_reply", "timeout_sleep_s": REPLY_LATE_S})
        self.accounts: set[str] = set()
        self.account_of: dict[str, str] = {}  # session → account
        self.deliveries: list[tuple[float, str]] = []  # (monotonic time, account)
        self.unanswered: Counter[str] = Counter()

    async def _respond(self, body: dict[str, Any] | None) -> web.Response:
        push = body is not None and body.get("service") in PUSHES
        account = self.account_of.get(str(body.get("session"))) if body else None
        if not push or account is None:
            return await super()._respond(body)
        self.unanswered[account] += 1
        try:
            return await super()._respond(body)
        finally:
            self.unanswered[account] -= 1

    def _login(self, body: dict[str, Any]) -> web.Response:
        account = body.get("username")
        if not isinstance(account, str) or account not in self.accounts:
            return super()._login(body)
        response = super()._login({**body, "username": self.username})
        session = json.loads(response.text or "{}").get("session")
        if isinstance(session, str):
            self.account_of[session] = account
        return response

    def _dispatch(self, service: str, body: dict[str, Any]) -> web.Response:
        response = super()._dispatch(service, body)
        if service in PUSHES:
            account = self.account_of.get(str(body.get("session")), "?")
            self.deliveries.append((time.monotonic(), account))
        return response

    def first_delivery_after(self, moment: float, not_by: str) -> float | None:
        """When the first push call after `moment` not under the account `not_by` came."""
        first = None
        for at, account in reversed(self.deliveries):
            if at <= moment:
                break
            if account != not_by:
                first = at
        return first


@dataclass
class Replica:
    """One `hub run` process, started again under a new DVCQG account each time."""

    name: str
    process: HubProcess
    settings: dict[str, Any]
    lives: int = 0
    account: str = ""
    live: bool = False  # ready, and not killed since: its door takes requests

    async def start(self, portal: Portal) -> None:
        self.lives += 1
        self.account = f"hub-{self.name}{self.lives}"
        portal.accounts.add(self.account)
        settings = copy.deepcopy(self.settings)
        settings["connectors"]["national_portal"]["username"] = self.account
        self.process.settings = settings
        await self.process.start_ready()
        self.live = True

    def kill(self) -> float:
        """SIGKILL; the moment it was sent."""
        self.live = False
        at = time.monotonic()
        self.process.kill()
        return at

    async def readyz(self, http: aiohttp.ClientSession) -> dict[str, Any] | None:
        try:
            async with http.get(f"{self.process.base_url}/readyz", params={"counts": "1"}) as r:
                body: dict[str, Any] = await r.json()
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None


def change(code: str, step: int, start: datetime) -> list[dict[str, Any]]:
    """The record and the step of a dossier's `step`-th change."""
    record = life_record(code, step, start, f"r-{code}-{step}")
    step_event = {
        "event_id": f"s-{code}-{step}",
        "dossier_code": code,
        "kind": "step",
        "status": record["status"],
        "occurred_at": record["occurred_at"],
        "step": {"content": f"Bước {step + 1}", "handler_name": "Trần Thị Bích"},
    }
    return [record, step_event]


@dataclass
class Stream:
    """The one-stop system: every TICK_S one POST with a new dossier's first change and the
    next change of each dossier under way, to the next live replica; a POST that fails is
    sent again to the next one. New dossiers stop once `stop` is set; the stream ends when
    every dossier started has lived its whole life."""

    replicas: list[Replica]
    start: datetime
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    under_way: dict[str, int] = field(default_factory=dict)  # code → its next change
    done: list[str] = field(default_factory=list)  # every change acknowledged
    posts: int = 0
    resent: int = 0  # POSTs sent again after a failure
    cut: int = 0  # of which: cut off by the death of their replica
    duplicates: int = 0  # events a resent POST found taken before the kill
    sending_to: Replica | None = None  # the replica a POST is with now
    turn: int = 0

    def door(self) -> Replica | None:
        for _ in self.replicas:
            self.turn += 1
            replica = self.replicas[self.turn % len(self.replicas)]
            if replica.live:
                return replica
        return None

    async def run(self) -> None:
        started = 0
        async with aiohttp.ClientSession() as http:
            while not self.stop.is_set() or self.under_way:
                if not self.stop.is_set():
                    started += 1
                    self.under_way[f"{UNIT}-{self.start:%y%m%d}-{started:04d}"] = 0
                events = [e for c, s in self.under_way.items() for e in change(c, s, self.start)]
                await self.post(http, events)
                for code in list(self.under_way):
                    self.under_way[code] += 1
                    if self.under_way[code] == len(LIFE):
                        del self.under_way[code]
                        self.done.append(code)
                await asyncio.sleep(TICK_S)  # the pace of the stream, not a wait for anything

    async def post(self, http: aiohttp.ClientSession, events: list[dict[str, Any]]) -> None:
        timeout = aiohttp.ClientTimeout(total=15)
        for attempt in range(100):
            replica = await eventually(self.door, 60, "a live replica's door")
            url = f"{replica.process.base_url}/api/v1/dossier-events"
            self.sending_to = replica
            try:
                async with http.post(
                    url, json={"events": events}, headers=AUTH, timeout=timeout
                ) as r:
                    if r.status == 200:
                        reply = await r.json()
                        outcomes = [x["outcome"] for x in reply["results"]]
                        # "duplicate": a replica took it before it was killed, unanswered.
                        assert set(outcomes) <= {"accepted", "duplicate"}, reply
                        self.duplicates += outcomes.count("duplicate")
                        self.posts += 1
                        return
                    assert r.status >= 500, (r.status, await r.text())
            except (aiohttp.ClientError, TimeoutError):
                self.cut += 1  # its replica died mid-request
            finally:
                self.sending_to = None
            self.resent += 1
            await asyncio.sleep(0.05 * min(attempt + 1, 10))  # a client's back-off
        raise AssertionError(f"a POST was refused 100 times: {events[:2]}")


async def holders(http: aiohttp.ClientSession, replicas: list[Replica]) -> dict[str, str]:
    """Duty → the name of the live replica whose /readyz says it runs it."""
    held: dict[str, str] = {}
    for replica in replicas:
        if replica.live and (body := await replica.readyz(http)) is not None:
            held |= dict.fromkeys(body["duties"], replica.name)
    return held


@dataclass
class Kill:
    number: int
    replica: str
    roles: list[str]
    duties: list[str]
    pause_s: float = 0.0
    handover_s: dict[str, float] = field(default_factory=dict)


async def kill_one(
    number: int,
    role: str,
    replicas: list[Replica],
    portal: Portal,
    stream: Stream,
    rng: random.Random,
    http: aiohttp.ClientSession,
) -> Kill:
    """Kill a replica of `role` (duties, consumer or any) at a random moment, while a POST is
    with it; wait for its duties to move and for the next delivery; restart it."""
    await asyncio.sleep(rng.uniform(0.5, 3.0))  # a random moment, not a wait for anything
    by_account = {r.account: r for r in replicas}
    consumer = by_account.get(portal.deliveries[-1][1]) if portal.deliveries else None
    duties = {r.name: (await r.readyz(http) or {}).get("duties", []) for r in replicas}
    if role == "duties":
        target = max(replicas, key=lambda r: len(duties[r.name]))
    elif role == "consumer":
        assert consumer is not None, "no delivery yet"
        target = consumer
    else:
        target = rng.choice(replicas)
    held = list(duties[target.name])
    roles = [r for r, hit in (("duties", held), ("consumer", target is consumer)) if hit]
    account = target.account

    def caught() -> bool:
        """A POST is with it (the one-stop has something to send again), and if it is the
        consumer, DVCQG has applied a push of its and not answered (the next replica gets
        the batch again, and must not send its steps twice)."""
        busy = stream.sending_to is target
        return busy and (target is not consumer or portal.unanswered[account] > 0)

    waited_from = time.monotonic()
    await eventually(caught, 60, f"{target.name} busy", every_s=0.002)
    print(f"replica-kill caught {target.name} busy in {time.monotonic() - waited_from:.2f} s")
    killed_at = target.kill()
    kill = Kill(number, target.name, roles, held)

    async def handed_over() -> None:
        moved: dict[str, float] = {}

        async def every_duty_moved() -> bool:
            now = await holders(http, replicas)
            for duty in held:
                if duty in now and duty not in moved:
                    moved[duty] = time.monotonic() - killed_at
            return len(moved) == len(held)

        await eventually(
            every_duty_moved,
            3 * (LEASE_S + RENEW_S + MARGIN_S),
            lambda: f"kill {number}: duties {held} on another replica (moved: {moved})",
            every_s=0.1,
        )
        kill.handover_s = moved

    async def delivered_again() -> None:
        delivered_at = await eventually(
            lambda: portal.first_delivery_after(killed_at, not_by=account),
            60,
            f"kill {number}: a delivery to DVCQG after killing {target.name}",
        )
        kill.pause_s = delivered_at - killed_at

    await asyncio.gather(handed_over(), delivered_again())
    await asyncio.sleep(rng.uniform(0.0, 1.0))  # a random moment to come back
    await target.start(portal)
    return kill


async def settled(
    replicas: list[Replica], portal: Portal, stream: Stream, http: aiohttp.ClientSession
) -> None:
    """Every dossier at its newest status at DVCQG with all its steps, and nothing left in the
    queues or parked."""
    newest = str(NUMBERS[LIFE[-1]])
    want_steps = [str(NUMBERS[status]) for status in LIFE]

    async def quiet() -> bool:
        if any(portal.dossiers.get(c, {}).get("TrangThaiHoSo") != newest for c in stream.done):
            return False
        steps = portal.steps
        if any(
            sorted((s["TrangThai"] for s in steps.get(c, [])), key=int) != want_steps
            for c in stream.done
        ):
            return False
        # Each replica counts the queue's ready messages and those it holds itself.
        for replica in replicas:
            body = await replica.readyz(http)
            queue = body["connectors"]["national_portal"] if body else {}
            if queue.get("waiting") != 0 or queue.get("parked") != 0:
                return False
        return True

    def missing() -> str:
        behind = [
            c for c in stream.done if portal.dossiers.get(c, {}).get("TrangThaiHoSo") != newest
        ]
        return f"{len(behind)} of {len(stream.done)} dossiers behind at DVCQG: {behind[:5]}"

    await eventually(quiet, 120, missing, every_s=0.2)


async def test_three_replicas_killed_in_turn_lose_nothing_and_hand_duties_over(
    tmp_path: Path,
    rabbit_url: str,
    broker_prefix: str,
    postgres_database: str,
    record_property: Callable[[str, object], None],
) -> None:
    seed = int(os.environ.get(SEED_VAR) or random.SystemRandom().randrange(1_000_000))
    print(f"replica-kill seed={seed} (replay with {SEED_VAR}={seed})")
    rng = random.Random(seed)
    start = datetime.now(VN_TZ).replace(microsecond=0) - timedelta(hours=2)
    async with Portal() as portal, aiohttp.ClientSession() as http:
        replicas = []
        for name in "abc":
            folder = tmp_path / name
            settings = hub_overrides(folder, rabbit_url, broker_prefix, portal.url)
            settings["store"] = {
                "backend": "postgresql",
                "url": postgres_database,
                "outbox_sweep_interval_s": 0.5,
                "outbox_sweep_age_s": 1,
            }
            settings["broker"]["single_active_consumer"] = True
            settings["duties"] = {"lease_s": LEASE_S, "renew_every_s": RENEW_S}
            replicas.append(Replica(name, HubProcess(folder), settings))
        stream = Stream(replicas, start)
        streaming: asyncio.Task[None] | None = None
        kills: list[Kill] = []
        try:
            for replica in replicas:
                await replica.start(portal)
            streaming = asyncio.create_task(stream.run())
            for number, role in enumerate(["duties", "consumer", "any"][:KILLS], start=1):
                await eventually(lambda: portal.deliveries, 60, "a delivery to DVCQG")
                kill = await kill_one(number, role, replicas, portal, stream, rng, http)
                kills.append(kill)
                print(
                    f"replica-kill pause_s={kill.pause_s:.2f} kill={number} "
                    f"replica={kill.replica} roles={','.join(kill.roles) or 'none'} seed={seed}"
                )
                for duty, took_s in sorted(kill.handover_s.items()):
                    print(f"replica-kill handover_s={took_s:.2f} duty={duty} kill={number}")
            stream.stop.set()
            await asyncio.wait_for(streaming, 120)
            await settled(replicas, portal, stream, http)
        finally:
            stream.stop.set()
            if streaming is not None:
                streaming.cancel()
                await asyncio.gather(streaming, return_exceptions=True)
            codes = [await r.process.shut_down() if r.process.proc else 0 for r in replicas]

    assert codes == [0, 0, 0], "\n".join(r.process.log_tail() for r in replicas)
    lookups = portal.calls["TraCuuHoSo"]
    print(
        f"replica-kill stream posts={stream.posts} resent={stream.resent} cut={stream.cut} "
        f"duplicates={stream.duplicates} dossiers={len(stream.done)} lookups={lookups} "
        f"pushes={sum(portal.dossier_pushes.values())}"
    )
    record_property("replica_kill_pauses_s", [round(k.pause_s, 2) for k in kills])
    record_property(
        "replica_kill_handovers_s", [max(k.handover_s.values(), default=0) for k in kills]
    )

    # The kills covered both roles, and cut POSTs off (each kill came while one was with its
    # replica; one whose answer was already on its way back may have come through).
    assert stream.cut >= 1, f"no POST was cut off by a kill (seed {seed})"
    # A consumer was killed with a push applied and unanswered: the replica that took its
    # messages over asked DVCQG what it held before sending steps again.
    assert lookups >= 1, f"no TraCuuHoSo after a consumer's kill (seed {seed})"
    assert any("duties" in k.roles for k in kills), kills
    assert any("consumer" in k.roles for k in kills), kills
    # Every duty a killed replica held ran on another one within the lease time.
    bound_s = LEASE_S + RENEW_S + MARGIN_S
    for kill in kills:
        late = {d: s for d, s in kill.handover_s.items() if s > bound_s}
        assert not late, f"kill {kill.number} (seed {seed}): over {bound_s} s: {late}"

    # Nothing lost, nothing regressing, no step twice.
    assert len(stream.done) >= 20, stream
    assert set(portal.dossiers) == set(stream.done)
    for code in stream.done:
        history = [int(n) for n in portal.dossier_history[code]]
        assert history == sorted(history), f"{code} went back at DVCQG: {history} (seed {seed})"
        assert history[-1] == NUMBERS[LIFE[-1]], history
    receipts = portal.state()["step_receipts"]
    assert receipts["duplicates"] == 0, f"{receipts} (seed {seed})"
    assert receipts["unique"] == len(stream.done) * len(LIFE), receipts
