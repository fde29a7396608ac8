"""The document axis (VDXP) simulator, exercised over real loopback HTTP with real signatures.

No mocks: each test starts a real `AxisSimulator` on 127.0.0.1 and calls it with aiohttp the
way the hub's axis client will, signing every call with `SigningScheme.headers` over the exact
body bytes (multipart included, built by hand here, not by the code under test). What the
hub's VDXP tests will rely on is checked here first: inboxes, acknowledgements, signatures,
automatic statuses and their switches, de-duplication, refusals and the `_sim` controls.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import aiohttp
import pytest

from connectors.vdxp.edxml import NS_GO_VN_EDOC, NS_QCVN_102_2016, EdxmlCodec, EdxmlError
from connectors.vdxp.protocol import (
    ACK_PATH,
    AGENCIES_PATH,
    GET_PATH,
    LIST_PATH,
    SEND_PATH,
    SigningScheme,
    body_sha256,
)
from schemas.vdxp import (
    VIETNAM_TZ,
    Attachment,
    Business,
    BusinessDocType,
    DocumentCode,
    DocumentType,
    EdocDocument,
    MessageHeader,
    Organization,
    PromulgationInfo,
    ResponseFor,
    StatusCode,
    StatusMessage,
    TraceHeader,
    TraceHeaderList,
)
from sims.vdxp.simulator import AxisSimulator, _parser, parse_form
from tests.support import eventually

MB = 1 << 20
HUB, HUB_SECRET = "000.00.00.H41", "hub-secret-1"
PEER, PEER_SECRET = "000.00.00.H40", "peer-secret-1"  # another connected system
TNMT, XAY_DUNG = "000.00.12.H41", "000.00.15.H41"  # agencies that answer on their own
STRANGER = "000.00.99.H99"
AGENCIES = [
    {"organId": HUB, "organName": "Văn phòng UBND tỉnh Nghệ An"},
    {"organId": PEER, "organName": "Văn phòng UBND tỉnh Hà Tĩnh"},
    {"organId": TNMT, "organName": "Sở Tài nguyên và Môi trường"},
    {"organId": XAY_DUNG, "organName": "Sở Xây dựng"},
]
SECRETS = {HUB: HUB_SECRET, PEER: PEER_SECRET}
SCHEME = SigningScheme()
CODEC = EdxmlCodec(NS_QCVN_102_2016, 10 * MB, 7 * MB)
BOUNDARY = "vdxp-test-7d1f0c"
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b'<edXMLEnvelope xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">&lol2;</edXMLEnvelope>'
)


# -- a client, by hand ----------------------------------------------------------------------------


async def call(
    sim: AxisSimulator,
    path: str,
    json_body: Any = None,
    *,
    body: bytes | None = None,
    content_type: str = "application/json",
    system: str = HUB,
    secret: str | None = None,
    now: float | None = None,
    method: str = "POST",
    signed_body: bytes | None = None,
) -> tuple[int, Any]:
    """One signed call; (status, the JSON reply, or the raw bytes when it is not JSON).
    `signed_body` signs other bytes than those sent (a tampered request)."""
    data = (
        body if body is not None else b"" if json_body is None else json.dumps(json_body).encode()
    )
    headers = SCHEME.headers(
        system,
        SECRETS.get(system, "x") if secret is None else secret,
        method,
        path,
        body_sha256(data if signed_body is None else signed_body),
        time.time() if now is None else now,
    )
    headers["Content-Type"] = content_type
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.request(method, sim.base_url + path, data=io.BytesIO(data), headers=headers) as resp,
    ):
        raw = await resp.read()
    if resp.content_type == "application/json":
        return resp.status, json.loads(raw)
    return resp.status, raw


def multipart(messagetype: str | None, file: bytes | None) -> tuple[bytes, str]:
    """A multipart/form-data body with the two fields of sendEdoc (None: left out)."""
    parts = []
    if messagetype is not None:
        head = b'Content-Disposition: form-data; name="messagetype"\r\n\r\n'
        parts.append(head + messagetype.encode())
    if file is not None:
        head = (
            b'Content-Disposition: form-data; name="file"; filename="edoc.xml"\r\n'
            b"Content-Type: application/xml\r\n\r\n"
        )
        parts.append(head + file)
    delimiter = f"--{BOUNDARY}".encode()
    body = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts) + delimiter + b"--\r\n"
    return body, f"multipart/form-data; boundary={BOUNDARY}"


async def send(
    sim: AxisSimulator, data: bytes, messagetype: str = "edoc", system: str = HUB
) -> tuple[int, Any]:
    body, content_type = multipart(messagetype, data)
    return await call(sim, SEND_PATH, body=body, content_type=content_type, system=system)


async def listed(
    sim: AxisSimulator, messagetype: str = "edoc", system: str = HUB, limit: int = 100
) -> list[dict[str, str]]:
    status, reply = await call(
        sim, LIST_PATH, {"messagetype": messagetype, "limit": limit}, system=system
    )
    assert status == 200, reply
    assert reply["status"] == "OK"
    return list(reply["data"])


async def fetch(sim: AxisSimulator, doc_id: str, system: str = HUB) -> bytes:
    status, data = await call(sim, GET_PATH, {"docId": doc_id}, system=system)
    assert status == 200, data
    assert isinstance(data, bytes)
    return data


async def statuses(sim: AxisSimulator, system: str = HUB) -> list[StatusMessage]:
    """Every status message in `system`'s inbox, in the order listed."""
    items = await listed(sim, "status", system)
    return [CODEC.parse_status(await fetch(sim, item["docId"], system)) for item in items]


