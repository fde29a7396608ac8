"""The dossier flow's cut-over and lost-reply handling against a DVCQG double written from
PROTOCOL.md (`doubles.Dvcqg`), not the project's simulator: a step of a dossier DVCQG holds
but the hub never saw goes through, one nobody holds is refused with DVCQG's `06`, and a step
whose reply was lost is settled with `TraCuuHoSo`, never sent twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.dlq import ParkingQueue
from hub.runtime import Hub
from tests.integration.doubles import Dvcqg, step_identity
from tests.integration.status_world import FacadeCaller, caller
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually, hub_config
from tests.support.serving import serve

__all__ = ["caller"]  # the world's fixture, on this module's hub

pytestmark = pytest.mark.broker


@pytest.fixture
async def portal() -> AsyncIterator[Dvcqg]:
    double = Dvcqg(PORTAL_USER, PORTAL_PASSWORD)
    yield double
    double.released.set()


@pytest.fixture
async def hub(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, portal: Dvcqg
) -> AsyncIterator[Hub]:
    async with serve(portal.app()) as base:
        config = hub_config(tmp_path, rabbit_url, broker_prefix, f"{base}/api")
        async with Hub(config) as h:
            yield h
        portal.released.set()  # a held reply must not hold the server's shutdown


def step_of(code: str, when: str, content: str, status: str = "4") -> dict[str, Any]:
    return {"MaHoSo": code, "TrangThai": status, "ThoiDiemXuLy": when, "NoiDungXuLy": content}


async def test_at_cut_over_a_step_dvcqg_holds_goes_and_one_nobody_holds_is_refused_with_06(
    hub: Hub, portal: Dvcqg, caller: FacadeCaller
) -> None:
    before = "000.00.41.H41-261101-0911"  # the one-stop sent its record before the hub existed
    nowhere = "000.00.41.H41-261101-0912"
    portal.records[before] = {"MaHoSo": before, "TrangThaiHoSo": "4"}
    held_step = step_of(before, "20261201080000", "Thẩm định hồ sơ")

    status, reply = await caller.call(
        "CapNhatTienDoHoSoMC",
        data=[held_step, step_of(nowhere, "20261201090000", "Thẩm định hồ sơ")],
    )

    assert (status, reply["error_code"]) == (200, "00"), reply
    await eventually(lambda: portal.steps.get(before), 30, "the step at the DVCQG double")
    # The hub asked DVCQG about both (the second may be asked after the first step went).
    await eventually(
        lambda: portal.calls["TraCuuHoSo"] >= 2, 30, "the hub asking DVCQG about both dossiers"
    )
    assert hub.broker is not None
    assert hub.store is not None
    parking = ParkingQueue(hub.broker, hub.consumers["national_portal"].queues, hub.store)

    async def parked() -> list[Any]:
        return [m for m in await parking.browse() if m.body.get("dossier_code") == nowhere]

    (refused,) = await eventually(parked, 30, "the step of a dossier nobody holds, parked")
    assert refused.code == "06"
    assert "must send its record (DongBoHoSoMC)" in refused.reason
    assert nowhere not in portal.steps
    assert portal.receipts[step_identity(held_step)] == 1


async def test_a_step_whose_reply_was_lost_is_settled_by_a_lookup_and_sent_once(
    hub: Hub, portal: Dvcqg, caller: FacadeCaller
) -> None:
    code = "000.00.41.H41-261101-0913"
    record = {
        "MaHoSo": code,
        "TrangThaiHoSo": "2",
        "NgayTiepNhan": "20261101080000",
        "ChuHoSo": "Phạm Thị Dung",
        "MaTTHC": "1.000494",
    }
    status, reply = await caller.call("DongBoHoSoMC", isUpdating="False", data=[record])
    assert (status, reply["error_code"]) == (200, "00"), reply
    await eventually(lambda: code in portal.records, 30, "the record at the DVCQG double")

    portal.lose_replies = True  # applied, but the hub gives up waiting (timeout_s 2)
    step = step_of(code, "20261101090000", "Bổ sung giấy tờ tại quầy", status="2")
    status, reply = await caller.call("CapNhatTienDoHoSoMC", data=[step])
    assert (status, reply["error_code"]) == (200, "00"), reply
    await eventually(lambda: portal.receipts[step_identity(step)] == 1, 30, "the step applied")
    lookups = portal.calls["TraCuuHoSo"]
    portal.lose_replies = False  # the held reply is answered after the hub gave up (hold_s 6)
    assert hub.store is not None
    store = hub.store

    async def confirmed() -> bool:
        work = await store.delivery_work("national_portal", [code])
        return not work[code].steps

    await eventually(confirmed, 60, "the step confirmed once the double answers again")
    assert portal.calls["TraCuuHoSo"] > lookups  # settled by asking DVCQG
    assert portal.receipts[step_identity(step)] == 1  # and never sent a second time
    assert len(portal.steps[code]) == 1
