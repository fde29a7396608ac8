"""Ministry systems: a third one from files only, bad replies and results, isolation."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hub.auth import sha256_hex
from hub.config import load_config
from hub.dlq import ParkedMessage, ParkingQueue
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.ministry.rest_simulator import CivilStatusSimulator
from sims.ministry.soap_simulator import BusinessRegistrationSimulator, SoapSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.ministry_world import (
    BUSINESS_PROCEDURE,
    CIVIL_PROCEDURE,
    CLIENT_ID,
    CLIENT_SECRET,
    LAND_DIR,
    LAND_PROCEDURE,
    PUSH_TOKEN,
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
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually, hub_cli
from tests.support.parking import wait_parked as parked_until

BUSINESS = "business_registration"
Sections = Callable[[dict[str, str]], dict[str, Any]]  # simulator URLs → ministries section


def civil_pushing(url: str) -> dict[str, Any]:
    """Civil status at `url` (OAuth2), pushing its results with PUSH_TOKEN."""
    return civil_section(url, auth=oauth2(url), push={"token_sha256": sha256_hex(PUSH_TOKEN)})


@pytest.fixture
async def start(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[Callable[..., Any]]:
    """Start the given ministry simulators, then the hub with `sections(urls)`."""
    async with AsyncExitStack() as stack:

        async def _start(sims: dict[str, Any], sections: Sections) -> World:
            portal = await stack.enter_async_context(
                DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
            )
            one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
            for sim in sims.values():
                await stack.enter_async_context(sim)
            overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
            urls = {
                k: s.base_url if isinstance(s, CivilStatusSimulator) else s.url
                for k, s in sims.items()
            }
            overrides["ministries"] = sections(urls)
            # Also as a file, for the tests that run `hub` commands against this hub.
            (tmp_path / "hub.yaml").write_text(yaml.safe_dump(overrides), encoding="utf-8")
            hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
            http = await stack.enter_async_context(aiohttp.ClientSession())
            return World(hub, portal, one_stop, http)

        yield _start


def parking_of(world: World, system: str) -> ParkingQueue:
    assert world.hub.broker is not None
    queues = world.hub.broker.topology.queues(f"ministry.{system}", [])
    return ParkingQueue(world.hub.broker, queues, world.store)


async def parked(world: World, system: str) -> list[ParkedMessage]:
    return await parking_of(world, system).browse()


async def wait_parked(world: World, system: str, n: int) -> list[ParkedMessage]:
    found = await parked_until(parking_of(world, system), n)
    assert len(found) == n, found
    return found


# -- a third system, from a configuration section, a mapping file and a WSDL ----------------


class LandRegistry:
    """The land-registration service's behaviour, written in the test (it is test data)."""

    def __init__(self) -> None:
        self.received: dict[str, dict[str, Any]] = {}
        self.updates: list[dict[str, Any]] = []

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        info = request["ThongTinHoSo"]
        self.received[info["SoHoSo"]] = info
        at = datetime.now(VN_TZ).replace(microsecond=0).isoformat()
        for status in (1, 2):
            n = len(self.updates) + 1
            self.updates.append(
                {"Id": f"DD-{n}", "SoHoSo": info["SoHoSo"], "MaTrangThai": status,
                 "NgayCapNhat": at, "GhiChu": f"bước {status}"}
            )  # fmt: skip
        return {"ThanhCong": True, "MaTiepNhan": f"TN-{len(self.received)}"}

    def lookup(self, request: dict[str, Any]) -> dict[str, Any]:
        after = int(request.get("MocThoiGian") or 0)
        page = self.updates[after : after + int(request["ToiDa"])]
        return {"MocMoi": str(after + len(page)), "CapNhat": page}


