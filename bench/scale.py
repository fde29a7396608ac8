"""Replicas on PostgreSQL (`python -m bench --phases scale`): throughput and CPU per event for
one hub on SQLite and 1, 2 and 3 replicas on one PostgreSQL, payments and axis documents on
PostgreSQL, the failover pauses of a replica kill and of a broker-node kill, and what the
measured CPU per event projects to on a machine of 8 and 32 cores.

In one run, beside the raw relay ceiling measured just before and just after (`bench.relay`;
the phase's baseline is their mean), each against a DVCQG simulator of its own:

* dossier throughput: the closed-loop workload of the `throughput` phase (`bench.load`),
  first through one hub on SQLite, then through 1, 2 and 3 replicas (`hub run` processes on one
  PostgreSQL database and one broker prefix, `broker.single_active_consumer: true`; the SQLite
  hub has the setting too, so the store is the only difference between the two one-replica
  figures). The dossiers are shared out among the replicas' doors, each door with its own
  `--callers` callers (as each replica behind a balancer sees its share of the adapters), so
  the offered concurrency grows with the replicas. Figures: events/s from the first send until
  DVCQG holds every dossier's newest state, its ratio to the ceiling and to the SQLite figure,
  and CPU milliseconds per event of the hubs (each replica too), the broker (the RabbitMQ node's
  processes) and PostgreSQL (the postmaster and every process it started, the ended ones too:
  `bench.watch.tree_cpu_seconds`), over the same window, and on PostgreSQL how often a
  session waited for the store's write lock (`LockWatch`, `pg_stat_activity` every 50 ms);
* payment callbacks/s (`bench.payments`, the `unique` variant) with the hub's store on
  PostgreSQL, through one hub and through two replicas (the callbacks shared out over their
  doors), each with CPU milliseconds per callback of the hubs, the broker, PostgreSQL and the
  bench's own client, and how busy the whole machine was (`bench.watch.MachineMeter`): on a
  machine near fully busy, the ratio is held by the machine, not by one part;
* 50 KB axis documents/s both ways (`bench.vdxp`, its small load alone) on PostgreSQL;
* the failover pause of a replica kill: two replicas under a steady stream of dossier changes
  (`STREAM_PAIRS_PER_S` record-and-step pairs a second, sent to the doors in turn); the replica
  that is the active consumer of the DVCQG work queue (asked of the broker: `rabbitmqctl
  list_consumers`, its channel's client port, the hub process holding that port) is killed
  with SIGKILL. The stream stops sending to its door at that instant (a balancer's health check
  is not what is measured). Pause: the longest stretch without a delivery at the DVCQG
  simulator (a record pushed or a step received) from the kill until a step the stream began
  to send after the kill has arrived (`delivery_pause`: a push already in hand when the kill
  came does not end the pause), beside the longest gap between two deliveries over the stream
  before the kill, the time to the first delivery after the kill and to that fresh step;
* the failover pause of a broker-node kill: a three-node cluster of its own
  (`sims.rabbitmq_cluster`), one hub (PostgreSQL store, every node in `broker.urls`, production
  defaults otherwise) under the same stream; the node leading the DVCQG work queue is killed
  with SIGKILL; pause as before (the pushes the hub had in hand still land while it
  reconnects, so here the first delivery after the kill says little).

PostgreSQL is a private server (`sims.postgres_node.PostgresNode`) run durable (fsync and
synchronous commit on, as production runs it and as the SQLite store's `synchronous=FULL`
is), a database of its own for each measurement. The projection (`project`) is pure
arithmetic on the measured CPU per event; see its docstring and decision 0100.

A part that fails is recorded with its error (`failures`), the others still run. This module
must never change the hub's code or its production defaults beyond what `bench.hubproc` and
the settings above set, nor leave a process running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import json
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg

# No stubs ship for psutil; with them installed the ignore is harmless.
import psutil  # type: ignore[import-untyped,unused-ignore]

from bench import payments, relay, vdxp
from bench.e2e import HTTP_CONNECTIONS, E2eOptions
from bench.hubproc import (
    PORTAL_PASSWORD,
    PORTAL_USER,
    SOURCE_PASSWORD,
    SOURCE_USER,
    UNIT,
    hub_settings,
)
from bench.load import RECORDS, STEPS, FacadeClient, LoadError, Progress, drive_closed
from bench.watch import (
    CpuClock,
    Delivery,
    StepClock,
    broker_processes,
    install_clock,
    listening_process,
    process,
    processes_cpu,
    tree_cpu_seconds,
)
from bench.workload import StepKey, Workload, build
from hub.config import deep_merge
from sims.national_portal.simulator import DvcqgSimulator, step_key
from sims.postgres_node import PostgresNode, postgres_bin
from sims.rabbitmq_cluster import RabbitCluster
from sims.rabbitmq_node import RabbitNode
from tests.support import HubProcess

REPLICAS = (1, 2, 3)
STREAM_PAIRS_PER_S = 20.0  # the failover stream: one record and one step each
POLL_S = 0.005  # how often the delivery count at the DVCQG simulator is read
FAILOVER_TIMEOUT_S = 180.0
SERIAL_CORES = 2  # the broker and PostgreSQL, a core each, in the projection
PROJECTED_CORES = (2, 8, 32)
WORK_QUEUE = "national_portal.work"
LOCK_SAMPLE_S = 0.05


class ScaleBenchFailed(RuntimeError):
    """A part of the phase could not be measured (what it was is in the message)."""


@dataclass(frozen=True)
class ScaleSizes:
    relay_messages: int
    events: int  # per store and replica count
    warm_up_events: int
    callbacks: int
    payment_concurrency: int
    axis_documents: int
    stream_s: float  # the failover stream runs this long before the kill


# -- the projection (pure arithmetic) -----------------------------------------------------------


@dataclass(frozen=True)
class CpuPerEvent:
    """CPU milliseconds one dossier event costs each part.

    `hub_parallel_ms` is what the replicas share (the doors: validation, the store write, the
    outbox publish), `hub_serial_ms` what only the single active consumer of the DVCQG work
    queue does (consuming, pushing to DVCQG, the delivery journal)."""

    hub_parallel_ms: float
    hub_serial_ms: float
    broker_ms: float
    postgresql_ms: float

    @property
    def total_ms(self) -> float:
        return self.hub_parallel_ms + self.hub_serial_ms + self.broker_ms + self.postgresql_ms


def split_hub_cpu(per_replica_s: list[float], events: int) -> tuple[float, float]:
    """(shared, active-consumer-only) hub CPU ms per event from each replica's CPU seconds over
    one measured window: the busiest replica is the active consumer; what it used beyond the
    others' mean is the work only it does. One replica: nothing can be told apart, all shared."""
    if events <= 0 or not per_replica_s:
        raise ValueError("need a positive event count and at least one replica")
    total = sum(per_replica_s)
    if len(per_replica_s) == 1:
        return total / events * 1000, 0.0
    active = max(per_replica_s)
    others = (total - active) / (len(per_replica_s) - 1)
    serial = max(active - others, 0.0)
    return (total - serial) / events * 1000, serial / events * 1000


