"""A ministry system's throughput counts only its own hand-offs.

Two systems are configured (business registration over SOAP, civil status over REST); every
dossier event reaches both systems' queues, and the dossiers here are all of business
registration's procedure. The dashboard (admin API and overview page) must show business
registration's hand-offs as its throughput, and civil status none: the messages it took are
counted as skipped (decision 0060), not as throughput nor as failures.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.config import load_config
from hub.runtime import Hub
from sims.ministry.rest_simulator import CivilStatusSimulator
from sims.ministry.soap_simulator import BusinessRegistrationSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.dashboard_world import PASSWORDS, USERS, dashboard_overrides
from tests.integration.ministry_world import (
    BUSINESS_PROCEDURE,
    CLIENT_ID,
    CLIENT_SECRET,
    SUB_TOKEN,
    WSSE_PASSWORD,
    WSSE_USER,
    World,
    base_overrides,
    business_section,
    civil_section,
    code,
    oauth2,
)
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually

BUSINESS, CIVIL = "ministry.business_registration", "ministry.civil_status"
HANDED = 12


@pytest.fixture
async def two_systems(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[tuple[World, BusinessRegistrationSimulator, CivilStatusSimulator]]:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
        business = await stack.enter_async_context(
            BusinessRegistrationSimulator(username=WSSE_USER, password=WSSE_PASSWORD)
        )
        civil = await stack.enter_async_context(
            CivilStatusSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        )
        overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
        overrides["ministries"] = {
            "business_registration": business_section(business.url),
            "civil_status": civil_section(civil.base_url, auth=oauth2(civil.base_url)),
        }
        overrides["dashboard"] = dashboard_overrides()
        hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield World(hub, portal, one_stop, http), business, civil


async def viewer(world: World, stack: AsyncExitStack) -> aiohttp.ClientSession:
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[world.base])
    http = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=jar))
    login = {"username": USERS["viewer"], "password": PASSWORDS["viewer"]}
    async with http.post(f"{world.base}/api/v1/admin/session", json=login) as r:
        assert r.status == 200, await r.text()
    return http


async def cards(http: aiohttp.ClientSession, base: str) -> dict[str, dict[str, Any]]:
    async with http.get(f"{base}/api/v1/admin/overview") as r:
        assert r.status == 200, await r.text()
        overview = await r.json()
    return {c["name"]: c for c in overview["connectors"]}


def page_throughput(html: str, connector: str) -> str:
    card = html.split(f'data-connector="{connector}"', 1)[1].split("</article>", 1)[0]
    found = re.search(r'data-field="throughput">([^<]*)<', card)
    assert found, card
    return found.group(1)


async def test_a_systems_throughput_counts_only_the_dossiers_handed_to_it(
    two_systems: tuple[World, BusinessRegistrationSimulator, CivilStatusSimulator],
) -> None:
    world, business, civil = two_systems
    codes = [code(n, "261206") for n in range(1, HANDED + 1)]
    await world.dossiers(codes, BUSINESS_PROCEDURE)
    await eventually(lambda: sorted(business.accepted) == codes, 60, "every hand-off")

    async with AsyncExitStack() as stack:
        http = await viewer(world, stack)

        async def settled() -> dict[str, dict[str, Any]] | None:
            found = await cards(http, world.base)
            both = found[BUSINESS]["delivered_since_start"] == HANDED
            return found if both and found[CIVIL]["skipped_since_start"] >= HANDED else None

        found = await eventually(settled, 60, "both systems' consumers through the dossiers")
        mine, other = found[BUSINESS], found[CIVIL]
        assert civil.accepted == {}
        # Business registration: its hand-offs, and nothing it failed.
        assert mine["throughput_per_min"] > 0
        assert mine["parked_since_start"] == mine["retried_since_start"] == 0
        # Civil status took every one of those dossiers' events and handed none off.
        assert other["delivered_since_start"] == 0
        assert other["throughput_per_min"] == 0
        assert other["error_rate"] is None
        assert other["last_success_at"] is None
        assert other["parked_since_start"] == other["retried_since_start"] == 0

        async with http.get(f"{world.base}/dashboard/") as r:
            assert r.status == 200
            html = await r.text()
        assert page_throughput(html, CIVIL) == "0"
        assert page_throughput(html, BUSINESS) not in ("0", "-")
