"""Waiting for a condition: the one way a test waits for something to happen.

Tests never wait for a fixed time hoping that something happened by then; they wait for the
thing itself, with a deadline generous enough for a busy two-core CI machine, and say what
they were waiting for when it never came.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

What = str | Callable[[], str]
"""What is awaited, for the failure message; a callable is asked only on time-out, so it can
describe the state then (what was held, the end of a log)."""

POLL_S = 0.05


# What a check returns once it holds is never None (None does not hold): not part of T.
@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]],
    timeout_s: float,
    what: What,
    *,
    every_s: float = POLL_S,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None], timeout_s: float, what: What, *, every_s: float = POLL_S
) -> T: ...


async def eventually(
    check: Callable[[], object], timeout_s: float, what: What, *, every_s: float = POLL_S
) -> object:
    """Call `check` (plain or async) every `every_s` until it returns something true, and
    return that; fail with an AssertionError naming `what` (and the last value seen, unless a
    bare bool) if it has not within `timeout_s`. An exception `check` raises is not caught."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if loop.time() >= deadline:
            said = what() if callable(what) else what
            seen = "" if isinstance(found, bool | None) else f" (last seen: {_short(found)})"
            raise AssertionError(f"not reached within {timeout_s:g} s: {said}{seen}")
        await asyncio.sleep(every_s)


def _short(value: object, chars: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= chars else text[:chars] + " …"
