"""The document axis end to end: transfers out, statuses and documents in, exactly once."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sims.vdxp.simulator import AxisSimulator
from tests.integration.vdxp_world import (
    DEPARTMENT,
    HUB_ORGAN,
    MINISTRY,
    AxisWorld,
    axis_world,
    known_dossier,
)
from tests.support import ONESTOP_TOKEN, eventually

KB = 1024
DATA = Path(__file__).resolve().parents[1] / "data" / "edxml"


async def _axis_history(world: AxisWorld, dossier: str) -> list[Any]:
    """The axis statuses in the dossier's history, in the order the hub holds them."""
    view = await world.store.dossier(dossier)
    return [h for h in view.history if h.source_system == "vdxp"]


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> Any:
    async with axis_world(tmp_path, rabbit_url, broker_prefix) as w:
        yield w


async def test_a_transfer_travels_and_its_statuses_come_back_once_in_order(
    world: AxisWorld,
) -> None:
    dossier = await known_dossier(world, 1)
    world.axis.faults.update({"repeat_statuses": True, "reorder_statuses": True})
    attachment = os.urandom(200 * KB)
    status, reply = await world.transfer("lt-0001", dossier, {"to-khai.pdf": attachment})
    assert status == 202, reply
    assert reply["created"] is True
    assert reply["state"] == "queued"
    document_id = reply["document_id"]
    assert document_id.startswith(f"{HUB_ORGAN},")
    assert document_id.endswith(",lt-0001")

    # Sent once, with its attachment whole.
    await eventually(lambda: len(world.axis.sent) == 1, 30, "the document on the axis")
    sent = world.axis.sent[0]
    assert sent.document_id == document_id
    assert sent.to == [MINISTRY]
    parsed = world.codec.parse_document(sent.body)
    assert parsed.attachments[0].content == attachment
    assert parsed.attachments[0].name == "to-khai.pdf"

    # The ministry answers 01, 03, 05, 06, each twice and out of order.
    def statuses_at_one_stop() -> list[dict[str, Any]]:
        return [e for e in world.at_one_stop("vdxp.status") if e["document_id"] == document_id]

    await eventually(lambda: len(statuses_at_one_stop()) == 4, 30, "four statuses at the one-stop")
    await eventually(lambda: len(world.acks("done")) == 8, 30, "every listed status acknowledged")
    assert sorted(e["status"] for e in statuses_at_one_stop()) == ["01", "03", "05", "06"]
    assert all(e["dossier_code"] == dossier for e in statuses_at_one_stop())
    assert world.one_stop.duplicates() == {}

    history = await _axis_history(world, dossier)
    assert [h.event["event_id"].split("|")[2] for h in history] == ["01", "03", "05", "06"]
    times = [h.occurred_at for h in history]
    assert times == sorted(times)

    # DVCQG hears each step once; the dossier's status stays the one-stop's (policy: keep).
    def portal_vdxp_steps() -> list[dict[str, Any]]:
        return [
            s
            for s in world.portal.steps.get(dossier, [])
            if "Bộ Tư pháp" in str(s.get("PhongBanXuLy"))
        ]

    await eventually(lambda: len(portal_vdxp_steps()) == 4, 30, "the four steps at DVCQG")
    assert all(str(s["TrangThai"]) == "4" for s in portal_vdxp_steps())

    # The API shows the transfer sent, with its statuses in order.
    status, shown = await world.call("GET", "/api/v1/vdxp/transfers/lt-0001")
    assert status == 200, shown
    assert shown["state"] == "sent"
    assert [s["status"] for s in shown["statuses"]] == ["01", "03", "05", "06"]
    assert shown["attachments"][0]["size_bytes"] == len(attachment)

    # The same transfer again is the same transfer: nothing is sent twice.
    status, again = await world.transfer("lt-0001", dossier, {"to-khai.pdf": attachment})
    assert status == 200
    assert again["created"] is False
    assert again["document_id"] == document_id
    await world.poll()
    assert world.axis.sent[0].times_sent == 1
    assert len(world.axis.sent) == 1
    assert len(statuses_at_one_stop()) == 4


