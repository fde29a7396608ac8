"""The operators' console at 2 a.m., over the real admin API (RabbitMQ, DVCQG's simulator):
the dossiers DVCQG has not confirmed (as many as completeness counts, filtered and paged), the
search (any case, a fragment, a procedure, an owner's whole name without revealing it), a
dossier's "why", and bulk replay and discard of thousands of dead letters by filter, counted
before and after against `rabbitmqctl`, with one audit entry per action."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from hub.broker import CONNECTOR_HEADER, PARKED_AT_HEADER, REASON_HEADER, message
from hub.dashboard import i18n
from sims.rabbitmq_node import RabbitNode
from tests.integration.dashboard_world import (
    DashboardWorld,
    Session,
    dashboard_world,
    record_event,
)
from tests.support import eventually

PORTAL = "national_portal"
AGENCY, OTHER_AGENCY = "000.00.41.H41", "000.20.41.H41"
OWNER = "Nguyễn Văn An"


def event(code: str, n: int, procedure: str, owner: str, at: datetime) -> dict[str, Any]:
    e = record_event(code, f"ev-{code}-{n}", "accepted", at)
    e["record"].update(procedure_code=procedure, owner_name=owner)
    return e


async def overview_unconfirmed(viewer: Session) -> int:
    status, overview = await viewer.call("GET", "/api/v1/admin/overview")
    assert status == 200, overview
    return int(overview["completeness"]["unconfirmed"])


async def stuck(viewer: Session, **query: Any) -> dict[str, Any]:
    status, reply = await viewer.call("GET", "/api/v1/admin/stuck?" + urlencode(query))
    assert status == 200, reply
    return dict(reply)


async def test_stuck_dossiers_search_and_why(dash: DashboardWorld) -> None:
    hub, sim = dash.hub, dash.sim
    viewer = await dash.operator("viewer")
    at = datetime.now(UTC) - timedelta(minutes=30)
    mine = [f"{AGENCY}-261201-{i:04d}" for i in range(1, 56)]
    theirs = [f"{OTHER_AGENCY}-261201-{i:04d}" for i in range(1, 6)]
    refused = mine[0]
    sim.faults.reject = {refused: "05"}
    # DVCQG is paused: what arrives waits, unconfirmed.
    await hub.set_paused(PORTAL, "night-op", "test", True)
    events = [event(c, 1, "1.000494", f"Trần Thị Bình {i}", at) for i, c in enumerate(mine)]
    events[0]["record"]["owner_name"] = OWNER
    events += [event(c, 1, "2.002154", "Lê Văn Cường", at) for c in theirs]
    reply = await dash.post_events(events)
    assert reply["accepted"] == 60, reply

    # Every dossier is stuck at DVCQG: the list holds as many as completeness counts.
    first = await stuck(viewer, destination=PORTAL)
    assert first["total"] == 60 == await overview_unconfirmed(viewer)
    assert (first["pages"], len(first["items"])) == (1, 60)
    row = first["items"][0]
    assert (row["destination"], row["destination_state"], row["outcome"]) == (
        PORTAL,
        "paused",
        "waiting",
    )
    assert row["age_s"] >= 0
    assert (await stuck(viewer, agency=OTHER_AGENCY))["total"] == 5
    assert {i["code"] for i in (await stuck(viewer, agency=OTHER_AGENCY))["items"]} == set(theirs)
    assert (await stuck(viewer, procedure="2.002154"))["total"] == 5
    assert (await stuck(viewer, status="accepted"))["total"] == 60
    assert (await stuck(viewer, status="processing"))["total"] == 0
    assert (await stuck(viewer, older_than_min=60))["total"] == 0  # received just now
    assert (await stuck(viewer, destination="ministry.none"))["total"] == 0
    for bad in ({"status": "asleep"}, {"agency": "000-1"}, {"older_than_min": "-1"}):
        status, reply = await viewer.call("GET", "/api/v1/admin/stuck?" + urlencode(bad))
        assert (status, reply["error"]) == (400, "bad_query"), bad

    # Search: a fragment in any case, with a total and pages of 50.
    status, found = await viewer.call("GET", "/api/v1/admin/dossiers?q=h41-261201")
    assert status == 200, found
    assert (found["total"], found["pages"], len(found["items"])) == (60, 2, 50)
    status, page2 = await viewer.call("GET", "/api/v1/admin/dossiers?q=h41-261201&page=1")
    assert len(page2["items"]) == 10
    assert not {i["code"] for i in found["items"]} & {i["code"] for i in page2["items"]}
    status, found = await viewer.call("GET", "/api/v1/admin/dossiers?q=20.41.h41-261201-0005")
    assert [i["code"] for i in found["items"]] == [f"{OTHER_AGENCY}-261201-0005"]
    status, found = await viewer.call("GET", "/api/v1/admin/dossiers?q=2.002154")
    assert (found["total"], {i["matched"] for i in found["items"]}) == (5, {"procedure"})
    # The owner's whole name, accents and case aside; never a part of it; shown masked.
    status, found = await viewer.call("GET", "/api/v1/admin/dossiers?" + urlencode({"q": OWNER}))
    assert [(i["code"], i["matched"]) for i in found["items"]] == [(refused, "owner")]
    status, again = await viewer.call("GET", "/api/v1/admin/dossiers?q=NGUYEN%20van%20%20an")
    assert [i["code"] for i in again["items"]] == [refused]
    assert "Nguyễn" not in str(found["items"])  # the query is echoed, the name never
    assert found["items"][0]["owner_name"].endswith("An")
    status, part = await viewer.call("GET", "/api/v1/admin/dossiers?" + urlencode({"q": "Nguyễn"}))
    assert (status, part["total"]) == (200, 0)

    # DVCQG is back: all but the refused dossier are confirmed; the refused one is parked.
    await hub.set_paused(PORTAL, "night-op", "", False)

    async def only_the_refused_left() -> bool:
        return (await stuck(viewer))["total"] == 1 and await overview_unconfirmed(viewer) == 1

    await eventually(only_the_refused_left, 60, "every dossier but the refused one confirmed")
    left = (await stuck(viewer))["items"][0]
    assert (left["code"], left["outcome"]) == (refused, "parked")
    assert "05" in left["reason"]
    # The journal keeps DVCQG's code beside its text: the API gives the code, never words.
    assert (left["reason_code"], left["reason_args"]) == ("05", {})

    # Its "why": DVCQG has not confirmed it, the last error and where its messages wait.
    status, d = await viewer.call("GET", f"/api/v1/admin/dossiers/{refused}")
    assert status == 200, d
    why = d["why"]
    portal = next(r for r in why["destinations"] if r["name"] == PORTAL)
    assert (why["confirmed_by_all"], portal["confirmed"], portal["keeps_state"]) == (
        False,
        False,
        True,
    )
    assert why["last_error"]["destination"] == PORTAL
    assert "05" in why["last_error"]["reason"]
    assert why["last_error"]["reason_code"] == portal["reason_code"] == "05"
    assert why["parked_at"] == [PORTAL]
    assert d["timeline"][0]["at"] >= d["timeline"][-1]["at"]  # newest first
    journaled = {h["kind"]: h["reason_code"] for h in d["timeline"] if h["actor"] == PORTAL}
    assert journaled["refused"] == journaled["parked"] == "05", journaled
    words = i18n.read("connectors.national_portal", "vi")["reason.national_portal.05"]
    assert words not in json.dumps(d, ensure_ascii=False), "the API gives codes, never words"
    status, ok = await viewer.call("GET", f"/api/v1/admin/dossiers/{mine[1]}")
    assert ok["why"]["confirmed_by_all"] is True
    assert ok["why"]["last_error"] is None


# -- bulk actions on thousands of dead letters ---------------------------------------------------

REFUSED, TIMED_OUT = 2_000, 1_000


@pytest.fixture
async def node_dash(
    tmp_path: Path, rabbit_node: RabbitNode, broker_prefix: str
) -> AsyncIterator[DashboardWorld]:
    """On the session's private node, always: the test reads counts with its `rabbitmqctl`."""
    async with dashboard_world(tmp_path, rabbit_node.url, broker_prefix) as world:
        yield world


