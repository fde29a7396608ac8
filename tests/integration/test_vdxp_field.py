"""edXML as written in the field, over real HTTP (issue #19).

The axis here is a loopback server written in this file, not sims/vdxp (which shares the
hub's codec, so a mistake made twice would pass): it serves hand-written edXML from
tests/data/edxml as it stands, and reads what the hub sends with the standard library's
`email` parser. Through it, with the hub configured as a province receiving from both axis
versions and writing MIME packages:

* two packages (go.vn, CRLF, served as a multipart/related reply; QCVN 102, LF, the envelope
  last, served as a file) and an envelope with its content inline, all dated yyyy/MM/dd,
  reach the one-stop system with their attachments, byte for byte;
* a transfer leaves as a multipart/related package with QCVN 102's dates;
* the ministry's status messages about it, in both namespaces, with StaffInfo, reach the
  one-stop's vdxp.status and DVCQG's step with the department and the handler.
"""

from __future__ import annotations

import base64
import email
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from lxml import etree

from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.ministry_world import SUB_TOKEN, World
from tests.integration.vdxp_world import MINISTRY, axis_section, known_dossier
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually, hub_overrides

DATA = Path(__file__).resolve().parents[1] / "data" / "edxml"
QCVN = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
VIETNAM_TZ = timezone(timedelta(hours=7))
AGENCIES = [
    {"organId": MINISTRY, "organName": "Bộ Tư pháp"},
    {"organId": "000.00.42.H41", "organName": "Sở Tư pháp tỉnh Nghệ An"},
    {"organId": "000.00.12.H41", "organName": "Sở Tài nguyên và Môi trường"},
    {"organId": "000.00.00.G22", "organName": "Văn phòng Chính phủ"},
]
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
EXPECTED = {  # document id → its attachments' names and bytes, as written by hand
    "000.00.42.H41,2026/03/14,318/STP-HCTP": {
        "Tờ khai khai sinh.txt": "Tờ khai đăng ký khai sinh của cháu Nguyễn Minh Anh.".encode(),
        "Bản sao giấy chứng sinh.pdf": PDF,
    },
    "000.00.12.H41,2026/03/16,15/QĐ-STNMT": {
        "Quyết định 15.txt": "Quyết định số 15/QĐ-UBND ngày 14/03/2026 về việc giao đất cho hộ "
        "ông Nguyễn Văn Bình.\n".encode(),
        "Giấy chứng sinh.txt": "Giấy chứng sinh số 0458/GCS, cấp ngày 10/03/2026 tại Bệnh viện "
        "Sản Nhi Nghệ An.".encode(),
    },
    "000.00.00.G22,2018/09/20,7816/VPCP-TTĐT": {"7816-VPCP-TTĐT.pdf": PDF},
}


class FieldAxis:
    """The axis protocol at its smallest: an inbox of raw items served as they are, the
    acknowledgements, and what is sent. Signatures are not checked (their headers must be
    there): signing is tested against the simulator."""

    def __init__(self) -> None:
        self.inbox: dict[str, tuple[str, str, bytes, str]] = {}  # docId → type, from, body, ctype
        self.acks: dict[str, str] = {}  # docId → done | fail: reason
        self.sent: list[MIMEPart] = []  # each sendEdoc's file part
        self.url = ""

    def put(self, messagetype: str, sender: str, body: bytes, content_type: str) -> str:
        doc_id = str(uuid.uuid4())
        self.inbox[doc_id] = (messagetype, sender, body, content_type)
        return doc_id

    def put_package(self, sender: str, package: bytes) -> str:
        """A MIME package served as a multipart reply: its headers as HTTP headers."""
        head, _, body = package.partition(b"\r\n\r\n")
        headers = email.message_from_bytes(head + b"\r\n\r\n", policy=policy.HTTP)
        return self.put("edoc", sender, body, str(headers["Content-Type"]))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{call}", self._call)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self.url
        finally:
            await runner.cleanup()

    async def _call(self, request: web.Request) -> web.StreamResponse:
        assert request.headers.get("X-Vdxp-Signature"), "an unsigned call"
        call = request.match_info["call"]
        body = await request.read()
        if call == "sendEdoc":
            return self._send(request.headers["Content-Type"], body)
        query: dict[str, Any] = await request.json() if body else {}
        if call == "getAgencyList":
            return web.json_response({"status": "OK", "data": AGENCIES})
        if call == "getReceivedEdocList":
            listed = [
                {"docId": doc_id, "messagetype": kind, "from": sender, "created": None}
                for doc_id, (kind, sender, _, _) in self.inbox.items()
                if kind == query["messagetype"]
            ]
            return web.json_response({"status": "OK", "data": listed[: query["limit"]]})
        if call == "getEdoc":
            _, _, item, content_type = self.inbox[query["docId"]]
            return web.Response(body=item, headers={"Content-Type": content_type})
        if call == "updateStatus":
            self.inbox.pop(query["docId"])
            self.acks[query["docId"]] = query["status"] + (
                f": {query['reason']}" if query.get("reason") else ""
            )
            return web.json_response({"status": "OK"})
        return web.json_response({"status": "FAIL", "errorCode": "404"}, status=404)

    def _send(self, content_type: str, body: bytes) -> web.Response:
        form = email.message_from_bytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=policy.HTTP
        )
        assert isinstance(form, EmailMessage)
        fields = {
            part.get_param("name", header="content-disposition"): part for part in form.iter_parts()
        }
        assert fields["messagetype"].get_content() == "edoc"
        package = fields["file"]
        # The part is the package: its Content-Type says so, and its bytes are a whole MIME
        # message, whose own headers a reader going by the part's Content-Type sees as the
        # preamble.
        assert package.get_content_type() == "multipart/related"
        assert "Content-Type: multipart/related" in str(package.preamble)
        self.sent.append(package)
        return web.json_response({"status": "OK", "docId": str(uuid.uuid4())})