def _per_s(ms: float, cores: float = 1.0) -> float:
    return math.inf if ms <= 0 else cores * 1000.0 / ms


def project(cost: CpuPerEvent, cores: int) -> dict[str, Any]:
    """What a machine of `cores` cores sustains, and which part saturates first.

    The broker and PostgreSQL are serial parts, a core each (`SERIAL_CORES`): one quorum queue
    is one Erlang process, and PostgreSQL's commits go through one WAL. The replicas take the
    other cores, one each (a hub is one Python process: one core at most), and share the doors'
    work; the DVCQG work queue has one active consumer, so one replica also carries the whole
    delivery work. The rate is the least of: every part together on all the cores; the broker
    on one core; PostgreSQL on one core; the active consumer's replica on one core. Limits that
    are waits rather than CPU (the store's write lock held across a durable commit, decision
    0093) are not in it: the runs report them as measured (`LockWatch`)."""
    if cores < 1:
        raise ValueError("cores must be at least 1")
    replicas = max(1, cores - SERIAL_CORES)
    limits = {
        "all cores": _per_s(cost.total_ms, cores),
        "broker (one core)": _per_s(cost.broker_ms),
        "PostgreSQL (one core)": _per_s(cost.postgresql_ms),
        "active consumer (one replica's core)": _per_s(
            cost.hub_serial_ms + cost.hub_parallel_ms / replicas
        ),
    }
    ordered = sorted(limits.items(), key=lambda kv: kv[1])
    return {
        "cores": cores,
        "replicas": replicas,
        "limits_events_per_s": {
            k: (None if math.isinf(v) else round(v, 1)) for k, v in limits.items()
        },
        "events_per_s": None if math.isinf(ordered[0][1]) else round(ordered[0][1], 1),
        "bottleneck": ordered[0][0],
        "next": ordered[1][0],
    }


