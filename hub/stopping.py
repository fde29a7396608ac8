"""Stopping the hub in bounded time, and saying what holds it up.

Everything the hub acknowledges is committed first, so a part abandoned at exit loses
nothing: a task that does not end when cancelled (it swallowed the cancellation, or waits on
something that never comes) is left behind after `CANCEL_WAIT_S`, named in the log with the
line it waits on, and the stop goes on. While the whole stop takes longer than `SLOW_STOP_S`,
`watch_stop` logs every task still pending, with where each waits, once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog

log = structlog.get_logger(__name__)

CANCEL_WAIT_S = 10.0
SLOW_STOP_S = 20.0


def awaiting(task: asyncio.Task[Any], depth: int = 12) -> list[str]:
    """Where `task` is suspended: `file:line function` of each coroutine it awaits, outermost
    first (what `Task.get_stack` does not show: it stops at the task's own coroutine)."""
    found: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(found) < depth:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            found.append(f"{code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} {code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return found


async def cancel(task: asyncio.Task[Any], wait_s: float = CANCEL_WAIT_S) -> None:
    """Cancel `task` and wait for it to end, at most `wait_s`; then name it and go on."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=wait_s)
    if not done:
        log.error("task_would_not_stop", task=task.get_name(), waiting_at=awaiting(task))
        return
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


@contextlib.asynccontextmanager
async def watch_stop(slow_s: float = SLOW_STOP_S) -> AsyncIterator[None]:
    """Around a stop: past `slow_s`, log the pending tasks and where they wait, each minute."""
    me = asyncio.current_task()

    async def watch() -> None:
        await asyncio.sleep(slow_s)
        while True:
            pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
            log.warning(
                "hub_stop_slow",
                pending={t.get_name(): awaiting(t)[-3:] for t in pending if t is not watcher},
            )
            await asyncio.sleep(60)

    watcher = asyncio.create_task(watch(), name="stop-watchdog")
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
