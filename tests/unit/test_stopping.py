"""Stopping in bounded time (`hub.stopping`), with real asyncio tasks: a task that swallows
its cancellation is left behind after the wait, named with the line it waits on; a task that
ends when cancelled is simply awaited; a slow stop logs what is still pending."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from hub import stopping
from tests.support import eventually


async def _deep(event: asyncio.Event) -> None:
    await event.wait()


async def _stubborn(event: asyncio.Event) -> None:
    while not event.is_set():
        with contextlib.suppress(asyncio.CancelledError):  # the bug being guarded against
            await _deep(event)


async def test_a_task_that_will_not_stop_is_named_and_left_behind() -> None:
    never = asyncio.Event()
    task = asyncio.create_task(_stubborn(never), name="stubborn")
    await asyncio.sleep(0)
    with structlog.testing.capture_logs() as logs:
        await stopping.cancel(task, wait_s=0.2)
    [entry] = [e for e in logs if e["event"] == "task_would_not_stop"]
    assert entry["task"] == "stubborn"
    where = entry["waiting_at"]
    assert where[0].endswith("_stubborn"), where
    assert where[1].endswith("_deep"), where
    assert not task.done()
    never.set()  # let it go
    await asyncio.wait_for(task, 5)


async def test_a_task_that_ends_when_cancelled_is_awaited_quietly() -> None:
    task = asyncio.create_task(_deep(asyncio.Event()), name="plain")
    await asyncio.sleep(0)
    with structlog.testing.capture_logs() as logs:
        await stopping.cancel(task, wait_s=5)
    assert task.cancelled()
    assert logs == []


async def test_a_slow_stop_says_what_is_still_pending() -> None:
    release = asyncio.Event()
    holder = asyncio.create_task(_deep(release), name="holder")
    with structlog.testing.capture_logs() as logs:
        async with stopping.watch_stop(slow_s=0.05):
            await eventually(
                lambda: any(e["event"] == "hub_stop_slow" for e in logs), 10, "the slow-stop log"
            )
            release.set()
            await holder
    [entry] = [e for e in logs if e["event"] == "hub_stop_slow"]
    assert any(line.endswith("_deep") for line in entry["pending"]["holder"]), entry