async def test_a_third_system_works_from_configuration_mapping_and_wsdl_only(
    start: Callable[..., Any],
) -> None:
    land = LandRegistry()
    sim = SoapSimulator(
        wsdl_path=LAND_DIR / "land_registry.wsdl",
        path="/ws/datdai",
        handlers={"GuiHoSoDatDai": land.submit, "TraCuuCapNhat": land.lookup},
    )
    world: World = await start(
        {"land": sim},
        lambda urls: {
            "land_registry": {
                "kind": "soap",
                "mapping": str(LAND_DIR / "ministry_land_registry.yaml"),
                "procedures": [LAND_PROCEDURE],
                "soap": {"wsdl": str(LAND_DIR / "land_registry.wsdl"), "address": urls["land"]},
                "submit": {"operation": "GuiHoSoDatDai"},
                "poll": {
                    "operation": "TraCuuCapNhat",
                    "params": {"MocThoiGian": "$cursor", "ToiDa": "$limit"},
                    "interval_s": 0.3,
                },
                "delay_tiers_s": [0.3, 0.6],
            }
        },
    )
    dossiers = [code(i) for i in (1, 2)]
    await world.dossiers(dossiers, LAND_PROCEDURE)
    await eventually(lambda: len(world.results_at_one_stop("land_registry")) == 4, 30, "4 results")
    assert set(land.received) == set(dossiers)
    assert land.received[dossiers[0]]["NgayNhan"]  # a date, from the record's received_at
    events = world.results_at_one_stop("land_registry")
    assert sorted(e["status_name"] for e in events) == ["processed"] * 2 + ["processing"] * 2
    await eventually(
        lambda: all(world.portal_steps(d, 9) and world.portal_steps(d, 4) for d in dossiers),
        30,
        "both steps of both dossiers at DVCQG",
    )
    handoffs = await world.store.slices["ministries"].handoffs("land_registry")
    assert sorted(h.reference or "" for h in handoffs) == ["TN-1", "TN-2"]


# -- bad replies to a hand-off ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "code_", "words"),
    [
        ("soap_fault_client", "soap:Client", "SOAP fault"),
        ("invalid_xml", "invalid_xml", "invalid XML"),
        ("entity_reply", "entities", "refused unread"),
        ("oversized_reply", "oversized", "refused unread"),
        ("wsdl_mismatch", "wsdl_mismatch", "does not match the WSDL"),
    ],
)
async def test_a_bad_soap_reply_parks_the_hand_off_with_its_reason(
    start: Callable[..., Any], mode: str, code_: str | None, words: str
) -> None:
    ministry = BusinessRegistrationSimulator(username=WSSE_USER, password=WSSE_PASSWORD)
    ministry.faults.mode = mode  # type: ignore[assignment]
    ministry.faults.oversized_bytes = 300_000
    world: World = await start(
        {"br": ministry},
        lambda urls: {BUSINESS: business_section(urls["br"], max_reply_bytes=100_000)},
    )
    dossier = code(1)
    await world.dossiers([dossier], BUSINESS_PROCEDURE)
    (message,) = await wait_parked(world, BUSINESS, 1)
    assert message.body["dossier_code"] == dossier
    assert words in message.reason, message.reason
    assert message.code == code_
    assert await world.store.slices["ministries"].handed_off(BUSINESS, [dossier]) == set()
    assert world.results_at_one_stop() == []


async def test_an_unreadable_poll_reply_moves_no_cursor_and_forwards_nothing(
    start: Callable[..., Any],
) -> None:
    ministry = BusinessRegistrationSimulator(username=WSSE_USER, password=WSSE_PASSWORD)
    world: World = await start(
        {"br": ministry}, lambda urls: {BUSINESS: business_section(urls["br"])}
    )
    dossier = code(1)
    ministry.decide(dossier, "DA_CAP_GCN")
    ministry.faults.mode = "entity_reply"  # every reply from now on, polls included
    await world.dossiers([dossier], BUSINESS_PROCEDURE)
    await eventually(lambda: ministry.requests["LayDanhSachKetQua"] >= 3, 30, "polls")
    assert await world.store.slices["ministries"].cursor(BUSINESS) in (None, "0")
    assert world.results_at_one_stop() == []
    ministry.faults.mode = "ok"  # the hand-off is retried, the next poll reads the result
    await eventually(lambda: len(world.results_at_one_stop(BUSINESS)) == 1, 30, "the result")


async def test_unknown_and_repeated_results_are_quarantined_or_dropped_and_visible(
    start: Callable[..., Any],
) -> None:
    ministry = BusinessRegistrationSimulator(username=WSSE_USER, password=WSSE_PASSWORD)
    world: World = await start(
        {"br": ministry}, lambda urls: {BUSINESS: business_section(urls["br"])}
    )
    await world.dossiers([code(1)], BUSINESS_PROCEDURE)
    await eventually(lambda: len(world.results_at_one_stop(BUSINESS)) == 1, 30, "the first result")
    ministry.inject_unknown_result("000.00.41.H41-261123-9999")
    ministry.duplicate_next_page()
    await world.dossiers([code(2)], BUSINESS_PROCEDURE)
    await eventually(lambda: len(world.results_at_one_stop(BUSINESS)) == 2, 30, "the second result")

    async def quarantined() -> list[dict[str, Any]]:
        status, body = await world.call("GET", f"/api/v1/ministries/quarantine?system={BUSINESS}")
        assert status == 200, body
        return list(body["quarantine"])

    (entry,) = await eventually(quarantined, 30, "the unknown result quarantined")
    assert (entry["code"], entry["dossier_code"]) == (
        "not_handed_to_system",
        "000.00.41.H41-261123-9999",
    )
    assert entry["item"]["MaHoSo"] == "000.00.41.H41-261123-9999"
    # More polls: the repeated page and the unknown result stay out.
    polls = ministry.requests["LayDanhSachKetQua"]
    await eventually(
        lambda: ministry.requests["LayDanhSachKetQua"] >= polls + 3, 30, "three more polls"
    )
    assert len(world.results_at_one_stop(BUSINESS)) == 2
    assert all(n == 1 for n in world.one_stop.receipts.values())
    assert len(world.portal_steps(code(1), 9)) == 1


