"""`event_loop`: the long-running commands run on the configured loop, uvloop by default."""

from __future__ import annotations

import asyncio

import uvloop

from hub.cli import _run
from hub.config import load_config


async def _loop_class() -> type:
    return type(asyncio.get_running_loop())


def test_the_configured_loop_runs_the_hub_and_uvloop_is_the_default() -> None:
    assert load_config(None, {}).event_loop == "uvloop"
    assert _run(_loop_class(), "uvloop") is uvloop.Loop
    assert _run(_loop_class(), "asyncio") is not uvloop.Loop
    assert load_config(None, {"event_loop": "asyncio"}).event_loop == "asyncio"