async def control(sim: AxisSimulator, path: str, body: Any = None) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        request = http.get if body is None else http.post
        async with request(f"{sim.base_url}/_sim/{path}", json=body) as response:
            return response.status, await response.json()


def document(
    document_id: str = "000.00.00.H41,2026/03/14,123/UBND-VP",
    to: tuple[str, ...] = (TNMT,),
    attachment: bytes = b"%PDF-1.4\n%%EOF\n",
) -> EdocDocument:
    return EdocDocument(
        header=MessageHeader(
            from_org=Organization(organ_id=HUB, organ_name="Văn phòng UBND tỉnh Nghệ An"),
            to_orgs=tuple(Organization(organ_id=organ) for organ in to),
            code=DocumentCode(number="123", notation="UBND-VP"),
            promulgation=PromulgationInfo(place="Nghệ An", date=date(2026, 3, 14)),
            document_type=DocumentType(type_code=1, type_name="Công văn"),
            subject="V/v liên thông hồ sơ giao đất của ông Nguyễn Văn Bình",
            document_id=document_id,
        ),
        trace=TraceHeaderList(
            trace_headers=(
                TraceHeader(
                    organ_id=HUB, timestamp=datetime(2026, 3, 14, 9, 30, tzinfo=VIETNAM_TZ)
                ),
            ),
            business=Business(doc_type=BusinessDocType.new),
        ),
        attachments=(
            Attachment(
                attachment_id="so-do.pdf",
                name="Sơ đồ thửa đất.pdf",
                content_type="application/pdf",
                content=attachment,
            ),
        ),
    )


def status_message(to_organ: str, code: str = "03") -> StatusMessage:
    return StatusMessage(
        response_for=ResponseFor(organ_id=to_organ, code="45/STNMT", document_id="D-45"),
        from_org=Organization(organ_id=HUB),
        status_code=StatusCode(code),
        description="Đã tiếp nhận",
        timestamp=datetime(2026, 3, 15, 8, 0, tzinfo=VIETNAM_TZ),
    )


@pytest.fixture
async def sim() -> AsyncIterator[AxisSimulator]:
    async with AxisSimulator(systems=SECRETS, agencies=AGENCIES, seed=7) as server:
        yield server


# -- the directory and signatures -----------------------------------------------------------------


async def test_agency_list_by_post_and_get(sim: AxisSimulator) -> None:
    for method in ("POST", "GET"):
        status, reply = await call(
            sim, AGENCIES_PATH, {} if method == "POST" else None, method=method
        )
        assert status == 200, reply
        assert reply == {"status": "OK", "data": AGENCIES}
    assert sim.responders == {TNMT, XAY_DUNG}  # every agency that is not a system


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"secret": "wrong"}, "does not match"),
        ({"system": STRANGER, "secret": "x"}, "unknown system"),
        ({"now": time.time() - 3600}, "away from now"),
        ({"signed_body": b'{"messagetype": "status"}'}, "does not match"),
    ],
    ids=["wrong_secret", "unknown_system", "stale_timestamp", "tampered_body"],
)
async def test_badly_signed_calls_are_refused(
    sim: AxisSimulator, changes: dict[str, Any], reason: str
) -> None:
    sim.generate_documents(HUB, TNMT)
    status, reply = await call(sim, LIST_PATH, {"messagetype": "edoc", "limit": 5}, **changes)
    assert status == 401
    assert reply["status"] == "FAIL"
    assert reply["errorCode"] == "bad_signature"
    assert reason in reply["error"]
    assert sim.auth_failures == 1


