"""The SOAP simulators (generic core and business registration), exercised with a real zeep.

No mocks: each test starts a simulator on 127.0.0.1 and calls it with zeep's AsyncClient, built
from the WSDL the simulator serves or from the file the hub ships, so what the hub's SOAP
connector will see (replies, SOAP faults, broken replies, WS-Security refusals) is checked
here first. Raw HTTP (httpx) is used only where zeep would hide the wire.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from zeep import AsyncClient
from zeep.exceptions import EntitiesForbidden, Fault, TransportError, XMLParseError
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport
from zeep.wsse.username import UsernameToken

from sims.ministry.soap_simulator import (
    UNREADABLE,
    BusinessRegistrationSimulator,
    Handler,
    SoapFault,
    SoapSimulator,
)
from sims.ministry.soap_xml import body_payload, response_element

ROOT = Path(__file__).resolve().parents[2]
DKKD_WSDL = ROOT / "mappings/ministries/business_registration.wsdl"
LAND_WSDL = ROOT / "tests/data/ministry_land/land_registry.wsdl"
DKKD_NS = "urn:vn:dkkd:lienthong:v1"
DKKD_BINDING = f"{{{DKKD_NS}}}DangKyKinhDoanhBinding"
USER, PASSWORD = "hub-dkkd", "mat-khau-thu"
CODE = "000.00.41.H41-260314-0001"
VN = timezone(timedelta(hours=7))
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SUBMIT = (
    f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><NopHoSo xmlns="{DKKD_NS}">'
    "<MaHoSo>HS-9</MaHoSo><MaTTHC>1</MaTTHC></NopHoSo></soap:Body></soap:Envelope>"
).encode()


# -- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[BusinessRegistrationSimulator]:
    async with BusinessRegistrationSimulator(username=USER, password=PASSWORD) as server:
        yield server


@pytest.fixture
async def open_sim() -> AsyncIterator[BusinessRegistrationSimulator]:
    """A simulator without WS-Security, for raw requests."""
    async with BusinessRegistrationSimulator() as server:
        yield server


Sim = BusinessRegistrationSimulator


async def zeep_client(
    wsdl: str | Path, *, wsse: UsernameToken | None = None, timeout_s: float = 5.0
) -> AsyncClient:
    """zeep loads a WSDL synchronously, so a URL served on this loop is read from a thread."""
    transport = AsyncTransport(timeout=timeout_s, operation_timeout=timeout_s)  # type: ignore[no-untyped-call]
    return await asyncio.to_thread(AsyncClient, str(wsdl), transport=transport, wsse=wsse)


def bound(client: AsyncClient, binding: str, address: str) -> AsyncServiceProxy:
    """An async proxy at `address`: zeep 4.3's AsyncClient.create_service returns a sync one."""
    return AsyncServiceProxy(client, client.wsdl.bindings[binding], address=address)  # type: ignore[no-untyped-call]


def token(username: str, password: str, *, digest: bool = False) -> UsernameToken:
    return UsernameToken(username, password, use_digest=digest)  # type: ignore[no-untyped-call]


async def close(client: AsyncClient) -> None:
    await client.transport.aclose()
    client.transport.wsdl_client.close()


@pytest.fixture
async def dkkd(sim: BusinessRegistrationSimulator) -> AsyncIterator[Any]:
    """The service proxy of a client built from the served WSDL, with the right credentials."""
    client = await zeep_client(sim.wsdl_url, wsse=token(USER, PASSWORD))
    yield client.service
    await close(client)


async def submit(service: Any, code: str = CODE, **extra: Any) -> Any:
    return await service.NopHoSo(MaHoSo=code, MaTTHC="1.001612", **extra)


def items(reply: Any) -> list[Any]:
    return [] if reply.DanhSachKetQua is None else list(reply.DanhSachKetQua.KetQua)