def projection(cost: CpuPerEvent, cores: tuple[int, ...] = PROJECTED_CORES) -> dict[str, Any]:
    return {
        "cpu_ms_per_event": {
            "hub_parallel": round(cost.hub_parallel_ms, 3),
            "hub_serial": round(cost.hub_serial_ms, 3),
            "broker": round(cost.broker_ms, 3),
            "postgresql": round(cost.postgresql_ms, 3),
        },
        "machines": [project(cost, n) for n in cores],
    }


def delivery_pause(times: list[float], killed_at: float, fresh_at: float) -> float:
    """The failover pause: the longest stretch without a delivery from the kill until a change
    sent after the kill was delivered (`fresh_at`), the kill itself counting as the stretch's
    start. A delivery already under way when the kill came (a push the surviving process had in
    hand) ends no stretch of its own worth more than the others: the gap after it still counts."""
    if fresh_at < killed_at:
        raise ValueError("the fresh delivery cannot come before the kill")
    points = [killed_at, *(t for t in times if killed_at < t <= fresh_at), fresh_at]
    return max(b - a for a, b in itertools.pairwise(points))


def cost_from(run: dict[str, Any]) -> CpuPerEvent:
    """The CPU per event of one dossier run (`_dossier_run`'s result)."""
    parallel, serial = split_hub_cpu(run["cpu_s"]["replicas"], run["events"])
    per_event = run["cpu_ms_per_event"]
    return CpuPerEvent(parallel, serial, per_event.get("broker", 0.0), per_event["postgresql"])


# -- the parts measured ---------------------------------------------------------------------------