async def test_unsigned_call_is_refused(sim: AxisSimulator) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(sim.base_url + LIST_PATH, json={"messagetype": "edoc"}) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"] == "missing signing headers"


# -- list, get, acknowledge -----------------------------------------------------------------------


async def test_list_get_and_acknowledge(sim: AxisSimulator) -> None:
    items = sim.generate_documents(HUB, TNMT, count=3, attachment_bytes=2048)
    first = await listed(sim)
    assert [item["docId"] for item in first] == [item.doc_id for item in items]  # oldest first
    assert {item["from"] for item in first} == {TNMT}
    assert {item["messagetype"] for item in first} == {"edoc"}
    assert datetime.fromisoformat(first[0]["created"]).utcoffset() == VIETNAM_TZ.utcoffset(None)
    assert await listed(sim, limit=2) == first[:2]
    assert await listed(sim) == first  # listed again until acknowledged
    assert await listed(sim, "status") == []
    assert await listed(sim, system=PEER) == []  # inboxes are per system

    doc = CODEC.parse_document(await fetch(sim, first[0]["docId"]))
    assert doc.document_id == items[0].document_id
    assert doc.header.to_orgs[0].organ_id == HUB
    assert doc.attachments[0].size_bytes == 2048

    done = await call(sim, ACK_PATH, {"docId": first[0]["docId"], "status": "done"})
    refused = {"docId": first[1]["docId"], "status": "fail", "reason": "Sai định dạng"}
    assert done == (200, {"status": "OK"})
    assert await call(sim, ACK_PATH, refused) == (200, {"status": "OK"})
    assert [item["docId"] for item in await listed(sim)] == [first[2]["docId"]]

    status, reply = await control(sim, "acks")
    assert status == 200
    acks = reply["acks"]
    assert [(a["doc_id"], a["status"], a["reason"]) for a in acks] == [
        (first[0]["docId"], "done", None),
        (first[1]["docId"], "fail", "Sai định dạng"),
    ]
    assert acks[0]["document_id"] == items[0].document_id
    assert acks[0]["system"] == HUB
    assert acks[0]["messagetype"] == "edoc"
    assert acks[0]["status_code"] is None
    assert sim.acks[1].document_id == items[1].document_id


async def test_refusals_of_list_get_and_ack(sim: AxisSimulator) -> None:
    (item,) = sim.generate_documents(HUB, TNMT)
    unknown = {"docId": "khong-co", "status": "done"}
    assert (await call(sim, GET_PATH, {"docId": "khong-co"}))[0] == 404
    status, reply = await call(sim, ACK_PATH, unknown)
    assert (status, reply["errorCode"]) == (404, "unknown_doc")
    # Another system's item is unknown to this one.
    assert (await call(sim, GET_PATH, {"docId": item.doc_id}, system=PEER))[0] == 404
    bad = [
        (LIST_PATH, {"messagetype": "thu"}),
        (LIST_PATH, {"messagetype": "edoc", "limit": 0}),
        (LIST_PATH, {"messagetype": "edoc", "limit": True}),
        (GET_PATH, {}),
        (ACK_PATH, {"docId": item.doc_id}),
        (ACK_PATH, {"docId": item.doc_id, "status": "taken"}),
        (ACK_PATH, {"docId": item.doc_id, "status": "fail", "reason": "x" * 1001}),
        (ACK_PATH, ["not", "an", "object"]),
    ]
    for path, body in bad:
        status, reply = await call(sim, path, body)
        assert (status, reply["errorCode"]) == (400, "bad_request"), (path, body)
    status, reply = await call(sim, ACK_PATH, body=b"{not json")
    assert (status, reply["errorCode"]) == (400, "bad_request")
    assert len(await listed(sim)) == 1
    assert sim.acks == []


# -- sending --------------------------------------------------------------------------------------


