"""Bad catalogue records are quarantined with their reason while the rest syncs; a subscriber
that is down gets every event once it is back; one that refuses an event gets it parked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from connectors.national_portal.procedures.records import RunState
from connectors.webhook.client import connector_name
from hub.dlq import ParkingQueue
from tests.integration.procedure_world import CATALOGUE_SIZE, World, synced, world
from tests.support import eventually
from tests.support.parking import wait_parked

__all__ = ["world"]  # the fixture, shared with the flow tests


def _good(world: World, index: int) -> tuple[str, dict[str, Any]]:
    code = sorted(world.sim.catalogue.records)[index]
    return code, world.sim.catalogue.records[code]


def _with_time_limit(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "KENH": "2",
        "THOIGIAN": [
            {
                "THOIGIANGIAIQUYET": "5",
                "DONVITINH": "Ngày làm việc",
                "MOTA": "",
                "PHILEPHI": [{"MAPHILEPHI": "LP01", "SOTIEN": "50000", "DONVI": "Đồng"}],
            }
        ],
    }
    channel["THOIGIAN"][0].update(changes.pop("time", {}))
    channel["THOIGIAN"][0]["PHILEPHI"][0].update(changes.pop("fee", {}))
    return {**record, "CACHTHUCTHUCHIEN": [channel], **changes}


def _fee(amount: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda r: _with_time_limit(r, fee={"SOTIEN": amount})


# (label, how to spoil the record, words expected in the reason, field, the reason's code)
Spoil = Callable[[dict[str, Any]], dict[str, Any]]
BAD_RECORDS: list[tuple[str, Spoil, str, str, str]] = [
    (
        "no code",
        lambda r: {k: v for k, v in r.items() if k != "MATTHC"},
        "required",
        "MATTHC",
        "missing",
    ),
    ("negative fee", _fee("-5000"), "non-negative", "SOTIEN", "bad_amount"),
    ("non-numeric fee", _fee("abc"), "whole amount", "SOTIEN", "bad_amount"),
    (
        "unknown unit",
        lambda r: _with_time_limit(r, time={"DONVITINH": "Tuần trăng"}),
        "unknown time unit",
        "DONVITINH",
        "unknown_unit",
    ),
    (
        "broken list",
        lambda r: {**r, "THANHPHANHOSO": "not a list"},
        "valid list",
        "THANHPHANHOSO",
        "wrong_type",
    ),
]


async def test_each_bad_record_is_quarantined_while_the_rest_syncs(world: World) -> None:
    spoiled: dict[str, tuple[str, str, str]] = {}
    for i, (_, spoil, words, field, why) in enumerate(BAD_RECORDS):
        code, record = _good(world, i)
        world.sim.catalogue.set_raw(code, spoil(record))
        spoiled[code] = (words, field, why)
    not_json, _ = _good(world, len(BAD_RECORDS))
    world.sim.catalogue.set_raw(not_json, "<html>Bảo trì hệ thống</html>")
    spoiled[not_json] = ("not JSON", "", "not_json")
    good = CATALOGUE_SIZE - len(spoiled)

    runs = await world.sync.run()

    assert runs[-1].state is RunState.done
    assert runs[-1].counts == {"created": good, "quarantined": len(spoiled)}
    await world.settle(good)
    assert not {e["code"] for e in world.receiver.events} & set(spoiled), "a bad record leaked"
    status, quarantine = await world.get("/procedure-quarantine")
    assert status == 200
    found = {q["code"]: q for q in quarantine["items"]}
    assert set(found) == set(spoiled)
    for code, (words, field, why) in spoiled.items():
        assert words in found[code]["reason"], (code, found[code])
        assert field in (found[code]["field"] or ""), (code, found[code])
        assert found[code]["reason_code"] == why, (code, found[code])  # the console words it
    assert "Bảo trì" in found[not_json]["excerpt"]
    for code in spoiled:
        status, _ = await world.get(f"/procedures/{code}")
        assert status == 404, "a quarantined record must not be stored as a procedure"


async def test_a_record_that_turns_bad_keeps_its_version_and_is_fixed_later(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)
    code, record = _good(world, 0)
    world.sim.catalogue.set_raw(code, _with_time_limit(record, fee={"SOTIEN": "-1"}))

    runs = await world.sync.run()

    assert runs[-1].counts == {"unchanged": CATALOGUE_SIZE - 1, "quarantined": 1}
    await world.settle(CATALOGUE_SIZE)
    status, view = await world.get(f"/procedures/{code}")
    assert (status, view["state"], view["version"]) == (200, "active", 1)

    world.sim.catalogue.clear_raw(code)
    await synced(world, CATALOGUE_SIZE)  # the original record again: nothing to announce
    status, open_entries = await world.get("/procedure-quarantine")
    assert code not in {q["code"] for q in open_entries["items"]}
    status, history = await world.get("/procedure-quarantine?include_resolved=true")
    assert code in {q["code"] for q in history["items"]}


async def test_a_list_entry_without_a_code_is_quarantined(world: World) -> None:
    world.sim.catalogue.set_raw("1.999999", {"TENTTHC": "Thủ tục không mã"})
    # The national list names it, but its record has no MATTHC.
    runs = await world.sync.run()
    assert runs[-1].counts["quarantined"] == 1
    _, quarantine = await world.get("/procedure-quarantine")
    assert [(q["code"], q["reason_code"]) for q in quarantine["items"]] == [("1.999999", "missing")]


async def test_a_subscriber_outage_loses_no_event_and_parks_none(world: World) -> None:
    # Down for longer than every delay tier together: the events wait (nothing parked, no
    # retry spent) and each arrives once when the subscriber is back, with no operator.
    world.receiver.faults.mode = "http_503"
    runs = await world.sync.run()
    assert runs[-1].state is RunState.done
    consumer = world.hub.consumers[connector_name("one_stop")]
    await eventually(
        lambda: (
            consumer.gate.outage is not None
            and time.time() - consumer.gate.outage.started_at > 3 * (0.2 + 0.4)
            and consumer.gate.outage.probes >= 2
        ),
        30,
        "the subscriber's outage outlasting every delay tier, probed twice",
    )
    parking = _parking(world)
    assert await parking.browse() == []
    assert world.receiver.events == []
    assert (consumer.stats.retried, consumer.stats.parked) == (0, 0)
    world.receiver.faults.mode = "ok"
    await world.settle(CATALOGUE_SIZE)
    assert await parking.browse() == []
    assert sorted(e["code"] for e in world.receiver.events) == sorted(world.sim.catalogue.records)
    assert sum(world.receiver.receipts.values()) == CATALOGUE_SIZE


def _parking(world: World) -> ParkingQueue:
    broker, store = world.hub.broker, world.hub.store
    assert broker is not None
    assert store is not None
    queues = broker.topology.queues(connector_name("one_stop"), [0.2, 0.4])
    return ParkingQueue(broker, queues, store)


async def test_an_event_the_subscriber_refuses_is_parked_with_the_reason(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)
    world.receiver.faults.reject_types = ["procedure.locked"]
    code, _ = _good(world, 2)
    world.sim.catalogue.remove(code)

    await world.sync.run()

    parking = _parking(world)
    parked = await wait_parked(parking, 1)
    assert len(parked) == 1, parked
    assert (parked[0].body["code"], parked[0].body["type"]) == (code, "procedure.locked")
    assert "HTTP 422" in parked[0].reason
    assert parked[0].code == "422"
    # Fixed at the subscriber, replayed by an operator: delivered once.
    world.receiver.faults.reject_types = []
    assert await parking.replay(lambda m: True, actor="test") == 1
    await world.settle(CATALOGUE_SIZE + 1)


@pytest.mark.parametrize("mode", ["http_503", "timeout"])
async def test_a_portal_outage_fails_the_run_cleanly(world: World, mode: str) -> None:
    world.sim.faults.update({"mode": mode, "timeout_sleep_s": 3})
    runs = await world.sync.run()
    assert runs[-1].state is RunState.failed
    assert "national list" in (runs[-1].detail or "")
    world.sim.faults.update({"mode": "ok"})
    await synced(world, CATALOGUE_SIZE)  # the next run is fine


async def test_a_malformed_reference_list_entry_is_skipped(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sims.national_portal import simulator

    good = {"MALINHVUC": "G09-TP01", "TENLINHVUC": "Hộ tịch"}
    monkeypatch.setattr(
        simulator,
        "field_list",
        lambda: [good, {"MALINHVUC": "X", "TENLINHVUC": "quá dài " * 100}, {"MALINHVUC": {}}],
    )
    await synced(world, CATALOGUE_SIZE)
    _, fields = await world.get("/catalogue-lists/fields")
    assert [f["code"] for f in fields["items"]] == ["G09-TP01"]


async def test_a_refused_login_mid_run_stops_the_run_partial(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)
    world.sim.catalogue.rename(sorted(world.sim.catalogue.records)[0], "Tên mới")
    # The list is read, then the portal stops accepting the hub's credentials.
    original = world.sim._procedure

    def refuse_after_first(body: dict[str, Any]) -> Any:
        world.sim.password = "changed-by-the-portal"
        world.sim.expire_sessions()
        return original(body)

    world.sim._catalogue_services["LayThuTuc"] = refuse_after_first
    runs = await world.sync.run()

    assert runs[-1].state is RunState.partial
    assert "stopped early" in (runs[-1].detail or "")
    assert "login" in (runs[-1].detail or "")
    assert runs[-1].counts.get("pending", 0) > 0  # left for the next sync