async def test_received_documents_reach_the_one_stop_once_with_their_attachments(
    world: AxisWorld,
) -> None:
    dossier = await known_dossier(world, 2)
    items = world.axis.generate_documents(
        HUB_ORGAN, DEPARTMENT, count=3, attachment_bytes=50 * KB, subject=f"Hồ sơ {dossier}"
    )
    # The same document sent twice (a new transport id, the same DocumentId).
    repeat = world.axis.enqueue(
        HUB_ORGAN, "edoc", items[0].body, DEPARTMENT, document_id=items[0].document_id
    )
    await eventually(lambda: len(world.at_one_stop("vdxp.document")) == 3, 30, "three documents")
    await eventually(lambda: len(world.acks("done")) == 4, 30, "four acknowledgements")
    assert {a.doc_id for a in world.acks("done")} == {i.doc_id for i in items} | {repeat}
    events = world.at_one_stop("vdxp.document")
    assert {e["document_id"] for e in events} == {i.document_id for i in items}
    assert all(e["dossier_code"] == dossier and e["from_organ"] == DEPARTMENT for e in events)
    assert world.one_stop.duplicates() == {}

    # The one-stop fetches each attachment from the hub: the very bytes sent.
    for item, event in zip(items, sorted(events, key=lambda e: _order(items, e)), strict=True):
        expected = world.codec.parse_document(item.body).attachments[0].content
        [attachment] = event["attachments"]
        assert attachment["size_bytes"] == len(expected) == 50 * KB
        async with world.http.get(
            world.base + attachment["href"], headers={"Authorization": "Bearer onestop-token"}
        ) as response:
            assert response.status == 200
            assert await response.read() == expected

    status, log = await world.call("GET", "/api/v1/vdxp/intake?verdict=duplicate")
    assert status == 200
    assert [i["transport_id"] for i in log["items"]] == [repeat]


def _order(items: list[Any], event: dict[str, Any]) -> int:
    return next(i for i, item in enumerate(items) if item.document_id == event["document_id"])


async def test_the_hub_keeps_sending_and_taking_across_axis_faults(world: AxisWorld) -> None:
    dossier = await known_dossier(world, 3)
    # The axis is down: the transfer is accepted and waits; rounds fail and back off.
    world.axis.faults.update({"outage": True})
    status, reply = await world.transfer("lt-0003", dossier, {"a.pdf": b"%PDF-1.7 x"})
    assert status == 202, reply
    status, report = await world.call("POST", "/api/v1/vdxp/poll")
    assert status == 502
    assert "503" in report["error"]
    # Back, but the first reply to sendEdoc is lost after the axis stored the document.
    world.axis.faults.update({"outage": False, "drop_after_send": True, "count": 1})
    await eventually(
        lambda: bool(world.axis.sent) and world.axis.sent[0].times_sent == 2, 30, "a second send"
    )
    await eventually(lambda: len(world.at_one_stop("vdxp.status")) == 4, 30, "its statuses")
    status, shown = await world.call("GET", "/api/v1/vdxp/transfers/lt-0003")
    assert shown["state"] == "sent"
    assert len(world.axis.sent) == 1

    # An acknowledgement that fails leaves the item listed: taken again, forwarded once.
    world.axis.faults.update({"fail_acks": True, "count": 1})
    [item] = world.axis.generate_documents(HUB_ORGAN, DEPARTMENT, count=1, attachment_bytes=10)
    await eventually(lambda: any(a.doc_id == item.doc_id for a in world.acks()), 30, "the ack")
    assert len([e for e in world.at_one_stop("vdxp.document")]) == 1
    status, log = await world.call("GET", "/api/v1/vdxp/intake")
    taken = [i for i in log["items"] if i["transport_id"] == item.doc_id]
    assert taken[0]["verdict"] == "accepted"
    assert taken[0]["acked_at"]


async def test_an_acknowledgement_the_axis_refuses_does_not_stop_the_intake(
    world: AxisWorld,
) -> None:
    world.axis.faults.update({"refuse_acks": True})
    items = world.axis.generate_documents(HUB_ORGAN, DEPARTMENT, count=3, attachment_bytes=10)
    await eventually(
        lambda: len(world.at_one_stop("vdxp.document")) == 3, 30, "all three documents"
    )
    report = await world.poll()  # refused acknowledgements never end a round
    assert report == {"taken": {"acknowledged_again": 3}, "error": None}
    assert world.acks() == []
    # Taken by the axis later: acknowledged again, nothing forwarded again.
    world.axis.faults.update({"refuse_acks": False})
    await eventually(lambda: len(world.acks("done")) == 3, 30, "the acknowledgements")
    assert {a.doc_id for a in world.acks("done")} == {i.doc_id for i in items}
    await world.poll()
    assert len(world.at_one_stop("vdxp.document")) == 3