async def test_a_document_to_a_responder_is_answered_01_03_05_06(sim: AxisSimulator) -> None:
    doc = document()
    status, reply = await send(sim, CODEC.build_document(doc))
    assert status == 200, reply
    assert reply["status"] == "OK"
    assert reply["docId"]
    answers = await statuses(sim)
    assert [msg.status_code for msg in answers] == [
        StatusCode.arrived, StatusCode.accepted, StatusCode.processing, StatusCode.completed
    ]  # fmt: skip
    for msg in answers:
        assert msg.response_for == ResponseFor(
            organ_id=HUB, code="123/UBND-VP", promulgation_date=date(2026, 3, 14),
            document_id=doc.document_id,
        )  # fmt: skip
        assert msg.from_org == Organization(organ_id=TNMT, organ_name="Sở Tài nguyên và Môi trường")
        assert msg.description
        assert msg.timestamp.utcoffset() == VIETNAM_TZ.utcoffset(None)
    stamps = [msg.timestamp for msg in answers]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert {item["from"] for item in await listed(sim, "status")} == {TNMT}
    assert await listed(sim) == []  # a responder is no system: no edoc comes back

    code, reply = await control(sim, "sent")
    assert code == 200
    (record,) = reply["sent"]
    assert record["doc_id"] == sim.sent[0].doc_id
    assert record["document_id"] == doc.document_id
    assert (record["from_org"], record["to"], record["system"]) == (HUB, [TNMT], HUB)
    assert record["subject"] == doc.header.subject
    assert record["attachments"] == [{"name": "Sơ đồ thửa đất.pdf", "size": 15}]
    assert record["times_sent"] == 1
    assert "body" not in record


async def test_a_document_to_a_system_lands_in_its_inbox(sim: AxisSimulator) -> None:
    data = CODEC.build_document(document(to=(PEER, XAY_DUNG)))
    assert (await send(sim, data))[0] == 200
    (item,) = await listed(sim, system=PEER)
    assert item["from"] == HUB
    assert await fetch(sim, item["docId"], PEER) == data
    assert len(await statuses(sim)) == 4  # from Sở Xây dựng only
    assert sim.sent[0].delivered_to == [PEER]


async def test_a_document_sent_again_is_delivered_once(sim: AxisSimulator) -> None:
    data = CODEC.build_document(document(to=(PEER, TNMT)))
    first, again = await send(sim, data), await send(sim, data)
    assert first[0] == again[0] == 200
    assert first[1]["docId"] == again[1]["docId"]
    assert len(await listed(sim, system=PEER)) == 1
    assert len(await listed(sim, "status")) == 4
    assert sim.state()["repeats"] == 1
    assert sim.sent[0].times_sent == 2
    assert len(sim.sent) == 1


async def test_a_lost_reply_is_retried_and_the_document_delivered_once(sim: AxisSimulator) -> None:
    data = CODEC.build_document(document())
    await control(sim, "faults", {"drop_after_send": True, "count": 1})
    status, reply = await send(sim, data)
    assert (status, reply["errorCode"]) == (500, "internal")
    assert len(sim.sent) == 1  # stored before the reply was lost
    status, reply = await send(sim, data)
    assert status == 200
    assert reply["docId"] == sim.sent[0].doc_id
    assert len(await listed(sim, "status")) == 4

    other = CODEC.build_document(document(document_id="D-2"))
    await control(sim, "faults", {"drop_after_send": True, "drop_by_closing": True, "count": 1})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await send(sim, other)
    assert (await send(sim, other))[0] == 200
    assert len(await listed(sim, "status")) == 8
    assert sim.fault_hits["drop_after_send"] == 2


async def test_status_switches_repeat_and_reorder(sim: AxisSimulator) -> None:
    await control(sim, "faults", {"repeat_statuses": True})
    await send(sim, CODEC.build_document(document()))
    items = await listed(sim, "status")
    assert len({item["docId"] for item in items}) == 8
    codes = [msg.status_code.value for msg in await statuses(sim)]
    assert codes == ["01", "01", "03", "03", "05", "05", "06", "06"]

    sim.reset()
    await control(sim, "faults", {"reorder_statuses": True})
    await send(sim, CODEC.build_document(document()))
    answers = await statuses(sim)
    assert [msg.status_code.value for msg in answers] != ["01", "03", "05", "06"]
    by_time = sorted(answers, key=lambda msg: msg.timestamp)
    assert [msg.status_code.value for msg in by_time] == ["01", "03", "05", "06"]


