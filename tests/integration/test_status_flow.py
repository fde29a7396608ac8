"""Dossier status sync end to end, in process: facade → store → RabbitMQ → DVCQG simulator.

Real RabbitMQ node (session fixture), real loopback HTTP servers, the real hub.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from connectors.national_portal.mapping import InboundContext, record_event
from hub.dlq import ParkingQueue
from hub.runtime import Hub
from hub.status_mapping import StatusTable
from hub.store.opening import open_store
from hub.validation import Validator
from sims.national_portal.simulator import DvcqgSimulator, step_key
from sims.one_stop.simulator import OneStopTraffic
from tests.integration.status_world import (
    FacadeCaller,
    caller,
    expected_state,
    facade_url,
    hub,
    sim,
    sim_steps,
)
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_USER,
    UNIT,
    eventually,
    hub_config,
)
from tests.support.parking import wait_parked

__all__ = ["caller", "hub", "sim"]  # the world's fixtures


async def test_many_dossiers_reach_the_portal_newest_state_and_every_step_once(
    hub: Hub, sim: DvcqgSimulator
) -> None:
    traffic = OneStopTraffic(facade_url(hub), ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=7)
    report = await traffic.run(traffic.plan(40))
    statuses, steps = expected_state(report)
    assert len(statuses) == 40
    assert len(steps) >= 120  # several steps each

    def portal_has_everything() -> bool:
        held = {c: str(d["TrangThaiHoSo"]) for c, d in sim.dossiers.items()}
        return held == statuses and sim_steps(sim) == steps

    await eventually(
        portal_has_everything, 30, "every dossier's newest status and every step at DVCQG"
    )
    assert all(count == 1 for count in sim.step_receipts.values()), "a step was sent twice"
    # The hub's own look-up answers from its store with the same newest state.
    code, status = next(iter(statuses.items()))
    async with aiohttp.ClientSession() as http:
        c = FacadeCaller(http, facade_url(hub))
        await c.login()
        http_status, reply = await c.call("TraCuuHoSo", mahoso=code)
    assert http_status == 200
    assert reply["error_code"] == "00"
    assert reply["data"]["TrangThaiHoSo"] == status
    assert len(reply["data"]["QuaTrinhXuLy"]) == sum(1 for s in steps if s[0] == code)


async def test_replayed_duplicated_and_shuffled_events_never_regress(
    hub: Hub, sim: DvcqgSimulator, caller: FacadeCaller
) -> None:
    traffic = OneStopTraffic(facade_url(hub), ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=11)
    scripts = traffic.plan(15)
    # Every record and step, each twice, in a random order: what a confused adapter might send.
    records = [r for s in scripts for r, _ in s.pairs] * 2
    steps = [st for s in scripts for _, st in s.pairs] * 2
    rng = random.Random(3)
    rng.shuffle(records)
    rng.shuffle(steps)
    for i in range(0, len(records), 25):
        status, reply = await caller.call(
            "DongBoHoSoMC", isUpdating="False", data=records[i : i + 25]
        )
        assert (status, reply["error_code"]) == (200, "00"), reply
    for i in range(0, len(steps), 25):
        status, reply = await caller.call("CapNhatTienDoHoSoMC", data=steps[i : i + 25])
        assert (status, reply["error_code"]) == (200, "00"), reply

    newest = {s.code: str(s.pairs[-1][0]["TrangThaiHoSo"]) for s in scripts}
    unique_steps = {step_key(st) for s in scripts for _, st in s.pairs}

    def settled() -> bool:
        held = {c: str(d["TrangThaiHoSo"]) for c, d in sim.dossiers.items()}
        return held == newest and sim_steps(sim) == unique_steps

    await eventually(settled, 30, "the newest statuses and each step once at DVCQG")
    assert all(count == 1 for count in sim.step_receipts.values())
    assert hub.store is not None
    for code, newest_status in newest.items():
        view = await hub.store.dossier(code)
        assert view.snapshot is not None
        assert str(int(view.snapshot.status)) == newest_status
        # Duplicates were recognised: history holds each distinct event once.
        kinds = [h.kind for h in view.history]
        script = next(s for s in scripts if s.code == code)
        assert kinds.count("step") == len(script.pairs)


async def test_portal_outage_recovers_then_a_refused_dossier_is_parked_and_replayed(
    hub: Hub, sim: DvcqgSimulator, caller: FacadeCaller
) -> None:
    traffic = OneStopTraffic(facade_url(hub), ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=5)
    first, second = traffic.plan(2)
    # A short outage (503s, then time-outs): delivered on recovery, nothing parked.
    sim.faults.mode = "http_503"
    record, step = first.pairs[0]
    assert (await caller.call("DongBoHoSoMC", isUpdating="False", data=[record]))[1][
        "error_code"
    ] == "00"
    assert (await caller.call("CapNhatTienDoHoSoMC", data=[step]))[1]["error_code"] == "00"
    portal = hub.connector("national_portal")
    assert portal is not None
    assert portal.guard is not None
    gate = portal.guard.gate

    def met(error: str) -> bool:
        return gate.outage is not None and error in gate.outage.last_error

    await eventually(lambda: met("HTTP 503"), 30, "the hub meeting DVCQG's 503s")
    sim.faults.timeout_sleep_s = 5
    sim.faults.mode = "timeout"
    await eventually(lambda: met("in time"), 30, "the hub meeting DVCQG's time-outs")
    assert first.code not in sim.dossiers
    sim.faults.mode = "ok"
    await eventually(
        lambda: first.code in sim.dossiers and step_key(step) in sim_steps(sim),
        30,
        "the first dossier and its step at DVCQG once it is back",
    )

    # A refusal of the item itself (not an outage): parked with why, replayed by an operator.
    sim.faults.reject = {second.code: "07"}
    record, _ = second.pairs[0]
    assert (await caller.call("DongBoHoSoMC", isUpdating="False", data=[record]))[1][
        "error_code"
    ] == "00"
    assert hub.broker is not None
    assert hub.store is not None
    parking = ParkingQueue(
        hub.broker, hub.broker.topology.queues("national_portal", [0.3, 0.6, 1.0]), hub.store
    )
    parked = await wait_parked(parking, 1)
    assert [p.body["dossier_code"] for p in parked] == [second.code]  # the outage parked none
    assert "refused DongBoHoSoMC" in parked[0].reason
    assert parked[0].code == "07"
    assert second.code not in sim.dossiers

    sim.faults.reject = {}
    replayed = await parking.replay(lambda m: True, actor="tester")
    assert replayed == 1
    await eventually(lambda: second.code in sim.dossiers, 30, "the replayed dossier at DVCQG")
    assert await parking.browse() == []
    audit = await hub.store.audit_entries(10)
    assert audit[0].action == "dlq.replay"
    assert audit[0].actor == "tester"
    assert audit[0].detail["dossier_code"] == second.code


async def test_per_item_rejection_by_the_portal_is_parked_with_its_reason(
    hub: Hub, sim: DvcqgSimulator, caller: FacadeCaller
) -> None:
    traffic = OneStopTraffic(facade_url(hub), ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=9)
    good, bad = traffic.plan(2)
    sim.faults.reject = {bad.code: "07"}
    records = [good.pairs[0][0], bad.pairs[0][0]]
    assert (await caller.call("DongBoHoSoMC", isUpdating="False", data=records))[1][
        "error_code"
    ] == "00"
    await eventually(lambda: good.code in sim.dossiers, 30, "the good dossier at DVCQG")
    assert hub.broker is not None
    assert hub.store is not None
    parking = ParkingQueue(
        hub.broker, hub.broker.topology.queues("national_portal", [0.3, 0.6, 1.0]), hub.store
    )
    found = await wait_parked(parking, 1)
    assert [p.body["dossier_code"] for p in found] == [bad.code]
    assert "07" in found[0].reason
    assert bad.code not in sim.dossiers
    # The dossier's timeline: DVCQG's refusal, then the parking (journalled once settled).
    store = hub.store
    outcomes: list[tuple[str, str | None]] = []

    async def settled() -> bool:
        lines = (await store.dossier(bad.code)).deliveries
        outcomes[:] = [(d.outcome, d.reason_code) for d in lines]
        return len(outcomes) > 1

    await eventually(settled, 30, lambda: f"the refusal and the parking journalled: {outcomes}")
    # Each with DVCQG's own code beside the hub's text (the console words the code).
    assert outcomes == [("refused", "07"), ("parked", "07")]


async def test_expired_portal_session_is_renewed_without_losing_anything(
    hub: Hub, sim: DvcqgSimulator, caller: FacadeCaller
) -> None:
    traffic = OneStopTraffic(facade_url(hub), ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=13)
    one, two = traffic.plan(2)
    await caller.call("DongBoHoSoMC", isUpdating="False", data=[one.pairs[0][0]])
    await eventually(lambda: one.code in sim.dossiers, 30, "the first dossier at DVCQG")
    logins = sim.logins
    sim.expire_sessions()
    await caller.call("DongBoHoSoMC", isUpdating="False", data=[two.pairs[0][0]])
    await eventually(
        lambda: two.code in sim.dossiers, 30, "the second dossier at DVCQG, after a new login"
    )
    assert sim.logins == logins + 1


async def test_events_committed_but_never_published_are_sent_after_a_restart(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, sim: DvcqgSimulator
) -> None:
    config = hub_config(tmp_path, rabbit_url, broker_prefix, sim.url)
    script = OneStopTraffic("http://unused", "u", "p", UNIT, seed=17).plan(1)[0]
    ctx = InboundContext(
        "onestop",
        StatusTable.load(config.mappings_dir / "one_stop_generic.yaml"),
        Validator(config.validation),
        datetime.now(UTC),
    )
    # A previous process committed the item and answered "00", then died before publishing.
    async with open_store(config.store) as store:
        outcome = await store.ingest([record_event(script.pairs[0][0], ctx)], datetime.now(UTC))
        assert len(outcome.outbox) == 1
    async with Hub(config) as hub:
        await eventually(
            lambda: script.code in sim.dossiers,
            30,
            "the unpublished event at DVCQG after the restart",
        )
        live = hub.store
        assert live is not None

        async def outbox_empty() -> bool:  # published rows are deleted in bulk, a moment later
            return await live.outbox_pending(0, 10) == []

        await eventually(outbox_empty, 30, "the published outbox row deleted")


async def test_shutdown_finishes_the_batch_in_flight(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, sim: DvcqgSimulator
) -> None:
    config = hub_config(tmp_path, rabbit_url, broker_prefix, sim.url)
    script = OneStopTraffic("http://unused", "u", "p", UNIT, seed=19).plan(1)[0]
    sim.faults.mode = "slow"
    sim.faults.delay_s = 1.5
    async with Hub(config) as hub, aiohttp.ClientSession() as http:
        caller = FacadeCaller(http, facade_url(hub))
        await caller.login()
        await caller.call("DongBoHoSoMC", isUpdating="False", data=[script.pairs[0][0]])
        await eventually(lambda: sim.calls["DongBoHoSoMC"] > 0, 30, "a DongBoHoSoMC call at DVCQG")
        # Leaving the block stops the hub while DVCQG is still answering that call.
    assert script.code in sim.dossiers
    async with open_store(config.store) as store:
        work = await store.delivery_work("national_portal", [script.code])
    assert work[script.code].up_to_date, "the delivery was not recorded before shutdown"


async def test_cut_over_steps_of_a_dossier_dvcqg_already_holds_go_and_others_are_refused(
    hub: Hub, sim: DvcqgSimulator, caller: FacadeCaller
) -> None:
    """Before the hub was installed, the one-stop sent a record to DVCQG directly; now only
    its steps come through the hub. They reach DVCQG; a step of a dossier neither the hub nor
    DVCQG holds is refused with DVCQG's own code, never answered and dropped."""
    before = "000.00.41.H41-261101-0901"  # sent to DVCQG before the cut-over
    nowhere = "000.00.41.H41-261101-0902"  # held by nobody
    sim.dossiers[before] = {"MaHoSo": before, "TrangThaiHoSo": "4"}

    def step_of(code: str, minute: int) -> dict[str, Any]:
        return {
            "MaHoSo": code,
            "TrangThai": "4",
            "ThoiDiemXuLy": f"202612010{minute}0000",
            "NoiDungXuLy": "Thẩm định hồ sơ",
        }

    status, reply = await caller.call(
        "CapNhatTienDoHoSoMC", data=[step_of(before, 8), step_of(nowhere, 9)]
    )
    assert (status, reply["error_code"]) == (200, "00"), reply
    await eventually(lambda: len(sim.steps.get(before, [])) == 1, 30, "the step at DVCQG")

    consumer = hub.consumers["national_portal"]
    assert hub.broker is not None
    assert hub.store is not None
    parking = ParkingQueue(hub.broker, consumer.queues, hub.store)
    found: list[Any] = []

    async def refused() -> bool:
        found[:] = [m for m in await parking.browse() if m.body.get("dossier_code") == nowhere]
        return bool(found)

    await eventually(refused, 30, "the step of a dossier nobody holds, parked")
    assert found[0].code == "06"
    assert "must send its record (DongBoHoSoMC)" in found[0].reason
    assert nowhere not in sim.steps