async def test_a_backlog_drains_in_rounds_back_to_back(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    """A round stops at max_items; the next starts at once, not after interval_s."""
    poll = {"interval_s": 60, "limit": 4, "max_items": 5, "backoff_initial_s": 0.2}
    async with axis_world(tmp_path, rabbit_url, broker_prefix, poll=poll) as world:
        # The first round (nothing waiting) lists both kinds and is over: the next in 60 s.
        await eventually(lambda: world.axis.requests["list"] >= 2, 30, "the first round")
        world.axis.generate_documents(HUB_ORGAN, DEPARTMENT, count=12, attachment_bytes=10)
        report = await world.poll()
        assert report["taken"] == {"accepted": 5}
        await eventually(lambda: len(world.acks("done")) == 12, 30, "the backlog")
        assert len(world.at_one_stop("vdxp.document")) <= 12


async def test_a_transfer_the_axis_refuses_is_parked_with_its_reason(world: AxisWorld) -> None:
    dossier = await known_dossier(world, 4)
    world.axis.faults.update({"refuse_send": True, "refuse_reason": "sai định dạng"})
    status, _ = await world.transfer("lt-0004", dossier, {})
    assert status == 202

    async def refused() -> bool:
        row = await world.store.slices["vdxp"].transfer("lt-0004")
        return row is not None and row.state == "refused"

    await eventually(refused, 30, "the transfer marked refused")
    _, shown = await world.call("GET", "/api/v1/vdxp/transfers/lt-0004")
    assert shown["state"] == "refused"
    assert "sai định dạng" in shown["detail"]
    view = await world.store.dossier(dossier)
    failed = [d for d in view.deliveries if d.connector == "vdxp" and d.outcome == "failed"]
    assert [d.reason_code for d in failed] == ["refused"]  # the axis's errorCode, for words
    assert "sai định dạng" in (failed[0].detail or "")


async def test_transfers_the_hub_will_not_send_are_refused_at_the_door(world: AxisWorld) -> None:
    dossier = await known_dossier(world, 5)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"dossier_code": f"{HUB_ORGAN}-261123-9999"}, 422, "unknown_dossier"),
        ({"to": ["000.00.00.Z99"]}, 422, "unknown_organ"),
        ({"to": ["not-an-agency"]}, 400, "invalid"),
        ({"subject": None}, 400, "invalid"),
    ]
    for n, (change, expected, code) in enumerate(cases):
        body = {
            "transfer_id": f"bad-{n}",
            "dossier_code": dossier,
            "to": [MINISTRY],
            "subject": "x",
            "code_number": "1",
            **change,
        }
        status, reply = await world.call("POST", "/api/v1/vdxp/transfers", body)
        assert (status, reply["error"]) == (expected, code), (change, reply)
    status, reply = await world.call(
        "POST",
        "/api/v1/vdxp/transfers",
        {
            "transfer_id": "bad-b64",
            "dossier_code": dossier,
            "to": [MINISTRY],
            "subject": "x",
            "code_number": "1",
            "attachments": [{"name": "a", "content_base64": "%%%"}],
        },
    )
    assert status == 400
    assert "base64" in reply["message"]
    async with world.http.post(
        world.base + "/api/v1/vdxp/transfers",
        data=b"<xml/>",
        headers={"Authorization": "Bearer onestop-token", "Content-Type": "text/xml"},
    ) as response:
        assert response.status == 415
    assert world.axis.sent == []


async def test_the_same_transfer_posted_at_once_is_queued_and_sent_once(world: AxisWorld) -> None:
    dossier = await known_dossier(world, 8)
    attachment = {"a.pdf": os.urandom(300 * KB)}
    replies = await asyncio.gather(
        *(world.transfer("lt-0008", dossier, attachment) for _ in range(4))
    )
    statuses = [status for status, _ in replies]
    assert statuses.count(202) == 1, replies
    assert set(statuses) <= {200, 202, 409}, replies
    assert len({r["document_id"] for s, r in replies if s in (200, 202)}) == 1
    await eventually(lambda: len(world.axis.sent) == 1, 30, "the document on the axis")
    await world.poll()
    assert world.axis.sent[0].times_sent == 1
    [sent] = world.codec.parse_document(world.axis.sent[0].body).attachments
    assert sent.content == attachment["a.pdf"]


async def test_a_large_attachment_travels_as_multipart(world: AxisWorld) -> None:
    dossier = await known_dossier(world, 6)
    content = os.urandom(5 * 1024 * KB)
    form = aiohttp.FormData()
    form.add_field(
        "transfer",
        json.dumps(
            {
                "transfer_id": "lt-big",
                "dossier_code": dossier,
                "to": [MINISTRY],
                "subject": "Hồ sơ lớn",
                "code_number": "99",
            }
        ),
        content_type="application/json",
    )
    form.add_field("file", content, filename="ban-ve.pdf", content_type="application/pdf")
    async with world.http.post(
        world.base + "/api/v1/vdxp/transfers",
        data=form,
        headers={"Authorization": "Bearer onestop-token"},
    ) as response:
        reply = await response.json()
        assert response.status == 202, reply
    await eventually(lambda: len(world.axis.sent) == 1, 30, "the large document on the axis")
    [attachment] = world.codec.parse_document(world.axis.sent[0].body).attachments
    assert attachment.content == content
    assert attachment.name == "ban-ve.pdf"


