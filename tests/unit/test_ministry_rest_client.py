"""The REST client writes a mapped request as JSON a system can read: times with a T."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors.ministry.config import MinistryConfig
from connectors.ministry.mapping import MinistryMapping
from connectors.ministry.rest import RestClient
from hub.config_blocks import BreakerConfig, RetryConfig
from hub.errors import CredentialsRefused, DestinationRejected
from hub.resilience import Guard

Handler = Callable[[web.Request], Awaitable[web.Response]]
MAPPING = """
submit:
  fields:
    maHoSo: {path: dossier_code}
    ngayTiepNhan: {path: received_at, type: datetime}
    ngay: {path: received_at, type: date}
    phi: {path: "sum(fees[].amount_vnd)", type: decimal}
"""


@asynccontextmanager
async def ministry(handler: Handler) -> AsyncIterator[RestClient]:
    """A REST client of a ministry answering `POST /ho-so` with `handler`, on loopback."""
    app = web.Application()
    app.router.add_post("/ho-so", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    config = MinistryConfig.model_validate(
        {
            "kind": "rest",
            "mapping": "x",
            "procedures": ["1.0"],
            "rest": {"base_url": f"http://127.0.0.1:{port}"},
            "submit": {"operation": "POST /ho-so"},
        }
    )
    try:
        async with aiohttp.ClientSession() as http:
            guard = Guard("ministry.t", RetryConfig(attempts=1), BreakerConfig(), 100.0)
            yield RestClient("t", config, guard, http)
    finally:
        await runner.cleanup()


async def test_a_datetime_field_goes_out_as_iso_8601_text() -> None:
    received: list[Any] = []

    async def take(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"id": "HT-1"})

    request = MinistryMapping.parse(MAPPING).submit_request(
        {
            "dossier_code": "H1",
            "received_at": "2026-12-06T12:18:47+07:00",
            "fees": [{"amount_vnd": 50000}],
        }
    )
    async with ministry(take) as client:
        assert await client.submit(request) == {"id": "HT-1"}
    assert received == [
        {
            "maHoSo": "H1",
            "ngayTiepNhan": "2026-12-06T12:18:47+07:00",
            "ngay": "2026-12-06",
            "phi": "50000",
        }
    ]


async def test_refused_credentials_are_the_accounts_problem_not_the_items() -> None:
    """401 (after one retry with a fresh credential) and 403 wait as "credentials refused":
    the hand-off is not parked as if the system had refused that dossier."""
    answers: list[int] = []

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"loi": "sai khoa"}, status=answers.pop(0))

    request = MinistryMapping.parse(MAPPING).submit_request(
        {"dossier_code": "H1", "received_at": "2026-12-06T12:18:47+07:00", "fees": []}
    )
    async with ministry(refuse) as client:
        for statuses in ([401, 401], [403]):
            answers[:] = statuses
            with pytest.raises(CredentialsRefused, match=f"HTTP {statuses[-1]}"):
                await client.submit(request)
            assert answers == []  # a 401 was retried once, a 403 not at all
        answers[:] = [404]
        with pytest.raises(DestinationRejected):  # an item refusal stays one
            await client.submit(request)
