"""Two hubs on one PostgreSQL store, as two replicas: hub a holds the alert checks and fires
for a DVCQG outage; hub a stops while DVCQG is still down, and hub b, taking the checks over,
reads the firing alert back from the store. It sends no second "firing" when it finds DVCQG
down itself, and one "resolved" of the same episode when DVCQG is back."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from hub.config import deep_merge, load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.test_alerts import ALERT_TOKEN, FAST_ALERTS, PORTAL, World, received
from tests.support import PORTAL_PASSWORD, PORTAL_USER, UNIT, eventually, hub_overrides

LEASE_S = 2.0
RENEW_S = 0.3


def replica(folder: Path, rabbit_url: str, prefix: str, store_url: str, portal: str,
            receiver: str) -> dict[str, Any]:  # fmt: skip
    overrides = hub_overrides(folder, rabbit_url, prefix, portal)
    overrides["store"] = {"backend": "postgresql", "url": store_url}
    overrides["duties"] = {"lease_s": LEASE_S, "renew_every_s": RENEW_S}
    webhooks = {"webhooks": {"ops_chat": {"url": receiver, "token": ALERT_TOKEN}}}
    return deep_merge(overrides, {"alerts": deep_merge(FAST_ALERTS, webhooks)})


async def duties_of(http: aiohttp.ClientSession, hub: Hub) -> list[str]:
    async with http.get(f"http://127.0.0.1:{hub.port}/readyz") as response:
        body: dict[str, Any] = await response.json()
        return list(body["duties"])


async def test_the_replica_taking_the_checks_over_continues_the_firing_episode(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, postgres_database: str
) -> None:
    async with (
        WebhookReceiver(token=ALERT_TOKEN) as receiver,
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        aiohttp.ClientSession() as http,
        AsyncExitStack() as stack,
    ):
        hubs: dict[str, Hub] = {}
        stops: dict[str, AsyncExitStack] = {}
        for name in ("a", "b"):
            settings = replica(
                tmp_path / name, rabbit_url, broker_prefix, postgres_database, portal.url,
                receiver.url,
            )  # fmt: skip
            stops[name] = await stack.enter_async_context(AsyncExitStack())
            hubs[name] = await stops[name].enter_async_context(Hub(load_config(None, settings)))
        assert "alerts" in await duties_of(http, hubs["a"])  # the first to start holds them

        portal.faults.mode = "http_503"
        await World(hubs["a"], portal, http).dossier(f"{UNIT}-261207-0003")
        await eventually(lambda: received(receiver, "firing"), 30, "the firing notification")
        firing = received(receiver, "firing")[0]
        assert firing["connector"] == PORTAL

        await stops["a"].aclose()  # hub a hands its leases over; DVCQG is still down

        async def b_checks() -> bool:
            return "alerts" in await duties_of(http, hubs["b"])

        await eventually(b_checks, 30, "hub b holding the alert checks")
        world = World(hubs["b"], portal, http)
        await eventually(lambda: world.portal_state() == "down", 30, "hub b finding DVCQG down")
        await world.next_checks(5)
        assert len(received(receiver, "firing")) == 1, receiver.state()
        _, body = await world.readyz()
        assert [a["episode"] for a in body["alerts"]] == [firing["episode"]]

        portal.faults.mode = "ok"
        await eventually(lambda: received(receiver, "resolved"), 30, "the resolved notification")
        await world.next_checks(3)
        resolved = received(receiver, "resolved")
        assert len(resolved) == 1, receiver.state()
        assert resolved[0]["episode"] == firing["episode"]
        assert len(received(receiver, "firing")) == 1
        assert receiver.duplicates() == {}
