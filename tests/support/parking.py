"""Waiting for parked messages in a test, on the test's own parking queue.

Browsing a parking queue takes its messages on a channel of its own and closes it, which puts
them back; the broker does that asynchronously, so an act right after a browse (a replay, a
discard, another browse) may not find them all yet. `wait_parked` waits for the messages a
test is about, then until every message it saw is back in place; `in_place` waits for a
parking queue's count (before a browse or an act through the admin API, for instance).
"""

from __future__ import annotations

from collections.abc import Callable

from hub.broker import Broker
from hub.dlq import ParkedMessage, ParkingQueue
from hub.health import QueueProbe
from tests.support.waiting import eventually


async def in_place(broker: Broker, queue: str, count: int, timeout_s: float = 30) -> None:
    """Wait until `queue` (a parking queue) holds at least `count` ready messages."""
    probe = QueueProbe(broker)

    async def ready() -> bool:
        return (await probe.count(queue) or 0) >= count

    await eventually(ready, timeout_s, f"{count} message(s) ready in {queue}")


async def wait_parked(
    parking: ParkingQueue,
    count: int,
    about: Callable[[ParkedMessage], bool] = lambda m: True,
    timeout_s: float = 30,
) -> list[ParkedMessage]:
    """The parked messages `about` takes (oldest first), once there are `count` of them and
    everything browsed is back in place; fails, listing what was parked, if not in time."""
    seen: list[ParkedMessage] = []

    async def found() -> list[ParkedMessage]:
        seen[:] = await parking.browse()
        matching = [m for m in seen if about(m)]
        return matching if len(matching) >= count else []

    matching = await eventually(
        found,
        timeout_s,
        lambda: (
            f"{count} parked message(s) in {parking.queues.parking}; parked: "
            + str([(m.message_id, m.body, m.reason) for m in seen])[:2000]
        ),
    )
    await in_place(parking.broker, parking.queues.parking, len(seen), timeout_s)
    return matching
