"""Mappings that cannot crash a connector (#19), over real SOAP against a service written for
these tests (`cadastre_service.py`, hand-written WSDL and replies under tests/data), and a push
over real HTTP.

* a time cursor goes on the wire as an xsd:dateTime (with a T), the first one included;
* a service without a next cursor is read from the newest result's time (`max_by`), which
  works because the hub gives JMESPath plain JSON (zeep's datetimes become ISO 8601 text);
* a reply the mapping cannot read is quarantined with its reason, counted, shown by the
  ministries API; the poll API answers, the schedule goes on, nothing logs a crash;
* a result the mapping cannot read is quarantined on its own, the rest of its page goes on.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from hub.auth import sha256_hex
from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.cadastre_service import XSD_DATETIME, CadastreService
from tests.integration.ministry_world import (
    FAST,
    PUSH_TOKEN,
    SUB_TOKEN,
    World,
    base_overrides,
    civil_section,
    code,
    oauth2,
)
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually

SYSTEM = "cadastre"
PROCEDURE = "1.004227"
DATA = Path(__file__).resolve().parents[1] / "data" / "ministry_cadastre"
MAPPING = (DATA / "ministry_cadastre.yaml").read_text(encoding="utf-8")
NEWEST = MAPPING.replace("cursor: thoiDiemTiepTheo", 'cursor: "max_by(ketQua, &thoiDiem).thoiDiem"')
CIVIL = (DATA.parents[2] / "mappings" / "ministry_civil_status.yaml").read_text(encoding="utf-8")
Start = Callable[..., Any]


def cadastre_section(service: CadastreService, mapping: Path, **poll: Any) -> dict[str, Any]:
    return {
        "kind": "soap",
        "mapping": str(mapping),
        "procedures": [PROCEDURE],
        "soap": {"wsdl": service.wsdl_url, "address": service.url},
        "submit": {"operation": "guiHoSo"},
        "poll": {
            "operation": "layKetQua",
            "params": {"tuThoiDiem": "$cursor", "soLuong": "$limit"},
            "interval_s": 0.3,
            "page_size": 3,
            **poll,
        },
        **FAST,
    }


@pytest.fixture
async def start(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[Callable[..., Any]]:
    """Start the cadastre service, then the hub with its mapping (`mapping_text`)."""
    async with AsyncExitStack() as stack:

        async def _start(service: CadastreService, mapping_text: str, **poll: Any) -> World:
            portal = await stack.enter_async_context(
                DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
            )
            one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
            await stack.enter_async_context(service)
            mapping = tmp_path / "ministry_cadastre.yaml"
            mapping.write_text(mapping_text, encoding="utf-8")
            overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
            overrides["ministries"] = {SYSTEM: cadastre_section(service, mapping, **poll)}
            hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
            http = await stack.enter_async_context(aiohttp.ClientSession())
            return World(hub, portal, one_stop, http)

        yield _start


async def mapping_errors(world: World, at: str) -> float:
    """hub_ministry_mapping_errors_total{system="cadastre", at=...}, read from /metrics."""
    async with world.http.get(world.base + "/metrics") as reply:
        text = await reply.text()
    pattern = rf'hub_ministry_mapping_errors_total{{at="{re.escape(at)}",system="{SYSTEM}"}} (\S+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def accepted(world: World) -> list[dict[str, Any]]:
    return world.results_at_one_stop(SYSTEM)


async def test_a_time_cursor_read_from_a_reply_goes_on_the_wire_as_an_xsd_datetime(
    start: Start,
) -> None:
    service = CadastreService(next_cursor=True)
    world: World = await start(service, MAPPING)
    dossiers = [code(1), code(2)]
    await world.dossiers(dossiers, PROCEDURE)
    await eventually(lambda: len(accepted(world)) == 4, 30, "the four results")
    service.add(dossiers[0], 3, noiDung="trả lại để bổ sung")
    await eventually(lambda: len(accepted(world)) == 5, 30, "a result after the saved cursor")

    assert service.faults == []
    written = [p for p in service.polls if p is not None]
    assert len(set(written)) >= 2
    assert all(XSD_DATETIME.match(p) for p in written), written
    cursor = await world.store.slices["ministries"].cursor(SYSTEM)
    assert cursor == service.results[-1].thoiDiem.isoformat()
    await eventually(lambda: service.polls[-1] == cursor, 30, "a poll from the saved cursor")
    assert service.received[dossiers[0]]["ngayNhan"].count("T") == 1  # the record's time too


async def test_the_first_cursor_is_written_as_the_wsdl_type_too(start: Start) -> None:
    service = CadastreService(next_cursor=True)
    world: World = await start(service, MAPPING, first_cursor="2020-01-01 00:00:00+07:00")
    await world.dossiers([code(1)], PROCEDURE)
    await eventually(lambda: len(accepted(world)) == 2, 30, "the results")
    assert service.faults == []
    assert service.polls[0] == "2020-01-01T00:00:00+07:00"


async def test_a_service_without_a_next_cursor_is_read_from_its_newest_result(
    start: Start,
) -> None:
    service = CadastreService(next_cursor=False)
    world: World = await start(service, NEWEST)
    dossiers = [code(1), code(2), code(3)]
    await world.dossiers(dossiers, PROCEDURE)
    await eventually(lambda: len(accepted(world)) == 6, 30, "the six results")
    service.add(dossiers[1], 3)
    await eventually(lambda: len(accepted(world)) == 7, 30, "a result after the newest one")

    assert service.faults == []
    assert all(p is None or XSD_DATETIME.match(p) for p in service.polls)
    assert set(service.served.values()) == {1}  # each result read once: nothing re-read
    assert sorted(e["status_name"] for e in accepted(world)).count("processed") == 3


async def test_a_reply_the_mapping_cannot_read_is_quarantined_counted_and_shown(
    start: Start,
) -> None:
    service = CadastreService(next_cursor=False)
    world: World = await start(service, NEWEST, interval_s=0.2)
    await world.dossiers([code(1)], PROCEDURE)
    await eventually(lambda: len(accepted(world)) == 2, 30, "the first results")
    before = await mapping_errors(world, "results.cursor")

    with structlog.testing.capture_logs() as logs:
        # A result cut short after its status: the WSDL requires the rest, zeep's strict
        # mode lets a missing tail through, and max_by(ketQua, &thoiDiem) cannot order it.
        broken = service.add(code(1), 3, omit={"thoiDiem", "noiDung", "loaiBienDong"})
        status, report = await world.call("POST", f"/api/v1/ministries/{SYSTEM}/poll")
        assert status == 502, report
        assert report["error"].startswith("results.cursor: max_by(ketQua, &thoiDiem).thoiDiem")
        assert report["results"] == {"quarantined": 1}

        status, listed = await world.call("GET", "/api/v1/ministries")
        assert status == 200
        (system,) = listed["systems"]
        assert system["last_poll"]["error"] == report["error"]

        status, held = await world.call("GET", f"/api/v1/ministries/quarantine?system={SYSTEM}")
        assert status == 200
        (entry,) = held["quarantine"]
        assert (entry["via"], entry["code"]) == ("poll", "mapping_error")
        assert entry["reason"] == report["error"]
        assert entry["item"]["ketQua"][0]["ma"] == broken.ma
        for _ in range(100):  # the schedule goes on polling, and quarantines it again
            if await mapping_errors(world, "results.cursor") >= before + 3:
                break
            await asyncio.sleep(0.1)
        assert await mapping_errors(world, "results.cursor") >= before + 3
        status, held = await world.call("GET", f"/api/v1/ministries/quarantine?system={SYSTEM}")
        assert [q["seen"] >= 3 for q in held["quarantine"]] == [True]  # the same reply again

        broken.omit.clear()  # the ministry completes it: the poll goes on from where it was
        await eventually(lambda: len(accepted(world)) == 3, 30, "the corrected result")

    assert [e for e in logs if e["event"] == "ministry_poll_crashed"] == []
    assert any(e["event"] == "ministry_reply_quarantined" for e in logs)
    assert await world.store.slices["ministries"].cursor(SYSTEM) == broken.thoiDiem.isoformat()


async def test_a_result_the_mapping_cannot_read_is_quarantined_and_its_page_goes_on(
    start: Start,
) -> None:
    # loaiBienDong, the last element, is required by the WSDL; zeep lets it be left out, and
    # join() then has a null to join. The broken result is in the middle of the first page.
    steps = [(1, set()), (3, {"loaiBienDong"}), (2, set())]
    service = CadastreService(next_cursor=True, steps=steps)
    with structlog.testing.capture_logs() as logs:
        world: World = await start(service, MAPPING)
        before = await mapping_errors(world, "results.fields.content")
        await world.dossiers([code(1)], PROCEDURE)
        await eventually(lambda: len(accepted(world)) == 2, 30, "the results beside it")
        status, held = await world.call("GET", f"/api/v1/ministries/quarantine?system={SYSTEM}")

    first, broken, last = service.results
    assert status == 200
    (entry,) = held["quarantine"]
    assert (entry["via"], entry["code"], entry["dossier_code"]) == ("poll", "mapping_error", None)
    assert entry["reason"].startswith(
        "results.fields.content: content: join(': ', [loaiBienDong, noiDung || '']) cannot be "
        "read here: "
    )
    assert entry["item"]["ma"] == broken.ma
    assert sorted(e["result"]["result_id"] for e in accepted(world)) == [first.ma, last.ma]
    assert await mapping_errors(world, "results.fields.content") == before + 1
    assert await world.store.slices["ministries"].cursor(SYSTEM) == last.thoiDiem.isoformat()
    assert [e for e in logs if e["event"] == "ministry_poll_crashed"] == []


async def test_a_pushed_body_the_mapping_cannot_read_is_refused_and_kept(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    """The same over a push, HTTP from the system to the hub: 422 with the reason, never 500."""
    mapping = tmp_path / "civil.yaml"
    text = CIVIL.replace("push_items: ketQua", 'push_items: "sort_by(ketQua, &thoiDiem)"')
    mapping.write_text(text.split("\nsamples:")[0], encoding="utf-8")
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
        overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
        section = civil_section(
            "http://127.0.0.1:9", oauth2("http://127.0.0.1:9"),
            push={"token_sha256": sha256_hex(PUSH_TOKEN)},
        )  # fmt: skip
        overrides["ministries"] = {"civil_status": {**section, "mapping": str(mapping)}}
        hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        world = World(hub, portal, one_stop, http)
        body = {"ketQua": [{"id": "KQ-1", "maHoSo": code(1), "trangThai": "DA_DANG_KY"}]}
        status, reply = await world.call(
            "POST", "/api/v1/ministries/civil_status/results", body, token=PUSH_TOKEN
        )
        assert status == 422, reply
        assert reply["error"] == "mapping_error"
        assert reply["message"].startswith("results.push_items: sort_by(ketQua, &thoiDiem)")
        status, held = await world.call("GET", "/api/v1/ministries/quarantine")
        (entry,) = held["quarantine"]
        assert (entry["via"], entry["code"]) == ("push", "mapping_error")
