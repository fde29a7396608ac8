"""The document axis under fire: the hub process is killed with SIGKILL between downloading an
item from the axis and the axis hearing its acknowledgement, restarted, and nothing is lost,
nothing reaches the one-stop twice, every item is acknowledged `done` once.

The hub runs as a real `hub run` process; the axis simulator, the DVCQG simulator and the
one-stop system (a loopback `WebhookReceiver` subscribed to `vdxp.#`) run in the test process.

* The deterministic window: every `updateStatus` answers 500, so an item the hub committed and
  published stays listed. A transfer's statuses (each listed twice, out of order) and then 20
  documents arrive; the hub commits and delivers the first status and the first document but
  cannot acknowledge either and is killed there. Restarted with the acknowledgements working,
  it acknowledges those two again without delivering anything twice, and takes the rest.
* The random window: 60 documents on a slow axis (every call answered after SLOW_S); the hub is
  killed three times at a random moment after it started to download an item and before the
  axis recorded that item's acknowledgement, and restarted each time: once while the download
  is in flight, once just after the axis answered it (streaming, parsing, committing), once
  while the acknowledgement of the committed item is in flight.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sims.national_portal.simulator import DvcqgSimulator
from sims.vdxp.simulator import AxisSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.e2e.harness import HubApi
from tests.integration.ministry_world import FAST, SUB_TOKEN
from tests.integration.vdxp_world import (
    AGENCIES,
    DEPARTMENT,
    HUB_ORGAN,
    MINISTRY,
    SECRET,
    axis_section,
    dossier_event,
)
from tests.support import (
    ONESTOP_TOKEN,
    PORTAL_PASSWORD,
    PORTAL_USER,
    HubProcess,
    eventually,
    hub_overrides,
)
from tests.support.stores import store_rows

pytestmark = pytest.mark.slow

KB = 1024
DOCUMENTS = 20  # the deterministic window
STREAM = 60  # the random window
SLOW_S = 0.08  # the slow axis: every call waits this long first
AUTH = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}
STATUSES = ["01", "03", "05", "06"]


@dataclass
class CrashWorld:
    """The world around the hub process: the simulators, the hub's files, its API."""

    hub: HubProcess
    http: aiohttp.ClientSession
    axis: AxisSimulator
    portal: DvcqgSimulator
    one_stop: WebhookReceiver
    store: dict[str, Any]  # the hub's store: section
    spool: Path
    api: HubApi = field(init=False)

    def __post_init__(self) -> None:
        self.api = HubApi(self.http, self.hub)

    async def start(self) -> None:
        await self.hub.start_ready()

    def tail(self) -> str:
        return self.hub.log_tail()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        url = f"{self.hub.base_url}{path}"
        async with self.http.post(url, json=body, headers=AUTH) as response:
            return response.status, await response.json()

    def at_one_stop(self, kind: str) -> list[dict[str, Any]]:
        return self.one_stop.by_type(kind)

    def delivered(self, event_id: str) -> bool:
        """Whether the hub recorded the one-stop's 2xx for `event_id` (its log says so)."""
        return any(e.get("event_id") == event_id for e in log_events(self.hub, "event_delivered"))

    def waiting(self) -> int:
        """Items still listed in the hub's inbox on the axis."""
        return len(self.axis.inboxes[HUB_ORGAN])

    async def held(self) -> list[dict[str, Any]]:
        """The hub's intake log, read from its store (read-only, while it is down)."""
        return await store_rows(
            self.store,
            "SELECT transport_id, messagetype, verdict, document_id, acked_at "
            "FROM vdxp_intake ORDER BY taken_at",
        )

    async def intake(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.api.get("/vdxp/intake?limit=1000"))["items"]
        return items


