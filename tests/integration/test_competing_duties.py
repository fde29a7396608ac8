"""Two hubs side by side on one PostgreSQL store and one broker prefix, as two `hub run`
replicas: every once-only duty (the outbox sweep, the alert checks, a ministry system's
polls, the payment status checks and the daily reconciliation) runs on exactly one of them,
as each `/readyz` says and as the simulators count; when the holder stops, the other takes
every duty within the lease time. And a hub alone on SQLite, started after one was killed,
runs its duties at once, whatever leases the killed one left.

Each hub polls a ministry simulator of its own (the same configuration but for the address),
so the simulators' request counts tell which hub polled.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from hub.config import load_config
from hub.runtime import Hub
from hub.store.sqlite import SqliteStore
from sims.ministry.rest_simulator import CivilStatusSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import PaymentPlatformSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.ministry_world import (
    CLIENT_ID,
    CLIENT_SECRET,
    REST_POLL,
    civil_section,
    oauth2,
)
from tests.integration.payments_world import PARTNER, SECRET, SUB_TOKEN, payment_overrides
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually, hub_overrides

LEASE_S = 2.0
RENEW_S = 0.3
SYSTEM = "civil_status"
DUTIES = [
    "alerts",
    f"ministry-poll-{SYSTEM}",
    "outbox-sweep",
    "payment_platform-checks",
    "payment_platform-reconciliation",
]


def replica_settings(
    folder: Path,
    rabbit_url: str,
    prefix: str,
    store_url: str,
    portal: DvcqgSimulator,
    one_stop: WebhookReceiver,
    platform: PaymentPlatformSimulator,
    ministry: CivilStatusSimulator,
) -> dict[str, Any]:
    overrides = payment_overrides(
        folder, rabbit_url, prefix, portal.url, platform.base_url, one_stop.url
    )
    overrides["store"] = {"backend": "postgresql", "url": store_url, "outbox_sweep_interval_s": 0.5}
    overrides["duties"] = {"lease_s": LEASE_S, "renew_every_s": RENEW_S}
    overrides["subscribers"]["one_stop"]["events"] += ["ministry.#"]
    payments = overrides["connectors"]["payment_platform"]
    payments["status_check"] = {"enabled": True, "interval_s": 0.3}
    payments["reconciliation"]["enabled"] = True
    overrides["ministries"] = {
        SYSTEM: civil_section(
            ministry.base_url, auth=oauth2(ministry.base_url, "basic"), poll=REST_POLL
        )
    }
    return overrides


async def readiness(http: aiohttp.ClientSession, hub: Hub) -> dict[str, Any]:
    async with http.get(f"http://127.0.0.1:{hub.port}/readyz") as response:
        body: dict[str, Any] = await response.json()
        assert response.status == 200, body
        return body


async def test_each_duty_runs_on_one_of_two_hubs_and_moves_when_its_holder_stops(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, postgres_database: str
) -> None:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        sims: dict[str, CivilStatusSimulator] = {}
        hubs: dict[str, Hub] = {}
        stops: dict[str, AsyncExitStack] = {}
        for name in ("a", "b"):
            platform = await stack.enter_async_context(PaymentPlatformSimulator(PARTNER, SECRET))
            sims[name] = await stack.enter_async_context(
                CivilStatusSimulator(
                    client_id=CLIENT_ID, client_secret=CLIENT_SECRET, client_auth="basic"
                )
            )
            settings = replica_settings(
                tmp_path / name,
                rabbit_url,
                broker_prefix,
                postgres_database,
                portal,
                one_stop,
                platform,
                sims[name],
            )
            stops[name] = await stack.enter_async_context(AsyncExitStack())
            hubs[name] = await stops[name].enter_async_context(Hub(load_config(None, settings)))

        # Hub a started first and took every duty at once; hub b waits, in vain so far.
        a, b = await readiness(http, hubs["a"]), await readiness(http, hubs["b"])
        assert a["replica"] != b["replica"]
        assert a["replica"].startswith("hub-")
        assert b["replica"].startswith("hub-")
        assert (a["duties"], b["duties"]) == (DUTIES, [])
        for body in (a, b):  # each shows who holds what, the other's duties too
            assert body["duty_holders"] == dict.fromkeys(DUTIES, a["replica"])
            # and both replicas, the one standing by too (presence leases, not duties)
            assert body["replicas"] == sorted([a["replica"], b["replica"]])
        # Only hub a's simulator is polled, however many times hub b tried the lease.
        await eventually(lambda: sims["a"].requests["results"] >= 8, 30, "hub a polling")
        assert sims["b"].requests["results"] == 0
        assert (await readiness(http, hubs["b"]))["duties"] == []

        # Hub a stops (its leases handed over): hub b takes every duty within the lease time.
        loop = asyncio.get_running_loop()
        await stops["a"].aclose()
        stopped_at = loop.time()
        polled_by_a = sims["a"].requests["results"]

        async def b_holds_every_duty() -> bool:
            held: list[str] = (await readiness(http, hubs["b"]))["duties"]
            return held == DUTIES

        await eventually(b_holds_every_duty, LEASE_S, "hub b holding every duty")
        assert loop.time() - stopped_at < LEASE_S
        body = await readiness(http, hubs["b"])
        assert body["duty_holders"] == dict.fromkeys(DUTIES, body["replica"])
        assert body["replicas"] == [body["replica"]]  # hub a released its presence as it stopped
        await eventually(lambda: sims["b"].requests["results"] >= 2, 30, "hub b polling")
        assert sims["a"].requests["results"] == polled_by_a


async def test_a_hub_alone_on_sqlite_takes_at_once_the_duties_a_killed_one_left(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    path = tmp_path / "hub.db"
    async with SqliteStore.open(path) as store:  # as a killed hub leaves them: live, not released
        for duty in ("alerts", "outbox-sweep"):
            assert (await store.leases.acquire(duty, "hub-killed", 300)).holder == "hub-killed"
    settings = hub_overrides(tmp_path, rabbit_url, broker_prefix, "http://127.0.0.1:9")
    settings["store"] = {"path": str(path)}
    async with Hub(load_config(None, settings)) as hub, aiohttp.ClientSession() as http:
        body = await readiness(http, hub)
        assert body["duties"] == ["alerts", "outbox-sweep"]
        assert body["duty_holders"] == dict.fromkeys(body["duties"], body["replica"])