async def test_bad_pushes_get_clear_errors_and_good_items_beside_them_go_on(
    start: Callable[..., Any],
) -> None:
    sim = CivilStatusSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    world: World = await start(
        {"cs": sim},
        lambda urls: {"civil_status": civil_pushing(urls["cs"])},
    )
    path = "/api/v1/ministries/civil_status/results"
    await world.dossiers([code(1)], CIVIL_PROCEDURE, status="processing")
    good = {
        "id": "KQ-A", "maHoSo": code(1), "trangThai": "DA_DANG_KY",
        "thoiDiem": "2026-11-23T10:00:00+07:00", "canBo": "Lê Thị Hoa",
        "soDangKy": "12/2026/KS",
        "nguoiYeuCau": {"hoTen": "Trần Văn Bình", "soDinhDanh": "079088001234"},
    }  # fmt: skip
    unknown = {**good, "id": "KQ-B", "maHoSo": code(99)}
    bad_status = {**good, "id": "KQ-C", "trangThai": "CHUA_BIET"}
    no_time = {k: v for k, v in good.items() if k != "thoiDiem"} | {"id": "KQ-D"}
    status, reply = await world.call(
        "POST", path, {"ketQua": [good, unknown, bad_status, no_time, "not an object"]},
        token=PUSH_TOKEN,
    )  # fmt: skip
    assert status == 200, reply
    assert [(i["verdict"], i.get("code")) for i in reply["items"]] == [
        ("accepted", None),
        ("quarantined", "not_handed_to_system"),
        ("quarantined", "unknown_code"),
        ("quarantined", "missing"),
        ("quarantined", "not_an_object"),
    ]
    await eventually(
        lambda: len(world.results_at_one_stop("civil_status")) == 1, 30, "the good one"
    )
    checks = [
        (b"{not json", PUSH_TOKEN, 400),
        (b'{"ketQua": []}', "wrong-token", 401),
        (b'{"ketQua": {"id": 1}}', PUSH_TOKEN, 422),
        (b'{"ketQua": []}' + b" " * 3_000_000, PUSH_TOKEN, 413),
    ]
    for body, token, expected in checks:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with world.http.post(world.base + path, data=body, headers=headers) as r:
            assert r.status == expected, (body[:20], await r.text())
    status, _ = await world.call("POST", "/api/v1/ministries/nowhere/results", {}, PUSH_TOKEN)
    assert status == 404
    status, listed = await world.call("GET", "/api/v1/ministries/quarantine")
    assert status == 200
    assert len(listed["quarantine"]) == 4
    assert "079088001234" not in str(listed)
    assert "Trần Văn Bình" not in str(listed)
    assert len(world.results_at_one_stop("civil_status")) == 1


# -- isolation ----------------------------------------------------------------------------------


def _two_systems(business_extra: dict[str, Any]) -> Sections:
    return lambda urls: {
        BUSINESS: business_section(urls["br"], **business_extra),
        "civil_status": civil_pushing(urls["cs"]),
    }


async def _two_worlds(
    start: Callable[..., Any], business_extra: dict[str, Any], outage: str = "http_503"
) -> tuple[World, BusinessRegistrationSimulator, CivilStatusSimulator]:
    business = BusinessRegistrationSimulator(username=WSSE_USER, password=WSSE_PASSWORD)
    civil = CivilStatusSimulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, push_token=PUSH_TOKEN, push_interval_s=0.1
    )
    business.faults.mode = outage  # type: ignore[assignment]  # down until a test says otherwise
    world: World = await start({"br": business, "cs": civil}, _two_systems(business_extra))
    civil.push_url = world.base + "/api/v1/ministries/civil_status/results"
    return world, business, civil