async def test_bad_items_on_the_axis_are_refused_with_a_reason(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    """Every bad item gets a `fail` acknowledgement naming why; none reaches the one-stop;
    the good document among them goes on."""
    limits = {"max_document_bytes": 600 * KB, "max_attachment_bytes": 200 * KB}
    async with axis_world(tmp_path, rabbit_url, broker_prefix, **limits) as world:
        await _bad_items(world)


async def _bad_items(world: AxisWorld) -> None:
    sim: AxisSimulator = world.axis
    dossier = await known_dossier(world, 7)
    [template] = sim.generate_documents(HUB_ORGAN, DEPARTMENT, count=1, attachment_bytes=100)
    # Keep the template for building variants, but take it off the axis first.
    await world.poll()
    body = template.body
    doc_id = template.document_id
    assert doc_id is not None
    status = (DATA / "status_qcvn102.xml").read_bytes().replace(b"000.00.12.H41", MINISTRY.encode())

    def variant(old: bytes, new: bytes, of: bytes = body) -> bytes:
        assert old in of
        return of.replace(old, new).replace(doc_id.encode(), doc_id.encode() + new[-3:])

    bad_documents = {
        "malformed": body[: len(body) // 2],
        # Both known namespaces are read (accept_namespaces): a third one is refused.
        "wrong_namespace": (DATA / "document_go_vn.xml")
        .read_bytes()
        .replace(b"http://www.go.vn/eDoc", b"http://www.example.invalid/edXML"),
        "billion_laughs": (DATA / "billion_laughs.xml").read_bytes(),
        "external_entity": (DATA / "external_entity.xml").read_bytes(),
        "unknown_organ": variant(DEPARTMENT.encode(), b"000.00.00.Z99"),
        "not_addressed": variant(
            f"<edXML:OrganId>{HUB_ORGAN}".encode(), f"<edXML:OrganId>{MINISTRY}".encode()
        ),
    }
    expected = {
        "malformed": "malformed",
        "wrong_namespace": "wrong_namespace",
        "billion_laughs": "entities",
        "external_entity": "entities",
        "unknown_organ": "unknown_organ",
        "not_addressed": "not_addressed",
        "attachment_too_large": "attachment_too_large",
        "too_large": "too_large",
        "unknown_status": "unknown_status",
        "unknown_document": "unknown_document",
    }
    ids = {name: sim.enqueue(HUB_ORGAN, "edoc", b, DEPARTMENT) for name, b in bad_documents.items()}
    [big_attachment] = sim.generate_documents(HUB_ORGAN, DEPARTMENT, attachment_bytes=300 * KB)
    [huge_document] = sim.generate_documents(HUB_ORGAN, DEPARTMENT, attachment_bytes=700 * KB)
    ids["attachment_too_large"] = big_attachment.doc_id
    ids["too_large"] = huge_document.doc_id
    ids["unknown_status"] = sim.enqueue(
        HUB_ORGAN, "status", status.replace(b">03<", b">07<"), MINISTRY
    )
    ids["unknown_document"] = sim.enqueue(HUB_ORGAN, "status", status, MINISTRY)
    [good] = sim.generate_documents(
        HUB_ORGAN, DEPARTMENT, attachment_bytes=1000, subject=f"Hồ sơ {dossier}"
    )

    # A round now; the background rounds (every 0.2 s) may have taken some first, so what
    # counts is every item's acknowledgement, not this round's report.
    await world.poll()

    def all_acknowledged() -> bool:
        failed = {a.doc_id for a in world.acks("fail")}
        return set(ids.values()) <= failed and good.doc_id in {a.doc_id for a in world.acks()}

    await eventually(all_acknowledged, 30, lambda: f"every item acknowledged: {world.axis.state()}")
    fails = {a.doc_id: a.reason for a in world.acks("fail")}
    for name, code in expected.items():
        assert fails[ids[name]].startswith(code + ": "), (name, fails[ids[name]])
    assert good.doc_id in {a.doc_id for a in world.acks("done")}
    await eventually(lambda: len(world.at_one_stop("vdxp.document")) == 2, 30, "the good document")
    await world.poll()
    delivered = [e["document_id"] for e in world.at_one_stop("vdxp.document")]
    assert delivered == [template.document_id, good.document_id]
    assert world.at_one_stop("vdxp.status") == []

    status_code, log = await world.call("GET", "/api/v1/vdxp/intake?verdict=refused")
    assert status_code == 200
    assert {i["code"] for i in log["items"]} == set(expected.values())
    assert len(log["items"]) == len(expected), log["items"]
    # Nothing refused stays in the spool.
    spool = world.hub.config.connectors.vdxp.spool_dir
    folders = {p.name for p in (spool / "in").iterdir()}
    assert len(folders) == 2  # the template and the good document
    assert not any((spool / "incoming").iterdir())
    # The dashboard's document-axis page shows the same, read through its own connection.
    assert world.hub.board is not None
    page = await world.hub.board.flow("vdxp")
    tables = {t["key"]: t["rows"] for t in page["tables"]}
    assert {r["code"] for r in tables["intake"] if r["verdict"] == "refused"} == set(
        expected.values()
    )
    assert {r["document_id"] for r in tables["documents"]} == set(delivered)
    assert {f["key"]: f["value"] for f in page["facts"]}["last_round"] is not None
    assert [c["name"] for c in page["connectors"]] == ["vdxp"]


async def test_attachments_are_served_as_downloads_a_browser_never_runs(world: AxisWorld) -> None:
    dossier = await known_dossier(world, 1)
    script = b"<html><body><script>alert(document.cookie)</script></body></html>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    files = [
        ("x.html", "text/html", script),
        ("ảnh.svg", "image/svg+xml", svg),
        ("to-khai.pdf", "application/pdf; charset=binary", b"%PDF-1.4 ..."),
        ('a"b\r\nSet-Cookie: x=1.png', "image/png", b"\x89PNG\r\n"),
    ]
    body = {
        "transfer_id": "lt-html",
        "dossier_code": dossier,
        "to": [MINISTRY],
        "subject": "Tệp đính kèm",
        "code_number": "html",
        "code_notation": "UBND-VP",
        "attachments": [
            {"name": n, "content_type": t, "content_base64": base64.b64encode(c).decode()}
            for n, t, c in files
        ],
    }
    status, reply = await world.call("POST", "/api/v1/vdxp/transfers", body)
    assert status == 202, reply
    served = {}
    for attachment in reply["attachments"]:
        params = {"document_id": reply["document_id"], "attachment_id": attachment["attachment_id"]}
        async with world.http.get(
            world.base + "/api/v1/vdxp/attachment",
            params=params,
            headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
        ) as r:
            assert r.status == 200
            served[attachment["name"]] = (dict(r.headers), await r.read())
    assert set(served) == {n for n, _, _ in files}
    expected_types = {
        "x.html": "application/octet-stream",
        "ảnh.svg": "application/octet-stream",
        "to-khai.pdf": "application/pdf",
        'a"b\r\nSet-Cookie: x=1.png': "image/png",
    }
    for name, _, content in files:
        headers, got = served[name]
        assert got == content  # the bytes are the sender's, untouched
        assert headers["Content-Type"] == expected_types[name], name
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in headers["Content-Security-Policy"]
        disposition = headers["Content-Disposition"]
        assert disposition.startswith('attachment; filename="'), disposition
        assert "Set-Cookie" not in headers
        assert not {"\r", "\n"} & set(disposition)
    assert served["x.html"][0]["Content-Disposition"] == (
        "attachment; filename=\"x.html\"; filename*=UTF-8''x.html"
    )
    assert "filename*=UTF-8''%E1%BA%A3nh.svg" in served["ảnh.svg"][0]["Content-Disposition"]


async def test_an_item_the_axis_will_not_hand_over_is_refused_and_the_intake_goes_on(
    world: AxisWorld,
) -> None:
    """getEdoc refused (400) for one listed item: it gets a `fail` acknowledgement naming
    why, and the documents after it still arrive (before, it ended every round at itself)."""
    world.axis.faults.update({"refuse_get": True, "count": 1})
    world.axis.generate_documents(HUB_ORGAN, DEPARTMENT, count=3, attachment_bytes=10)
    await eventually(lambda: len(world.acks("done")) == 2, 30, "the two others taken")
    [failed] = world.acks("fail")
    assert failed.reason is not None
    assert failed.reason.startswith("download_refused: the axis refused to hand over the item")
    await eventually(
        lambda: len(world.at_one_stop("vdxp.document")) == 2, 30, "the two at the one-stop"
    )
    report = await world.poll()  # nothing left: a round without an error
    assert report["error"] is None, report
