"""The dashboard's counts are the broker's: with thousands parked and hundreds waiting behind a
paused connector, the admin API's overview and the rendered overview page give exactly what
`rabbitmqctl` counts (ready and unacknowledged alike, read independently of the hub), also
while the dead-letter pages walk the parking queue (which holds what it reads)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.broker import CONNECTOR_HEADER, REASON_HEADER, message
from sims.rabbitmq_node import RabbitNode
from tests.integration.dashboard_world import DashboardWorld, Session, dashboard_world
from tests.support import eventually

PORTAL = "national_portal"
PARKED = 2_000
WAITING = 300


@pytest.fixture
async def node_dash(
    tmp_path: Path, rabbit_node: RabbitNode, broker_prefix: str
) -> AsyncIterator[DashboardWorld]:
    """The dashboard world on the session's private node, always: the test reads the broker's
    counts with its `rabbitmqctl`."""
    async with dashboard_world(tmp_path, rabbit_node.url, broker_prefix) as world:
        yield world


def broker_messages(node: RabbitNode) -> dict[str, int]:
    """Every queue's messages (ready plus unacknowledged), as `rabbitmqctl` says, in one call."""
    counts: dict[str, int] = {}
    for line in node.ctl("list_queues", "name", "messages").splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit():
            counts[fields[0]] = int(fields[1])
    return counts


def digits(text: str) -> int:
    """A count as the page writes it in Vietnamese ("2.004") or English ("2,004")."""
    return int(re.sub(r"[^0-9]", "", text))


async def api_counts(session: Session) -> tuple[int, int]:
    status, overview = await session.call("GET", "/api/v1/admin/overview")
    assert status == 200, overview
    card = next(c for c in overview["connectors"] if c["name"] == PORTAL)
    return card["queue_depth"], card["dead_letters"]


async def page_counts(session: Session) -> tuple[int, int]:
    async with session.http.get(f"{session.base}/dashboard/") as r:
        assert r.status == 200
        html = await r.text()
    card = html.split(f'data-connector="{PORTAL}"', 1)[1].split("</article>", 1)[0]
    depth = re.search(r'data-field="queue_depth">([^<]*)<', card)
    parked = re.search(r'data-field="dead_letters"><a [^>]*>([^<]*)<', card)
    assert depth, card
    assert parked, card
    return digits(depth.group(1)), digits(parked.group(1))


async def test_the_overview_counts_are_the_brokers_with_thousands_parked(
    node_dash: DashboardWorld, rabbit_node: RabbitNode
) -> None:
    hub = node_dash.hub
    watched = hub.connector(PORTAL)
    assert watched is not None
    assert watched.queues is not None
    assert hub.broker is not None
    queues = watched.queues
    broker = hub.broker
    viewer = await node_dash.operator("viewer")
    await hub.set_paused(PORTAL, "count-test", "counting", True)

    # Parked as the hub parks (straight into the parking queue), and waiting in the work queue
    # behind the paused connector (which holds a prefetch of them at its gate).
    headers = {REASON_HEADER: "refused", CONNECTOR_HEADER: PORTAL}
    for i in range(PARKED):
        body = {"dossier_code": f"P-{i:05d}", "version": 1}
        await broker.publish(
            broker.channel.default_exchange, queues.parking, message(body, f"p{i}", headers)
        )
    for i in range(WAITING):
        body = {"dossier_code": f"W-{i:05d}", "version": 1}
        await broker.publish(
            broker.channel.default_exchange, queues.work, message(body, f"w{i}", {})
        )
    work = [queues.work, *(q for q, _ in queues.retry)]

    def broker_counts() -> tuple[int, int]:
        counts = broker_messages(rabbit_node)
        return sum(counts[q] for q in work), counts[queues.parking]

    # rabbitmqctl reads a quorum queue's figures as the node last published them (every few
    # seconds): wait until it has the publishes, which are all confirmed.
    expected = (WAITING, PARKED)
    said: dict[str, tuple[int, int]] = {}

    async def the_broker_says(wanted: tuple[int, int]) -> bool:
        said["broker"] = await asyncio.to_thread(broker_counts)
        return said["broker"] == wanted

    await eventually(lambda: the_broker_says(expected), 60, lambda: f"rabbitmqctl: {said}")
    consumer = watched.consumer
    assert consumer is not None
    await eventually(lambda: consumer.in_flight() > 0, 30, "the paused consumer holding")

    seen: dict[str, tuple[int, int]] = {}

    async def the_same() -> bool:
        seen["api"] = await api_counts(viewer)
        seen["page"] = await page_counts(viewer)
        return seen["api"] == seen["page"] == expected

    await eventually(the_same, 30, lambda: f"the dashboard's counts {seen}, broker {expected}")

    # While the dead-letter pages walk the parking queue (holding up to 1,000 at a time), the
    # counts stay the broker's: never the part the walk left ready.
    async def walks() -> int:
        done = 0
        for _ in range(3):
            status, reply = await viewer.call("GET", "/api/v1/admin/dead-letters?limit=1000")
            assert status == 200, reply
            assert len(reply["items"]) == 1000
            done += 1
        return done

    walking = asyncio.create_task(walks())
    readings: list[tuple[tuple[int, int], tuple[int, int]]] = []
    while not walking.done():
        readings.append((await api_counts(viewer), await page_counts(viewer)))
    assert await walking == 3
    assert readings, "no reading taken during the walks"
    assert all(r == (expected, expected) for r in readings), readings
    await eventually(lambda: the_broker_says(expected), 60, lambda: f"rabbitmqctl: {said}")

    await hub.set_paused(PORTAL, "count-test", "", False)