@asynccontextmanager
async def field_world(
    tmp_path: Path, rabbit_url: str, prefix: str, axis_url: str
) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
        overrides = hub_overrides(tmp_path, rabbit_url, prefix, portal.url)
        overrides["subscribers"] = {
            "one_stop": {"url": one_stop.url, "token": SUB_TOKEN, "events": ["vdxp.#"]}
        }
        # The defaults but one: both namespaces read, QCVN 102's dates written; packages out.
        overrides["connectors"]["vdxp"] = axis_section(
            axis_url, tmp_path / "spool", attachment_packaging="mime"
        )
        hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield World(hub, portal, one_stop, http)


def events(world: World, kind: str) -> list[dict[str, Any]]:
    return [e for e in world.one_stop.events if e["type"] == kind]


async def test_field_edxml_arrives_leaves_and_its_statuses_reach_dvcqg(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    axis = FieldAxis()
    async with axis.running() as url, field_world(tmp_path, rabbit_url, broker_prefix, url) as w:
        dossier = await known_dossier(w, 901)  # named in the go.vn package's Subject
        await _documents_arrive(w, axis, dossier)
        document_id = await _a_transfer_leaves_as_a_package(w, axis, dossier)
        await _statuses_reach_the_one_stop_and_dvcqg(w, axis, dossier, document_id)


async def _documents_arrive(w: World, axis: FieldAxis, dossier: str) -> None:
    ids = [
        axis.put_package("000.00.42.H41", (DATA / "package_go_vn.eml").read_bytes()),
        axis.put(
            "edoc",
            "000.00.12.H41",
            (DATA / "package_qcvn102_root_last.eml").read_bytes(),
            "application/octet-stream",
        ),
        axis.put(
            "edoc",
            "000.00.00.G22",
            (DATA / "document_qcvn102_slash_dates.xml").read_bytes(),
            "application/xml",
        ),
    ]
    await eventually(lambda: len(axis.acks) == 3, 30, "the three documents acknowledged")
    assert [axis.acks[i] for i in ids] == ["done"] * 3, axis.acks
    await eventually(
        lambda: len(events(w, "vdxp.document")) == 3, 30, "the documents at the one-stop"
    )
    received = {e["document_id"]: e for e in events(w, "vdxp.document")}
    assert set(received) == set(EXPECTED)
    go_vn = received["000.00.42.H41,2026/03/14,318/STP-HCTP"]
    assert go_vn["dossier_code"] == dossier
    assert (go_vn["promulgation_date"], go_vn["due_date"]) == ("2026-03-14", "2026-03-21")
    assert received["000.00.00.G22,2018/09/20,7816/VPCP-TTĐT"]["due_date"] == "2018-10-05"
    for document_id, attachments in EXPECTED.items():
        event = received[document_id]
        assert [a["name"] for a in event["attachments"]] == list(attachments)
        for attachment in event["attachments"]:
            async with w.http.get(
                w.base + attachment["href"], headers={"Authorization": "Bearer onestop-token"}
            ) as response:
                assert response.status == 200
                assert await response.read() == attachments[attachment["name"]]


async def _a_transfer_leaves_as_a_package(w: World, axis: FieldAxis, dossier: str) -> str:
    content = b"%PDF-1.7\r\n--not-a-boundary\r\n" + bytes(range(256)) * 40
    status, reply = await w.call(
        "POST",
        "/api/v1/vdxp/transfers",
        {
            "transfer_id": "lt-0027",
            "dossier_code": dossier,
            "to": [MINISTRY],
            "subject": f"Chuyển hồ sơ {dossier} để xác minh",
            "code_number": "27",
            "code_notation": "UBND-VP",
            "due_date": "2026-12-31",
            "attachments": [
                {
                    "name": "tờ khai.pdf",
                    "content_type": "application/pdf",
                    "content_base64": base64.b64encode(content).decode(),
                }
            ],
        },
    )
    assert status == 202, reply
    await eventually(lambda: len(axis.sent) == 1, 30, "the package on the axis")
    root, part = axis.sent[0].iter_parts()
    envelope_bytes = root.get_payload(decode=True)
    assert isinstance(envelope_bytes, bytes)
    envelope = etree.fromstring(envelope_bytes)
    ns = {"e": QCVN}

    def texts(path: str) -> list[str]:
        return [str(t) for t in envelope.xpath(path + "/text()", namespaces=ns)]

    assert texts("//e:MessageHeader/e:DocumentId") == [reply["document_id"]]
    [promulgated] = texts("//e:PromulgationInfo/e:PromulgationDate")
    assert re.fullmatch(r"[0-9]{4}/[0-9]{2}/[0-9]{2}", promulgated)
    assert texts("//e:MessageHeader/e:DueDate") == ["2026/12/31"]
    [stamp] = texts("//e:TraceHeader/e:Timestamp")
    sent_at = datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S").replace(tzinfo=VIETNAM_TZ)
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 600  # Vietnam time, no offset
    [content_id] = texts("//e:Reference/e:ContentId")
    assert content_id.startswith("cid:")
    assert texts("//e:Reference/e:AttachmentName") == ["tờ khai.pdf"]
    assert str(part["Content-ID"]) == f"<{content_id[4:]}>"
    assert part.get_payload(decode=True) == content
    return str(reply["document_id"])


async def _statuses_reach_the_one_stop_and_dvcqg(
    w: World, axis: FieldAxis, dossier: str, document_id: str
) -> None:
    about = b"000.00.41.H41,2026/03/20,lt-0027"  # the hand-written statuses' document
    for name in ("status_qcvn102_staff.xml", "status_go_vn_staff.xml"):
        body = (DATA / name).read_bytes().replace(about, document_id.encode())
        axis.put("status", MINISTRY, body, "application/xml")
    await eventually(lambda: len(events(w, "vdxp.status")) == 2, 30, "the statuses at the one-stop")
    statuses = {e["status"]: e for e in events(w, "vdxp.status")}
    accepted = statuses["03"]
    assert (accepted["dossier_code"], accepted["document_id"]) == (dossier, document_id)
    assert accepted["department"] == "Cục Hộ tịch, quốc tịch, chứng thực"
    assert accepted["handler_name"] == "Đặng Thu Trang"
    assert accepted["occurred_at"] == "2026-03-20T14:05:30+07:00"
    assert (statuses["05"]["department"], statuses["05"]["handler_name"]) == (
        "Văn phòng Bộ",
        None,
    )

    def by_department(department: str) -> list[dict[str, Any]]:
        return [s for s in w.portal.steps.get(dossier, []) if s.get("PhongBanXuLy") == department]

    await eventually(
        lambda: (
            bool(by_department("Cục Hộ tịch, quốc tịch, chứng thực (Bộ Tư pháp)"))
            and bool(by_department(f"Văn phòng Bộ ({MINISTRY})"))
        ),
        30,
        "the two steps at DVCQG",
    )
    [step] = by_department("Cục Hộ tịch, quốc tịch, chứng thực (Bộ Tư pháp)")
    assert step["NguoiXuLy"] == "Đặng Thu Trang"
    assert step["ThoiDiemXuLy"] == "20260320140530"
    assert "Bộ Tư pháp: Đã tiếp nhận" in step["NoiDungXuLy"]
    [other] = by_department(f"Văn phòng Bộ ({MINISTRY})")
    assert other["NguoiXuLy"] in ("", None)