class LockWatch:
    """Samples PostgreSQL's `pg_stat_activity` every `LOCK_SAMPLE_S` while a run goes on: how
    many sessions wait for an advisory lock (the store's write lock, decision 0093: every write
    transaction takes it first) and how many run a statement. One session of its own; its
    queries are a few a second, next to nothing in the server's CPU."""

    QUERY = (
        "SELECT count(*) FILTER (WHERE wait_event = 'advisory'),"
        " count(*) FILTER (WHERE state = 'active')"
        " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.samples: list[tuple[int, int]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            while True:
                row = await conn.fetchrow(self.QUERY)
                if row is not None:
                    self.samples.append((int(row[0]), int(row[1])))
                await asyncio.sleep(LOCK_SAMPLE_S)
        finally:
            await conn.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-lock-watch")

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        n = len(self.samples)
        if not n:
            return {"samples": 0}
        return {
            "samples": n,
            "waiting_for_write_lock_mean": round(sum(w for w, _ in self.samples) / n, 2),
            "share_of_samples_with_a_session_waiting": round(
                sum(1 for w, _ in self.samples if w) / n, 3
            ),
            "active_sessions_mean": round(sum(a for _, a in self.samples) / n, 2),
        }


@dataclass
class Meters:
    """Where the CPU of the broker and PostgreSQL is read."""

    broker: list[psutil.Process]
    postgres: psutil.Process | None = None

    def clock(self, hubs: list[HubProcess]) -> CpuClock:
        parts: dict[str, Callable[[], float]] = {
            f"replica_{i + 1}": processes_cpu([process(h.pid)]) for i, h in enumerate(hubs)
        }
        parts["bench"] = processes_cpu([process()])
        if self.broker:
            parts["broker"] = processes_cpu(self.broker)
        if self.postgres is not None:
            postgres = self.postgres
            parts["postgresql"] = lambda: tree_cpu_seconds(postgres)
        return CpuClock(parts)


def broker_meter(broker_url: str) -> list[psutil.Process]:
    """The RabbitMQ node of the run: the one this process started, else whoever listens on the
    URL's port (a node on this machine)."""
    started = broker_processes()
    if started:
        return started
    port = urlsplit(broker_url).port or 5672
    found = listening_process(port)
    return [found] if found is not None else []


def store_tree(database_url: str | None) -> dict[str, Any]:
    return {"store": {"backend": "postgresql", "url": database_url}} if database_url else {}


def replica_settings(
    options: E2eOptions,
    workdir: Path,
    prefix: str,
    portal_url: str,
    database_url: str | None,
    index: int,
) -> dict[str, Any]:
    own = deep_merge(
        {"instance": f"bench-{prefix}-r{index + 1}", "broker": {"single_active_consumer": True}},
        store_tree(database_url),
    )
    return hub_settings(
        workdir, options.broker_url, prefix, portal_url, deep_merge(own, options.hub_overrides)
    )


async def start_replicas(
    stack: AsyncExitStack, settings: list[tuple[Path, dict[str, Any]]]
) -> list[HubProcess]:
    """One after another (the first makes the schema); stopped when `stack` closes."""
    hubs = []
    for workdir, tree in settings:
        hubs.append(await stack.enter_async_context(HubProcess(workdir, tree)))
    return hubs


def _clients(http: aiohttp.ClientSession, hubs: list[HubProcess]) -> list[FacadeClient]:
    progress = Progress()
    credentials = (SOURCE_USER, SOURCE_PASSWORD)
    return [FacadeClient(http, h.facade_url, credentials, UNIT, progress) for h in hubs]


async def _drive(clients: list[FacadeClient], work: Workload, options: E2eOptions) -> None:
    """The dossiers shared out among the doors, each door with `options.callers` callers."""
    n = len(clients)
    async with asyncio.TaskGroup() as group:
        for i, client in enumerate(clients):
            share = work.scripts[i::n]
            if share:
                group.create_task(
                    drive_closed(client, share, callers=options.callers, window=options.window)
                )


def _ms(seconds: float, events: int) -> float:
    return round(seconds / events * 1000, 3)


async def dossier_run(
    options: E2eOptions,
    label: str,
    sizes: ScaleSizes,
    replicas: int,
    database_url: str | None,
    meters: Meters,
    tag: int,
) -> dict[str, Any]:
    """The closed-loop dossier workload through `replicas` hubs; figures and CPU per event."""
    prefix = f"{options.run_id}-{label}"
    warm = build(sizes.warm_up_events, seed=60 + tag, madonvi=UNIT, tag=60 + tag)
    work = build(sizes.events, seed=40 + tag, madonvi=UNIT, tag=40 + tag)
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS)
        http = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        hubs = await start_replicas(
            stack,
            [
                (
                    options.workdir / label / f"r{i + 1}",
                    replica_settings(
                        options, options.workdir / label / f"r{i + 1}", prefix, sim.url,
                        database_url, i,
                    ),
                )
                for i in range(replicas)
            ],
        )  # fmt: skip
        warming = Delivery(sim, warm)
        await _drive(_clients(http, hubs), warm, options)
        await warming.wait(hubs[0])
        clients = _clients(http, hubs)
        delivery = Delivery(sim, work)
        clock = meters.clock(hubs)
        locks = LockWatch(database_url) if database_url else None
        if locks is not None:
            locks.start()
        clock.start()
        try:
            await _drive(clients, work, options)
            done_at = await delivery.wait(hubs[0])
            wall, cpu = clock.stop()
        finally:
            lock_figures = await locks.stop() if locks is not None else None
    progress = clients[0].progress
    seconds = done_at - progress.first_sent
    per_replica = [cpu[f"replica_{i + 1}"] for i in range(replicas)]
    parts = {"hubs": sum(per_replica), **{k: v for k, v in cpu.items() if "replica" not in k}}
    return {
        "store": "postgresql" if database_url else "sqlite",
        "replicas": replicas,
        "events": work.events,
        "dossiers": len(work.scripts),
        "callers_per_door": options.callers,
        "seconds": round(seconds, 2),
        "events_per_s": round(work.events / seconds, 1),
        "accepted_events_per_s": round(
            work.events / (progress.last_acked - progress.first_sent), 1
        ),
        "facade_retries": progress.retries,
        "cpu_s": {
            **{k: round(v, 3) for k, v in parts.items()},
            "replicas": [round(v, 3) for v in per_replica],
        },
        "cpu_ms_per_event": {
            **{k: _ms(v, work.events) for k, v in parts.items()},
            "replicas": [_ms(v, work.events) for v in per_replica],
        },
        "cores_used": {k: round(v / wall, 2) for k, v in parts.items()},
        **({"postgresql_sessions": lock_figures} if lock_figures is not None else {}),
        "hub_exit_codes": [h.exit_code for h in hubs],
    }


