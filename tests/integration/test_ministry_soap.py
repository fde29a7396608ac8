"""Ministry systems over SOAP: hand-off, polled results, the third system, bad replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from hub.config import load_config
from hub.runtime import Hub
from sims.ministry.soap_simulator import BusinessRegistrationSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.ministry_world import (
    BUSINESS_PROCEDURE,
    SUB_TOKEN,
    WSSE_PASSWORD,
    WSSE_USER,
    World,
    base_overrides,
    business_section,
    code,
)
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually

SYSTEM = "business_registration"


@pytest.fixture
async def soap_world(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[tuple[World, BusinessRegistrationSimulator]]:
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as one_stop,
        BusinessRegistrationSimulator(username=WSSE_USER, password=WSSE_PASSWORD) as ministry,
    ):
        overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
        overrides["ministries"][SYSTEM] = business_section(ministry.url)
        async with Hub(load_config(None, overrides)) as hub, aiohttp.ClientSession() as http:
            yield World(hub, portal, one_stop, http), ministry


async def test_a_dossier_handed_off_over_soap_comes_back_once_to_the_one_stop_and_dvcqg(
    soap_world: tuple[World, BusinessRegistrationSimulator],
) -> None:
    world, ministry = soap_world
    dossier = code(1)
    await world.dossiers([dossier], BUSINESS_PROCEDURE)

    await eventually(lambda: dossier in ministry.accepted, 30, "the hand-off")
    (submitted,) = ministry.submissions
    assert submitted["MaHoSo"] == dossier
    assert submitted["MaTTHC"] == BUSINESS_PROCEDURE
    assert submitted["NguoiNop"] == "Nguyễn Văn An"

    await eventually(lambda: len(world.results_at_one_stop(SYSTEM)) == 1, 30, "the result")
    await eventually(lambda: bool(world.portal_steps(dossier, 9)), 30, "the step at DVCQG")
    (event,) = world.results_at_one_stop(SYSTEM)
    assert event["dossier_code"] == dossier
    assert event["status_name"] == "processed"
    assert event["result"]["result_number"].startswith("GCN-")
    assert world.one_stop.receipts[event["event_id"]] == 1
    # DVCQG holds the step once, and the dossier's newest status is the ministry's.
    assert len(world.portal_steps(dossier, 9)) == 1
    await eventually(
        lambda: world.portal.dossiers.get(dossier, {}).get("TrangThaiHoSo") in (9, "9"),
        30,
        "the dossier's status at DVCQG",
    )
    # More polls and more dossier changes send nothing again.
    polls = ministry.requests["LayDanhSachKetQua"]
    await eventually(lambda: ministry.requests["LayDanhSachKetQua"] >= polls + 3, 30, "more polls")
    assert len(world.results_at_one_stop(SYSTEM)) == 1
    assert len(ministry.submissions) == 1
    view = await world.store.dossier(dossier)
    assert [h.source_system for h in view.history] == ["onestop", "ministry.business_registration"]
    connectors = [d.connector for d in view.deliveries]
    assert "ministry.business_registration" in connectors
    assert "subscriber.one_stop" in connectors
    status, handoffs = await world.call("GET", f"/api/v1/ministries/{SYSTEM}/handoffs")
    assert status == 200
    assert handoffs["handoffs"][0]["reference"] == ministry.accepted[dossier]
