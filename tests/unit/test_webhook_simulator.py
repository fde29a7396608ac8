"""The webhook receiver (a subscriber's REST endpoint), exercised over real loopback HTTP.

No mocks: each test starts a real receiver on 127.0.0.1 and POSTs to it with aiohttp, so the
rules the hub's delivery tests rely on (status codes, idempotency, faults, what ends up stored)
are checked here first.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from sims.webhook.simulator import SimFaults, WebhookReceiver

TOKEN = "sub-token"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(token=TOKEN) as sim:
        yield sim


def event(event_id: str = "evt-1", type: str = "procedure.created", **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type, "data": {"MaHoSo": "H41-250314-0001"}, **extra}


def hub_headers(body: dict[str, Any], token: str = TOKEN) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "X-Hub-Event-Id": str(body.get("event_id")),
        "X-Hub-Event-Type": str(body.get("type")),
        "Content-Type": "application/json",
    }


async def send(
    url: str,
    data: str | bytes,
    headers: dict[str, str],
    timeout_s: float = 5.0,
) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.post(url, data=data, headers=headers) as response,
    ):
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def deliver(
    sim: WebhookReceiver, body: dict[str, Any], timeout_s: float = 5.0, **headers: str
) -> tuple[int, Any]:
    """POST an event the way the hub does; keyword headers override or add to the hub's."""
    merged = {**hub_headers(body), **{k.replace("_", "-"): v for k, v in headers.items()}}
    return await send(sim.url, json.dumps(body), merged, timeout_s)


async def control(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await send(url, json.dumps(body), {"Content-Type": "application/json"})


# -- accepting ------------------------------------------------------------------------------------


async def test_accepts_once_and_acknowledges_duplicates(receiver: WebhookReceiver) -> None:
    assert receiver.url == f"{receiver.base_url}/hub/events"
    first = event("evt-1")
    assert await deliver(receiver, first) == (
        200,
        {"status": "accepted", "event_id": "evt-1", "duplicate": False},
    )
    assert await deliver(receiver, first) == (
        200,
        {"status": "accepted", "event_id": "evt-1", "duplicate": True},
    )
    await deliver(receiver, event("evt-2", "procedure.updated"))
    assert receiver.events == [first, event("evt-2", "procedure.updated")]
    assert receiver.receipts == {"evt-1": 2, "evt-2": 1}
    assert receiver.duplicates() == {"evt-1": 2}


async def test_by_type_state_and_reset(receiver: WebhookReceiver) -> None:
    for n, kind in enumerate(["procedure.created", "procedure.updated", "procedure.created"]):
        await deliver(receiver, event(f"evt-{n}", kind))
    await deliver(receiver, event("evt-0"))
    assert [e["event_id"] for e in receiver.by_type("procedure.created")] == ["evt-0", "evt-2"]
    assert receiver.by_type("procedure.locked") == []
    state = receiver.state()
    assert state["event_count"] == 3
    assert state["types"] == {"procedure.created": 2, "procedure.updated": 1}
    assert state["receipts"] == {"unique": 3, "total": 4, "duplicates": 1}
    assert state["duplicated_events"] == {"evt-0": 2}
    assert state["requests"] == 4
    assert state["responses"] == {"200": 4}
    assert state["faults"]["mode"] == "ok"
    receiver.faults.mode = "http_503"
    receiver.reset()
    assert receiver.events == []
    assert receiver.receipts == {}
    assert receiver.requests == 0
    assert receiver.faults == SimFaults()


async def test_bearer_scheme_is_case_insensitive(receiver: WebhookReceiver) -> None:
    status, _ = await deliver(receiver, event(), Authorization=f"bearer {TOKEN}")
    assert status == 200


# -- refusing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", ""],
)
async def test_missing_or_wrong_bearer_is_401(
    receiver: WebhookReceiver, authorization: str | None
) -> None:
    body = event()
    headers = hub_headers(body)
    if authorization is None:
        del headers["Authorization"]
    else:
        headers["Authorization"] = authorization
    assert await send(receiver.url, json.dumps(body), headers) == (401, {"error": "unauthorized"})
    assert receiver.events == []
    assert receiver.responses == {401: 1}


@pytest.mark.parametrize(
    ("data", "header_changes", "fragment"),
    [
        ("{not json", {}, "JSON object"),
        ('["evt-1"]', {}, "JSON object"),
        ('"evt-1"', {}, "JSON object"),
        (json.dumps({"type": "procedure.created"}), {}, "event_id"),
        (json.dumps(event(event_id="")), {}, "event_id"),
        (json.dumps({**event(), "event_id": 7}), {}, "event_id"),
        (json.dumps({"event_id": "evt-1"}), {}, "type"),
        (json.dumps({**event(), "type": None}), {}, "type"),
        (json.dumps(event()), {"X-Hub-Event-Id": None}, "X-Hub-Event-Id header is required"),
        (json.dumps(event()), {"X-Hub-Event-Id": "evt-2"}, "does not match event_id"),
        (json.dumps(event()), {"X-Hub-Event-Type": None}, "X-Hub-Event-Type header is required"),
        (json.dumps(event()), {"X-Hub-Event-Type": "procedure.locked"}, "does not match type"),
    ],
)
async def test_malformed_events_are_400(
    receiver: WebhookReceiver, data: str, header_changes: dict[str, str | None], fragment: str
) -> None:
    headers = hub_headers(event())
    for name, value in header_changes.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    status, reply = await send(receiver.url, data, headers)
    assert status == 400
    assert reply["error"] == "bad_request"
    assert fragment in reply["message"]
    assert receiver.events == []
    assert receiver.receipts == {}


