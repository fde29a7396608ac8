"""Procedure master data end to end: the DVCQG simulator's catalogue, a real RabbitMQ, the hub
in process, and a loopback subscriber that records every event it is sent.
"""

from __future__ import annotations

from typing import Any

from connectors.national_portal.procedures.records import RunState
from tests.integration.procedure_world import CATALOGUE_SIZE, World, synced, world
from tests.support import READER_TOKEN

__all__ = ["world"]  # the world's fixture


async def test_first_sync_stores_each_procedure_once_and_announces_it_once(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)

    created = world.receiver.by_type("procedure.created")
    assert sorted(e["code"] for e in created) == sorted(world.sim.catalogue.records)
    assert sum(world.receiver.receipts.values()) == CATALOGUE_SIZE  # no event sent twice
    assert all(e["version"] == 1 and e["diff"] == [] for e in created)
    code = created[0]["code"]
    wire = world.sim.catalogue.records[code]
    assert created[0]["procedure"]["name"] == wire["TENTTHC"]
    assert created[0]["localized_code"] == f"{code}.000.00.00.H41"
    # Concurrency is bounded by configuration.
    assert world.sim.peak_in_flight <= 4

    status, page = await world.get("/procedures?limit=1000")
    assert status == 200
    assert sorted(i["code"] for i in page["items"]) == sorted(world.sim.catalogue.records)
    assert {i["version"] for i in page["items"]} == {1}
    status, fields = await world.get("/catalogue-lists/fields")
    assert status == 200
    assert fields["items"], "the reference lists are stored"


async def test_a_second_sync_with_nothing_changed_announces_nothing(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)
    runs = await world.sync.run()
    assert runs[-1].counts == {"unchanged": CATALOGUE_SIZE}
    # A sentinel change after it: if the no-change sync had published anything, it would have
    # reached the subscriber before or with the sentinel.
    code = sorted(world.sim.catalogue.records)[0]
    world.sim.catalogue.rename(code, "Tên đã sửa")
    await world.sync.run(codes=[code])
    await world.settle(CATALOGUE_SIZE + 1)
    assert world.receiver.events[-1]["code"] == code


async def test_a_fee_change_locks_the_old_version_and_announces_the_diff(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)
    code = next(c for c, r in sorted(world.sim.catalogue.records.items()) if _has_fee(r))
    old_fee = world.sim.catalogue.records[code]["CACHTHUCTHUCHIEN"][0]["THOIGIAN"][0]
    old_amount = int(old_fee["PHILEPHI"][0]["SOTIEN"])
    world.sim.catalogue.set_fee(code, str(old_amount + 15_000))

    await synced(world, CATALOGUE_SIZE + 1)

    event = world.receiver.events[-1]
    assert (event["type"], event["change"], event["code"]) == (
        "procedure.updated",
        "substantive",
        code,
    )
    assert (event["version"], event["locked_version"], event["lock_reason"]) == (2, 1, "superseded")
    assert event["diff"] == [
        {
            "path": "/channels/0/time_limits/0/fees/0/amount_vnd",
            "before": old_amount,
            "after": old_amount + 15_000,
            "substantive": True,
        }
    ]
    status, view = await world.get(f"/procedures/{code}")
    assert status == 200
    assert (view["version"], view["state"]) == (2, "active")
    assert [(v["version"], v["lock_reason"]) for v in view["versions"]] == [
        (1, "superseded"),
        (2, None),
    ]
    assert [h["change"] for h in view["history"]] == ["created", "substantive"]
    status, v1 = await world.get(f"/procedures/{code}/versions/1")
    assert status == 200
    fee = v1["procedure"]["channels"][0]["time_limits"][0]["fees"][0]
    assert fee["amount_vnd"] == old_amount  # the old version keeps the old fee


async def test_a_wording_fix_is_editorial_with_no_new_version(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)
    code = sorted(world.sim.catalogue.records)[3]
    old_name = world.sim.catalogue.records[code]["TENTTHC"]
    world.sim.catalogue.rename(code, old_name + " (sửa chính tả)")

    await synced(world, CATALOGUE_SIZE + 1)

    event = world.receiver.events[-1]
    assert (event["type"], event["change"]) == ("procedure.updated", "editorial")
    assert (event["version"], event["revision"], event["locked_version"]) == (1, 1, None)
    assert [d["path"] for d in event["diff"]] == ["/name"]
    assert event["diff"][0]["substantive"] is False
    status, view = await world.get(f"/procedures/{code}")
    assert status == 200
    assert [v["version"] for v in view["versions"]] == [1]
    assert view["procedure"]["name"] == old_name + " (sửa chính tả)"


async def test_a_procedure_removed_nationally_is_locked_and_still_readable(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)
    code = sorted(world.sim.catalogue.records)[7]
    world.sim.catalogue.remove(code)

    await synced(world, CATALOGUE_SIZE + 1)

    event = world.receiver.events[-1]
    assert (event["type"], event["code"], event["lock_reason"]) == (
        "procedure.locked",
        code,
        "removed",
    )
    status, view = await world.get(f"/procedures/{code}")
    assert status == 200
    assert view["state"] == "locked"
    assert view["versions"][0]["lock_reason"] == "removed"
    assert [h["type"] for h in view["history"]] == ["procedure.created", "procedure.locked"]
    # A later sync leaves it locked and says nothing more.
    await synced(world, CATALOGUE_SIZE + 1)


async def test_a_truncated_national_list_locks_nothing(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)
    for code in sorted(world.sim.catalogue.records)[: CATALOGUE_SIZE // 2]:
        world.sim.catalogue.remove(code)

    runs = await world.sync.run()

    assert runs[-1].state is RunState.partial
    assert "max_removal_share" in (runs[-1].detail or "")
    await world.settle(CATALOGUE_SIZE)
    _, view = await world.get("/procedures?limit=1000")
    assert {i["state"] for i in view["items"]} == {"active"}


def _has_fee(record: dict[str, Any]) -> bool:
    channels = record["CACHTHUCTHUCHIEN"]
    return bool(channels and channels[0]["THOIGIAN"] and channels[0]["THOIGIAN"][0]["PHILEPHI"])


async def test_the_api_refuses_strangers_and_bad_questions(world: World) -> None:
    await synced(world, CATALOGUE_SIZE)
    async with world.http.get(world.api + "/procedures") as response:
        assert response.status == 401
    status, _ = await world.get("/procedures", token=READER_TOKEN)
    assert status == 403
    for query in ("changed_after=yesterday", "changed_after=2026-01-01T00:00:00", "limit=0"):
        status, body = await world.get(f"/procedures?{query}")
        assert status == 400, query
        assert body["error"] == "bad_query"
    status, _ = await world.get("/procedures/not-a-code")
    assert status == 400
    status, _ = await world.get("/procedures/9.999999")
    assert status == 404
    status, _ = await world.get(f"/procedures/{sorted(world.sim.catalogue.records)[0]}/versions/7")
    assert status == 404
    status, page = await world.get("/procedures?changed_after=2000-01-01T00:00:00%2B07:00&limit=9")
    assert (status, len(page["items"])) == (200, 9)
    status, rest = await world.get(f"/procedures?cursor={page['next_cursor']}&limit=1000")
    assert status == 200
    codes = [i["code"] for i in page["items"] + rest["items"]]
    assert sorted(codes) == sorted(world.sim.catalogue.records)  # every one once, none lost
    status, none = await world.get("/procedures?changed_after=2999-01-01T00:00:00%2B07:00")
    assert (status, none["items"]) == (200, [])