@asynccontextmanager
async def axis_world(
    tmp_path: Path,
    rabbit_url: str,
    prefix: str,
    hub: HubProcess,
    faults: dict[str, Any],
) -> AsyncIterator[CrashWorld]:
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as one_stop,
        AxisSimulator(systems={HUB_ORGAN: SECRET}, agencies=AGENCIES, faults=faults) as axis,
        aiohttp.ClientSession() as http,
    ):
        overrides = hub_overrides(tmp_path, rabbit_url, prefix, portal.url)
        # An outbox row a kill left unpublished goes out soon after the restart.
        overrides["store"]["outbox_sweep_age_s"] = 1.0
        overrides["subscribers"] = {
            "one_stop": {"url": one_stop.url, "token": SUB_TOKEN, "events": ["vdxp.#"], **FAST}
        }
        spool = tmp_path / "spool"
        overrides["connectors"]["vdxp"] = axis_section(axis.base_url, spool)
        hub.settings = overrides
        world = CrashWorld(hub, http, axis, portal, one_stop, overrides["store"], spool)
        try:
            yield world
        finally:
            if hub.running:
                hub.kill()


def log_events(hub: HubProcess, name: str) -> list[dict[str, Any]]:
    """The hub's log lines (JSON) of one event name, across its runs."""
    marker = f'"event": "{name}"'
    events = []
    for line in hub.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if marker in line:
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


def folder_of(transport_id: str) -> str:
    """The spool folder the intake names after an item's transport id (`connectors.vdxp.intake`)."""
    return hashlib.sha256(transport_id.encode()).hexdigest()[:32]


def spool_files(spool: Path) -> tuple[set[str], list[str]]:
    """(the received documents' folders, the downloads left in `incoming`)."""
    received = {p.name for p in (spool / "in").iterdir()} if (spool / "in").exists() else set()
    incoming = spool / "incoming"
    left = [p.name for p in incoming.iterdir()] if incoming.exists() else []
    return received, left


async def seed_dossier(world: CrashWorld, n: int) -> str:
    """A dossier the one-stop system told the hub about (status processing)."""
    code, event = dossier_event(n)
    status, reply = await world.post("/api/v1/dossier-events", {"events": [event]})
    assert status == 200, reply
    assert reply["results"][0]["outcome"] == "accepted", reply
    return code


async def send_transfer(world: CrashWorld, transfer_id: str, dossier: str) -> str:
    """A transfer of `dossier` to the ministry, which answers with statuses; its DocumentId."""
    body = {
        "transfer_id": transfer_id,
        "dossier_code": dossier,
        "to": [MINISTRY],
        "subject": f"Chuyển hồ sơ {dossier} để xác minh",
        "code_number": transfer_id[-4:],
        "code_notation": "UBND-VP",
        "attachments": [
            {
                "name": "to-khai.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(b"%PDF-1.7 to khai").decode(),
            }
        ],
    }
    status, reply = await world.post("/api/v1/vdxp/transfers", body)
    assert status == 202, reply
    document_id: str = reply["document_id"]
    return document_id


def ministry_steps(portal: DvcqgSimulator, dossier: str) -> list[dict[str, Any]]:
    """The dossier's steps at DVCQG that the ministry's statuses became."""
    return [s for s in portal.steps.get(dossier, []) if "Bộ Tư pháp" in str(s.get("PhongBanXuLy"))]


