"""The payment platform simulator, exercised over real loopback HTTP.

No mocks: each test starts a real simulator on 127.0.0.1 and a tiny hub stand-in that records
the callbacks it is sent, so what the hub's payment tests rely on (signed replies, the day's
listing, faults, the broken callback variants) is checked here first.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors.payment_platform.config import Signatures
from connectors.payment_platform.signing import signed, verify
from sims.loopback import LoopbackServer
from sims.payment_platform.simulator import (
    VARIANTS,
    VN_TZ,
    PaymentPlatformSimulator,
    SimFaults,
    SimTransaction,
    twelve_hour_time,
)

PARTNER = "H41-TEST"
SECRET = "khoa-bi-mat-thu"
SIGS = Signatures()
CALLBACK_ORDER = SIGS.callbacks["KetQuaThanhToan"]
REF = "000.00.41.H41-260314-0001"


class FakeHub(LoopbackServer):
    """Records every callback POSTed to it and answers like a hub that stored it."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.bodies: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/payment-platform/callback", self._callback)

    @property
    def url(self) -> str:
        return f"{self.base_url}/payment-platform/callback"

    async def _callback(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.json_response({"MaLoi": "00", "MoTaLoi": "Đã ghi nhận"})


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with FakeHub() as server:
        yield server


@pytest.fixture
async def sim(hub: FakeHub) -> AsyncIterator[PaymentPlatformSimulator]:
    async with PaymentPlatformSimulator(PARTNER, SECRET, callback_url=hub.url) as server:
        yield server


def vn(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=VN_TZ)


async def post(url: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def status_check(
    sim: PaymentPlatformSimulator, tx_id: str, reference: str = REF, secret: str = SECRET
) -> tuple[int, Any]:
    fields = {
        "LoaiBanTin": "TruyVanGiaoDich",
        "MaDoiTac": PARTNER,
        "MaThamChieu": reference,
        "MaGiaoDich": tx_id,
        "ThoiGianGD": "20260314101500",
    }
    body = signed(fields, SIGS.status_request, secret)
    return await post(f"{sim.base_url}{sim.status_path}", body)


async def listing(sim: PaymentPlatformSimulator, day: str) -> tuple[int, Any]:
    fields = {"LoaiBanTin": "DoiSoat", "MaDoiTac": PARTNER, "NgayGD": day}
    body = signed(fields, SIGS.listing_request, SECRET)
    return await post(f"{sim.base_url}{sim.reconciliation_path}", body)


# -- status checks --------------------------------------------------------------------------------


async def test_status_check_replies_signed_with_the_recorded_state(
    sim: PaymentPlatformSimulator,
) -> None:
    tx = sim.new_transaction(REF, 150_000, at=vn(2026, 3, 14, 14, 15, 0))
    status, reply = await status_check(sim, tx.transaction_id)
    assert status == 200
    assert verify(reply, SIGS.status_reply, SECRET)
    assert reply["MaLoi"] == "00"
    assert reply["TrangThaiGD"] == "1"
    expected = {"MaDoiTac": PARTNER, "MaThamChieu": REF, "MaGiaoDich": tx.transaction_id}
    assert expected.items() <= reply.items()
    assert (reply["SoTien"], reply["MaTienTe"], reply["MaNganHang"]) == ("150000", "VND", "VCB")
    assert reply["ThoiGianGD"] == "20260314141500"

    sim.set_state(tx.transaction_id, "4")
    _, reply = await status_check(sim, tx.transaction_id)
    assert reply["TrangThaiGD"] == "4"
    assert verify(reply, SIGS.status_reply, SECRET)
    assert sim.status_checks == 2
    assert sim.checks_by_transaction[tx.transaction_id] == 2


async def test_status_check_of_an_unknown_transaction_is_01_and_signed(
    sim: PaymentPlatformSimulator,
) -> None:
    tx = sim.new_transaction(REF, 150_000)
    for tx_id, reference in (("GD0000", REF), (tx.transaction_id, "KHAC-01")):
        status, reply = await status_check(sim, tx_id, reference)
        assert status == 200
        assert (reply["MaLoi"], reply["MoTaLoi"]) == ("01", "Không tìm thấy giao dịch")
        assert verify(reply, SIGS.status_reply, SECRET)


async def test_a_badly_signed_request_is_98(sim: PaymentPlatformSimulator) -> None:
    tx = sim.new_transaction(REF, 150_000)
    status, reply = await status_check(sim, tx.transaction_id, secret="not-the-key")
    assert (status, reply) == (200, {"MaLoi": "98", "MoTaLoi": "Sai chữ ký"})
    fields = {"LoaiBanTin": "DoiSoat", "MaDoiTac": PARTNER, "NgayGD": "20260314"}
    status, reply = await post(f"{sim.base_url}{sim.reconciliation_path}", fields)
    assert reply["MaLoi"] == "98"
    assert sim.checks_by_transaction == {}


async def test_another_partner_code_is_refused(sim: PaymentPlatformSimulator) -> None:
    fields = {"LoaiBanTin": "DoiSoat", "MaDoiTac": "KHAC", "NgayGD": "20260314"}
    _, reply = await post(
        f"{sim.base_url}{sim.reconciliation_path}", signed(fields, SIGS.listing_request, SECRET)
    )
    assert reply["MaLoi"] == "97"


# -- daily listing --------------------------------------------------------------------------------


async def test_listing_holds_exactly_the_local_day(sim: PaymentPlatformSimulator) -> None:
    # 06:30 in Hà Nội is the previous day in UTC: the listing goes by local day.
    early = sim.new_transaction(f"{REF}-01", 150_000, at=vn(2026, 3, 14, 6, 30, 0))
    late = sim.new_transaction(f"{REF}-02", 50_000, at=vn(2026, 3, 14, 23, 59, 59), state="4")
    pending = sim.new_transaction(f"{REF}-03", 20_000, at=vn(2026, 3, 14, 12, 0, 0), state="3")
    sim.new_transaction(f"{REF}-04", 70_000, at=vn(2026, 3, 15, 0, 0, 0))
    sim.new_transaction(f"{REF}-05", 90_000, at=vn(2026, 3, 13, 23, 59, 59))

    status, reply = await listing(sim, "20260314")
    assert status == 200
    assert verify(reply, SIGS.listing_reply, SECRET)
    assert (reply["MaLoi"], reply["MaDoiTac"], reply["NgayGD"]) == ("00", PARTNER, "20260314")
    assert (reply["SoGD"], reply["TongTien"]) == ("3", "220000")
    ids = [item["MaGiaoDich"] for item in reply["DanhSachGD"]]
    assert ids == [early.transaction_id, pending.transaction_id, late.transaction_id]
    assert [item["TrangThaiGD"] for item in reply["DanhSachGD"]] == ["1", "3", "4"]
    assert sim.listings == 1

    _, empty = await listing(sim, "20260101")
    assert (empty["SoGD"], empty["TongTien"], empty["DanhSachGD"]) == ("0", "0", [])
    assert verify(empty, SIGS.listing_reply, SECRET)


async def test_confirm_day_overrides_the_record(sim: PaymentPlatformSimulator) -> None:
    kept = sim.new_transaction(f"{REF}-01", 150_000, at=vn(2026, 3, 14, 9, 0, 0))
    sim.new_transaction(f"{REF}-02", 50_000, at=vn(2026, 3, 14, 10, 0, 0))
    other_day = sim.new_transaction(f"{REF}-03", 30_000, at=vn(2026, 3, 12, 10, 0, 0))
    sim.confirm_day(date(2026, 3, 14), [kept, other_day])
    _, reply = await listing(sim, "20260314")
    assert verify(reply, SIGS.listing_reply, SECRET)
    assert (reply["SoGD"], reply["TongTien"]) == ("2", "180000")
    ids = [item["MaGiaoDich"] for item in reply["DanhSachGD"]]
    assert ids == [kept.transaction_id, other_day.transaction_id]


# -- faults ---------------------------------------------------------------------------------------


async def test_outage_answers_503_n_times_then_recovers(sim: PaymentPlatformSimulator) -> None:
    tx = sim.new_transaction(REF, 150_000)
    sim.faults.status_outage_remaining = 2
    assert (await status_check(sim, tx.transaction_id))[0] == 503
    assert (await listing(sim, "20260314"))[0] == 503
    status, reply = await status_check(sim, tx.transaction_id)
    assert (status, reply["MaLoi"]) == (200, "00")
    assert sim.status_checks == 2
    assert sim.checks_by_transaction[tx.transaction_id] == 1


async def test_reply_faults(sim: PaymentPlatformSimulator) -> None:
    tx = sim.new_transaction(REF, 150_000, at=vn(2026, 3, 14, 9, 0, 0))
    sim.new_transaction(f"{REF}-02", 50_000, at=vn(2026, 3, 14, 10, 0, 0))
    sim.faults.update({"bad_reply_signature": True, "delay_s": 0.2})
    started = time.monotonic()
    _, reply = await status_check(sim, tx.transaction_id)
    assert time.monotonic() - started >= 0.2
    assert reply["MaLoi"] == "00"
    assert not verify(reply, SIGS.status_reply, SECRET)

    sim.faults = SimFaults(truncate_listing=True)
    _, reply = await listing(sim, "20260314")
    assert verify(reply, SIGS.listing_reply, SECRET)
    assert (reply["SoGD"], len(reply["DanhSachGD"])) == ("2", 1)


def test_fault_updates_are_validated_all_or_nothing() -> None:
    faults = SimFaults()
    for bad in ({"delay_s": -1}, {"status_outage_remaining": 1.5}, {"nope": 1}):
        with pytest.raises(ValueError, match=r"non-negative|unknown"):
            faults.update({"bad_reply_signature": True, **bad})
    with pytest.raises(ValueError, match="true or false"):
        faults.update({"bad_reply_signature": "yes"})
    assert faults == SimFaults()


# -- callbacks ------------------------------------------------------------------------------------


async def test_good_callback_verifies_and_returns_the_hubs_reply(
    sim: PaymentPlatformSimulator, hub: FakeHub
) -> None:
    tx = sim.new_transaction(REF, 150_000, at=vn(2026, 3, 14, 14, 15, 0))
    replies = await sim.send_callback(tx)
    assert replies == [{"MaLoi": "00", "MoTaLoi": "Đã ghi nhận"}]
    [body] = hub.bodies
    assert verify(body, CALLBACK_ORDER, SECRET)
    assert body == sim.callback_body(tx)
    assert (body["LoaiBanTin"], body["MaLoi"], body["MaDoiTac"]) == (
        "KetQuaThanhToan",
        "00",
        PARTNER,
    )
    assert (body["SoTien"], body["ThoiGianGD"]) == ("150000", "20260314141500")
    assert body["ThongTinGiaoDich"] == f"Nop le phi ho so {REF}"
    assert [(s.variant, s.http_status, s.body) for s in sim.sent] == [("good", 200, body)]


async def test_result_code_follows_the_state_unless_given(sim: PaymentPlatformSimulator) -> None:
    codes = {"1": "00", "3": "01", "4": "02"}
    for state, code in codes.items():
        body = sim.callback_body(sim.new_transaction(REF, 1_000, state=state))
        assert body["MaLoi"] == code
        assert verify(body, CALLBACK_ORDER, SECRET)
    body = sim.callback_body(sim.new_transaction(REF, 1_000), result_code="51")
    assert body["MaLoi"] == "51"
    assert verify(body, CALLBACK_ORDER, SECRET)


@pytest.mark.parametrize("variant", ["tampered", "bad_signature", "missing_signature"])
async def test_signature_variants_do_not_verify(
    sim: PaymentPlatformSimulator, hub: FakeHub, variant: Any
) -> None:
    tx = sim.new_transaction(REF, 150_000)
    await sim.send_callback(tx, variant)
    [body] = hub.bodies
    assert not verify(body, CALLBACK_ORDER, SECRET)
    assert ("MaXacThuc" in body) == (variant != "missing_signature")
    if variant == "tampered":
        assert body["SoTien"] != "150000"


async def test_repeats_post_the_same_signed_body(
    sim: PaymentPlatformSimulator, hub: FakeHub
) -> None:
    tx = sim.new_transaction(REF, 150_000)
    assert len(await sim.send_callback(tx, "duplicate")) == 2
    assert len(hub.bodies) == 2
    assert hub.bodies[0] == hub.bodies[1]
    hub.bodies.clear()
    assert len(await sim.send_callback(tx, "triple")) == 3
    assert hub.bodies == [sim.callback_body(tx)] * 3


async def test_late_waits_before_posting(sim: PaymentPlatformSimulator, hub: FakeHub) -> None:
    sim.late_delay_s = 0.2
    started = time.monotonic()
    await sim.send_callback(sim.new_transaction(REF, 150_000), "late")
    assert time.monotonic() - started >= 0.2
    assert len(hub.bodies) == 1
    assert verify(hub.bodies[0], CALLBACK_ORDER, SECRET)


async def test_twelve_hour_clock_is_signed_over_the_wrong_format(
    sim: PaymentPlatformSimulator, hub: FakeHub
) -> None:
    tx = sim.new_transaction(REF, 150_000, at=vn(2026, 11, 23, 14, 15, 0))
    await sim.send_callback(tx, "twelve_hour")
    [body] = hub.bodies
    assert body["ThoiGianGD"] == "20261123021500PM"
    assert not (len(body["ThoiGianGD"]) == 14 and body["ThoiGianGD"].isdigit())
    assert verify(body, CALLBACK_ORDER, SECRET)
    assert twelve_hour_time(vn(2026, 1, 2, 0, 5, 0)) == "20260102120500AM"


@pytest.mark.parametrize(
    ("variant", "field", "value"),
    [
        ("non_numeric_amount", "SoTien", "12O000"),
        ("foreign_currency", "MaTienTe", "USD"),
        ("unknown_reference", "MaThamChieu", "KHONG-TON-TAI-01"),
    ],
)
async def test_content_variants_are_correctly_signed(
    sim: PaymentPlatformSimulator, hub: FakeHub, variant: Any, field: str, value: str
) -> None:
    await sim.send_callback(sim.new_transaction(REF, 150_000), variant)
    [body] = hub.bodies
    assert body[field] == value
    assert verify(body, CALLBACK_ORDER, SECRET)


async def test_stale_is_ten_days_old_and_signed(
    sim: PaymentPlatformSimulator, hub: FakeHub
) -> None:
    await sim.send_callback(sim.new_transaction(REF, 150_000), "stale")
    [body] = hub.bodies
    sent_at = datetime.strptime(body["ThoiGianGD"], "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)
    age_days = (datetime.now(VN_TZ) - sent_at).total_seconds() / 86400
    assert 9.99 < age_days < 10.01
    assert verify(body, CALLBACK_ORDER, SECRET)


async def test_every_variant_is_sendable(sim: PaymentPlatformSimulator, hub: FakeHub) -> None:
    sim.late_delay_s = 0.0
    tx = sim.new_transaction(REF, 150_000)
    for variant in VARIANTS:
        await sim.send_callback(tx, variant)
    assert len(hub.bodies) == len(VARIANTS) + 1 + 2  # duplicate +1, triple +2
    assert [s.variant for s in sim.sent].count("triple") == 3


async def test_callbacks_need_a_reachable_callback_url() -> None:
    async with PaymentPlatformSimulator(PARTNER, SECRET) as sim:
        tx = sim.new_transaction(REF, 1_000)
        with pytest.raises(RuntimeError, match="callback_url"):
            await sim.send_callback(tx)
        control = f"{sim.base_url}/_sim/callbacks"
        assert (await post(control, {"transaction_id": tx.transaction_id}))[0] == 409
        async with FakeHub() as gone:
            sim.callback_url = gone.url
        assert (await post(control, {"transaction_id": tx.transaction_id}))[0] == 502


def test_transactions_are_checked() -> None:
    with pytest.raises(ValueError, match="aware"):
        SimTransaction(REF, "GD1", 1_000, at=datetime(2026, 3, 14, 9, 0, 0))
    with pytest.raises(ValueError, match="state"):
        SimTransaction(REF, "GD1", 1_000, state="2")
    with pytest.raises(ValueError, match="paths"):
        PaymentPlatformSimulator(PARTNER, SECRET, status_path="/_sim/status")


# -- control over HTTP ----------------------------------------------------------------------------


async def test_http_control_endpoints(sim: PaymentPlatformSimulator, hub: FakeHub) -> None:
    sim_url = f"{sim.base_url}/_sim"
    items = [
        {"reference": REF, "transaction_id": "GD000111", "amount": 150_000, "at": "20260314091500"},
        {"reference": f"{REF}-02", "amount": 50_000, "at": "20260314101500", "state": "3"},
    ]
    status, reply = await post(f"{sim_url}/transactions", items)
    assert status == 200
    assert reply["transactions"][0]["MaGiaoDich"] == "GD000111"
    second = reply["transactions"][1]["MaGiaoDich"]
    assert second.startswith("GD")
    assert second[2:].isdigit()
    assert sim.transactions["GD000111"].at == vn(2026, 3, 14, 9, 15, 0)

    for bad in (
        {"reference": REF, "amount": "1000"},
        {"amount": 1},
        [{"reference": REF, "amount": 1, "at": "2026"}],
    ):
        status, reply = await post(f"{sim_url}/transactions", bad)
        assert (status, reply["error"]) == (400, "bad_request"), bad

    status, reply = await post(
        f"{sim_url}/callbacks", {"transaction_id": "GD000111", "variant": "duplicate"}
    )
    assert (status, len(reply["replies"])) == (200, 2)
    assert len(hub.bodies) == 2
    assert (await post(f"{sim_url}/callbacks", {"transaction_id": "GD9"}))[0] == 404
    assert (await post(f"{sim_url}/callbacks", {"transaction_id": "GD000111", "variant": "x"}))[
        0
    ] == 400

    status, reply = await post(
        f"{sim_url}/confirmed", {"day": "2026-03-14", "transaction_ids": [second]}
    )
    assert status == 200
    _, listed = await listing(sim, "20260314")
    assert (listed["SoGD"], listed["TongTien"]) == ("1", "50000")
    assert (await post(f"{sim_url}/confirmed", {"day": "2026-03-14", "transaction_ids": ["GD9"]}))[
        0
    ] == 404
    assert (await post(f"{sim_url}/confirmed", {"day": "14/03/2026", "transaction_ids": []}))[
        0
    ] == 400

    status, reply = await post(f"{sim_url}/faults", {"status_outage_remaining": 1})
    assert (status, reply["faults"]["status_outage_remaining"]) == (200, 1)
    assert (await post(f"{sim_url}/faults", {"delay_s": -1}))[0] == 400
    assert (await listing(sim, "20260314"))[0] == 503

    async with aiohttp.ClientSession() as http, http.get(f"{sim_url}/state") as response:
        state = await response.json()
    assert state["transaction_count"] == 2
    assert state["confirmed"] == {"2026-03-14": [second]}
    assert (state["listings"], state["callbacks_sent"]) == (2, 2)
    assert state["faults"]["status_outage_remaining"] == 0
    assert SECRET not in json.dumps(state)

    assert (await post(f"{sim_url}/reset", {}))[0] == 200
    assert (sim.transactions, sim.sent, sim.listings) == ({}, [], 0)


async def test_stop_cuts_a_late_callback_short(hub: FakeHub) -> None:
    sim = PaymentPlatformSimulator(PARTNER, SECRET, callback_url=hub.url, late_delay_s=60.0)
    await sim.start()
    sending = asyncio.create_task(sim.send_callback(sim.new_transaction(REF, 1_000), "late"))
    await asyncio.sleep(0)  # one turn of the loop: the callback is now in its late sleep
    started = time.monotonic()
    await sim.stop()
    await asyncio.wait_for(asyncio.gather(sending, return_exceptions=True), timeout=5.0)
    assert time.monotonic() - started < 5.0
