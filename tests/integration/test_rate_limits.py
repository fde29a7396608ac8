"""Rate limits at the doors (`hub.ratelimit`), against a running hub over real HTTP: a flood
of forged payment callbacks from one address stops being read, checked or stored once its
budget is spent (the callback log keeps at most that budget), while another address goes on;
the canonical API and the facade answer 429 with Retry-After per address and per source.

Other client addresses are other loopback addresses (127.0.0.2): Linux routes all of
127.0.0.0/8 to the loopback interface."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub import metrics
from hub.auth import sha256_hex
from hub.config import load_config
from hub.runtime import Hub
from sims.ministry.rest_simulator import CivilStatusSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import PaymentPlatformSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.ministry_world import (
    CLIENT_ID,
    CLIENT_SECRET,
    PUSH_TOKEN,
    base_overrides,
    civil_section,
    oauth2,
)
from tests.integration.payments_world import PARTNER, SECRET, SUB_TOKEN, code, payment_overrides
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_TOKEN,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    hub_overrides,
)

OTHER_ADDRESS = "127.0.0.2"
REFUSALS_KEPT, BURST = 3, 10


def from_address(address: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


async def post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str | None]:
    async with http.post(url, data=json.dumps(body), headers=headers or {}) as r:
        return r.status, await r.json(content_type=None), r.headers.get("Retry-After")


# -- the payment callback ------------------------------------------------------------------


@pytest.fixture
async def payments(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[tuple[Hub, PaymentPlatformSimulator]]:
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
        PaymentPlatformSimulator(partner_code=PARTNER, secret=SECRET) as platform,
    ):
        overrides = payment_overrides(
            tmp_path, rabbit_url, broker_prefix, portal.url, platform.base_url, receiver.url
        )
        overrides["connectors"]["payment_platform"]["callback_limits"] = {
            "per_address_per_s": 0.01,  # a slow refill: the burst is what the test sees
            "burst": BURST,
            "refusals_per_address_per_min": REFUSALS_KEPT,
        }
        async with Hub(load_config(None, overrides)) as hub:
            path = hub.config.connectors.payment_platform.callback_path
            platform.callback_url = f"http://127.0.0.1:{hub.port}{path}"
            yield hub, platform


async def refused_in_log(hub: Hub) -> int:
    base = f"http://127.0.0.1:{hub.port}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base}/api/v1/payments/callbacks?verdict=refused&limit=1000",
            headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
        ) as r,
    ):
        assert r.status == 200
        return len((await r.json())["callbacks"])


async def test_a_flood_of_forged_callbacks_is_cut_before_it_is_read_or_stored(
    payments: tuple[Hub, PaymentPlatformSimulator],
) -> None:
    hub, platform = payments
    tx = platform.new_transaction(code(1), 150_000)
    forged = platform.variant_body(tx, "bad_signature")
    unlogged_before = metrics.PAYMENT_REFUSALS_UNLOGGED._value.get()
    url = platform.callback_url
    assert url is not None
    replies = []
    async with aiohttp.ClientSession() as http:
        for _ in range(40):
            replies.append(await post(http, url, forged))
    statuses = [status for status, _, _ in replies]
    # The burst is read, checked and refused; then 429, nothing read.
    assert statuses == [200] * BURST + [429] * (40 - BURST), statuses
    assert all(reply["MaLoi"] == "99" for _, reply, _ in replies)
    _, reply, after = replies[-1]
    assert "too many callbacks from this address" in reply["MoTaLoi"]
    assert after is not None
    assert int(after) >= 1
    # Of the refusals answered, the callback log kept the address's budget only.
    assert await refused_in_log(hub) == REFUSALS_KEPT
    unlogged = metrics.PAYMENT_REFUSALS_UNLOGGED._value.get()
    assert unlogged - unlogged_before == BURST - REFUSALS_KEPT
    # Another address is not held back: the platform's good callback goes through.
    good = platform.callback_body(tx)
    await post_known_dossier(hub, code(1))
    async with from_address(OTHER_ADDRESS) as http:
        status, reply, _ = await post(http, url, good)
    assert status == 200, reply
    assert reply["MaLoi"] == "00", reply


async def post_known_dossier(hub: Hub, dossier: str) -> None:
    event = {
        "event_id": f"ev-{dossier}",
        "dossier_code": dossier,
        "kind": "record",
        "status": "payment_requested",
        "occurred_at": "2026-11-20T08:00:00+07:00",
        "record": {"procedure_name": "Cấp giấy phép xây dựng"},
    }
    async with aiohttp.ClientSession() as http:
        status, reply, _ = await post(
            http,
            f"http://127.0.0.1:{hub.port}/api/v1/dossier-events",
            {"events": [event]},
            {"Authorization": f"Bearer {ONESTOP_TOKEN}", "Content-Type": "application/json"},
        )
    assert status == 200, reply
    assert reply["results"][0]["outcome"] == "accepted", reply


# -- the canonical API and the facade ----------------------------------------------------------


@asynccontextmanager
async def limited_hub(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, **http: Any
) -> AsyncIterator[Hub]:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
        overrides["http"].update(http)
        # A slow refill: a test's few dozen requests never earn a token back.
        overrides["http"]["api_limits"] = {
            "per_address_per_s": 0.01,
            "per_source_per_s": 0.01,
            "burst": 5,
        }
        overrides["facade"] = {
            "limits": {"per_address_per_s": 0.01, "per_source_per_s": 0, "burst": 4}
        }
        async with Hub(load_config(None, overrides)) as hub:
            yield hub


@pytest.fixture
async def limited(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[Hub]:
    async with limited_hub(tmp_path, rabbit_url, broker_prefix) as hub:
        yield hub


async def feed(http: aiohttp.ClientSession, hub: Hub) -> tuple[int, str | None]:
    async with http.get(
        f"http://127.0.0.1:{hub.port}/api/v1/portal/dossier-changes",
        headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
    ) as r:
        if r.status == 429:
            assert (await r.json())["error"] == "too_many_requests"
        return r.status, r.headers.get("Retry-After")


async def test_the_canonical_api_answers_429_per_address_then_per_source(limited: Hub) -> None:
    async with aiohttp.ClientSession() as http:
        first = [await feed(http, limited) for _ in range(8)]
    assert [s for s, _ in first] == [200] * 5 + [429] * 3, first
    assert first[-1][1] is not None
    assert int(first[-1][1]) >= 1
    # From another address the address bucket is fresh, but the source spent its burst on
    # the first address: the source is limited wherever it calls from.
    async with from_address(OTHER_ADDRESS) as http:
        status, after = await feed(http, limited)
    assert status == 429
    assert after is not None


async def test_the_facade_answers_429_with_its_own_code_per_address(limited: Hub) -> None:
    url = f"http://127.0.0.1:{limited.port}/dvcqg"
    login = {"username": ONESTOP_USER, "password": ONESTOP_PASSWORD}
    async with aiohttp.ClientSession() as http:
        replies = [await post(http, url, login) for _ in range(6)]
    assert [s for s, _, _ in replies] == [200] * 4 + [429] * 2, replies
    _, reply, after = replies[-1]
    assert reply["error_code"] == "99"
    assert "too many calls from this address" in reply["message"]
    assert after is not None
    async with from_address(OTHER_ADDRESS) as http:
        status, reply, _ = await post(http, url, login)
    assert status == 200, reply


async def test_without_trusted_proxies_a_forwarded_header_buys_no_allowance(limited: Hub) -> None:
    """No `http.trusted_proxies` (the default): X-Forwarded-For is never read, so a client
    writing a new address in it each time still spends its own address's allowance."""
    url = f"http://127.0.0.1:{limited.port}/dvcqg"
    login = {"username": ONESTOP_USER, "password": ONESTOP_PASSWORD}
    async with aiohttp.ClientSession() as http:
        replies = [
            await post(http, url, login, {"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(6)
        ]
    assert [s for s, _, _ in replies] == [200] * 4 + [429] * 2, replies


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    """127.0.0.1 plays the operator's reverse proxy (`http.trusted_proxies`); 127.0.0.2 a
    client that reaches the hub directly and writes its own X-Forwarded-For."""
    login = {"username": ONESTOP_USER, "password": ONESTOP_PASSWORD}

    async def statuses(http: aiohttp.ClientSession, hub: Hub, forwarded: str, n: int) -> list[int]:
        url, headers = f"http://127.0.0.1:{hub.port}/dvcqg", {"X-Forwarded-For": forwarded}
        return [(await post(http, url, login, headers))[0] for _ in range(n)]

    proxy = ["127.0.0.1/32"]
    async with limited_hub(tmp_path, rabbit_url, broker_prefix, trusted_proxies=proxy) as hub:
        async with aiohttp.ClientSession() as http:  # through the proxy
            assert await statuses(http, hub, "203.0.113.5", 5) == [200] * 4 + [429]
            # The client cannot pick another address: the proxy appended the real one.
            assert await statuses(http, hub, "198.51.100.1, 203.0.113.5", 1) == [429]
            assert await statuses(http, hub, "203.0.113.6", 1) == [200]
        async with from_address(OTHER_ADDRESS) as http:  # straight to the hub
            assert await statuses(http, hub, "203.0.113.7", 5) == [200] * 4 + [429]
            assert await statuses(http, hub, "203.0.113.8", 1) == [429]


# -- the ministry push door ----------------------------------------------------------------------


async def test_ministry_pushes_answer_429_per_address_then_per_system(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    sim = CivilStatusSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as one_stop,
        sim,
    ):
        overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
        push = {
            "token_sha256": sha256_hex(PUSH_TOKEN),
            "limits": {"per_address_per_s": 0.01, "per_source_per_s": 0.01, "burst": 3},
        }
        overrides["ministries"]["civil_status"] = civil_section(
            sim.base_url, auth=oauth2(sim.base_url), push=push
        )
        async with Hub(load_config(None, overrides)) as hub:
            url = f"http://127.0.0.1:{hub.port}/api/v1/ministries/civil_status/results"
            good = {"Authorization": f"Bearer {PUSH_TOKEN}"}
            async with aiohttp.ClientSession() as http:
                replies = [await post(http, url, {"ketQua": []}, good) for _ in range(5)]
            statuses = [s for s, _, _ in replies]
            assert 429 not in statuses[:3], replies
            assert statuses[3:] == [429, 429], replies
            assert replies[-1][1]["error"] == "too_many_requests"
            assert replies[-1][2] is not None
            # A wrong token from a fresh address is refused as such: it spends nothing of
            # the system's allowance...
            async with from_address("127.0.0.3") as http:
                status, _, _ = await post(http, url, {}, {"Authorization": "Bearer wrong"})
            assert status == 401
            # ...which the system spent itself: limited from any address.
            async with from_address(OTHER_ADDRESS) as http:
                status, reply, _ = await post(http, url, {"ketQua": []}, good)
            assert status == 429, reply
            assert "system 'civil_status'" in reply["message"]
