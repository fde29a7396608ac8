"""Ministry systems over REST: results pushed and polled, each kind of authentication."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.auth import sha256_hex
from hub.config import load_config
from hub.runtime import Hub
from sims.ministry.rest_simulator import CivilStatusSimulator, hmac_headers
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.ministry_world import (
    CIVIL_PROCEDURE,
    CLIENT_ID,
    CLIENT_SECRET,
    HMAC_AUTH,
    HMAC_KEY,
    HMAC_SECRET,
    PUSH_TOKEN,
    REST_POLL,
    SUB_TOKEN,
    World,
    base_overrides,
    civil_section,
    code,
    oauth2,
)
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually

SYSTEM = "civil_status"
PUSH_PATH = f"/api/v1/ministries/{SYSTEM}/results"
Section = Callable[[str], dict[str, Any]]  # the ministry section, given the simulator's URL
Start = Callable[[CivilStatusSimulator, Section], Any]


@pytest.fixture
async def start(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[Callable[[CivilStatusSimulator, Section], Any]]:
    """Start a civil-status simulator, then the hub configured for it; returns the World."""
    async with AsyncExitStack() as stack:

        async def _start(sim: CivilStatusSimulator, section: Section) -> World:
            portal = await stack.enter_async_context(
                DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
            )
            one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
            await stack.enter_async_context(sim)
            overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
            overrides["ministries"][SYSTEM] = civil_section(sim.base_url, **section(sim.base_url))
            hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
            http = await stack.enter_async_context(aiohttp.ClientSession())
            world = World(hub, portal, one_stop, http)
            if sim.push_token is not None or sim.push_hmac_secret is not None:
                sim.push_url = world.base + PUSH_PATH
            return world

        yield _start


async def _round_trip(
    world: World, sim: CivilStatusSimulator, n: int = 3, first: int = 1
) -> list[str]:
    """`n` dossiers handed off; each result reaches the one-stop and DVCQG exactly once."""
    dossiers = [code(i) for i in range(first, first + n)]
    await world.dossiers(dossiers, CIVIL_PROCEDURE)
    await eventually(lambda: set(dossiers) <= set(sim.accepted), 30, "the hand-offs")
    assert sorted(s["maHoSo"] for s in sim.submissions if s["maHoSo"] in dossiers) == dossiers
    assert sim.submissions[0]["nguoiYeuCau"]["soDinhDanh"] == "001099012345"

    def arrived() -> list[dict[str, Any]]:
        return [e for e in world.results_at_one_stop(SYSTEM) if e["dossier_code"] in dossiers]

    await eventually(lambda: len(arrived()) == n, 30, "the results")
    await eventually(
        lambda: all(world.portal_steps(d, 9) for d in dossiers), 30, "the steps at DVCQG"
    )
    events = arrived()
    assert sorted(e["dossier_code"] for e in events) == dossiers
    assert all(world.one_stop.receipts[e["event_id"]] == 1 for e in events)
    assert all(e["result"]["result_number"] for e in events)
    assert all(len(world.portal_steps(d, 9)) == 1 for d in dossiers)
    return dossiers


async def test_rest_hand_off_with_oauth2_basic_and_results_pushed_with_a_token(
    start: Start,
) -> None:
    sim = CivilStatusSimulator(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_auth="basic",
        push_token=PUSH_TOKEN,
        push_interval_s=0.1,
    )
    world: World = await start(
        sim,
        lambda url: {
            "auth": oauth2(url, "basic"),
            "push": {"token_sha256": sha256_hex(PUSH_TOKEN)},
        },
    )
    await _round_trip(world, sim)
    assert sim.tokens_issued >= 1
    assert sim.pushes
    assert all(p.status == 200 for p in sim.pushes)
    # The same results pushed again (a ministry retrying after a lost reply) are duplicates.
    pushed = sim.results[:3]
    status, reply = await world.call("POST", PUSH_PATH, {"ketQua": pushed}, token=PUSH_TOKEN)
    assert status == 200, reply
    assert (reply["accepted"], reply["duplicate"]) == (0, 3)
    assert len(world.results_at_one_stop(SYSTEM)) == 3
    # The dashboard's ministry page: the system, its circuit and its hand-offs.
    assert world.hub.board is not None
    page = await world.hub.board.flow("ministries")
    tables = {t["key"]: t["rows"] for t in page["tables"]}
    assert [r["system"] for r in tables["systems"]] == [f"ministry.{SYSTEM}"]
    assert [(c["name"], c["circuit"], c["state"]) for c in page["connectors"]] == [
        (f"ministry.{SYSTEM}", "closed", "up")
    ]
    assert {r["dossier_code"] for r in tables["handoffs"]} == set(sim.accepted)


async def test_rest_hand_off_with_oauth2_form_renews_an_expired_token_and_polls_results(
    start: Start,
) -> None:
    sim = CivilStatusSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, client_auth="form")
    world: World = await start(sim, lambda url: {"auth": oauth2(url, "form"), "poll": REST_POLL})
    await _round_trip(world, sim, n=1)
    sim.faults.mode = "expire_tokens"  # the token the hub holds is now refused, once
    await _round_trip(world, sim, n=24, first=2)  # more than one page (page_size 20)
    assert sim.tokens_issued >= 2  # the refused token was replaced
    assert sim.auth_failures["invalid_token"] >= 1
    status, systems = await world.call("GET", "/api/v1/ministries")
    assert status == 200
    (described,) = systems["systems"]
    assert described["cursor"] == "25"
    assert described["poll"] is True


async def test_rest_hand_off_signed_with_hmac_and_signed_pushes(start: Start) -> None:
    sim = CivilStatusSimulator(
        auth="hmac",
        hmac_key_id=HMAC_KEY,
        hmac_secret=HMAC_SECRET,
        push_hmac_key_id=HMAC_KEY,
        push_hmac_secret=HMAC_SECRET,
        push_interval_s=0.1,
    )
    world: World = await start(sim, lambda url: {"auth": HMAC_AUTH, "push": {"hmac": HMAC_AUTH}})
    await _round_trip(world, sim, n=2)
    assert not sim.auth_failures
    # A push with a wrong signature is refused and changes nothing.
    body = b'{"ketQua": []}'
    headers = hmac_headers("POST", PUSH_PATH, body, HMAC_KEY, "not-the-secret")
    async with world.http.post(world.base + PUSH_PATH, data=body, headers=headers) as r:
        assert r.status == 401


async def test_rest_hand_off_with_a_static_bearer_token_and_extra_headers(start: Start) -> None:
    sim = CivilStatusSimulator(
        auth="bearer",
        bearer_token="token-tinh",
        required_headers={"X-Ma-Don-Vi": "000.00.00.H41"},
        push_token=PUSH_TOKEN,
        push_interval_s=0.1,
    )
    world: World = await start(
        sim,
        lambda url: {
            "auth": {
                "kind": "bearer",
                "token": "token-tinh",
                "headers": {"X-Ma-Don-Vi": "000.00.00.H41"},
            },
            "push": {"token_sha256": sha256_hex(PUSH_TOKEN)},
        },
    )
    await _round_trip(world, sim, n=1)
    assert not sim.auth_failures
