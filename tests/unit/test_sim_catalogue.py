"""The DVCQG simulator's national procedure catalogue: the generator, the in-memory catalogue,
and the four catalogue services over real loopback HTTP (no mocks)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sims.national_portal.catalogue import (
    CHANNELS,
    LEVELS,
    TIME_UNITS,
    Catalogue,
    agency_list,
    field_list,
    generate,
)
from sims.national_portal.simulator import DvcqgSimulator

ROOT = Path(__file__).resolve().parents[2]
UNIT = "000.00.41.H41"
RECORD_KEYS = {
    "MATTHC", "TENTTHC", "LOAITTHC", "CAPTHUCHIEN", "LINHVUCTHUCHIEN", "TRINHTUTHUCHIEN",
    "CACHTHUCTHUCHIEN", "THANHPHANHOSO", "YEUCAU", "DOITUONGTHUCHIEN", "KETQUATHUCHIEN",
    "CANCUPHAPLY", "COQUANTHUCHIEN", "COQUANCOTHAMQUYEN", "COQUANDUOCUYQUYEN", "COQUANPHOIHOP",
    "DIACHITIEPNHAN", "MUCDO", "COBUUCHINH", "THANHTOANTRUCTUYEN", "GUISMS", "MOTCUA",
    "LIENTHONG", "TRANGTHAI",
}  # fmt: skip
BAD_PERIOD = {
    "THOIGIANGIAIQUYET": "5",
    "DONVITINH": "Tuần trăng",
    "PHILEPHI": [{"SOTIEN": "-5000"}, {"SOTIEN": "abc"}],
}
AGENCY_RE = re.compile(r"\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}")


@pytest.fixture
async def sim() -> AsyncIterator[DvcqgSimulator]:
    async with DvcqgSimulator(procedures=40, catalogue_seed=2) as simulator:
        yield simulator


async def post(url: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def login(sim: DvcqgSimulator) -> str:
    _, reply = await post(sim.url, {"username": sim.username, "password": sim.password})
    return str(reply["session"])


async def call(sim: DvcqgSimulator, session: str, service: str, **body: Any) -> tuple[int, Any]:
    return await post(sim.url, {"service": service, "session": session, "madonvi": UNIT, **body})


async def control(sim: DvcqgSimulator, op: dict[str, Any]) -> tuple[int, Any]:
    return await post(f"{sim.url}/_sim/catalogue", op)


def first_fee(record: dict[str, Any]) -> list[dict[str, str]]:
    fees: list[dict[str, str]] = record["CACHTHUCTHUCHIEN"][0]["THOIGIAN"][0]["PHILEPHI"]
    return fees


# -- the generator --------------------------------------------------------------------------------


def test_generate_is_deterministic_per_seed() -> None:
    assert generate(60, seed=3) == generate(60, seed=3)
    assert list(generate(60, seed=3)) == list(generate(60, seed=3))
    assert set(generate(60, seed=3)) != set(generate(60, seed=4))
    assert generate(0) == {}


@pytest.mark.parametrize("count", [-1, 2_000_001, True, 1.5])
def test_generate_rejects_impossible_counts(count: Any) -> None:
    with pytest.raises(ValueError, match="count"):
        generate(count)


def test_generate_5000_quickly_distinct_and_valid_json() -> None:
    # CPU time of this process: the wall clock is stretched by whatever else the machine runs.
    started = time.process_time()
    records = generate(5000, seed=1)
    assert time.process_time() - started < 2.0
    assert len(records) == 5000
    assert len({r["TENTTHC"] for r in records.values()}) == 5000
    encoded = json.dumps(records, ensure_ascii=False).encode("utf-8")
    assert json.loads(encoded.decode("utf-8")) == records


def test_reference_lists() -> None:
    fields, agencies = field_list(), agency_list()
    assert 14 <= len(fields) <= 20
    assert len({f["MALINHVUC"] for f in fields}) == len(fields)
    assert {"MALINHVUC": "G09-TP01", "TENLINHVUC": "Hộ tịch"} in fields
    assert 18 <= len(agencies) <= 25
    assert len({a["MADONVI"] for a in agencies}) == len(agencies)
    assert all(AGENCY_RE.fullmatch(a["MADONVI"]) for a in agencies)
    assert {a["CAPDONVI"] for a in agencies} == {"1", "2", "3", "4"}
    assert all(set(a) == {"MADONVI", "TENDONVI", "CAPDONVI"} for a in agencies)


def test_generated_records_have_the_portal_shape() -> None:
    fields = {(f["MALINHVUC"], f["TENLINHVUC"]) for f in field_list()}
    agencies = {(a["MADONVI"], a["TENDONVI"]) for a in agency_list()}
    for code, record in generate(400, seed=5).items():
        assert set(record) == RECORD_KEYS
        assert record["MATTHC"] == code
        assert re.fullmatch(r"[12]\.\d{6}", code)
        assert record["TENTTHC"]
        assert record["LOAITTHC"] in ("1", "2")
        assert record["TRANGTHAI"] == "1"
        assert record["MUCDO"] in ("TOANTRINH", "MOTPHAN", "")
        for flag in ("COBUUCHINH", "THANHTOANTRUCTUYEN", "GUISMS", "MOTCUA", "LIENTHONG"):
            assert record[flag] in ("0", "1")
        assert record["CAPTHUCHIEN"]
        assert all(level["TENCAP"] in LEVELS for level in record["CAPTHUCHIEN"])
        assert [(f["MALINHVUC"], f["TENLINHVUC"]) for f in record["LINHVUCTHUCHIEN"]] in [
            [f] for f in fields
        ]
        for name in ("COQUANTHUCHIEN", "COQUANCOTHAMQUYEN", "COQUANDUOCUYQUYEN", "COQUANPHOIHOP"):
            assert {(a["MADONVI"], a["TENDONVI"]) for a in record[name]} <= agencies
        assert record["COQUANTHUCHIEN"]
        assert record["COQUANCOTHAMQUYEN"]
        assert 1 <= len(record["CANCUPHAPLY"]) <= 4
        assert all(law["SOVANBAN"] and law["TENVANBAN"] for law in record["CANCUPHAPLY"])
        assert record["KETQUATHUCHIEN"][0]["MAKETQUA"] == "KQ01"
        assert record["DOITUONGTHUCHIEN"]
        check_sequence(record)
        check_channels(record)
        check_documents(record)


def check_sequence(record: dict[str, Any]) -> None:
    for case in record["TRINHTUTHUCHIEN"]:
        assert isinstance(case["TRUONGHOP"], str)
        names = [step["TENTRINHTU"] for step in case["TRINHTU"]]
        assert names
        assert all(name.startswith(f"Bước {i}: ") for i, name in enumerate(names, 1))


def check_channels(record: dict[str, Any]) -> None:
    channels = [c["KENH"] for c in record["CACHTHUCTHUCHIEN"]]
    assert 1 <= len(channels) <= 3
    assert len(set(channels)) == len(channels)
    assert set(channels) <= set(CHANNELS)
    assert (record["COBUUCHINH"] == "1") == ("3" in channels)
    for channel in record["CACHTHUCTHUCHIEN"]:
        for period in channel["THOIGIAN"]:
            assert re.fullmatch(r"\d+(\.\d+)?", period["THOIGIANGIAIQUYET"])
            assert period["DONVITINH"] in TIME_UNITS
            assert period["MOTA"]
            for fee in period["PHILEPHI"]:
                assert set(fee) == {"MAPHILEPHI", "SOTIEN", "DONVI", "MOTA"}
                assert fee["SOTIEN"].isdigit()
                assert fee["DONVI"] == "Đồng"
                assert re.fullmatch(r"(LP|PHI)\d{2}", fee["MAPHILEPHI"])


def check_documents(record: dict[str, Any]) -> None:
    papers = [paper for group in record["THANHPHANHOSO"] for paper in group["GIAYTO"]]
    assert 1 <= len(papers) <= 8
    assert [p["MAGIAYTO"] for p in papers] == [f"GT{n:03d}" for n in range(1, len(papers) + 1)]
    for paper in papers:
        assert paper["TENGIAYTO"]
        assert paper["SOBANCHINH"].isdigit()
        assert paper["SOBANSAO"].isdigit()
        assert bool(paper["TENMAUDON"]) == bool(paper["URL"])
        assert paper["URL"] == "" or paper["URL"].startswith("https://csdl.dichvucong.gov.vn/")


def test_generated_catalogue_varies_like_the_real_one() -> None:
    records = list(generate(800, seed=7).values())
    fees = [
        [f for c in r["CACHTHUCTHUCHIEN"] for t in c["THOIGIAN"] for f in t["PHILEPHI"]]
        for r in records
    ]
    assert any(not f for f in fees)  # free procedures
    assert any(f and all(fee["SOTIEN"] == "0" for fee in f) for f in fees)
    assert any(len({fee["MAPHILEPHI"] for fee in f}) == 2 for f in fees)
    assert {len(r["CACHTHUCTHUCHIEN"]) for r in records} == {1, 2, 3}
    papers = {sum(len(g["GIAYTO"]) for g in r["THANHPHANHOSO"]) for r in records}
    assert {1, 8} <= papers
    assert {len(r["CANCUPHAPLY"]) for r in records} == {1, 2, 3, 4}
    units = {t["DONVITINH"] for r in records for c in r["CACHTHUCTHUCHIEN"] for t in c["THOIGIAN"]}
    assert units == set(TIME_UNITS)
    times = {
        t["THOIGIANGIAIQUYET"]
        for r in records
        for c in r["CACHTHUCTHUCHIEN"]
        for t in c["THOIGIAN"]
    }
    assert "0.5" in times
    assert {r["MUCDO"] for r in records} == {"TOANTRINH", "MOTPHAN", ""}
    assert any(r["COQUANDUOCUYQUYEN"] for r in records)
    assert any(not r["COQUANPHOIHOP"] for r in records)
    assert any(len(r["TRINHTUTHUCHIEN"]) == 2 for r in records)
    assert any(r["YEUCAU"] == "Không" for r in records)
    assert len({r["LINHVUCTHUCHIEN"][0]["MALINHVUC"] for r in records}) == len(field_list())


# -- the catalogue in Python ----------------------------------------------------------------------


def test_catalogue_mutations() -> None:
    catalogue = Catalogue(generate(5, seed=1))
    code = min(catalogue.records)
    record = json.loads(json.dumps(catalogue.records[code]))

    record["TENTTHC"] = "Đăng ký khai sinh"
    assert catalogue.put(record) == code
    record["TENTTHC"] = "changed after put"  # the catalogue holds its own copy
    assert catalogue.records[code]["TENTTHC"] == "Đăng ký khai sinh"
    catalogue.rename(code, "Đăng ký khai sinh lưu động")
    assert catalogue.listing()[0] == {"MATTHC": code, "TENTTHC": "Đăng ký khai sinh lưu động"}

    catalogue.records[code]["CACHTHUCTHUCHIEN"][0]["THOIGIAN"][0]["PHILEPHI"] = []
    catalogue.set_fee(code, "60000")  # none there: added
    assert first_fee(catalogue.records[code]) == [
        {"MAPHILEPHI": "LP01", "SOTIEN": "60000", "DONVI": "Đồng", "MOTA": "Lệ phí"}
    ]
    catalogue.set_fee(code, "0")
    assert first_fee(catalogue.records[code])[0]["SOTIEN"] == "0"
    with pytest.raises(ValueError, match="digits"):
        catalogue.set_fee(code, "-5000")
    with pytest.raises(IndexError):
        catalogue.set_fee(code, "1", fee_index=5)

    catalogue.remove(code)
    assert code not in catalogue.records
    assert len(catalogue.listing()) == 4
    with pytest.raises(KeyError):
        catalogue.remove(code)
    with pytest.raises(KeyError):
        catalogue.rename(code, "x")
    with pytest.raises(ValueError, match="MATTHC"):
        catalogue.put({"TENTTHC": "no code"})

    catalogue.set_raw("9.000001", "<html>oops")
    assert catalogue.summary() == {"count": 4, "codes": 5, "raw": ["9.000001"]}
    catalogue.load({})
    assert catalogue.summary() == {"count": 0, "codes": 0, "raw": []}


def test_injected_replies_take_precedence_until_cleared() -> None:
    catalogue = Catalogue(generate(3, seed=1))
    code = min(catalogue.records)
    broken = {"TENTTHC": "Không có mã", "CACHTHUCTHUCHIEN": "not a list"}
    catalogue.set_raw(code, broken)
    broken["TENTTHC"] = "changed after set_raw"
    assert catalogue.lookup(code) == {"TENTTHC": "Không có mã", "CACHTHUCTHUCHIEN": "not a list"}
    catalogue.set_raw("1.999999", {"TENTTHC": "Chỉ có trong danh sách"})
    assert {"MATTHC": "1.999999", "TENTTHC": "Chỉ có trong danh sách"} in catalogue.listing()
    catalogue.clear_raw(code)
    catalogue.clear_raw("never set")
    assert catalogue.lookup(code) == catalogue.records[code]
    assert catalogue.lookup("0.000000") is None


# -- the services over HTTP -----------------------------------------------------------------------


async def test_list_procedures_sorted_by_code(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    status, reply = await call(sim, session, "LayDanhSachTTHC")
    assert (status, reply["error_code"]) == (200, "00")
    assert reply["message"]
    assert reply["result"] == [
        {"MATTHC": code, "TENTTHC": sim.catalogue.records[code]["TENTTHC"]}
        for code in sorted(sim.catalogue.records)
    ]
    assert len(reply["result"]) == 40


async def test_one_procedure_by_code(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    code = sorted(sim.catalogue.records)[7]
    status, reply = await call(sim, session, "LayThuTuc", maTTHC=code)
    assert (status, reply["error_code"]) == (200, "00")
    assert reply["result"] == sim.catalogue.records[code] == generate(40, seed=2)[code]
    status, reply = await call(sim, session, "LayThuTuc", maTTHC="1.000000")
    assert (status, reply) == (
        200,
        {"error_code": "06", "message": "procedure 1.000000 not found"},
    )
    status, reply = await call(sim, session, "LayThuTuc")
    assert (status, reply["error_code"]) == (400, "01")
    assert "maTTHC" in reply["message"]


async def test_reference_services(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    status, reply = await call(sim, session, "LayDanhMucLinhVuc")
    assert (status, reply["error_code"], reply["result"]) == (200, "00", field_list())
    status, reply = await call(sim, session, "LayDanhMucCoQuan")
    assert (status, reply["error_code"], reply["result"]) == (200, "00", agency_list())


@pytest.mark.parametrize(
    "service", ["LayDanhSachTTHC", "LayThuTuc", "LayDanhMucLinhVuc", "LayDanhMucCoQuan"]
)
async def test_catalogue_services_need_a_session_and_a_unit(
    sim: DvcqgSimulator, service: str
) -> None:
    status, reply = await call(sim, "forged", service, maTTHC="1.000494")
    assert (status, reply["error_code"]) == (401, "401")
    session = await login(sim)
    body = {"service": service, "session": session, "maTTHC": "1.000494"}
    status, reply = await post(sim.url, body)
    assert (status, reply["error_code"]) == (400, "01")
    status, reply = await post(sim.url, {**body, "madonvi": "H41"})
    assert (status, reply["error_code"]) == (400, "01")


async def test_empty_catalogue_by_default() -> None:
    async with DvcqgSimulator() as sim:
        session = await login(sim)
        _, reply = await call(sim, session, "LayDanhSachTTHC")
        assert (reply["error_code"], reply["result"]) == ("00", [])


# -- changing the catalogue over HTTP ------------------------------------------------------------


async def test_mutations_over_http(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    status, reply = await control(sim, {"op": "generate", "count": 120, "seed": 9})
    assert (status, reply["error_code"], reply["count"]) == (200, "00", 120)
    assert sim.catalogue.records == generate(120, seed=9)
    code = sorted(sim.catalogue.records)[0]

    await control(sim, {"op": "rename", "code": code, "name": "Đăng ký khai sinh lưu động"})
    await control(sim, {"op": "set_fee", "code": code, "amount": "60000"})
    _, reply = await call(sim, session, "LayThuTuc", maTTHC=code)
    assert reply["result"]["TENTTHC"] == "Đăng ký khai sinh lưu động"
    assert first_fee(reply["result"])[0]["SOTIEN"] == "60000"

    new = {**sim.catalogue.records[code], "MATTHC": "1.000494", "TENTTHC": "Thủ tục mới"}
    status, reply = await control(sim, {"op": "put", "record": new})
    assert (status, reply["count"]) == (200, 121)
    await control(sim, {"op": "remove", "code": code})
    _, reply = await call(sim, session, "LayDanhSachTTHC")
    listed = {item["MATTHC"]: item["TENTTHC"] for item in reply["result"]}
    assert listed["1.000494"] == "Thủ tục mới"
    assert code not in listed
    assert len(listed) == 120

    status, reply = await control(sim, {"op": "load", "records": [new]})
    assert (status, reply["count"]) == (200, 1)
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/_sim/catalogue") as r:
        assert await r.json() == {"count": 1, "codes": 1, "raw": []}


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op": "explode"}, "op must be one of"),
        ({}, "op must be one of"),
        ({"op": "generate"}, "count"),
        ({"op": "generate", "count": -3}, "count"),
        ({"op": "generate", "count": 3, "seed": "x"}, "seed"),
        ({"op": "put", "record": {"TENTTHC": "no code"}}, "MATTHC"),
        ({"op": "put", "record": "not a record"}, "JSON object"),
        ({"op": "load", "records": {"a": 1}}, "list"),
        ({"op": "remove", "code": "0.000000"}, "not in the catalogue"),
        ({"op": "remove"}, "code"),
        ({"op": "set_fee", "code": "0.000000", "amount": "1"}, "not in the catalogue"),
        ({"op": "set_fee", "code": "CODE", "amount": 5000}, "digits"),
        ({"op": "set_fee", "code": "CODE", "amount": "1", "fee_index": 9}, "set_fee"),
        ({"op": "set_fee", "code": "CODE", "amount": "1", "channel_index": -1}, "indexes"),
        ({"op": "rename", "code": "CODE", "name": ""}, "name"),
        ({"op": "set_raw", "code": "CODE", "reply": 5}, "reply"),
        ({"op": "clear_raw", "code": 7}, "code"),
    ],
)
async def test_invalid_ops_are_refused(
    sim: DvcqgSimulator, op: dict[str, Any], message: str
) -> None:
    before = json.dumps(sim.catalogue.records)
    code = min(sim.catalogue.records)
    op = {k: code if v == "CODE" else v for k, v in op.items()}
    status, reply = await control(sim, op)
    assert (status, reply["error_code"]) == (400, "01")
    assert message in reply["message"]
    assert json.dumps(sim.catalogue.records) == before


async def test_control_body_must_be_an_object(sim: DvcqgSimulator) -> None:
    status, reply = await post(f"{sim.url}/_sim/catalogue", ["generate"])
    assert (status, reply["error_code"]) == (400, "01")


# -- bad data from the portal ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        {"TENTTHC": "Không có mã"},
        {"CACHTHUCTHUCHIEN": [{"KENH": "1", "THOIGIAN": [BAD_PERIOD]}]},
        {"MATTHC": "CODE", "CACHTHUCTHUCHIEN": "not a list"},
    ],
)
async def test_injected_record_is_served_as_is(sim: DvcqgSimulator, broken: dict[str, Any]) -> None:
    session = await login(sim)
    code = min(sim.catalogue.records)
    broken = {k: code if v == "CODE" else v for k, v in broken.items()}
    status, reply = await control(sim, {"op": "set_raw", "code": code, "reply": broken})
    assert (status, reply["raw"]) == (200, [code])
    status, reply = await call(sim, session, "LayThuTuc", maTTHC=code)
    assert (status, reply["error_code"], reply["result"]) == (200, "00", broken)

    await control(sim, {"op": "clear_raw", "code": code})
    _, reply = await call(sim, session, "LayThuTuc", maTTHC=code)
    assert reply["result"] == sim.catalogue.records[code]


async def test_injected_body_is_served_verbatim(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    code = min(sim.catalogue.records)
    sim.catalogue.set_raw(code, "<html>oops")
    body = {"service": "LayThuTuc", "session": session, "madonvi": UNIT, "maTTHC": code}
    async with aiohttp.ClientSession() as http, http.post(sim.url, json=body) as response:
        assert response.status == 200
        assert await response.text() == "<html>oops"
    sim.catalogue.set_raw("2.999999", '{"error_code": "00", "result": ')
    _, reply = await call(sim, session, "LayDanhSachTTHC")
    assert reply["result"][-1] == {"MATTHC": "2.999999", "TENTTHC": ""}
    status, reply = await call(sim, session, "LayThuTuc", maTTHC="2.999999")
    assert (status, reply) == (200, '{"error_code": "00", "result": ')


# -- faults, counters, concurrency ----------------------------------------------------------------


async def test_faults_and_counters_apply_to_catalogue_services(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    code = min(sim.catalogue.records)
    sim.faults.mode = "http_503"
    assert (await call(sim, session, "LayThuTuc", maTTHC=code))[0] == 503
    sim.faults.update({"mode": "timeout", "timeout_sleep_s": 0.05})
    assert (await call(sim, session, "LayDanhSachTTHC"))[0] == 504
    sim.faults.update({"mode": "ok", "fail_next": 1})
    assert (await call(sim, session, "LayDanhMucLinhVuc"))[0] == 503
    assert (await call(sim, session, "LayDanhMucLinhVuc"))[0] == 200
    sim.faults.update({"mode": "slow", "delay_s": 0.1})
    started = time.perf_counter()
    status, reply = await call(sim, session, "LayDanhMucCoQuan")
    assert time.perf_counter() - started >= 0.1
    assert (status, reply["error_code"]) == (200, "00")
    assert sim.calls == {
        "LayThuTuc": 1,
        "LayDanhSachTTHC": 1,
        "LayDanhMucLinhVuc": 2,
        "LayDanhMucCoQuan": 1,
    }


async def test_lost_reply_on_a_catalogue_call(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    sim.faults.update({"mode": "lost_reply", "timeout_sleep_s": 1.0})
    code = min(sim.catalogue.records)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call(sim, session, "LayThuTuc", maTTHC=code), 0.2)
    assert sim.calls["LayThuTuc"] == 1


async def test_peak_in_flight_counts_concurrent_lookups(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    codes = sorted(sim.catalogue.records)[:6]
    sim.faults.update({"mode": "slow", "delay_s": 0.2})
    replies = await asyncio.gather(*(call(sim, session, "LayThuTuc", maTTHC=c) for c in codes))
    assert [reply["result"]["MATTHC"] for _, reply in replies] == codes
    assert (sim.peak_in_flight, sim.in_flight) == (6, 0)

    for code in codes[:3]:  # one at a time
        await call(sim, session, "LayThuTuc", maTTHC=code)
    await asyncio.gather(*(call(sim, session, "LayDanhSachTTHC") for _ in range(8)))
    assert sim.peak_in_flight == 6  # other services do not count

    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/_sim/state") as r:
        state = await r.json()
    assert (state["peak_in_flight"], state["in_flight"]) == (6, 0)
    assert state["catalogue"] == {"count": 40, "codes": 40, "raw": []}

    sim.reset()
    assert (sim.peak_in_flight, sim.calls) == (0, {})
    assert len(sim.catalogue.records) == 40  # reset keeps the catalogue
    await call(sim, session, "LayThuTuc", maTTHC=codes[0])
    assert sim.peak_in_flight == 1
    sim.catalogue.load({})
    assert sim.catalogue.summary()["count"] == 0


# -- standalone -----------------------------------------------------------------------------------


async def test_cli_serves_a_generated_catalogue() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sims.national_portal.simulator",
        "--port",
        "0",
        "--procedures",
        "25",
        "--catalogue-seed",
        "4",
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        url = first.split("POST ")[1].split()[0]
        lines = [(await asyncio.wait_for(process.stdout.readline(), 5)).decode() for _ in "ab"]
        assert "catalogue: 25 procedures" in lines[1]
        _, reply = await post(url, {"username": "hub", "password": "secret"})
        body = {"service": "LayDanhSachTTHC", "session": reply["session"], "madonvi": UNIT}
        _, reply = await post(url, body)
        assert [item["MATTHC"] for item in reply["result"]] == sorted(generate(25, seed=4))
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_simulator_imports_no_hub_code() -> None:
    probe = (
        "import sys, sims.national_portal.catalogue as c;"
        "assert 'aiohttp' not in sys.modules, 'the catalogue must stay import-cheap';"
        "import sims.national_portal.simulator;"
        "print(sorted(m for m in sys.modules if m == 'hub' or m.startswith('hub.')))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert out.decode().strip() == "[]"