async def test_wrong_content_type_is_415(receiver: WebhookReceiver) -> None:
    status, reply = await deliver(receiver, event(), Content_Type="text/plain")
    assert status == 415
    assert "application/json" in reply["message"]
    assert receiver.events == []


# -- faults ---------------------------------------------------------------------------------------


async def test_http_503_stores_nothing(receiver: WebhookReceiver) -> None:
    receiver.faults.mode = "http_503"
    status, _ = await deliver(receiver, event())
    assert status == 503
    assert receiver.events == []
    receiver.faults.mode = "ok"
    assert (await deliver(receiver, event()))[1]["duplicate"] is False


async def test_timeout_answers_504_late_and_stores_nothing(receiver: WebhookReceiver) -> None:
    receiver.faults.update({"mode": "timeout", "timeout_sleep_s": 0.2})
    started = time.monotonic()
    status, _ = await deliver(receiver, event())
    assert status == 504
    assert time.monotonic() - started >= 0.2
    assert receiver.events == []
    assert receiver.receipts == {}


async def test_timeout_mode_makes_a_short_client_time_out(receiver: WebhookReceiver) -> None:
    receiver.faults.update({"mode": "timeout", "timeout_sleep_s": 5.0})
    with pytest.raises(TimeoutError):
        await deliver(receiver, event(), timeout_s=0.2)
    assert receiver.events == []


async def test_slow_answers_late_but_normally(receiver: WebhookReceiver) -> None:
    receiver.faults.update({"mode": "slow", "delay_s": 0.2})
    started = time.monotonic()
    status, reply = await deliver(receiver, event())
    assert time.monotonic() - started >= 0.2
    assert (status, reply["duplicate"]) == (200, False)
    assert len(receiver.events) == 1


async def test_lost_reply_stores_but_the_caller_times_out(receiver: WebhookReceiver) -> None:
    receiver.faults.update({"mode": "lost_reply", "timeout_sleep_s": 5.0})
    with pytest.raises(TimeoutError):
        await deliver(receiver, event("evt-lost"), timeout_s=0.2)
    assert await receiver.wait_for(1, timeout_s=1.0)
    assert [e["event_id"] for e in receiver.events] == ["evt-lost"]
    # The hub resends after the timeout: acknowledged as a duplicate, still stored once.
    receiver.faults.mode = "ok"
    status, reply = await deliver(receiver, event("evt-lost"))
    assert (status, reply["duplicate"]) == (200, True)
    assert len(receiver.events) == 1
    assert receiver.receipts == {"evt-lost": 2}


async def test_lost_reply_answers_after_the_sleep(receiver: WebhookReceiver) -> None:
    receiver.faults.update({"mode": "lost_reply", "timeout_sleep_s": 0.2})
    started = time.monotonic()
    status, reply = await deliver(receiver, event())
    assert time.monotonic() - started >= 0.2
    assert (status, reply["duplicate"]) == (200, False)


async def test_reject_mode_is_422_and_stores_nothing(receiver: WebhookReceiver) -> None:
    receiver.faults.mode = "reject"
    status, reply = await deliver(receiver, event())
    assert status == 422
    assert reply["error"] == "rejected"
    assert receiver.events == []
    assert receiver.receipts == {}


async def test_reject_mode_still_checks_the_token(receiver: WebhookReceiver) -> None:
    receiver.faults.mode = "reject"
    status, _ = await deliver(receiver, event(), Authorization="Bearer nope")
    assert status == 401