async def test_a_kill_while_acknowledgements_fail_loses_nothing_and_doubles_nothing(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, hub_process: HubProcess
) -> None:
    started = time.monotonic()
    faults = {"fail_acks": True, "repeat_statuses": True, "reorder_statuses": True}
    async with axis_world(tmp_path, rabbit_url, broker_prefix, hub_process, faults) as world:
        axis, one_stop = world.axis, world.one_stop
        await world.start()

        # A transfer goes out (sending is not acknowledging); the ministry answers 01, 03, 05,
        # 06, each listed twice and out of order.
        dossier = await seed_dossier(world, 1)
        transfer = await send_transfer(world, "lt-0001", dossier)
        await eventually(
            lambda: len(axis.sent) == 1 and world.waiting() == 2 * len(STATUSES),
            30,
            lambda: f"the transfer sent and answered: {axis.state()}\n{world.tail()}",
        )
        status_items = set(axis.inboxes[HUB_ORGAN])

        # The hub commits the earliest status and delivers it, but cannot acknowledge it: it
        # stays listed, and each round stops at it.
        def first_status_delivered() -> bool:
            events = world.at_one_stop("vdxp.status")
            return len(events) == 1 and world.delivered(events[0]["event_id"])

        await eventually(
            first_status_delivered,
            30,
            lambda: f"the first status at the one-stop: {one_stop.state()}\n{world.tail()}",
        )
        await eventually(
            lambda: len(ministry_steps(world.portal, dossier)) == 1,
            30,
            lambda: f"its step at DVCQG: {world.portal.steps}\n{world.tail()}",
        )
        refused = axis.acks_refused
        await eventually(
            lambda: axis.acks_refused >= refused + 2,
            30,
            lambda: f"the status acknowledged again, refused: {axis.state()}",
        )

        # Documents arrive: the first is committed and delivered, its acknowledgement refused.
        docs = axis.generate_documents(HUB_ORGAN, DEPARTMENT, DOCUMENTS, attachment_bytes=2 * KB)
        document_ids = {d.document_id for d in docs}
        assert len(document_ids) == DOCUMENTS

        def first_document_delivered() -> bool:
            events = world.at_one_stop("vdxp.document")
            return len(events) == 1 and world.delivered(events[0]["event_id"])

        await eventually(
            first_document_delivered,
            30,
            lambda: f"the first document at the one-stop: {one_stop.state()}\n{world.tail()}",
        )
        refused = axis.acks_refused
        await eventually(
            lambda: axis.acks_refused >= refused + 2,
            30,
            lambda: f"the document acknowledged again, refused: {axis.state()}",
        )

        # SIGKILL in the window: two items committed, published and delivered, not acknowledged.
        world.hub.kill()
        assert axis.acks == []
        assert world.waiting() == DOCUMENTS + 2 * len(STATUSES)
        [first_doc] = world.at_one_stop("vdxp.document")
        [first_status] = world.at_one_stop("vdxp.status")
        assert first_doc["document_id"] == docs[0].document_id
        assert (first_status["document_id"], first_status["status"]) == (transfer, "01")
        at_kill = await world.held()
        assert [(r["messagetype"], r["verdict"], r["acked_at"]) for r in at_kill] == [
            ("status", "accepted", None),
            ("edoc", "accepted", None),
        ], at_kill
        victims = {r["transport_id"] for r in at_kill}
        assert docs[0].doc_id in victims
        assert victims - {docs[0].doc_id} <= status_items

        # The axis takes acknowledgements again; the hub restarts.
        axis.faults.update({"fail_acks": False})
        await world.start()
        await eventually(
            lambda: world.waiting() == 0,
            30,
            lambda: f"every item acknowledged: {axis.state()}\n{world.tail()}",
        )
        assert await one_stop.wait_for(DOCUMENTS, 30, type="vdxp.document"), one_stop.state()
        assert await one_stop.wait_for(len(STATUSES), 30, type="vdxp.status"), one_stop.state()
        await eventually(
            lambda: len(ministry_steps(world.portal, dossier)) == len(STATUSES),
            30,
            lambda: f"the steps at DVCQG: {world.portal.steps}\n{world.tail()}",
        )
        # Nothing more reaches the one-stop.
        assert not await one_stop.wait_for(DOCUMENTS + len(STATUSES) + 1, 1.5)

        intake = await world.intake()
        _, shown = await world.post("/api/v1/vdxp/poll", {})
        assert shown == {"taken": {}, "error": None}, shown
        transfer_view = await world.api.get("/vdxp/transfers/lt-0001")
        again = log_events(world.hub, "vdxp_acknowledged_again")
        exit_code = await world.hub.shut_down()
        assert exit_code == 0, world.tail()
        received, left = spool_files(world.spool)

    # Each document and each status reached the one-stop exactly once; none came twice.
    assert one_stop.duplicates() == {}, one_stop.duplicates()
    delivered_docs = Counter(e["document_id"] for e in world.at_one_stop("vdxp.document"))
    assert set(delivered_docs) == document_ids
    assert max(delivered_docs.values()) == 1
    statuses = world.at_one_stop("vdxp.status")
    assert sorted(e["status"] for e in statuses) == STATUSES
    assert {(e["document_id"], e["dossier_code"]) for e in statuses} == {(transfer, dossier)}
    assert {e["type"] for e in one_stop.events} == {"vdxp.document", "vdxp.status"}
    # DVCQG heard each status once, as a step; the dossier's history keeps their order.
    assert len(ministry_steps(world.portal, dossier)) == len(STATUSES)
    assert [s["status"] for s in transfer_view["statuses"]] == STATUSES

    # The axis: every listed item acknowledged `done` exactly once, none refused.
    listed = {d.doc_id for d in docs} | status_items
    acked = Counter(a.doc_id for a in axis.acks)
    assert set(acked) == listed
    assert max(acked.values()) == 1
    assert {a.status for a in axis.acks} == {"done"}
    assert axis.state()["acks"] == {"done": len(listed), "fail": 0}

    # The two items caught in the window were acknowledged again, not taken again.
    assert {e["transport_id"] for e in again} == victims, again
    assert all(e["verdict"] == "accepted" for e in again)

    # The hub's intake log: each transport id once, acknowledged; the repeats as duplicates.
    assert Counter(i["transport_id"] for i in intake) == Counter(list(listed))
    assert all(i["acked_at"] for i in intake), [i for i in intake if not i["acked_at"]]
    verdicts = Counter((i["messagetype"], i["verdict"]) for i in intake)
    assert verdicts == {
        ("edoc", "accepted"): DOCUMENTS,
        ("status", "accepted"): len(STATUSES),
        ("status", "duplicate"): len(STATUSES),
    }

    # One spool folder per document, no download left behind.
    assert received == {folder_of(d.doc_id) for d in docs}
    assert left == []

    print(
        f"\nvdxp deterministic window: victims {sorted(victims)}, "
        f"{axis.fault_hits['fail_acks']} acknowledgements refused; "
        f"{time.monotonic() - started:.1f} s"
    )


