"""The catalogue sync's test world: DVCQG's simulator with a generated catalogue, a loopback
subscriber, and a hub in process. Shared by the procedure test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.national_portal.procedures.records import RunState
from connectors.national_portal.procedures.sync import CatalogueSync
from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER, hub_overrides

CATALOGUE_SIZE = 60
SUB_TOKEN = "sub-token"
AUTH = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}


@dataclass
class World:
    hub: Hub
    sim: DvcqgSimulator
    receiver: WebhookReceiver
    http: aiohttp.ClientSession

    @property
    def sync(self) -> CatalogueSync:
        sync = self.hub.handle("catalogue")
        assert isinstance(sync, CatalogueSync)
        return sync

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.hub.port}/api/v1"

    async def get(self, path: str, token: str = ONESTOP_TOKEN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.get(self.api + path, headers=headers) as response:
            return response.status, await response.json()

    async def settle(self, expected: int) -> None:
        """Wait until the subscriber holds `expected` events, then make sure no more come."""
        assert await self.receiver.wait_for(expected, 30), (
            f"subscriber has {len(self.receiver.events)} events, expected {expected}"
        )
        assert not await self.receiver.wait_for(expected + 1, 0.5), "an unexpected extra event"


def catalogue_overrides(
    tmp_path: Path, rabbit_url: str, prefix: str, sim: DvcqgSimulator, receiver: WebhookReceiver
) -> dict[str, Any]:
    overrides = hub_overrides(
        tmp_path,
        rabbit_url,
        prefix,
        sim.url,
        catalogue={"enabled": True, "interval_s": 0, "concurrency": 4, "rate_limit_per_s": 500},
    )
    overrides["subscribers"] = {
        "one_stop": {
            "url": receiver.url,
            "token": SUB_TOKEN,
            "delay_tiers_s": [0.2, 0.4],
            "retry": {"attempts": 2, "initial_backoff_s": 0.05, "max_backoff_s": 0.1},
            "breaker": {"failure_threshold": 50, "recovery_s": 1},
            "linger_ms": 10,
        }
    }
    return overrides


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[World]:
    async with (
        DvcqgSimulator(
            username=PORTAL_USER, password=PORTAL_PASSWORD, procedures=CATALOGUE_SIZE
        ) as sim,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
    ):
        config = load_config(
            None, catalogue_overrides(tmp_path, rabbit_url, broker_prefix, sim, receiver)
        )
        async with Hub(config) as hub, aiohttp.ClientSession() as http:
            yield World(hub, sim, receiver, http)


async def synced(world: World, expected_events: int) -> None:
    runs = await world.sync.run()
    assert runs[-1].state is RunState.done, runs[-1]
    await world.settle(expected_events)