@pytest.mark.parametrize("outage", ["http_503", "timeout"])
async def test_one_system_down_never_holds_up_another_and_recovery_delivers_everything(
    start: Callable[..., Any], outage: str
) -> None:
    world, business, civil = await _two_worlds(
        start,
        {
            "timeout_s": 0.5,
            "delay_tiers_s": [0.5, 1, 2, 4, 8],
            "breaker": {"failure_threshold": 3, "recovery_s": 0.5},
        },
        outage,
    )
    soap_codes = [code(i) for i in range(1, 11)]
    rest_codes = [code(i) for i in range(11, 21)]
    await world.dossiers(soap_codes, BUSINESS_PROCEDURE)
    await world.dossiers(rest_codes, CIVIL_PROCEDURE)

    # Every civil-status dossier goes out and comes back while business registration is down.
    await eventually(
        lambda: len(world.results_at_one_stop("civil_status")) == 10, 30, "REST results"
    )
    assert business.faulted[outage] > 0
    assert business.accepted == {}
    assert world.results_at_one_stop(BUSINESS) == []

    business.faults.mode = "ok"
    await eventually(lambda: len(world.results_at_one_stop(BUSINESS)) == 10, 30, "SOAP results")
    assert sorted(business.accepted) == soap_codes
    assert await parked(world, BUSINESS) == []
    assert all(n == 1 for n in world.one_stop.receipts.values())
    assert len(civil.accepted) == 10


@pytest.mark.parametrize("outage", ["http_503", "soap_fault_server"])
async def test_hand_offs_wait_out_an_outage_longer_than_every_tier_and_park_nothing(
    start: Callable[..., Any], outage: str
) -> None:
    tiers = [0.2, 0.4]
    world, business, _ = await _two_worlds(start, {"delay_tiers_s": tiers}, outage)
    soap_codes = [code(i) for i in range(1, 4)]
    await world.dossiers(soap_codes, BUSINESS_PROCEDURE)
    gate = world.hub.consumers[f"ministry.{BUSINESS}"].gate
    await eventually(
        lambda: (
            gate.outage is not None
            and time.time() - gate.outage.started_at > 3 * sum(tiers)
            and gate.outage.probes >= 2
        ),
        30,
        "an outage longer than the tiers",
    )
    assert await parked(world, BUSINESS) == []
    assert business.accepted == {}
    business.faults.mode = "ok"
    await eventually(lambda: len(world.results_at_one_stop(BUSINESS)) == 3, 30, "the results")
    assert sorted(business.accepted) == soap_codes
    assert await parked(world, BUSINESS) == []


async def test_refused_hand_offs_are_parked_and_replayed_once_from_the_cli(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    world, business, _ = await _two_worlds(
        start, {"delay_tiers_s": [0.2, 0.4]}, "soap_fault_client"
    )
    soap_codes = [code(i) for i in range(1, 4)]
    await world.dossiers(soap_codes, BUSINESS_PROCEDURE)
    found = await wait_parked(world, BUSINESS, 3)
    assert sorted(m.body["dossier_code"] for m in found) == soap_codes
    assert all("SOAP fault" in m.reason and m.code == "soap:Client" for m in found)

    business.faults.mode = "ok"
    replay = await hub_cli(
        "dlq", "replay", f"ministry.{BUSINESS}", "--all", "-c", str(tmp_path / "hub.yaml")
    )
    assert replay.returncode == 0, replay.stderr
    assert "replayed 3 message" in replay.stdout
    await eventually(lambda: len(world.results_at_one_stop(BUSINESS)) == 3, 30, "the results")
    assert sorted(business.accepted) == soap_codes


async def test_a_result_id_reused_for_another_dossier_is_quarantined_not_dropped(
    start: Callable[..., Any],
) -> None:
    sim = CivilStatusSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    world: World = await start(
        {"cs": sim},
        lambda urls: {"civil_status": civil_pushing(urls["cs"])},
    )
    path = "/api/v1/ministries/civil_status/results"
    await world.dossiers([code(1), code(2)], CIVIL_PROCEDURE, status="processing")
    first = {"id": "KQ-1", "maHoSo": code(1), "trangThai": "DA_DANG_KY",
             "thoiDiem": "2026-11-23T10:00:00+07:00"}  # fmt: skip
    reused = {**first, "maHoSo": code(2)}  # the ministry's numbering started again
    status, reply = await world.call("POST", path, {"ketQua": [first]}, token=PUSH_TOKEN)
    assert reply["accepted"] == 1
    status, reply = await world.call("POST", path, {"ketQua": [first, reused]}, token=PUSH_TOKEN)
    assert status == 200, reply
    assert [(i["verdict"], i.get("code")) for i in reply["items"]] == [
        ("duplicate", None),
        ("quarantined", "conflicting_id"),
    ]
    assert code(1) in reply["items"][1]["reason"]
    status, listed = await world.call("GET", "/api/v1/ministries/quarantine")
    assert [q["dossier_code"] for q in listed["quarantine"]] == [code(2)]