@dataclass
class Kill:
    """Where one kill landed: the item the hub was working on, and how far it got."""

    item: str  # its transport id: the first one listed, not yet acknowledged at the kill
    phase: str = ""  # downloading | parsing | committed | acknowledged (the axis heard it)


@dataclass(frozen=True)
class Window:
    """When a kill lands: a random delay of `low` to `high` times SLOW_S after the axis
    received `call` about the item the hub is working on. The axis answers each call SLOW_S
    after it received it, so that item is never acknowledged at the kill."""

    call: str  # "get": the download; "ack": the acknowledgement
    low: float
    high: float
    phase: str | None  # where it must have landed, if certain


WINDOWS = [
    Window("get", 0.0, 0.6, "downloading"),  # the axis has not answered the download yet
    Window("get", 1.0, 1.3, None),  # just answered: streaming, parsing, committing...
    Window("ack", 0.0, 0.6, "committed"),  # committed, published, the ack not recorded
]


async def on_call(world: CrashWorld, call: str, timeout_s: float = 30) -> None:
    """Return as soon as the axis receives one more `call` (polled every millisecond)."""
    axis = world.axis
    seen = axis.requests[call]
    await eventually(
        lambda: axis.requests[call] != seen,
        timeout_s,
        lambda: f"one more {call} call: {axis.state()}\n{world.tail()}",
        every_s=0.001,
    )


async def kill_in(world: CrashWorld, window: Window, rng: random.Random) -> Kill:
    """Let the hub take a few more items, then kill it in `window` of the next item."""
    axis = world.axis
    target = len(axis.acks) + rng.randint(8, 14)
    await eventually(
        lambda: len(axis.acks) >= target,
        30,
        lambda: f"items taken: {axis.state()}\n{world.tail()}",
    )
    await on_call(world, window.call)
    await asyncio.sleep(rng.uniform(window.low, window.high) * SLOW_S)
    acked, kill = len(axis.acks), Kill(next(iter(axis.inboxes[HUB_ORGAN])))
    world.hub.kill()  # blocks the loop: the axis answers nothing more until the hub is gone
    held = {r["transport_id"]: r for r in await world.held()}
    unacked = [t for t, r in held.items() if r["acked_at"] is None]
    received, incoming = spool_files(world.spool)
    await asyncio.sleep(2 * SLOW_S)  # a call the kill cut still ends at the axis
    late = [a.doc_id for a in axis.acks[acked:]]
    # Only the item in the window can be committed and unacknowledged.
    assert set(unacked) <= {kill.item}, (unacked, kill)
    assert set(late) <= {kill.item}, (late, kill)
    if late:
        kill.phase = "acknowledged"
    elif kill.item in held:
        kill.phase = "committed"
    elif incoming or folder_of(kill.item) in received:
        kill.phase = "parsing"
    else:
        kill.phase = "downloading"
    assert window.phase in (None, kill.phase), (window, kill)
    return kill