async def test_status_sequence_and_delay(sim: AxisSimulator) -> None:
    status, reply = await control(
        sim, "faults", {"status_sequence": ["01", "02"], "status_delay_s": 0.02}
    )
    assert status == 200, reply
    assert reply["faults"]["status_sequence"] == ["01", "02"]
    await send(sim, CODEC.build_document(document()))
    await eventually(lambda: sim.state()["statuses_queued"] == 2, 30, "two statuses queued")
    assert [msg.status_code.value for msg in await statuses(sim)] == ["01", "02"]
    assert sim.state()["statuses_pending"] == 0
    status, reply = await control(sim, "faults", {"status_sequence": ["07"]})
    assert status == 400
    assert "unknown status codes" in reply["message"]


async def test_a_status_sent_by_a_system_goes_to_the_system_it_answers(sim: AxisSimulator) -> None:
    data = CODEC.build_status(status_message(PEER))
    status, reply = await send(sim, data, "status")
    assert status == 200, reply
    (item,) = await listed(sim, "status", PEER)
    assert item["from"] == HUB
    assert await fetch(sim, item["docId"], PEER) == data
    assert (await send(sim, data, "status"))[1]["docId"] == reply["docId"]  # de-duplicated
    assert len(await listed(sim, "status", PEER)) == 1
    # A status about a document of an agency that is no system is recorded only.
    assert (await send(sim, CODEC.build_status(status_message(TNMT)), "status"))[0] == 200
    assert [(r.messagetype, r.status_code, r.delivered_to) for r in sim.sent] == [
        ("status", "03", [PEER]),
        ("status", "03", []),
    ]
    await call(sim, ACK_PATH, {"docId": item["docId"], "status": "done"}, system=PEER)
    assert (sim.acks[0].document_id, sim.acks[0].status_code) == ("D-45", "03")


@pytest.mark.parametrize(
    ("data", "messagetype", "code"),
    [
        (b"<edXMLEnvelope><unclosed>", "edoc", "malformed"),
        (BILLION_LAUGHS, "edoc", "entities"),
        (EdxmlCodec(NS_GO_VN_EDOC, MB, MB).build_document(document()), "edoc", "wrong_namespace"),
        (CODEC.build_status(status_message(PEER)), "edoc", "missing_field"),
        (CODEC.build_document(document()), "status", "missing_field"),
        (CODEC.build_document(document(to=(TNMT, STRANGER))), "edoc", "unknown_organ"),
    ],
    ids=["malformed", "entities", "namespace", "status_as_edoc", "edoc_as_status", "organ"],
)
async def test_bad_sendings_are_refused(
    sim: AxisSimulator, data: bytes, messagetype: str, code: str
) -> None:
    status, reply = await send(sim, data, messagetype)
    assert (status, reply["status"], reply["errorCode"]) == (400, "FAIL", code)
    assert reply["error"]
    assert sim.sent == []
    assert await listed(sim, "status") == []


async def test_bad_multipart_is_refused(sim: AxisSimulator) -> None:
    data = CODEC.build_document(document())
    no_file = multipart("edoc", None)
    no_type = multipart(None, data)
    wrong_type = multipart("thu", data)
    cut = (no_file[0][: len(no_file[0]) - 8], no_file[1])
    for body, content_type in (no_file, no_type, wrong_type, cut, (data, "application/xml")):
        status, reply = await call(sim, SEND_PATH, body=body, content_type=content_type)
        assert (status, reply["errorCode"]) == (400, "bad_request"), reply
    assert sim.sent == []


async def test_aiohttp_multipart_is_read(sim: AxisSimulator) -> None:
    """The multipart the hub's aiohttp client will write (its own boundary and headers)."""
    data = CODEC.build_document(document(attachment=bytes(range(256)) * 20_000))  # 5 MB
    form = aiohttp.FormData()
    form.add_field("messagetype", "edoc")
    form.add_field("file", io.BytesIO(data), filename="văn bản.xml", content_type="application/xml")
    payload = form()
    body = await payload.as_bytes()
    assert len(body) > 6 * MB
    status, reply = await call(
        sim, SEND_PATH, body=body, content_type=payload.headers["Content-Type"]
    )
    assert status == 200, reply
    assert sim.sent[0].body == data
    assert sim.sent[0].attachments == [{"name": "Sơ đồ thửa đất.pdf", "size": 5_120_000}]


