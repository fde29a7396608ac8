"""The PostgreSQL server restarts under the hub (SIGKILL, then started again on its data), a
stream of dossiers going on: while it is away the doors answer "unavailable" (the canonical
API 503, the facade "99", /readyz 503) and take nothing; once it is back the hub goes on by
itself, and every dossier accepted before or after reaches DVCQG at its newest status, no step
twice. The server is this module's own: killing it disturbs no other test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.config import load_config
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from sims.postgres_node import PostgresNode
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_TOKEN,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    eventually,
    hub_overrides,
)
from tests.support.streaming import Stream, ready_status

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresNode]:
    with PostgresNode(tmp_path_factory.mktemp("pg-restart")) as node:
        yield node


async def api_status(http: aiohttp.ClientSession, hub: Hub, code: str) -> int:
    at = (datetime.now(VN_TZ) - timedelta(minutes=5)).isoformat()
    event: dict[str, Any] = {
        "event_id": f"ev-{code}",
        "dossier_code": code,
        "kind": "record",
        "status": "accepted",
        "occurred_at": at,
        "record": {"procedure_code": "1.000894", "received_at": at},
    }
    async with http.post(
        f"http://127.0.0.1:{hub.port}/api/v1/dossier-events",
        json={"events": [event]},
        headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
    ) as r:
        return r.status


async def facade_code(http: aiohttp.ClientSession, hub: Hub) -> str:
    login = {"username": ONESTOP_USER, "password": ONESTOP_PASSWORD}
    async with http.post(f"http://127.0.0.1:{hub.port}/dvcqg", json=login) as r:
        return str((await r.json(content_type=None)).get("error_code"))


async def test_the_hub_rides_out_a_postgresql_restart_in_the_middle_of_a_stream(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, own_postgres: PostgresNode
) -> None:
    store_url = own_postgres.create_database("restart")
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
        overrides["store"] = {"backend": "postgresql", "url": store_url}
        async with Hub(load_config(None, overrides)) as hub, aiohttp.ClientSession() as http:
            stream = Stream(hub)
            await stream.wave(10)
            await eventually(lambda: stream.delivered(sim), 60, "the first wave at DVCQG")

            await asyncio.to_thread(own_postgres.kill)
            code = f"{UNIT}-{datetime.now(VN_TZ):%y%m%d}-9901"
            assert await api_status(http, hub, code) == 503
            assert await facade_code(http, hub) == "99"

            async def unready() -> bool:
                return await ready_status(hub) == 503

            await eventually(unready, 30, "/readyz answering 503")

            await asyncio.to_thread(own_postgres.start)

            async def ready() -> bool:
                return await ready_status(hub) == 200

            await eventually(ready, 60, "/readyz answering 200 again")
            assert await api_status(http, hub, code) == 200  # refused while away, taken now
            stream.statuses[code] = "2"  # accepted
            await stream.wave(10)
            await eventually(lambda: stream.delivered(sim), 90, "every dossier at DVCQG")
            assert all(n == 1 for n in sim.step_receipts.values()), "a step was applied twice"