async def test_fail_next_fails_exactly_that_many(receiver: WebhookReceiver) -> None:
    receiver.faults.fail_next = 2
    statuses = [(await deliver(receiver, event(f"evt-{n}")))[0] for n in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert [e["event_id"] for e in receiver.events] == ["evt-2", "evt-3"]
    assert receiver.faults.fail_next == 0
    assert receiver.requests == 4
    assert receiver.responses == {503: 2, 200: 2}


async def test_reject_types_refuses_only_those_types(receiver: WebhookReceiver) -> None:
    receiver.faults.reject_types = ["procedure.locked"]
    status, reply = await deliver(receiver, event("evt-1", "procedure.locked"))
    assert status == 422
    assert reply["error"] == "rejected"
    assert "procedure.locked" in reply["message"]
    status, _ = await deliver(receiver, event("evt-2", "procedure.updated"))
    assert status == 200
    assert [e["event_id"] for e in receiver.events] == ["evt-2"]
    assert "evt-1" not in receiver.receipts


def test_fault_updates_are_validated_all_or_nothing() -> None:
    faults = SimFaults()
    with pytest.raises(ValueError, match="mode"):
        faults.update({"fail_next": 3, "mode": "sometimes"})
    with pytest.raises(ValueError, match="unknown"):
        faults.update({"fail_nxt": 3})
    with pytest.raises(ValueError, match="reject_types"):
        faults.update({"reject_types": "procedure.locked"})
    with pytest.raises(ValueError, match="non-negative"):
        faults.update({"delay_s": -1})
    assert faults == SimFaults()
    faults.update({"mode": "slow", "delay_s": 1, "reject_types": ["procedure.locked"]})
    assert (faults.mode, faults.delay_s, faults.reject_types) == ("slow", 1.0, ["procedure.locked"])


def test_path_must_be_absolute_and_clear_of_the_control_endpoints() -> None:
    with pytest.raises(ValueError, match="path"):
        WebhookReceiver(path="hub/events")
    with pytest.raises(ValueError, match="path"):
        WebhookReceiver(path="/_sim/events")


# -- control over HTTP ----------------------------------------------------------------------------


async def test_http_control_endpoints(receiver: WebhookReceiver) -> None:
    base = receiver.base_url
    status, reply = await control(f"{base}/_sim/faults", {"mode": "http_503", "fail_next": 2})
    assert status == 200
    assert reply["faults"]["mode"] == "http_503"
    assert receiver.faults.fail_next == 2
    assert (await deliver(receiver, event()))[0] == 503

    for bad in ({"mode": "sometimes"}, {"reject_types": [1]}, {"fail_next": -1}, {"x": 1}):
        status, reply = await control(f"{base}/_sim/faults", bad)
        assert status == 400, bad
        assert reply["error"] == "bad_request"
    status, _ = await send(f"{base}/_sim/faults", "[]", {"Content-Type": "application/json"})
    assert status == 400
    assert receiver.faults.mode == "http_503"

    await control(f"{base}/_sim/faults", {"mode": "ok", "fail_next": 0})
    await deliver(receiver, event("evt-1"))
    await deliver(receiver, event("evt-1"))
    async with aiohttp.ClientSession() as http, http.get(f"{base}/_sim/state") as response:
        assert response.status == 200
        state = await response.json()
    assert state["event_count"] == 1
    assert state["receipts"] == {"unique": 1, "total": 2, "duplicates": 1}
    assert state["responses"] == {"200": 2, "503": 1}
    assert state["events"] == [event("evt-1")]

    status, _ = await control(f"{base}/_sim/reset", {})
    assert status == 200
    assert receiver.events == []
    assert receiver.state()["requests"] == 0


async def test_control_endpoints_are_not_under_the_event_path(receiver: WebhookReceiver) -> None:
    status, _ = await control(f"{receiver.url}/_sim/faults", {"mode": "http_503"})
    assert status == 404
    assert receiver.faults.mode == "ok"


# -- waiting --------------------------------------------------------------------------------------


async def test_wait_for_wakes_on_stores(receiver: WebhookReceiver) -> None:
    async def hub() -> None:
        for n, kind in enumerate(["procedure.created", "procedure.updated", "procedure.locked"]):
            await asyncio.sleep(0.05)
            await deliver(receiver, event(f"evt-{n}", kind))

    waiting_all = asyncio.create_task(receiver.wait_for(3, timeout_s=5.0))
    waiting_locked = asyncio.create_task(
        receiver.wait_for(1, timeout_s=5.0, type="procedure.locked")
    )
    await hub()
    assert await waiting_all
    assert await waiting_locked
    assert await receiver.wait_for(0, timeout_s=0.0)


async def test_wait_for_times_out(receiver: WebhookReceiver) -> None:
    await deliver(receiver, event("evt-1"))
    await deliver(receiver, event("evt-1"))  # a duplicate is not a second event
    started = time.monotonic()
    assert not await receiver.wait_for(2, timeout_s=0.2)
    assert not await receiver.wait_for(1, timeout_s=0.1, type="procedure.locked")
    assert 0.3 <= time.monotonic() - started < 2.0


async def test_stop_wakes_handlers_parked_in_a_fault_sleep() -> None:
    sim = WebhookReceiver(token=TOKEN)
    await sim.start()
    sim.faults.update({"mode": "lost_reply", "timeout_sleep_s": 60.0})
    delivery = asyncio.create_task(deliver(sim, event(), timeout_s=60.0))
    assert await sim.wait_for(1, timeout_s=5.0)
    started = time.monotonic()
    await sim.stop()
    await asyncio.wait_for(asyncio.gather(delivery, return_exceptions=True), timeout=5.0)
    assert time.monotonic() - started < 5.0