def test_parse_form_refuses_what_is_not_form_data() -> None:
    body, content_type = multipart("edoc", b"<x/>")
    assert parse_form(content_type, body) == {"messagetype": b"edoc", "file": b"<x/>"}
    twice = body.replace(f"--{BOUNDARY}--".encode(), b"") + body
    for bad_body, bad_type in (
        (body, "multipart/form-data"),  # no boundary
        (body, "multipart/form-data; boundary=other"),
        (body[:-9], content_type),  # no closing boundary
        (twice, content_type),  # a field twice
        (body.replace(b"\r\n\r\n", b"\r\n", 1), content_type),  # no blank line after headers
    ):
        with pytest.raises(ValueError):  # noqa: PT011 - each case its own message
            parse_form(bad_type, bad_body)


# -- faults ---------------------------------------------------------------------------------------


async def test_outage_answers_503_until_counted_out(sim: AxisSimulator) -> None:
    status, reply = await control(sim, "faults", {"outage": True, "count": 3})
    assert status == 200, reply
    for path, body in ((LIST_PATH, {"messagetype": "edoc"}), (GET_PATH, {"docId": "x"})):
        status, reply = await call(sim, path, body)
        assert (status, reply["errorCode"]) == (503, "unavailable")
    assert (await call(sim, AGENCIES_PATH, {}))[0] == 503
    assert (await call(sim, AGENCIES_PATH, {}))[0] == 200
    assert sim.state()["faults"]["outage"] is False
    assert sim.fault_hits["outage"] == 3


async def test_fail_acks_keeps_the_item(sim: AxisSimulator) -> None:
    (item,) = sim.generate_documents(HUB, TNMT)
    await control(sim, "faults", {"fail_acks": True})
    status, reply = await call(sim, ACK_PATH, {"docId": item.doc_id, "status": "done"})
    assert (status, reply["errorCode"]) == (500, "internal")
    assert [listed_item["docId"] for listed_item in await listed(sim)] == [item.doc_id]
    assert sim.acks == []
    assert sim.state()["acks_refused"] == 1
    await control(sim, "faults", {"fail_acks": False})
    assert (await call(sim, ACK_PATH, {"docId": item.doc_id, "status": "done"}))[0] == 200
    assert await listed(sim) == []