# -- failover -------------------------------------------------------------------------------------


@dataclass
class Deliveries:
    """When the DVCQG simulator's count of deliveries (records pushed, steps received) moved."""

    sim: DvcqgSimulator
    times: list[float] = field(default_factory=list)
    clock: StepClock = field(init=False)

    def __post_init__(self) -> None:
        self.clock = install_clock(self.sim)

    def count(self) -> int:
        return sum(self.sim.dossier_pushes.values()) + sum(self.sim.step_receipts.values())

    async def watch(self) -> None:
        last = self.count()
        while True:
            now = self.count()
            if now != last:
                last = now
                self.times.append(time.perf_counter())
            await asyncio.sleep(POLL_S)

    async def first_after(self, moment: float, timeout_s: float) -> float:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            later = [t for t in self.times if t > moment]
            if later:
                return later[0]
            await asyncio.sleep(POLL_S)
        raise ScaleBenchFailed(f"no delivery at DVCQG within {timeout_s:.0f}s of the kill")

    async def fresh_after(self, stream: Stream, moment: float, timeout_s: float) -> float:
        """When the simulator first held a step the stream began to send after `moment`."""
        clock = self.clock
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            seen = [
                clock.first_seen[k]
                for at, k in stream.steps_sent
                if at > moment and k in clock.first_seen
            ]
            if seen:
                return min(seen)
            await asyncio.sleep(POLL_S)
        raise ScaleBenchFailed(f"no change sent after the kill reached DVCQG in {timeout_s:.0f}s")

    def longest_gap(self, since: float, until: float) -> float | None:
        seen = [t for t in self.times if since <= t <= until]
        gaps = [b - a for a, b in itertools.pairwise(seen)]
        return round(max(gaps), 3) if gaps else None


class Stream:
    """A one-stop adapter posting each dossier's record then step, `STREAM_PAIRS_PER_S` pairs
    a second, to the live doors in turn; one post at a time, so a door is dropped between two."""

    def __init__(self, clients: list[FacadeClient], work: Workload) -> None:
        self.live = list(clients)
        self.work = work
        self.lock = asyncio.Lock()
        self.pairs = 0
        self.error: str | None = None
        self.steps_sent: list[tuple[float, StepKey]] = []  # when each step's post began

    async def run(self) -> None:
        turn = 0
        try:
            for script in self.work.scripts:
                for index, (record, step) in enumerate(script.pairs):
                    async with self.lock:
                        client = self.live[turn % len(self.live)]
                        turn += 1
                        await client.push(RECORDS, [record], updating=index > 0)
                        self.steps_sent.append((time.perf_counter(), step_key(step)))
                        await client.push(STEPS, [step])
                    self.pairs += 1
                    await asyncio.sleep(1 / STREAM_PAIRS_PER_S)
        except LoadError as exc:  # noted; the pause is measured from what DVCQG received
            self.error = str(exc)[:500]

    async def drop(self, client: FacadeClient) -> None:
        async with self.lock:
            self.live.remove(client)


def _stream_work(sizes: ScaleSizes, tag: int) -> Workload:
    pairs = STREAM_PAIRS_PER_S * (sizes.stream_s + FAILOVER_TIMEOUT_S)
    return build(int(2 * pairs), seed=80 + tag, madonvi=UNIT, tag=80 + tag)


def _client_port(channel_name: str) -> int:
    """`127.0.0.1:41234 -> 127.0.0.1:5672 (1)` → 41234."""
    return int(channel_name.split(" -> ", 1)[0].rsplit(":", 1)[1])