async def raw_post(url: str, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    async with httpx.AsyncClient(timeout=5.0) as http:
        return await http.post(url, content=body, headers=headers)


def soap(body: str) -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{body}</soap:Body></soap:Envelope>'
    ).encode()


def fault_of(response: httpx.Response) -> tuple[str | None, str | None]:
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, response.text
    return fault.findtext("faultcode"), fault.findtext("faultstring")


# -- the WSDL -------------------------------------------------------------------------------------


async def test_serves_its_wsdl_with_its_own_address(sim: BusinessRegistrationSimulator) -> None:
    assert sim.url == f"{sim.base_url}/ws/dkkd"
    async with httpx.AsyncClient() as http:
        served = await http.get(sim.wsdl_url)
        plain_get = await http.get(sim.url)
    assert served.status_code == 200
    locations = etree.fromstring(served.content).xpath(
        "//soap:address/@location", namespaces={"soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
    )
    assert locations == [sim.url]
    assert b"127.0.0.1:8089" in DKKD_WSDL.read_bytes()
    assert plain_get.status_code == 405


async def test_client_from_the_served_wsdl_calls_the_simulator(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    assert dkkd._binding_options["address"] == sim.url
    reply = await submit(dkkd)
    assert (reply.MaLoi, reply.MaBienNhan) == ("00", "BN-000001")


async def test_client_from_the_file_with_an_address_override(
    sim: BusinessRegistrationSimulator,
) -> None:
    client = await zeep_client(DKKD_WSDL, wsse=token(USER, PASSWORD))
    try:
        service = bound(client, DKKD_BINDING, sim.url)
        reply = await submit(service)
        listing = await service.LayDanhSachKetQua(SoLuong=10)
    finally:
        await close(client)
    assert reply.MaLoi == "00"
    assert [item.MaHoSo for item in items(listing)] == [CODE]


# -- NopHoSo --------------------------------------------------------------------------------------


async def test_resubmitting_a_dossier_is_idempotent(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    received = datetime(2026, 3, 14, 8, 30, tzinfo=VN)
    first = await submit(dkkd, TenDoanhNghiep="Công ty TNHH Hoa Sen", NgayTiepNhan=received)
    again = await submit(dkkd, TenDoanhNghiep="Công ty TNHH Hoa Sen", NgayTiepNhan=received)
    other = await submit(dkkd, "000.00.41.H41-260314-0002")
    assert first.MaLoi == again.MaLoi == "00"
    assert first.MaBienNhan == again.MaBienNhan == "BN-000001"
    assert other.MaBienNhan == "BN-000002"
    assert len(sim.submissions) == 3
    assert sim.submissions[0] == {
        "MaHoSo": CODE,
        "MaTTHC": "1.001612",
        "TenDoanhNghiep": "Công ty TNHH Hoa Sen",
        "NgayTiepNhan": "2026-03-14T08:30:00+07:00",
    }
    assert sim.accepted == {CODE: "BN-000001", "000.00.41.H41-260314-0002": "BN-000002"}
    assert [result["MaHoSo"] for result in sim.results] == [CODE, "000.00.41.H41-260314-0002"]
    assert sim.requests["NopHoSo"] == 3


async def test_a_refused_dossier_gets_an_error_code_and_no_result(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    sim.refuse(CODE, "Mã thủ tục không đúng")
    reply = await submit(dkkd)
    assert (reply.MaLoi, reply.MoTaLoi, reply.MaBienNhan) == ("02", "Mã thủ tục không đúng", None)
    assert sim.accepted == {}
    assert sim.results == []


# -- LayDanhSachKetQua ----------------------------------------------------------------------------


async def test_results_page_by_cursor(sim: BusinessRegistrationSimulator, dkkd: Any) -> None:
    sim.results_per_dossier = 2
    codes = [f"000.00.41.H41-260314-000{n}" for n in (1, 2, 3)]
    for code in codes:
        await submit(dkkd, code)

    first = await dkkd.LayDanhSachKetQua(SoLuong=4)
    second = await dkkd.LayDanhSachKetQua(TuMoc=first.MocTiepTheo, SoLuong=4)
    empty = await dkkd.LayDanhSachKetQua(TuMoc=second.MocTiepTheo, SoLuong=4)

    assert (first.MocTiepTheo, second.MocTiepTheo, empty.MocTiepTheo) == ("4", "6", "6")
    results = items(first) + items(second)
    assert items(empty) == []
    assert [r.MaKetQua for r in results] == [f"KQ-{n}" for n in range(1, 7)]
    assert [(r.MaHoSo, r.TrangThai) for r in results] == [
        (code, status) for code in codes for status in ("DANG_XU_LY", "DA_CAP_GCN")
    ]
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d", r.ThoiGian) for r in results)
    granted = [r for r in results if r.TrangThai == "DA_CAP_GCN"]
    assert [r.MaSoDoanhNghiep for r in granted] == ["0312345678", "0312345679", "0312345680"]
    assert all(r.MaSoDoanhNghiep is None for r in results if r.TrangThai == "DANG_XU_LY")
    assert sim.results_served == 6


async def test_cursor_from_the_start_when_empty_and_bad_page_sizes_are_client_faults(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    nothing = await dkkd.LayDanhSachKetQua(TuMoc="", SoLuong=1)
    assert (nothing.MaLoi, nothing.MocTiepTheo, nothing.DanhSachKetQua) == ("00", "0", None)
    for size in (0, 501):
        with pytest.raises(Fault) as caught:
            await dkkd.LayDanhSachKetQua(SoLuong=size)
        assert caught.value.code == "soap:Client"
    with pytest.raises(Fault):
        await dkkd.LayDanhSachKetQua(TuMoc="KQ-3", SoLuong=5)


async def test_decide_sets_the_outcome_before_or_after_submission(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    sim.decide(CODE, "TU_CHOI")
    await submit(dkkd)
    sim.decide(CODE, "YEU_CAU_BO_SUNG")
    listing = await dkkd.LayDanhSachKetQua(SoLuong=10)
    assert [(r.MaHoSo, r.TrangThai) for r in items(listing)] == [
        (CODE, "TU_CHOI"),
        (CODE, "YEU_CAU_BO_SUNG"),
    ]
    assert items(listing)[0].MaSoDoanhNghiep is None
    with pytest.raises(ValueError, match="status"):
        sim.decide(CODE, "DA_XONG")


async def test_unknown_result_is_listed_for_a_code_never_submitted(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    await submit(dkkd)
    injected = sim.inject_unknown_result("KHONG-CO-HO-SO-NAY")
    listing = await dkkd.LayDanhSachKetQua(SoLuong=10)
    assert [r.MaHoSo for r in items(listing)] == [CODE, "KHONG-CO-HO-SO-NAY"]
    assert items(listing)[1].MaKetQua == injected["MaKetQua"] == "KQ-2"
    assert "KHONG-CO-HO-SO-NAY" not in sim.accepted
    with pytest.raises(ValueError, match="submitted"):
        sim.inject_unknown_result(CODE)


async def test_duplicate_next_page_repeats_the_previous_items(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    await submit(dkkd, "HS-1")
    first = await dkkd.LayDanhSachKetQua(SoLuong=5)
    await dkkd.LayDanhSachKetQua(TuMoc=first.MocTiepTheo, SoLuong=5)  # nothing new
    await submit(dkkd, "HS-2")
    sim.duplicate_next_page()
    repeated = await dkkd.LayDanhSachKetQua(TuMoc=first.MocTiepTheo, SoLuong=5)
    after = await dkkd.LayDanhSachKetQua(TuMoc=repeated.MocTiepTheo, SoLuong=5)
    assert [r.MaKetQua for r in items(first)] == ["KQ-1"]
    assert [r.MaKetQua for r in items(repeated)] == ["KQ-1", "KQ-2"]
    assert repeated.MocTiepTheo == "2"
    assert items(after) == []


# -- WS-Security ----------------------------------------------------------------------------------


@pytest.mark.parametrize("wsse", [token(USER, "sai-mat-khau"), token("ai", PASSWORD), None])
async def test_wrong_or_missing_credentials_are_refused(
    sim: BusinessRegistrationSimulator, wsse: UsernameToken | None
) -> None:
    client = await zeep_client(sim.wsdl_url, wsse=wsse)
    try:
        with pytest.raises(Fault) as caught:
            await submit(client.service)
    finally:
        await close(client)
    assert (caught.value.code, caught.value.message) == ("soap:Client", "FailedAuthentication")
    assert sim.wsse_failures == 1
    assert sim.submissions == []


async def test_a_password_digest_is_not_accepted(sim: BusinessRegistrationSimulator) -> None:
    client = await zeep_client(sim.wsdl_url, wsse=token(USER, PASSWORD, digest=True))
    try:
        with pytest.raises(Fault, match="FailedAuthentication"):
            await submit(client.service)
    finally:
        await close(client)
    assert sim.wsse_failures == 1


# -- faults, as the client sees them --------------------------------------------------------------


async def test_http_503_for_count_requests_then_ok(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    sim.faults.update({"mode": "http_503", "count": 2})
    for _ in range(2):
        with pytest.raises(TransportError) as caught:
            await submit(dkkd)
        assert caught.value.status_code == 503
    assert (await submit(dkkd)).MaLoi == "00"
    assert sim.faults.mode == "ok"
    assert sim.requests["NopHoSo"] == 3
    assert sim.faulted["http_503"] == 2
    assert len(sim.submissions) == 1


@pytest.mark.parametrize("mode", ["soap_fault_client", "soap_fault_server"])
async def test_injected_soap_faults(
    sim: BusinessRegistrationSimulator, dkkd: Any, mode: str
) -> None:
    sim.faults.update({"mode": mode, "count": 1})
    with pytest.raises(Fault) as caught:
        await submit(dkkd)
    expected = "soap:Client" if mode == "soap_fault_client" else "soap:Server"
    assert caught.value.code == expected
    assert sim.submissions == []
    assert sim.responses[500] == 1


async def test_invalid_xml_reply_after_processing(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    sim.faults.update({"mode": "invalid_xml", "count": 1})
    with pytest.raises(TransportError, match="invalid XML") as caught:
        await submit(dkkd)
    assert caught.value.status_code == 200
    assert sim.accepted == {CODE: "BN-000001"}  # the ministry holds it although the reply broke
    assert (await submit(dkkd)).MaBienNhan == "BN-000001"


async def test_entity_reply_declares_entities_and_zeep_refuses_it(open_sim: Sim) -> None:
    open_sim.faults.update({"mode": "entity_reply", "count": 2})
    raw = await raw_post(open_sim.url, SUBMIT)
    assert raw.status_code == 200
    assert b"<!DOCTYPE" in raw.content
    assert b"<!ENTITY" in raw.content
    client = await zeep_client(open_sim.wsdl_url)
    try:
        # zeep refuses entity declarations; a recent libxml2 may stop the expansion first.
        with pytest.raises((EntitiesForbidden, TransportError)) as caught:
            await submit(client.service)
    finally:
        await close(client)
    assert "entit" in str(caught.value).lower()
    assert open_sim.accepted == {"HS-9": "BN-000001", CODE: "BN-000002"}


async def test_oversized_reply_is_well_formed_but_too_big(open_sim: Sim) -> None:
    assert open_sim.faults.oversized_bytes == 6 * 1024 * 1024
    open_sim.faults.update({"mode": "oversized_reply", "oversized_bytes": 200_000, "count": 2})
    raw = await raw_post(open_sim.url, SUBMIT)
    assert raw.status_code == 200
    assert len(raw.content) > 200_000
    assert etree.fromstring(raw.content).findtext(f".//{{{DKKD_NS}}}MaBienNhan") == "BN-000001"
    client = await zeep_client(open_sim.wsdl_url)
    try:
        reply = await submit(client.service)  # zeep sets no size limit: the hub's client must
    finally:
        await close(client)
    assert reply.MaLoi == "00"
    assert open_sim.faulted["oversized_reply"] == 2


async def test_wsdl_mismatch_reply_fails_strict_parsing(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    sim.faults.update({"mode": "wsdl_mismatch", "count": 1})
    with pytest.raises(XMLParseError, match="PhienBanLuocDo"):
        await dkkd.LayDanhSachKetQua(SoLuong=1)
    assert (await dkkd.LayDanhSachKetQua(SoLuong=1)).MaLoi == "00"


async def test_wsdl_mismatch_reply_renames_the_element_on_the_wire(open_sim: Sim) -> None:
    open_sim.faults.update({"mode": "wsdl_mismatch"})
    raw = await raw_post(open_sim.url, SUBMIT)
    body = etree.fromstring(raw.content).find(f"{{{SOAP_ENV}}}Body")
    assert body is not None
    [element] = list(body)
    assert element.tag == f"{{{DKKD_NS}}}NopHoSoKetQuaLa"
    assert [etree.QName(child).localname for child in element] == [
        "PhienBanLuocDo",
        "MaLoi",
        "MoTaLoi",
        "MaBienNhan",
    ]


async def test_timeout_leaves_the_client_waiting(sim: BusinessRegistrationSimulator) -> None:
    sim.faults.update({"mode": "timeout", "timeout_sleep_s": 5.0, "count": 1})
    client = await zeep_client(sim.wsdl_url, wsse=token(USER, PASSWORD), timeout_s=0.3)
    try:
        with pytest.raises(httpx.TimeoutException):
            await submit(client.service)
    finally:
        await close(client)
    assert sim.submissions == []


async def test_slow_replies_overlap_and_peak_in_flight_is_counted(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    sim.faults.update({"mode": "slow", "delay_s": 0.3})
    started = time.monotonic()
    replies = await asyncio.gather(*(submit(dkkd, f"HS-{n}") for n in range(3)))
    elapsed = time.monotonic() - started
    assert [reply.MaLoi for reply in replies] == ["00"] * 3
    assert elapsed >= 0.3
    assert sim.peak_in_flight == 3
    assert sim.in_flight == 0


# -- control over HTTP ----------------------------------------------------------------------------


async def test_sim_endpoints_set_faults_report_state_and_reset(
    sim: BusinessRegistrationSimulator, dkkd: Any
) -> None:
    await submit(dkkd)
    async with httpx.AsyncClient() as http:
        bad = await http.post(f"{sim.base_url}/_sim/faults", json={"mode": "down"})
        unknown = await http.post(f"{sim.base_url}/_sim/faults", json={"modes": "ok"})
        good = await http.post(
            f"{sim.base_url}/_sim/faults", json={"mode": "soap_fault_server", "count": 1}
        )
        with pytest.raises(Fault):
            await submit(dkkd)
        state = (await http.get(f"{sim.base_url}/_sim/state")).json()
        reset = await http.post(f"{sim.base_url}/_sim/reset")
    assert (bad.status_code, unknown.status_code, good.status_code) == (400, 400, 200)
    assert good.json()["faults"]["mode"] == "soap_fault_server"
    assert state["requests"] == {"NopHoSo": 2}
    assert state["faulted"] == {"soap_fault_server": 1}
    assert state["accepted"] == {CODE: "BN-000001"}
    assert state["submissions"][0]["MaHoSo"] == CODE
    assert state["results_queued"] == 1
    assert state["faults"]["mode"] == "ok"
    assert reset.status_code == 200
    assert (sim.submissions, sim.accepted, sim.results, dict(sim.requests)) == ([], {}, [], {})
    assert (await submit(dkkd)).MaBienNhan == "BN-000001"


# -- hardened parsing -----------------------------------------------------------------------------


async def test_doctype_entity_and_oversized_requests_are_client_faults(
    sim: BusinessRegistrationSimulator,
) -> None:
    lol = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>'
        f'<NopHoSo xmlns="{DKKD_NS}"><MaHoSo>&a;</MaHoSo></NopHoSo></soap:Body></soap:Envelope>'
    ).encode()
    entity = await raw_post(sim.url, lol)
    huge = await raw_post(sim.url, soap(f"<x>{'a' * (2 * 1024 * 1024)}</x>"))
    broken = await raw_post(sim.url, b"<soap:Envelope")
    for response in (entity, huge, broken):
        assert response.status_code == 500
        assert fault_of(response)[0] == "soap:Client"
    assert "DTD" in (fault_of(entity)[1] or "")
    assert "larger" in (fault_of(huge)[1] or "")
    assert sim.requests[UNREADABLE] == 3
    assert sim.submissions == []


async def test_an_element_outside_the_target_namespace_is_refused(open_sim: Sim) -> None:
    wrong = await raw_post(
        open_sim.url, soap("<NopHoSo><MaHoSo>HS-1</MaHoSo><MaTTHC>1</MaTTHC></NopHoSo>")
    )
    unknown = await raw_post(open_sim.url, soap(f'<HuyHoSo xmlns="{DKKD_NS}"/>'))
    assert fault_of(wrong) == ("soap:Client", f"NopHoSo must be in namespace {DKKD_NS}")
    assert fault_of(unknown) == ("soap:Client", "unknown operation HuyHoSo")
    assert open_sim.submissions == []


# -- the generic core with the land-registry WSDL -------------------------------------------------


class LandRegistry:
    """Two small handlers, one sync and one async, recording what they are given."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def send(self, request: dict[str, Any]) -> dict[str, Any]:
        self.received.append(request)
        info = request["ThongTinHoSo"]
        if info["MaThuTuc"] == "HONG":
            raise RuntimeError("handler bug")
        if not info.get("ChuSuDung"):
            raise SoapFault("Client", "Thiếu ChuSuDung")
        return {"ThanhCong": True, "MaTiepNhan": f"TN-{info['SoHoSo']}", "LyDo": None}

    async def updates(self, request: dict[str, Any]) -> dict[str, Any]:
        self.received.append(request)
        at = datetime(2026, 3, 14, 9, 0, tzinfo=VN)
        return {
            "MocMoi": "2",
            "CapNhat": [
                {"Id": "1", "SoHoSo": "DD-1", "MaTrangThai": 1, "NgayCapNhat": at},
                {
                    "Id": "2",
                    "SoHoSo": "DD-1",
                    "MaTrangThai": 2,
                    "NgayCapNhat": at + timedelta(hours=2),
                    "GhiChu": "Đã cấp giấy chứng nhận",
                },
            ],
        }


@pytest.fixture
async def land() -> AsyncIterator[tuple[SoapSimulator, LandRegistry]]:
    registry = LandRegistry()
    handlers: dict[str, Handler] = {
        "GuiHoSoDatDai": registry.send,
        "TraCuuCapNhat": registry.updates,
    }
    async with SoapSimulator(wsdl_path=LAND_WSDL, path="/ws/datdai", handlers=handlers) as server:
        yield server, registry


async def test_land_registry_nested_input_and_boolean_output(
    land: tuple[SoapSimulator, LandRegistry],
) -> None:
    server, registry = land
    client = await zeep_client(server.wsdl_url)
    try:
        reply = await client.service.GuiHoSoDatDai(
            ThongTinHoSo={
                "SoHoSo": "DD-1",
                "MaThuTuc": "1.004227",
                "NgayNhan": date(2026, 3, 14),
                "ChuSuDung": "Trần Văn Bình",
            }
        )
        with pytest.raises(Fault) as refused:
            await client.service.GuiHoSoDatDai(ThongTinHoSo={"SoHoSo": "DD-2", "MaThuTuc": "1"})
        with pytest.raises(Fault) as broken:
            await client.service.GuiHoSoDatDai(ThongTinHoSo={"SoHoSo": "DD-3", "MaThuTuc": "HONG"})
    finally:
        await close(client)
    assert reply.ThanhCong is True
    assert (reply.MaTiepNhan, reply.LyDo) == ("TN-DD-1", None)
    assert registry.received[0] == {
        "ThongTinHoSo": {
            "SoHoSo": "DD-1",
            "MaThuTuc": "1.004227",
            "NgayNhan": "2026-03-14",
            "ChuSuDung": "Trần Văn Bình",
        }
    }
    assert (refused.value.code, refused.value.message) == ("soap:Client", "Thiếu ChuSuDung")
    assert broken.value.code == "soap:Server"
    assert server.handler_errors == ["GuiHoSoDatDai: RuntimeError('handler bug')"]


async def test_land_registry_repeated_output_is_parsed_by_zeep(
    land: tuple[SoapSimulator, LandRegistry],
) -> None:
    server, registry = land
    client = await zeep_client(LAND_WSDL)
    try:
        service = bound(client, "{urn:vn:datdai:dangky:v2}DatDaiSoapBinding", server.url)
        reply = await service.TraCuuCapNhat(ToiDa=2)
    finally:
        await close(client)
    assert registry.received == [{"ToiDa": "2"}]
    assert reply.MocMoi == "2"
    assert [(u.Id, u.MaTrangThai, u.GhiChu) for u in reply.CapNhat] == [
        ("1", 1, None),
        ("2", 2, "Đã cấp giấy chứng nhận"),
    ]
    assert reply.CapNhat[1].NgayCapNhat == datetime(2026, 3, 14, 11, 0, tzinfo=VN)
    assert server.requests["TraCuuCapNhat"] == 1


def test_handlers_must_name_operations_of_the_wsdl() -> None:
    with pytest.raises(ValueError, match="HuyHoSo"):
        SoapSimulator(wsdl_path=LAND_WSDL, path="/ws/datdai", handlers={"HuyHoSo": dict})
    with pytest.raises(ValueError, match="both"):
        BusinessRegistrationSimulator(username=USER)


# -- dict ⇄ XML -----------------------------------------------------------------------------------


def test_request_elements_become_plain_dicts() -> None:
    request = etree.fromstring(
        '<r:Op xmlns:r="urn:x" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<r:Ma>1</r:Ma><r:Ma>2</r:Ma><r:Ma>3</r:Ma>"
        "<r:Nguoi><r:Ten>An</r:Ten><r:Con><r:Ten>Bé</r:Ten></r:Con></r:Nguoi>"
        '<r:Rong/><r:Khong xsi:nil="true"/></r:Op>'
    )
    assert body_payload(request) == {
        "Ma": ["1", "2", "3"],
        "Nguoi": {"Ten": "An", "Con": {"Ten": "Bé"}},
        "Rong": "",
        "Khong": None,
    }


def test_reply_dicts_are_written_qualified_in_order() -> None:
    at = datetime(2026, 3, 14, 9, 0, tzinfo=VN)
    data = {"Co": True, "Khong": False, "Bo": None, "Luc": at, "Muc": [{"So": 1}, {"So": 2}]}
    element = response_element("OpResponse", data, "urn:x")
    assert [(etree.QName(child).namespace, etree.QName(child).localname) for child in element] == [
        ("urn:x", name) for name in ("Co", "Khong", "Luc", "Muc", "Muc")
    ]
    assert [child.text for child in element][:3] == ["true", "false", "2026-03-14T09:00:00+07:00"]
    assert [child.findtext("{urn:x}So") for child in element][3:] == ["1", "2"]
    with pytest.raises(TypeError):
        response_element("OpResponse", {"Sai": object()}, "urn:x")