async def test_steps_whose_reply_was_lost_are_settled_with_a_lookup_not_sent_twice(
    hub: Hub, sim: DvcqgSimulator, caller: FacadeCaller
) -> None:
    """DVCQG applies a step, then its reply never comes (the hub times out). When DVCQG
    answers again, the hub asks it (TraCuuHoSo) which steps it holds instead of repeating."""
    code = "000.00.41.H41-261101-0903"
    record = {
        "MaHoSo": code,
        "TrangThaiHoSo": "2",
        "NgayTiepNhan": "20261101080000",
        "ChuHoSo": "Phạm Thị Dung",
        "MaTTHC": "1.000494",
    }
    status, reply = await caller.call("DongBoHoSoMC", isUpdating="False", data=[record])
    assert (status, reply["error_code"]) == (200, "00"), reply
    await eventually(lambda: code in sim.dossiers, 30, "the record at DVCQG")

    sim.faults.update({"mode": "lost_reply", "timeout_sleep_s": 4.0})  # the hub waits 2 s
    step = {  # in the status the dossier has: the step call is the only call
        "MaHoSo": code,
        "TrangThai": "2",
        "ThoiDiemXuLy": "20261101090000",
        "NoiDungXuLy": "Bổ sung giấy tờ tại quầy",
    }
    status, reply = await caller.call("CapNhatTienDoHoSoMC", data=[step])
    assert (status, reply["error_code"]) == (200, "00"), reply
    await eventually(lambda: len(sim.steps.get(code, [])) == 1, 30, "the step applied")
    lookups = sim.calls["TraCuuHoSo"]
    sim.faults.update({"mode": "ok"})
    assert hub.store is not None
    store = hub.store

    async def confirmed() -> bool:
        work = await store.delivery_work("national_portal", [code])
        return not work[code].steps

    await eventually(confirmed, 60, "the step confirmed after DVCQG answered again")
    assert sim.calls["TraCuuHoSo"] > lookups  # settled by asking
    assert sim.step_receipts[step_key(step)] == 1  # and never sent twice