async def test_kills_between_download_and_acknowledgement_lose_nothing_and_double_nothing(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, hub_process: HubProcess
) -> None:
    started = time.monotonic()
    rng = random.Random(7)
    async with axis_world(
        tmp_path, rabbit_url, broker_prefix, hub_process, {"slow_s": SLOW_S}
    ) as world:
        axis, one_stop = world.axis, world.one_stop
        docs = axis.generate_documents(HUB_ORGAN, DEPARTMENT, STREAM, attachment_bytes=4 * KB)
        document_ids = {d.document_id for d in docs}
        by_transport = {d.doc_id: d.document_id for d in docs}
        assert len(document_ids) == STREAM
        await world.start()

        kills: list[Kill] = []
        for window in WINDOWS:
            kills.append(await kill_in(world, window, rng))
            await world.start()

        await eventually(
            lambda: world.waiting() == 0,
            30,
            lambda: f"every item acknowledged: {axis.state()}\n{world.tail()}",
        )
        assert await one_stop.wait_for(STREAM, 30, type="vdxp.document"), one_stop.state()
        assert not await one_stop.wait_for(STREAM + 1, 1.5)
        intake = await world.intake()
        again = log_events(world.hub, "vdxp_acknowledged_again")
        exit_code = await world.hub.shut_down()
        assert exit_code == 0, world.tail()
        received, left = spool_files(world.spool)

    # Raw re-posts of an event the one-stop held: allowed by the subscriber contract only when
    # a kill lands between the one-stop's 2xx and the hub recording it (one lane: at most one
    # per kill; likely when the hub is killed just after publishing, as in the last window);
    # the one-stop de-duplicates them on the event id.
    redelivered = one_stop.duplicates()
    report = (
        f"kills: {kills}; acknowledged again: {[e['transport_id'] for e in again]}; "
        f"re-posts of a held event: {redelivered}"
    )

    # Every DocumentId reached the one-stop exactly once.
    events = world.at_one_stop("vdxp.document")
    per_document = Counter(e["document_id"] for e in events)
    assert set(per_document) == document_ids, report
    assert max(per_document.values()) == 1, report
    assert len({e["event_id"] for e in events}) == STREAM, report
    assert {e["type"] for e in one_stop.events} == {"vdxp.document"}
    assert len(redelivered) <= len(WINDOWS), report
    assert set(redelivered.values()) <= {2}, report

    # The axis: every item acknowledged `done` exactly once, nothing refused.
    acked = Counter(a.doc_id for a in axis.acks)
    assert set(acked) == set(by_transport), report
    assert max(acked.values()) == 1, report
    assert axis.state()["acks"] == {"done": STREAM, "fail": 0}, report
    assert {a.document_id for a in axis.acks} == document_ids

    # An item the hub committed before a kill was acknowledged again after it, not taken again.
    committed = {k.item for k in kills if k.phase == "committed"}
    assert {e["transport_id"] for e in again} == committed, report

    # The hub's intake log: each transport id once, accepted and acknowledged, except an item
    # whose acknowledgement the axis recorded after the kill cut the hub's call.
    assert Counter(i["transport_id"] for i in intake) == Counter(list(by_transport)), report
    assert {i["verdict"] for i in intake} == {"accepted"}, report
    cut = {k.item for k in kills if k.phase == "acknowledged"}
    unacked = {i["transport_id"] for i in intake if not i["acked_at"]}
    assert unacked <= cut, (unacked, report)

    # One spool folder per document, no download left behind.
    assert received == {folder_of(t) for t in by_transport}
    assert left == []

    print(f"\nvdxp random window: {report}; {time.monotonic() - started:.1f} s")
