"""Serve an aiohttp application on a free loopback port for the length of a test: the one way
the tests' hand-written doubles of external systems are put on the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """`async with serve(app) as base:` — `base` is `http://127.0.0.1:<port>`."""
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def post_from(address: str, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    """One JSON POST from the loopback address `address` (127.0.0.x: another client, for the
    per-address limits and lock-outs); the status and the JSON reply."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as http, http.post(url, json=body) as r:
        return r.status, await r.json()