def broker_messages(node: RabbitNode) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in node.ctl("list_queues", "name", "messages").splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit():
            counts[fields[0]] = int(fields[1])
    return counts


async def test_bulk_replay_and_discard_by_filter_with_thousands_parked(
    node_dash: DashboardWorld, rabbit_node: RabbitNode
) -> None:
    hub = node_dash.hub
    watched = hub.connector(PORTAL)
    assert watched is not None
    assert watched.queues is not None
    assert hub.broker is not None
    queues, broker = watched.queues, hub.broker
    viewer = await node_dash.operator("viewer")
    operator = await node_dash.operator("operator")
    # Paused, so the replayed messages wait in the work queue where the broker counts them.
    await hub.set_paused(PORTAL, "night-op", "counting", True)

    # Parked as the hub parks them: straight into the parking queue, 40 dossiers each kind.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    today = datetime.now(UTC).isoformat()
    kinds = [
        (REFUSED, "A", "DVCQG refused DongBoHoSoMC: 05 refused by the portal's rules", today),
        (TIMED_OUT, "B", "dead-lettered by the broker (delivery limit reached)", yesterday),
    ]
    sent = []
    for n, tag, reason, at in kinds:
        headers = {REASON_HEADER: reason, CONNECTOR_HEADER: PORTAL, PARKED_AT_HEADER: at}
        for i in range(n):
            body = {"dossier_code": f"{AGENCY}-2612{tag}-{i % 40:04d}", "version": 1}
            sent.append(
                broker.publish(
                    broker.channel.default_exchange,
                    queues.parking,
                    message(body, f"{tag}{i}", headers),
                )
            )
    for chunk in range(0, len(sent), 500):
        await asyncio.gather(*sent[chunk : chunk + 500])
    work = [queues.work, *(q for q, _ in queues.retry)]
    said: dict[str, tuple[int, int]] = {}

    async def the_broker_says(waiting: int, parked: int) -> bool:
        counts = await asyncio.to_thread(broker_messages, rabbit_node)
        said["broker"] = (sum(counts[q] for q in work), counts[queues.parking])
        return said["broker"] == (waiting, parked)

    total = REFUSED + TIMED_OUT
    await eventually(lambda: the_broker_says(0, total), 60, lambda: f"rabbitmqctl: {said}")

    # The preview: the true count, grouped by dossier and reason.
    status, summary = await viewer.call(
        "GET", f"/api/v1/admin/dead-letters/summary?connector={PORTAL}&reason=05"
    )
    assert status == 200, summary
    assert (summary["parked"], summary["matched"], summary["groups_total"]) == (total, REFUSED, 40)
    assert sum(g["count"] for g in summary["groups"]) == REFUSED
    assert {g["count"] for g in summary["groups"]} == {REFUSED // 40}
    status, by_time = await viewer.call(
        "GET",
        "/api/v1/admin/dead-letters/summary?"
        + urlencode({"until": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}),
    )
    assert by_time["matched"] == TIMED_OUT
    status, one = await viewer.call(
        "GET",
        "/api/v1/admin/dead-letters/summary?" + urlencode({"dossier": f"{AGENCY}-2612A-0007"}),
    )
    assert (one["matched"], one["groups_total"]) == (REFUSED // 40, 1)
    status, prefix = await viewer.call(
        "GET",
        "/api/v1/admin/dead-letters/summary?" + urlencode({"dossier_prefix": f"{AGENCY}-2612B"}),
    )
    assert prefix["matched"] == TIMED_OUT

    # Only an operator may act; the viewer is refused.
    request = {
        "action": "replay",
        "filter": {"connector": PORTAL, "reason": "05"},
        "expected": 2000,
    }
    status, reply = await viewer.call("POST", "/api/v1/admin/dead-letter-actions", request)
    assert (status, reply["error"]) == (403, "forbidden")
    status, job = await operator.call("POST", "/api/v1/admin/dead-letter-actions", request)
    assert status == 202, job
    assert (job["state"], job["expected"]) == ("running", REFUSED)
    progress: list[int] = []

    async def finished() -> dict[str, Any] | None:
        status, now = await viewer.call("GET", f"/api/v1/admin/dead-letter-actions/{job['id']}")
        assert status == 200, now
        progress.append(now["done"])
        return now if now["state"] != "running" else None

    done = await eventually(finished, 120, lambda: f"the bulk replay: {progress[-3:]}")
    assert (done["state"], done["done"]) == ("done", REFUSED), done
    assert progress == sorted(progress)
    await eventually(
        lambda: the_broker_says(REFUSED, TIMED_OUT), 60, lambda: f"after replay: {said}"
    )

    # A discard must be confirmed: it cannot be undone.
    discard: dict[str, Any] = {"action": "discard", "filter": {"connector": PORTAL}}
    status, reply = await operator.call("POST", "/api/v1/admin/dead-letter-actions", discard)
    assert (status, reply["error"]) == (400, "confirm")
    status, reply = await operator.call(
        "POST",
        "/api/v1/admin/dead-letter-actions",
        {**discard, "filter": {"connector": "nope"}, "confirm": True},
    )
    assert (status, reply["error"]) == (404, "unknown_connector")
    status, job = await operator.call(
        "POST", "/api/v1/admin/dead-letter-actions", {**discard, "confirm": True}
    )
    assert status == 202, job
    progress.clear()
    done = await eventually(finished, 120, lambda: f"the bulk discard: {progress[-3:]}")
    assert (done["state"], done["done"]) == ("done", TIMED_OUT), done
    await eventually(lambda: the_broker_says(REFUSED, 0), 60, lambda: f"after discard: {said}")

    # One audit entry per action, with its filter and counts (not one per message).
    admin = await node_dash.operator("admin")
    status, audit = await admin.call("GET", "/api/v1/admin/audit?limit=500")
    bulk = [e for e in audit["items"] if e["action"].startswith("dlq.")]
    assert [(e["action"], e["detail"]["done"], e["detail"]["state"]) for e in bulk] == [
        ("dlq.discard.bulk", TIMED_OUT, "done"),
        ("dlq.replay.bulk", REFUSED, "done"),
    ]
    assert bulk[1]["detail"]["filter"]["reason"] == "05"
    assert bulk[1]["detail"]["matched_at_preview"] == REFUSED
    status, d = await viewer.call("GET", f"/api/v1/admin/dead-letters/summary?connector={PORTAL}")
    assert (d["parked"], d["matched"]) == (0, 0)
