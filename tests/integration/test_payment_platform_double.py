"""Payment times against a platform double written from PROTOCOL.md (`doubles.PaymentPlatform`:
its own signatures, its own listing), not the project's simulator: the reconciliation
compares each transaction's time and names a difference of whole hours (a 12-hour clock) as a
probable clock error; a callback from too far in the future is refused with its own code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.config import load_config
from hub.runtime import Hub
from hub.validation import VN_TZ
from tests.integration.doubles import Dvcqg, OneStop, PaymentPlatform
from tests.integration.payments_world import (
    FEE,
    PARTNER,
    SECRET,
    SUB_TOKEN,
    code,
    payment_overrides,
)
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER, eventually
from tests.support.serving import serve

pytestmark = pytest.mark.broker
WIRE = "%Y%m%d%H%M%S"


@dataclass
class World:
    hub: Hub
    platform: PaymentPlatform
    one_stop: OneStop
    http: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hub.port}"

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            return r.status, await r.json()

    async def dossier(self, n: int) -> str:
        dossier = code(n)
        event = {
            "event_id": f"ev-{dossier}",
            "dossier_code": dossier,
            "kind": "record",
            "status": "payment_requested",
            "occurred_at": (datetime.now(VN_TZ) - timedelta(days=2)).isoformat(),
            "record": {"fees": [{"name": "Lệ phí", "amount_vnd": FEE}]},
        }
        status, reply = await self.call("POST", "/api/v1/dossier-events", {"events": [event]})
        assert (status, reply["results"][0]["outcome"]) == (200, "accepted"), reply
        return dossier

    async def callback(self, body: dict[str, str]) -> str:
        path = self.hub.config.connectors.payment_platform.callback_path
        async with self.http.post(self.base + path, json=body) as r:
            return str((await r.json())["MaLoi"])

    async def acknowledged(self, dossier: str) -> None:
        store = self.hub.store
        assert store is not None

        async def recorded() -> bool:
            payments = (await store.dossier(dossier)).payments
            return any(p.acknowledged_at is not None for p in payments)

        await eventually(recorded, 30, f"the one-stop's receipt of {dossier}'s payment")


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[World]:
    portal = Dvcqg(PORTAL_USER, PORTAL_PASSWORD)
    platform = PaymentPlatform(PARTNER, SECRET)
    one_stop = OneStop(SUB_TOKEN)
    async with AsyncExitStack() as stack:
        portal_url = await stack.enter_async_context(serve(portal.app()))
        platform_url = await stack.enter_async_context(serve(platform.app()))
        one_stop_url = await stack.enter_async_context(serve(one_stop.app()))
        overrides = payment_overrides(
            tmp_path,
            rabbit_url,
            broker_prefix,
            f"{portal_url}/api",
            platform_url,
            f"{one_stop_url}/events",
        )
        hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield World(hub, platform, one_stop, http)
        portal.released.set()


async def test_the_reconciliation_names_a_twelve_hour_clock_and_a_plain_time_difference(
    world: World,
) -> None:
    day = datetime.now(VN_TZ).date() - timedelta(days=1)
    noon = datetime.combine(day, datetime.min.time(), VN_TZ) + timedelta(hours=12)
    # (dossier, the hub's time from the callback, the platform's time in its listing)
    cases = {
        "on_time": (await world.dossier(31), noon - timedelta(hours=2), timedelta(minutes=1)),
        "twelve_hour": (await world.dossier(32), noon + timedelta(hours=2, minutes=5), None),
        "minutes": (await world.dossier(33), noon - timedelta(hours=3), timedelta(minutes=47)),
    }
    rows = []
    for name, (dossier, at, shift) in cases.items():
        tx = f"GD-{name}"
        fields = {"MaThamChieu": dossier, "SoTien": str(FEE), "MaGiaoDich": tx}
        callback = world.platform.callback(**fields, ThoiGianGD=at.strftime(WIRE))
        assert await world.callback(callback) == "00"
        await world.acknowledged(dossier)
        # A 12-hour dial writes 14:05 as 02:05 (`hh` for `HH`).
        listed = at.strftime("%Y%m%d%I%M%S") if shift is None else (at + shift).strftime(WIRE)
        rows.append(fields | {"MaTienTe": "VND", "MaNganHang": "VCB", "TrangThaiGD": "1"})
        rows[-1]["ThoiGianGD"] = listed
    world.platform.listed[day.strftime("%Y%m%d")] = rows

    status, report = await world.call("POST", f"/api/v1/payments/reconciliation?date={day}")

    assert status == 200, report
    assert world.platform.requests, "the hub never asked the platform for its listing"
    found = {f["transaction_id"]: f for f in report["findings"]}
    assert set(found) == {"GD-twelve_hour", "GD-minutes"}, report["findings"]
    assert {f["kind"] for f in found.values()} == {"time_mismatch"}
    clock = found["GD-twelve_hour"]["detail"]
    assert "12 h earlier" in clock, clock
    assert "probably a clock error" in clock, clock
    plain = found["GD-minutes"]["detail"]
    assert "2820 s apart" in plain, plain
    assert "clock error" not in plain, plain
    assert report["summary"]["platform_confirmed"] == 3


async def test_a_callback_from_the_future_is_refused_with_its_own_code(world: World) -> None:
    now = datetime.now(VN_TZ)
    ahead = await world.dossier(34)
    soon = await world.dossier(35)

    def paid(dossier: str, at: datetime) -> dict[str, str]:
        fields = {"MaThamChieu": dossier, "SoTien": str(FEE), "MaGiaoDich": f"GD-{dossier}"}
        return world.platform.callback(**fields, ThoiGianGD=at.strftime(WIRE))

    assert await world.callback(paid(ahead, now + timedelta(hours=3))) == "99"  # a wrong zone
    assert await world.callback(paid(soon, now + timedelta(minutes=2))) == "00"  # clock skew

    status, log = await world.call("GET", "/api/v1/payments/callbacks?verdict=refused")
    assert status == 200, log
    assert [(c["reference"], c["code"]) for c in log["callbacks"]] == [(ahead, "future_time")]
    await eventually(lambda: world.one_stop.events, 30, "the accepted payment at the one-stop")
    assert [e["dossier_code"] for e in world.one_stop.events] == [soon]