def active_consumer(node: RabbitNode, queue: str, hubs: list[HubProcess]) -> HubProcess:
    """The hub whose channel is the active consumer of `queue`, as the broker says."""
    consumers = json.loads(
        node.ctl("list_consumers", "queue_name", "channel_pid", "active", "--formatter", "json")
    )
    active = [
        c["channel_pid"]
        for c in consumers
        if c["queue_name"] == queue and c["active"] in (True, "true")
    ]
    if len(active) != 1:
        raise ScaleBenchFailed(f"{queue}: expected one active consumer, the broker lists {active}")
    channels = json.loads(node.ctl("list_channels", "pid", "name", "--formatter", "json"))
    names = [c["name"] for c in channels if c["pid"] == active[0]]
    if not names:
        raise ScaleBenchFailed(f"{queue}: the active consumer's channel is not listed")
    port = _client_port(names[0])
    for hub in hubs:
        if any(c.laddr.port == port for c in process(hub.pid).net_connections(kind="tcp")):
            return hub
    raise ScaleBenchFailed(f"{queue}: no replica holds the active consumer's port {port}")


def leader_of(cluster: RabbitCluster, queue: str) -> RabbitNode:
    """The node leading the quorum queue `queue`."""
    listed = json.loads(
        cluster.nodes[0].ctl("list_queues", "name", "leader", "--formatter", "json")
    )
    leaders = [q["leader"] for q in listed if q["name"] == queue]
    for node in cluster.nodes:
        if leaders and node.nodename == leaders[0]:
            return node
    raise ScaleBenchFailed(f"{queue}: no leader among the cluster's nodes ({leaders})")


async def _pause(
    deliveries: Deliveries,
    stream: Stream,
    sizes: ScaleSizes,
    kill: Callable[[], Awaitable[float]],
) -> dict[str, Any]:
    """Stream for `sizes.stream_s`, kill, and time the pause in deliveries at DVCQG until a
    change sent after the kill has arrived (`delivery_pause`). `kill` finds its victim (asking
    the broker takes a second or two) and returns when it sent SIGKILL. The watch on DVCQG
    and the stream run for the measurement and are stopped after it."""
    tasks = [asyncio.create_task(deliveries.watch()), asyncio.create_task(stream.run())]
    try:
        started = time.perf_counter()
        await asyncio.sleep(sizes.stream_s)
        if not deliveries.times:
            raise ScaleBenchFailed("no delivery at DVCQG before the kill")
        killed_at = await kill()
        next_at = await deliveries.first_after(killed_at, FAILOVER_TIMEOUT_S)
        fresh_at = await deliveries.fresh_after(stream, killed_at, FAILOVER_TIMEOUT_S)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "pause_s": round(delivery_pause(deliveries.times, killed_at, fresh_at), 3),
        "first_delivery_after_kill_s": round(next_at - killed_at, 3),
        "first_change_sent_after_kill_delivered_s": round(fresh_at - killed_at, 3),
        "longest_gap_before_s": deliveries.longest_gap(started, killed_at),
        "stream_pairs_per_s": STREAM_PAIRS_PER_S,
        "pairs_sent_before_kill": stream.pairs,
    }


async def replica_kill(
    options: E2eOptions, sizes: ScaleSizes, database_url: str, node: RabbitNode
) -> dict[str, Any]:
    """Two replicas under a stream; the active consumer of the DVCQG work queue killed."""
    prefix = f"{options.run_id}-rkill"
    label = "replica-kill"
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        http = await stack.enter_async_context(aiohttp.ClientSession())
        hubs = await start_replicas(
            stack,
            [
                (
                    options.workdir / label / f"r{i + 1}",
                    replica_settings(
                        options, options.workdir / label / f"r{i + 1}", prefix, sim.url,
                        database_url, i,
                    ),
                )
                for i in range(2)
            ],
        )  # fmt: skip
        clients = _clients(http, hubs)
        deliveries, stream = Deliveries(sim), Stream(clients, _stream_work(sizes, 1))
        victim: list[HubProcess] = []

        async def kill() -> float:
            queue = f"{prefix}.{WORK_QUEUE}"
            hub = await asyncio.to_thread(active_consumer, node, queue, hubs)
            victim.append(hub)
            await stream.drop(clients[hubs.index(hub)])
            killed_at = time.perf_counter()
            await asyncio.to_thread(hub.kill)
            return killed_at

        figures = await _pause(deliveries, stream, sizes, kill)
    return {
        **figures,
        "replicas": 2,
        "killed": f"replica {hubs.index(victim[0]) + 1} (the active consumer of {WORK_QUEUE})",
        "stream_error": stream.error,
    }


