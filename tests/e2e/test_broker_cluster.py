"""The hub on a three-node RabbitMQ cluster loses the node it is connected to in the middle of a
stream, moves to another node by itself, and every dossier reaches DVCQG exactly once.

The cluster is the module's own (`sims.rabbitmq_cluster.RabbitCluster`, three nodes on
loopback joined with `rabbitmqctl join_cluster`), shared by its tests, each with its own queue
prefix. The hub runs as a `hub run` process given every node's address (`broker.urls`); the
one-stop system posts new dossiers to the canonical API at a steady pace. Mid-stream, the node
`/readyz` names is stopped (`rabbitmqctl stop_app`) or killed (SIGKILL). Then `/readyz`
answers 503 while the hub reconnects (naming no node until it is connected again), and 200
naming another node once it has subscribed again there. The queues are quorum queues on every
node, led by the node the hub declared them on (the one lost), so a new leader is elected and
what the lost node held is still there. When everything has settled (no outbox row,
nothing waiting or parked), DVCQG holds every dossier, pushed once each. Each test brings the
node back and waits for the cluster to run all three again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.config import load_config
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from sims.rabbitmq_cluster import RabbitCluster
from sims.rabbitmq_node import RabbitNode
from tests.support import (
    ONESTOP_TOKEN,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    HubProcess,
    eventually,
    hub_overrides,
)
from tests.support.stores import store_rows

pytestmark = [pytest.mark.slow, pytest.mark.broker]

AUTH = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}
BATCH = 5  # dossiers per POST
BEFORE, AFTER = 40, 40  # dossiers delivered before the fault, and posted after the recovery
PACE_S = 0.1  # between two POSTs: a steady stream, not one burst
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    with RabbitCluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture
async def sim() -> AsyncIterator[DvcqgSimulator]:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as s:
        yield s


def cluster_settings(
    tmp_path: Path, cluster: RabbitCluster, prefix: str, portal_url: str
) -> dict[str, Any]:
    settings = hub_overrides(tmp_path, cluster.urls[0], prefix, portal_url)
    del settings["broker"]["url"]
    settings["broker"]["urls"] = cluster.urls
    settings["broker"]["watch_interval_s"] = 0.5
    # Rows a lost connection left unpublished go out again a second later, not ten.
    settings["store"]["outbox_sweep_age_s"] = 1
    return settings


def record_event(code: str) -> dict[str, Any]:
    at = datetime.now(VN_TZ) - timedelta(minutes=5)
    return {
        "event_id": f"ev-{code}",
        "dossier_code": code,
        "kind": "record",
        "status": "accepted",
        "occurred_at": at.isoformat(),
        "record": {
            "procedure_code": "1.000894",
            "procedure_name": "Đăng ký khai sinh",
            "owner_name": "Nguyễn Văn An",
            "received_at": at.isoformat(),
        },
    }


@dataclass
class Readiness:
    """What `/readyz` answered, sampled all along: (status, broker node) as they changed."""

    hub: HubProcess
    seen: list[tuple[int, str | None]] = field(default_factory=list)
    at: list[float] = field(default_factory=list)  # when each was first seen (monotonic)

    async def sample(self, http: aiohttp.ClientSession) -> tuple[int, str | None]:
        try:
            async with http.get(f"{self.hub.base_url}/readyz") as r:
                body = await r.json()
                answer: tuple[int, str | None] = (r.status, body.get("broker_node"))
        except (aiohttp.ClientError, ValueError):
            answer = (0, None)
        if not self.seen or self.seen[-1] != answer:
            self.seen.append(answer)
            self.at.append(time.monotonic())
        return answer

    async def watch(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                await self.sample(http)
                await asyncio.sleep(0.02)

    def ready_on(self) -> str | None:
        status, node = self.seen[-1] if self.seen else (0, None)
        return node if status == 200 else None


@dataclass
class Stream:
    """The one-stop system posting new dossiers, BATCH at a time, until told to stop."""

    hub: HubProcess
    sent: list[str] = field(default_factory=list)
    stop_after: int | None = None  # stop once this many are sent

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http:
            while self.stop_after is None or len(self.sent) < self.stop_after:
                codes = [
                    f"{UNIT}-{datetime.now(VN_TZ):%y%m%d}-{next(_numbers):05d}"
                    for _ in range(BATCH)
                ]
                body = {"events": [record_event(c) for c in codes]}
                url = f"{self.hub.base_url}/api/v1/dossier-events"
                async with http.post(url, json=body, headers=AUTH) as r:
                    reply = await r.json()
                    assert r.status == 200, reply
                    assert all(x["outcome"] == "accepted" for x in reply["results"]), reply
                self.sent += codes
                await asyncio.sleep(PACE_S)


async def stop_app(node: RabbitNode) -> None:
    await asyncio.to_thread(node.ctl, "stop_app")


async def start_app(node: RabbitNode) -> None:
    await asyncio.to_thread(node.ctl, "start_app")
    await asyncio.to_thread(node.wait_ready)


async def kill(node: RabbitNode) -> None:
    await asyncio.to_thread(node.kill)


async def start(node: RabbitNode) -> None:
    await asyncio.to_thread(node.start)


Fault = Callable[[RabbitNode], Awaitable[None]]


@pytest.mark.parametrize(
    ("fault", "heal"), [(stop_app, start_app), (kill, start)], ids=["stop_app", "sigkill"]
)
async def test_the_hub_moves_to_another_node_and_delivers_every_dossier_once(
    tmp_path: Path,
    cluster: RabbitCluster,
    broker_prefix: str,
    sim: DvcqgSimulator,
    hub_process: HubProcess,
    fault: Fault,
    heal: Fault,
    record_property: Callable[[str, object], None],
) -> None:
    # DVCQG takes its time with every call, so that batches are in the hub's hands (pushed,
    # not yet acknowledged to the broker) at any instant, and the fault catches some.
    sim.faults.update({"mode": "slow", "delay_s": 0.4})
    hub_process.settings = cluster_settings(tmp_path, cluster, broker_prefix, sim.url)
    await hub_process.start_ready()
    assert replicas_of(cluster, broker_prefix) == {3}, "quorum queues on every node"
    readiness = Readiness(hub_process)
    watching = asyncio.create_task(readiness.watch())
    stream = Stream(hub_process)
    streaming = asyncio.create_task(stream.run())
    lost: RabbitNode | None = None
    try:
        first = await eventually(readiness.ready_on, 30, "/readyz naming a broker node")
        lost = cluster.node_at(int(first.rsplit(":", 1)[1]))
        await eventually(
            lambda: len(sim.dossiers) >= BEFORE, 60, f"{BEFORE} dossiers at DVCQG before the fault"
        )
        assert leader_of(cluster, f"{broker_prefix}.national_portal.work") == lost.nodename
        marked, fault_at = len(readiness.seen), time.monotonic()
        await fault(lost)

        def moved() -> str | None:
            node = readiness.ready_on()
            return node if node not in (None, first) else None

        second = await eventually(
            moved, 90, lambda: f"/readyz ready on another node: {readiness.seen}"
        )
        # Unready between the two (naming no node until the connection is back).
        assert any(status == 503 for status, _ in readiness.seen[marked:]), readiness.seen
        assert second in [f"127.0.0.1:{n.port}" for n in cluster.nodes], second
        # The failover pause: from the fault to /readyz ready on the new node (in the report).
        record_property("failover_pause_s", round(readiness.at[-1] - fault_at, 2))
        stream.stop_after = len(stream.sent) + AFTER
        await asyncio.wait_for(streaming, 120)
        await settled(hub_process, sim, stream.sent)
    finally:
        streaming.cancel()
        watching.cancel()
        await asyncio.gather(streaming, watching, return_exceptions=True)
        exit_code = await hub_process.shut_down()
        if lost is not None:
            await heal(lost)
            await eventually(
                lambda: len(cluster.running_nodes()) == 3, 120, "the cluster running 3 nodes"
            )
    assert exit_code == 0, hub_process.log_tail()

    # Exactly once at DVCQG: every dossier, one push each, and no step twice.
    assert set(sim.dossiers) == set(stream.sent)
    pushed_twice = {c: n for c, n in sim.dossier_pushes.items() if n != 1}
    assert pushed_twice == {}, (pushed_twice, warnings_of(hub_process))
    assert sim.state()["step_receipts"]["duplicates"] == 0, sim.state()["step_receipts"]
    # Some were delivered but not yet acknowledged when the node went: they came again, on
    # the new node, and the hub knew it had delivered them.
    logged = log_events(hub_process)
    assert any(e["event"] == "settle_abandoned" for e in logged), "no message was in flight"
    # From the first node to the one /readyz named last. The hub may pass through the other
    # node on the way (seen once in a full run: connected there, lost that connection too
    # while the cluster settled, moved on to the next in turn); never back to the lost one.
    connected = [e["node"] for e in logged if e["event"] == "broker_node_connected"]
    assert connected[0] == first, connected
    assert connected[-1] == second, connected
    assert first not in connected[1:], connected
    record_property("nodes_connected", len(connected))


async def test_quorum_queues_take_the_replicas_configured(
    tmp_path: Path, cluster: RabbitCluster, broker_prefix: str
) -> None:
    settings = cluster_settings(tmp_path, cluster, broker_prefix, "http://127.0.0.1:9/api")
    settings["broker"]["quorum_replicas"] = 2
    async with Hub(load_config(None, settings)) as hub:
        assert hub.broker is not None
        assert hub.broker.node == f"127.0.0.1:{cluster.nodes[0].port}"  # the first listed
    assert replicas_of(cluster, broker_prefix) == {2}


def log_events(hub: HubProcess) -> list[dict[str, Any]]:
    """The hub's JSON log lines, parsed (anything else it printed is left out)."""
    found = []
    for line in hub.log_tail(0).splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and "event" in event:
                found.append(event)
    return found