async def test_truncate_edoc_serves_half_the_bytes(sim: AxisSimulator) -> None:
    (item,) = sim.generate_documents(HUB, TNMT, attachment_bytes=4096)
    await control(sim, "faults", {"truncate_edoc": True})
    data = await fetch(sim, item.doc_id)
    assert data == item.body[: len(item.body) // 2]
    with pytest.raises(EdxmlError):
        CODEC.parse_document(data)


async def test_refuse_send_and_slow(sim: AxisSimulator) -> None:
    await control(sim, "faults", {"refuse_send": True, "refuse_reason": "Hết hạn mức"})
    status, reply = await send(sim, CODEC.build_document(document()))
    assert (status, reply["errorCode"], reply["error"]) == (400, "refused", "Hết hạn mức")
    assert sim.sent == []
    await control(sim, "faults", {"refuse_send": False, "slow_s": 0.2})
    started = time.monotonic()
    assert (await call(sim, AGENCIES_PATH, {}))[0] == 200
    assert time.monotonic() - started >= 0.2


async def test_fault_settings_are_checked_and_reset_to_the_constructor() -> None:
    async with AxisSimulator(
        systems=SECRETS, agencies=AGENCIES, faults={"status_sequence": ["01"]}
    ) as sim:
        for bad in ({"outage": "yes"}, {"nonsense": 1}, {"slow_s": -1}, {"count": 1.5}):
            assert (await control(sim, "faults", bad))[0] == 400
        await control(sim, "faults", {"status_sequence": ["01", "06"], "outage": True})
        status, reply = await control(sim, "reset", {})
        assert status == 200, reply
        assert sim.faults.status_sequence == ["01"]
        assert sim.faults.outage is False
        await send(sim, CODEC.build_document(document()))
        assert [msg.status_code.value for msg in await statuses(sim)] == ["01"]
    with pytest.raises(ValueError, match="unknown fault fields"):
        AxisSimulator(systems=SECRETS, faults={"nonsense": True})
    with pytest.raises(ValueError, match="not in the agency list"):
        AxisSimulator(systems=SECRETS, agencies=AGENCIES, responders=[STRANGER])


# -- the control endpoints ------------------------------------------------------------------------


async def test_sim_inbox_puts_raw_bytes(sim: AxisSimulator) -> None:
    raw = {"system": HUB, "messagetype": "edoc", "from": TNMT}
    status, reply = await control(
        sim, "inbox", {**raw, "body_base64": base64.b64encode(BILLION_LAUGHS).decode()}
    )
    assert status == 200, reply
    assert [item["docId"] for item in await listed(sim)] == [reply["docId"]]
    assert await fetch(sim, reply["docId"]) == BILLION_LAUGHS
    refusal = {"docId": reply["docId"], "status": "fail", "reason": "entities"}
    assert (await call(sim, ACK_PATH, refusal))[0] == 200
    assert (sim.acks[0].status, sim.acks[0].document_id) == ("fail", None)

    doc_id = sim.enqueue(HUB, "status", b"<khong-phai-xml", TNMT)
    assert [item["docId"] for item in await listed(sim, "status")] == [doc_id]
    for bad in (
        {**raw, "system": STRANGER, "body_base64": ""},
        {**raw, "messagetype": "thu", "body_base64": ""},
        {**raw, "body_base64": "không phải base64"},
        {"system": HUB},
    ):
        assert (await control(sim, "inbox", bad))[0] == 400, bad


async def test_sim_documents_generates_valid_documents(sim: AxisSimulator) -> None:
    request = {"system": HUB, "from": XAY_DUNG, "count": 3, "attachment_bytes": 10_000}
    status, reply = await control(sim, "documents", {**request, "subject": "Thử nghiệm"})
    assert status == 200, reply
    assert len(set(reply["documentIds"])) == 3
    items = await listed(sim)
    assert [item["docId"] for item in items] == reply["docIds"]
    for item, document_id in zip(items, reply["documentIds"], strict=True):
        doc = CODEC.parse_document(await fetch(sim, item["docId"]))
        assert doc.document_id == document_id
        assert doc.header.from_org.organ_id == XAY_DUNG
        assert [org.organ_id for org in doc.header.to_orgs] == [HUB]
        assert doc.header.subject == "Thử nghiệm"
        assert [a.size_bytes for a in doc.attachments] == [10_000]
    (bare,) = sim.generate_documents(PEER, TNMT, attachment_bytes=0)
    assert CODEC.parse_document(bare.body).attachments == ()
    for bad in (
        {**request, "system": STRANGER},
        {**request, "from": STRANGER},
        {**request, "count": 0},
        {**request, "attachment_bytes": -1},
        {**request, "attachment_bytes": 8 * MB},
    ):
        assert (await control(sim, "documents", bad))[0] == 400, bad


async def test_state_counts_inboxes_and_calls(sim: AxisSimulator) -> None:
    sim.generate_documents(HUB, TNMT, count=2)
    await send(sim, CODEC.build_document(document(to=(PEER, TNMT))))
    (first, _) = await listed(sim)
    await call(sim, ACK_PATH, {"docId": first["docId"], "status": "done"})
    await call(sim, LIST_PATH, {"messagetype": "edoc"}, secret="wrong")
    status, state = await control(sim, "state")
    assert status == 200
    assert state["inboxes"] == {
        HUB: {"edoc": 1, "status": 4},
        PEER: {"edoc": 1, "status": 0},
    }
    assert state["requests"] == {"send": 1, "list": 2, "ack": 1}
    assert state["acks"] == {"done": 1, "fail": 0}
    assert (state["sent"], state["repeats"], state["generated"]) == (1, 0, 2)
    assert state["statuses_queued"] == 4
    assert state["auth_failures"] == 1
    assert state["faults"]["status_sequence"] == ["01", "03", "05", "06"]


def test_command_line() -> None:
    args = _parser().parse_args(
        [
            "--port", "0", "--system", f"{HUB}=s1", "--agency", f"{TNMT}=Sở TN&MT",
            "--namespace", NS_GO_VN_EDOC,
        ]
    )  # fmt: skip
    assert args.system == [(HUB, "s1")]
    assert args.agency == [(TNMT, "Sở TN&MT")]
    assert args.namespace == NS_GO_VN_EDOC
    assert args.responder is None
    with pytest.raises(SystemExit):
        _parser().parse_args(["--system", "no-secret"])