async def broker_node_kill(
    options: E2eOptions, sizes: ScaleSizes, database_url: str
) -> dict[str, Any]:
    """One hub on a three-node cluster under a stream; the work queue's leader killed."""
    prefix = f"{options.run_id}-bkill"
    workdir = options.workdir / "broker-kill"
    cluster = RabbitCluster(workdir / "cluster")
    await asyncio.to_thread(cluster.start)
    try:
        async with AsyncExitStack() as stack:
            sim = await stack.enter_async_context(
                DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
            )
            http = await stack.enter_async_context(aiohttp.ClientSession())
            own = deep_merge(store_tree(database_url), options.hub_overrides)
            settings = hub_settings(workdir / "hub", cluster.urls[0], prefix, sim.url, own)
            del settings["broker"]["url"]
            settings["broker"]["urls"] = cluster.urls
            (hub,) = await start_replicas(stack, [(workdir / "hub", settings)])
            deliveries, stream = (
                Deliveries(sim),
                Stream(_clients(http, [hub]), _stream_work(sizes, 2)),
            )
            lost: list[str] = []

            async def kill() -> float:
                leader = await asyncio.to_thread(leader_of, cluster, f"{prefix}.{WORK_QUEUE}")
                lost.append(leader.nodename)
                killed_at = time.perf_counter()
                await asyncio.to_thread(leader.kill)
                return killed_at

            figures = await _pause(deliveries, stream, sizes, kill)
    finally:
        await asyncio.to_thread(cluster.stop)
    return {
        **figures,
        "nodes": len(cluster.nodes),
        "killed": f"the node leading {WORK_QUEUE} ({lost[0] if lost else '?'})",
        "watch_interval_s": settings["broker"].get("watch_interval_s", "default"),
        "stream_error": stream.error,
    }


# -- the phase ------------------------------------------------------------------------------------


async def _relay(options: E2eOptions, count: int) -> float:
    return (await relay.run_relay(options.broker_url, f"{options.run_id}-sr", count)).rate


def _axis_figures(result: dict[str, Any]) -> dict[str, Any]:
    (load,) = result["loads"].values()
    return {
        "documents": load["documents"],
        "attachment_bytes": load["attachment_bytes"],
        "receive_documents_per_s": load["receive"]["hub"]["documents_per_s"],
        "send_documents_per_s": load["send"]["hub"]["documents_per_s"],
        "receive_ratio_to_bare_client": load["receive"]["ratio_hub_to_raw"],
        "send_ratio_to_bare_client": load["send"]["ratio_hub_to_raw"],
    }


def _payment_figures(result: dict[str, Any], ceiling: float) -> dict[str, Any]:
    unique = result["variants"]["unique"]
    return {
        "callbacks": result["callbacks"],
        "concurrency": result["concurrency"],
        "callbacks_per_s": unique["callbacks_per_s"],
        "p99_ms": unique["p99_ms"],
        "ratio_to_relay": round(unique["callbacks_per_s"] / ceiling, 3) if ceiling else None,
        "cpu_cores_used": result["cpu_cores_used"],
        "cpu_ms_per_callback": unique["cpu_ms_per_callback"],
        "machine": unique["machine"],
    }


