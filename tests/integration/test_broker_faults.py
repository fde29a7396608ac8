"""The broker goes away in the middle of a stream and comes back: the hub reconnects,
declares its queues again, subscribes every consumer again and delivers everything, once.

The node here is the test module's own (a fault must not disturb other tests' broker): it is
stopped with `rabbitmqctl stop_app` / `start_app`, and killed with SIGKILL and started again.
Dossiers are sent before, during and after the fault; while the broker is away the facade
still answers "00" (the changes are committed, the outbox publishes them later) and `/readyz`
answers 503; afterwards every dossier reaches DVCQG at its newest status and no step twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.rabbitmq_node import RabbitNode
from tests.support import (
    PORTAL_PASSWORD,
    PORTAL_USER,
    eventually,
    hub_overrides,
)
from tests.support.streaming import Stream, ready_status

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """A node of this module's own: stopping and killing it disturbs no other test."""
    with RabbitNode(tmp_path_factory.mktemp("broker-faults")) as node:
        yield node


@pytest.fixture
async def sim() -> AsyncIterator[DvcqgSimulator]:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as s:
        yield s


async def stop_app(node: RabbitNode) -> None:
    await asyncio.to_thread(node.ctl, "stop_app")


async def start_app(node: RabbitNode) -> None:
    await asyncio.to_thread(node.ctl, "start_app")


async def kill(node: RabbitNode) -> None:
    await asyncio.to_thread(node.kill)


async def start(node: RabbitNode) -> None:
    await asyncio.to_thread(node.start)


@pytest.mark.parametrize(
    ("fault", "heal"), [(stop_app, start_app), (kill, start)], ids=["stop_app", "sigkill"]
)
async def test_the_hub_rides_out_a_broker_restart_in_the_middle_of_a_stream(
    tmp_path: Path,
    own_node: RabbitNode,
    broker_prefix: str,
    sim: DvcqgSimulator,
    fault: Any,
    heal: Any,
) -> None:
    overrides = hub_overrides(tmp_path, own_node.url, broker_prefix, sim.url)
    overrides["broker"]["watch_interval_s"] = 0.2
    async with Hub(load_config(None, overrides)) as hub:
        stream = Stream(hub)
        await stream.wave(10)
        assert await ready_status(hub) == 200

        await fault(own_node)
        await eventually(_status_is(hub, 503), 30, "/readyz answering 503")
        await stream.wave(10)  # committed and answered "00"; the outbox keeps them

        await heal(own_node)
        await eventually(_status_is(hub, 200), 90, "/readyz answering 200 again")
        await stream.wave(10)
        await eventually(lambda: stream.delivered(sim), 90, "every wave at DVCQG")

        assert all(n == 1 for n in sim.step_receipts.values()), "a step was applied twice"
        assert hub.consumers["national_portal"].resubscribed >= 1
        store = hub.store
        assert store is not None

        async def outbox_drained() -> bool:
            return await store.outbox_pending(0, 10) == []

        # What the broker never confirmed is published again.
        await eventually(outbox_drained, 60, "the outbox drained")
        assert all(n == 1 for n in sim.step_receipts.values()), "a step was applied twice"


def _status_is(hub: Hub, status: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await ready_status(hub) == status

    return check


async def test_the_hub_stops_in_bounded_time_while_the_broker_is_frozen(
    tmp_path: Path, own_node: RabbitNode, broker_prefix: str, sim: DvcqgSimulator
) -> None:
    """A broker host that hangs (SIGSTOP: connections open, nothing answers) as the hub is
    told to stop: the stop ends by itself, each part that waits on the broker given up after
    its bound, instead of waiting for ever for the broker's answer to its close."""
    overrides = hub_overrides(tmp_path, own_node.url, broker_prefix, sim.url)
    overrides["http"]["shutdown_timeout_s"] = 2
    hub = Hub(load_config(None, overrides))
    await hub.__aenter__()
    stream = Stream(hub)
    await stream.wave(5)
    await eventually(lambda: stream.delivered(sim), 60, "the wave at DVCQG")
    own_node.freeze()
    try:
        stopping = asyncio.create_task(hub.__aexit__(None, None, None))
        done, _ = await asyncio.wait({stopping}, timeout=120)
        assert done, "the hub did not stop within two minutes of a frozen broker"
        stopping.result()
    finally:
        own_node.thaw()