def warnings_of(hub: HubProcess) -> list[str]:
    """The hub's warnings and errors, one short line each, for a failure's message (a record
    pushed twice is traced to a lost reply, a settle abandoned or a held batch by them)."""
    return [
        " ".join(f"{k}={str(v)[:120]}" for k, v in e.items() if k not in ("timestamp", "level"))
        for e in log_events(hub)
        if e.get("level") in ("warning", "error")
    ][-60:]


def leader_of(cluster: RabbitCluster, queue: str) -> str:
    """The node leading the quorum queue `queue`."""
    listed = json.loads(
        cluster.nodes[0].ctl("list_queues", "name", "leader", "--formatter", "json")
    )
    (leader,) = [q["leader"] for q in listed if q["name"] == queue]
    return str(leader)


def replicas_of(cluster: RabbitCluster, prefix: str) -> set[int]:
    """How many nodes hold each queue named with `prefix` (a set: one figure if all agree)."""
    listed = json.loads(
        cluster.nodes[0].ctl("list_queues", "name", "type", "members", "--formatter", "json")
    )
    mine = [q for q in listed if q["name"].startswith(f"{prefix}.")]
    assert mine, f"no queue named {prefix}.*"
    assert {q["type"] for q in mine} == {"quorum"}, mine
    return {len(q["members"]) for q in mine}


async def settled(hub: HubProcess, sim: DvcqgSimulator, sent: list[str]) -> None:
    """Every dossier at DVCQG, and nothing left anywhere that could still push one again: no
    outbox row, nothing waiting in (or held from) the queues, nothing parked."""
    async with aiohttp.ClientSession() as http:

        async def quiet() -> bool:
            if set(sim.dossiers) != set(sent):
                return False
            async with http.get(f"{hub.base_url}/readyz", params={"counts": "1"}) as r:
                portal = (await r.json())["connectors"]["national_portal"]
            return portal["waiting"] == 0 and portal["parked"] == 0 and await outbox_rows(hub) == 0

        await eventually(
            quiet,
            120,
            lambda: f"{len(sim.dossiers)}/{len(sent)} at DVCQG, all settled\n{hub.log_tail()}",
            every_s=0.2,
        )


async def outbox_rows(hub: HubProcess) -> int:
    """The hub's outbox rows, read from its store (a file, or its PostgreSQL database)."""
    (row,) = await store_rows(hub.settings["store"], "SELECT count(*) AS n FROM outbox")
    return int(row["n"])