class _Parts:
    """Runs the parts one after another; a failure is noted, the next part still runs."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    async def run(self, name: str, job: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        print(f"[bench]   scale: {name} …", flush=True)
        started = time.perf_counter()
        try:
            result = dict(await job())
        except Exception as exc:  # one part failed: noted, the others still measured
            text = f"{name}: {type(exc).__name__}: {exc}"[:2000]
            print(f"[bench]   scale: {text}", flush=True)
            self.failures.append(text)
            return {"error": text}
        result["part_seconds"] = round(time.perf_counter() - started, 1)
        print(f"[bench]   scale: {name} done in {result['part_seconds']}s", flush=True)
        return result


async def measure_scale(
    options: E2eOptions, sizes: ScaleSizes, node: RabbitNode | None
) -> dict[str, Any]:
    parts = _Parts()
    before = await _relay(options, sizes.relay_messages)
    meters = Meters(broker_meter(options.broker_url))
    runs: dict[str, Any] = {}
    runs["sqlite_1"] = await parts.run(
        "dossiers, 1 hub on SQLite",
        lambda: dossier_run(options, "sqlite-1", sizes, 1, None, meters, 0),
    )
    pg = PostgresNode(options.workdir / "postgres", durable=True)
    await asyncio.to_thread(pg.start)
    try:
        meters.postgres = psutil.Process(pg.pid)

        async def database(name: str) -> str:
            return await asyncio.to_thread(pg.create_database, name)

        for n in REPLICAS:
            url = await database(f"dossiers_{n}")
            runs[f"postgresql_{n}"] = await parts.run(
                f"dossiers, {n} replica(s) on PostgreSQL",
                functools.partial(dossier_run, options, f"pg-{n}", sizes, n, url, meters, n),
            )
        on_pg = dataclasses.replace(
            options,
            workdir=options.workdir / "pg-flows",
            run_id=f"{options.run_id}s",
            hub_overrides=deep_merge(store_tree(await database("payments")), options.hub_overrides),
            store_server=meters.postgres,
        )
        pay = await parts.run(
            "payment callbacks on PostgreSQL",
            lambda: payments.measure_payments(
                on_pg, sizes.callbacks, sizes.payment_concurrency, 0.0, None
            ),
        )
        on_pg_2 = dataclasses.replace(
            on_pg,
            run_id=f"{options.run_id}t",
            hub_overrides=deep_merge(
                store_tree(await database("payments_2")), options.hub_overrides
            ),
        )
        pay_2 = await parts.run(
            "payment callbacks on PostgreSQL, 2 replicas",
            lambda: payments.measure_payments(
                on_pg_2, sizes.callbacks, sizes.payment_concurrency, 0.0, None, replicas=2
            ),
        )
        small = vdxp.Load(
            "50 KB", 50 * vdxp.KiB, sizes.axis_documents, max(10, sizes.axis_documents // 30),
            vdxp.SENDERS[0],
        )  # fmt: skip
        on_pg = dataclasses.replace(
            on_pg,
            hub_overrides=deep_merge(store_tree(await database("axis")), options.hub_overrides),
        )
        axis = await parts.run(
            "50 KB axis documents on PostgreSQL", lambda: vdxp.measure_vdxp(on_pg, (small,))
        )
        failover: dict[str, Any] = {}
        if node is None:
            failover["replica_kill"] = {
                "error": "needs the bench's own RabbitMQ node (run without --broker-url)"
            }
            parts.failures.append("replica_kill: " + failover["replica_kill"]["error"])
        else:
            url = await database("replica_kill")
            failover["replica_kill"] = await parts.run(
                "failover, replica kill", lambda: replica_kill(options, sizes, url, node)
            )
        url = await database("broker_kill")
        failover["broker_node_kill"] = await parts.run(
            "failover, broker-node kill", lambda: broker_node_kill(options, sizes, url)
        )
    finally:
        await asyncio.to_thread(pg.stop)
    after = await _relay(options, sizes.relay_messages)
    ceiling = round((before + after) / 2, 1)
    sqlite_rate = runs["sqlite_1"].get("events_per_s")
    for run in runs.values():
        if "events_per_s" in run:
            run["ratio_to_relay"] = round(run["events_per_s"] / ceiling, 3)
            run["ratio_to_sqlite"] = (
                round(run["events_per_s"] / sqlite_rate, 3) if sqlite_rate else None
            )
    result: dict[str, Any] = {
        "relay_baseline": {
            "messages_per_s": ceiling,
            "before_msg_per_s": round(before, 1),
            "after_msg_per_s": round(after, 1),
            "source": "mean of the relay measured at the start and at the end of this phase",
        },
        "postgresql": {"durable": True, "server_version": pg_version()},
        "dossiers": runs,
        "payments_postgresql": pay
        if "error" in pay
        else {**_payment_figures(pay, ceiling), "full": pay},
        "payments_postgresql_2_replicas": pay_2
        if "error" in pay_2
        else {**_payment_figures(pay_2, ceiling), "full": pay_2},
        "axis_postgresql": axis if "error" in axis else {**_axis_figures(axis), "full": axis},
        "failover": failover,
    }
    basis = max((n for n in REPLICAS if "events" in runs.get(f"postgresql_{n}", {})), default=None)
    if basis is not None:
        result["projection"] = {
            "basis": f"postgresql_{basis}",
            **projection(cost_from(runs[f"postgresql_{basis}"])),
        }
    if parts.failures:
        result["failures"] = parts.failures
    return result


def pg_version() -> str:
    """The PostgreSQL major version the private server runs (its Debian folder's name)."""
    return postgres_bin().parent.name
