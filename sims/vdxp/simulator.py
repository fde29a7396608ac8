"""A stand-in for the national document interchange axis (VDXP), for tests and demos.

It plays the axis of `protocol.py` on loopback: connected systems (the hub is one; a system's
id is also its OrganId) each have an inbox of edXML documents and status messages, which they
list (`/getReceivedEdocList`), download (`/getEdoc`) and acknowledge (`/updateStatus`); they
send documents and statuses with `/sendEdoc` and read the directory with `/getAgencyList`.
Every call must be signed by the system's secret (`SigningScheme.verify`, else 401).

What it does with what is sent: an edXML document is parsed with `EdxmlCodec` (bad XML,
entities, a wrong namespace… are refused with 400 and the codec's `EdxmlError` code; a To
organ outside the directory with `unknown_organ`), de-duplicated on its DocumentId (sent again:
200, the same axis docId, delivered once, counted as a repeat), then delivered: an `edoc` item
for each To organ that is a connected system, and for each To organ that is a *responder* (an
agency answering on its own; by default every agency that is not a system) status messages
back to the sender's inbox, `status_sequence` in order (01 arrived, 03 accepted, 05
processing, 06 completed), their Timestamps one minute apart after the sending. A status
message sent by a system goes to the system whose organ id is its ResponseFor/OrganId, if any
(de-duplicated on its From, ResponseFor, StatusCode and Timestamp).

Switches (`AxisFaults`, set in the constructor or over `POST /_sim/faults`):

- `status_sequence`, `status_delay_s` (0: statuses are queued at once; else one every so
  many seconds), `repeat_statuses` (each queued twice, under two transport ids),
  `reorder_statuses` (queued shuffled by the seeded RNG, never in order; Timestamps unchanged);
- `slow_s`: every protocol call waits that long first;
- failures, which `count` limits (after that many hits they all turn off; 0: until changed):
  `outage` (every protocol call 503), `fail_acks` (updateStatus 500, the item stays),
  `refuse_acks` (updateStatus 400 `refused`, the item stays: an axis that will not take it),
  `truncate_edoc` (getEdoc serves the first half of the bytes), `refuse_get` (getEdoc 400
  `refused`: an item the axis lists but will not hand over), `refuse_send` (sendEdoc 400
  `refused` with `refuse_reason`), `drop_after_send` (sendEdoc stores and delivers, then
  answers 500, or with `drop_by_closing` closes the connection: a lost reply).

Control over `<base_url>/_sim/`: `faults`, `state`, `reset` (back to the constructor's
switches), `POST inbox` (raw bytes into an inbox, for bad-input tests), `POST documents`
(valid generated documents into an inbox), `GET acks`, `GET sent`; the same from Python
(`enqueue`, `generate_documents`, `acks`, `sent`, `state()`).

It plays the axis honestly, so it must never import hub code (`hub.*`; it shares only the wire
code of `connectors.vdxp` and `schemas.vdxp`), never bend its rules to suit the hub, and never
be exposed beyond a test or demo machine (its secrets are throwaway and its `_sim` endpoints
have no authentication).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from functools import partial
from typing import Any

from aiohttp import web

from connectors.vdxp.edxml import NS_QCVN_102_2016, EdxmlCodec, EdxmlError
from connectors.vdxp.protocol import (
    ACK_PATH,
    AGENCIES_PATH,
    EDXML_CONTENT_TYPE,
    GET_PATH,
    LIST_PATH,
    MAX_REASON_CHARS,
    MESSAGE_TYPES,
    SEND_FILE_FIELD,
    SEND_PATH,
    SEND_TYPE_FIELD,
    MessageType,
    SignatureError,
    SigningScheme,
    body_sha256,
    fail,
    ok,
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
    StaffInfo,
    StatusCode,
    StatusMessage,
    TraceHeader,
    TraceHeaderList,
)
from sims.loopback import (
    LoopbackServer,
    apply_changes,
    control_routes,
    parse_count,
    parse_seconds,
    read_json_object,
    serve_until_signalled,
)

MB = 1 << 20
SIM_PREFIX = "/_sim"
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000  # getReceivedEdocList: limit absent; above it is clipped
MAX_DOC_ID_CHARS = 200
MAX_GENERATED = 10_000  # documents per /_sim/documents call
STATUS_STEP = timedelta(minutes=1)  # between the Timestamps of one document's statuses
DEFAULT_SEQUENCE = ("01", "03", "05", "06")
DESCRIPTIONS: dict[str, str] = {
    "01": "Văn bản đã đến cơ quan nhận",
    "02": "Từ chối tiếp nhận văn bản",
    "03": "Đã tiếp nhận, vào sổ văn bản đến",
    "04": "Đã phân công xử lý",
    "05": "Đang xử lý văn bản",
    "06": "Đã hoàn thành xử lý văn bản",
    "13": "Lấy lại văn bản",
    "15": "Đồng ý lấy lại/cập nhật văn bản",
    "16": "Từ chối lấy lại/cập nhật văn bản",
}
CLERK = StaffInfo(department="Văn thư", staff="Nguyễn Thị Lan")
_FAILURES = (
    "outage",
    "fail_acks",
    "refuse_acks",
    "truncate_edoc",
    "refuse_get",
    "refuse_send",
    "drop_after_send",
)

_dumps = partial(json.dumps, ensure_ascii=False, default=str)


def _answer(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, dumps=_dumps)


def _refuse(status: int, code: str, message: str) -> web.Response:
    return _answer(fail(code, message), status)


def _bad_control(message: str) -> web.Response:
    return _answer({"error": "bad_request", "message": message}, 400)


def _now() -> datetime:
    return datetime.now(VIETNAM_TZ)


def _stamp() -> str:
    return _now().isoformat(timespec="milliseconds")


# -- switches -------------------------------------------------------------------------------------


def _parse_flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _parse_sequence(value: object) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"status_sequence must be a list of status codes, got {value!r}")
    known = {code.value for code in StatusCode}
    unknown = [code for code in value if code not in known]
    if unknown:
        raise ValueError(f"unknown status codes {unknown}; known: {sorted(known)}")
    return list(value)


def _parse_reason(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_REASON_CHARS:
        raise ValueError(f"refuse_reason must be a text of 1..{MAX_REASON_CHARS} characters")
    return value


_FAULT_PARSERS: dict[str, Callable[[object], object]] = {
    "status_sequence": _parse_sequence,
    "status_delay_s": parse_seconds,
    "repeat_statuses": _parse_flag,
    "reorder_statuses": _parse_flag,
    "slow_s": parse_seconds,
    "outage": _parse_flag,
    "fail_acks": _parse_flag,
    "refuse_acks": _parse_flag,
    "truncate_edoc": _parse_flag,
    "refuse_get": _parse_flag,
    "refuse_send": _parse_flag,
    "refuse_reason": _parse_reason,
    "drop_after_send": _parse_flag,
    "drop_by_closing": _parse_flag,
    "count": parse_count,
}


@dataclass
class AxisFaults:
    """How the axis behaves; see the module docstring. `count`: how many hits of the failure
    switches (outage, fail_acks, refuse_acks, truncate_edoc, refuse_get, refuse_send,
    drop_after_send)
    before they all
    turn off; 0 = until changed."""

    status_sequence: list[str] = field(default_factory=lambda: list(DEFAULT_SEQUENCE))
    status_delay_s: float = 0.0
    repeat_statuses: bool = False
    reorder_statuses: bool = False
    slow_s: float = 0.0
    outage: bool = False
    fail_acks: bool = False
    refuse_acks: bool = False
    truncate_edoc: bool = False
    refuse_get: bool = False
    refuse_send: bool = False
    refuse_reason: str = "Trục từ chối nhận văn bản (giả lập)"
    drop_after_send: bool = False
    drop_by_closing: bool = False
    count: int = 0

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply the fields present in `changes`; all or nothing (raises ValueError)."""
        apply_changes(self, dict(changes), _FAULT_PARSERS)


# -- the record -----------------------------------------------------------------------------------


@dataclass
class InboxItem:
    """One item waiting in a system's inbox; `doc_id` is the axis's transport id."""

    doc_id: str
    system: str
    messagetype: MessageType
    from_org: str
    created: datetime
    body: bytes = field(repr=False)
    document_id: str | None = None  # the edXML DocumentId, when the axis knows it

    def listed(self) -> dict[str, str]:
        created = self.created.isoformat(timespec="milliseconds")
        return {
            "docId": self.doc_id,
            "messagetype": self.messagetype,
            "from": self.from_org,
            "created": created,
        }


@dataclass
class AckRecord:
    """One acknowledgement taken (`updateStatus` done or fail). `document_id` is the edXML
    DocumentId of a document or the ResponseFor/DocumentId of a status, `status_code` the
    status's StatusCode; None when the item does not parse."""

    doc_id: str
    system: str
    messagetype: MessageType
    from_org: str
    status: str
    reason: str | None
    document_id: str | None = None
    status_code: str | None = None
    at: str = field(default_factory=lambda: _stamp())


@dataclass
class SentRecord:
    """One message received by `sendEdoc` (its repeats counted in `times_sent`)."""

    doc_id: str
    system: str
    messagetype: MessageType
    document_id: str  # a status: its ResponseFor/DocumentId
    from_org: str
    to: list[str]  # a status: [ResponseFor/OrganId]
    body: bytes = field(repr=False)
    subject: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)  # {"name", "size"}
    status_code: str | None = None
    delivered_to: list[str] = field(default_factory=list)  # systems whose inbox got it
    first_sent: str = field(default_factory=lambda: _stamp())
    last_sent: str = ""
    times_sent: int = 1

    def __post_init__(self) -> None:
        self.last_sent = self.last_sent or self.first_sent

    def listed(self) -> dict[str, Any]:
        record = asdict(self)
        del record["body"]
        return record


class UnknownOrganError(Exception):
    """A document addressed to an organ the axis does not know."""


def _organization(agency: Organization | Mapping[str, str]) -> Organization:
    if isinstance(agency, Organization):
        return agency
    return Organization(organ_id=agency["organId"], organ_name=agency.get("organName"))


# -- multipart/form-data, from the bytes the signature covers -------------------------------------


def parse_form(content_type: str, body: bytes) -> dict[str, bytes]:
    """The named parts of a multipart/form-data `body`, exactly as sent; `ValueError` says why
    it is not one (no boundary, no closing boundary, a part without headers, a name twice)."""
    declared = Message()
    declared["Content-Type"] = content_type
    if declared.get_content_type() != "multipart/form-data":
        raise ValueError(f"expected multipart/form-data, got {content_type[:100]!r}")
    boundary = declared.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 70 or not boundary.isascii():
        raise ValueError("the multipart boundary is missing or invalid")
    delimiter = b"--" + boundary.encode("ascii")
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2 : start] != b"\r\n"):
        raise ValueError("the body does not start with the multipart boundary")
    fields: dict[str, bytes] = {}
    for chunk in body[start + len(delimiter) :].split(b"\r\n" + delimiter):
        if chunk.startswith(b"--"):
            return fields
        name, content = _form_part(chunk.lstrip(b" \t"))
        if name in fields:
            raise ValueError(f"the part {name[:60]!r} appears twice")
        if name:
            fields[name] = content
    raise ValueError("the closing multipart boundary is missing")


def _form_part(chunk: bytes) -> tuple[str, bytes]:
    """(the part's form name, "" if none; its content) from the bytes after a delimiter."""
    if not chunk.startswith(b"\r\n"):
        raise ValueError("a multipart delimiter is not followed by a line break")
    head, sep, content = chunk[2:].partition(b"\r\n\r\n")
    if not sep:
        if not head.startswith(b"\r\n"):
            raise ValueError("a part has no blank line after its headers")
        head, content = b"", head[2:]
    headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
    name = headers.get_param("name", header="content-disposition")
    return ("" if name is None else collapse_rfc2231_value(name)), content


# -- the simulator --------------------------------------------------------------------------------


Handler = Callable[[web.Request, str, bytes], Awaitable[web.StreamResponse]]


class AxisSimulator(LoopbackServer):
    """The document axis on loopback: `async with AxisSimulator(systems=..., agencies=...) as
    sim:`, point the hub at `sim.base_url`; `sim.clock` (unix seconds) drives signature
    checks."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        systems: Mapping[str, str],
        agencies: Sequence[Organization | Mapping[str, str]] = (),
        namespace: str = NS_QCVN_102_2016,
        scheme: SigningScheme | None = None,
        responders: Iterable[str] | None = None,
        max_document_bytes: int = 10 * MB,
        max_attachment_bytes: int = 7 * MB,
        faults: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        if not systems:
            raise ValueError("at least one system must be registered")
        super().__init__(host, port)
        self.systems = dict(systems)
        self.scheme = scheme or SigningScheme()
        self.codec = EdxmlCodec(namespace, max_document_bytes, max_attachment_bytes)
        # Multipart framing and the text field around a document of the largest size.
        self.max_body_bytes = max_document_bytes + 64 * 1024
        self.directory: dict[str, Organization] = {}
        for agency in agencies:
            organization = _organization(agency)
            self.directory[organization.organ_id] = organization
        for system in self.systems:
            self.directory.setdefault(system, Organization(organ_id=system))
        chosen = (
            [organ for organ in self.directory if organ not in self.systems]
            if responders is None
            else list(responders)
        )
        strangers = [organ for organ in chosen if organ not in self.directory]
        if strangers:
            raise ValueError(f"responders {strangers} are not in the agency list")
        self.responders = frozenset(chosen)
        self._settings = dict(faults or {})
        AxisFaults().update(self._settings)  # refuse bad settings now, not at reset
        self.seed = seed
        self.clock: Callable[[], float] = time.time
        self._run_tag = secrets.token_hex(2).upper()  # generated DocumentIds differ across runs
        self._tasks: set[asyncio.Task[None]] = set()
        self.reset()

    def reset(self) -> None:
        """Forget every inbox item, sending, acknowledgement and counter; the switches go back
        to the constructor's."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.faults = AxisFaults()
        self.faults.update(self._settings)
        self.rng = random.Random(self.seed)
        self.inboxes: dict[str, dict[str, InboxItem]] = {system: {} for system in self.systems}
        self.acks: list[AckRecord] = []
        self.sent: list[SentRecord] = []
        self._sent_by_key: dict[tuple[str, ...], SentRecord] = {}
        self.requests: Counter[str] = Counter()
        self.fault_hits: Counter[str] = Counter()
        self.auth_failures = self.repeats = self.acks_refused = 0
        self.statuses_queued = self.statuses_pending = self.generated = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        calls: dict[str, tuple[str, Handler]] = {
            LIST_PATH: ("list", self._list),
            GET_PATH: ("get", self._get),
            ACK_PATH: ("ack", self._ack),
            SEND_PATH: ("send", self._send),
            AGENCIES_PATH: ("agencies", self._agencies),
        }
        for path, (name, handler) in calls.items():
            app.router.add_post(path, self._call(name, handler))
        app.router.add_get(AGENCIES_PATH, self._call("agencies", self._agencies))
        control_routes(app, self, SIM_PREFIX)
        app.router.add_post(f"{SIM_PREFIX}/inbox", self._sim_inbox)
        app.router.add_post(f"{SIM_PREFIX}/documents", self._sim_documents)
        app.router.add_get(f"{SIM_PREFIX}/acks", self._sim_acks)
        app.router.add_get(f"{SIM_PREFIX}/sent", self._sim_sent)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await super().stop()

    # -- control from Python --------------------------------------------------------------------

    def enqueue(
        self,
        system: str,
        messagetype: str,
        body: bytes,
        from_org: str,
        document_id: str | None = None,
    ) -> str:
        """Put `body` as it is into `system`'s inbox; the item's transport id."""
        if system not in self.inboxes:
            raise ValueError(f"unknown system {system[:60]!r}")
        if messagetype not in MESSAGE_TYPES:
            raise ValueError(f"messagetype must be one of {list(MESSAGE_TYPES)}")
        doc_id = str(uuid.uuid4())
        kind: MessageType = "edoc" if messagetype == "edoc" else "status"
        item = InboxItem(doc_id, system, kind, from_org, _now(), body, document_id)
        self.inboxes[system][doc_id] = item
        return doc_id

    def generate_documents(
        self,
        system: str,
        from_org: str,
        count: int = 1,
        attachment_bytes: int = 1024,
        subject: str | None = None,
    ) -> list[InboxItem]:
        """`count` valid edXML documents from agency `from_org` to `system`, each with a unique
        DocumentId and one attachment of `attachment_bytes` random bytes (0: none), into the
        system's inbox; the items queued."""
        sender = self.directory.get(from_org)
        if system not in self.inboxes or sender is None:
            raise ValueError("system must be registered and from_org in the agency list")
        if (
            not 1 <= count <= MAX_GENERATED
            or not 0 <= attachment_bytes <= self.codec.max_attachment_bytes
        ):
            limit = self.codec.max_attachment_bytes
            raise ValueError(f"count must be 1..{MAX_GENERATED}, attachment_bytes 0..{limit}")
        items = []
        for _ in range(count):
            doc = self._generated_document(
                sender, self.directory[system], attachment_bytes, subject
            )
            body = self.codec.build_document(doc)
            doc_id = self.enqueue(system, "edoc", body, from_org, doc.document_id)
            items.append(self.inboxes[system][doc_id])
        return items

    def state(self) -> dict[str, Any]:
        """What `GET /_sim/state` answers: inbox sizes per system and type, the counters and
        the switches."""
        inboxes = {
            system: Counter(item.messagetype for item in inbox.values())
            for system, inbox in self.inboxes.items()
        }
        acks = Counter(ack.status for ack in self.acks)
        return {
            "inboxes": {
                system: {kind: sizes[kind] for kind in MESSAGE_TYPES}
                for system, sizes in inboxes.items()
            },
            "requests": dict(self.requests),
            "auth_failures": self.auth_failures,
            "sent": len(self.sent),
            "repeats": self.repeats,
            "acks": {"done": acks["done"], "fail": acks["fail"]},
            "acks_refused": self.acks_refused,
            "statuses_queued": self.statuses_queued,
            "statuses_pending": self.statuses_pending,
            "generated": self.generated,
            "fault_hits": dict(self.fault_hits),
            "faults": asdict(self.faults),
        }

    # -- the protocol ---------------------------------------------------------------------------

    def _call(self, name: str, handler: Handler) -> Callable[[web.Request], Awaitable[Any]]:
        """A protocol call: counted, slowed, faulted, its signature checked, then `handler`
        with the calling system and the raw body."""

        async def endpoint(request: web.Request) -> web.StreamResponse:
            self.requests[name] += 1
            if self.faults.slow_s > 0:
                await self._sleep(self.faults.slow_s)
            if self._hit("outage"):
                return _refuse(503, "unavailable", "the axis is unavailable (simulated)")
            body = await request.read()
            try:
                system = self.scheme.verify(
                    request.headers,
                    self.systems.get,
                    request.method,
                    request.raw_path,
                    body_sha256(body),
                    self.clock(),
                )
            except SignatureError as exc:
                self.auth_failures += 1
                return _refuse(401, "bad_signature", str(exc))
            return await handler(request, system, body)

        return endpoint

    async def _list(self, _: web.Request, system: str, body: bytes) -> web.StreamResponse:
        query = _json_object(body)
        if query is None:
            return _refuse(400, "bad_request", "the body must be a JSON object")
        kind, limit = query.get("messagetype"), query.get("limit", DEFAULT_LIMIT)
        if kind not in MESSAGE_TYPES:
            return _refuse(400, "bad_request", f"messagetype must be one of {list(MESSAGE_TYPES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return _refuse(400, "bad_request", "limit must be a positive integer")
        listed: list[dict[str, str]] = []
        for item in self.inboxes[system].values():
            if len(listed) >= min(limit, MAX_LIMIT):
                break
            if item.messagetype == kind:
                listed.append(item.listed())
        return _answer(ok(data=listed))

    async def _get(self, _: web.Request, system: str, body: bytes) -> web.StreamResponse:
        query = _json_object(body)
        if query is None:
            return _refuse(400, "bad_request", "the body must be a JSON object")
        item = self._item(system, query)
        if isinstance(item, web.Response):
            return item
        if self._hit("refuse_get"):
            return _refuse(400, "refused", "the axis will not hand over this item (simulated)")
        data = item.body[: len(item.body) // 2] if self._hit("truncate_edoc") else item.body
        return web.Response(body=data, content_type=EDXML_CONTENT_TYPE)

    async def _ack(self, _: web.Request, system: str, body: bytes) -> web.StreamResponse:
        query = _json_object(body)
        if query is None:
            return _refuse(400, "bad_request", "the body must be a JSON object")
        item = self._item(system, query)
        if isinstance(item, web.Response):
            return item
        status, reason = query.get("status"), query.get("reason")
        if status not in ("done", "fail"):
            return _refuse(400, "bad_request", 'status must be "done" or "fail"')
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS):
            return _refuse(400, "bad_request", f"reason must be a text of {MAX_REASON_CHARS} max")
        if self._hit("fail_acks"):
            self.acks_refused += 1
            return _refuse(500, "internal", "the acknowledgement was not recorded (simulated)")
        if self._hit("refuse_acks"):
            self.acks_refused += 1
            return _refuse(
                400, "refused", "the axis will not take this acknowledgement (simulated)"
            )
        del self.inboxes[system][item.doc_id]
        ack = AckRecord(item.doc_id, system, item.messagetype, item.from_org, status, reason)
        ack.document_id, ack.status_code = self._described(item)
        self.acks.append(ack)
        return _answer(ok())

    async def _agencies(self, _: web.Request, system: str, body: bytes) -> web.StreamResponse:
        data = [
            {"organId": org.organ_id, "organName": org.organ_name or org.organ_id}
            for org in self.directory.values()
        ]
        return _answer(ok(data=data))

    async def _send(self, request: web.Request, system: str, body: bytes) -> web.StreamResponse:
        try:
            form = parse_form(request.headers.get("Content-Type", ""), body)
            kind = form[SEND_TYPE_FIELD].decode("utf-8").strip()
            data = form[SEND_FILE_FIELD]
        except (ValueError, KeyError) as exc:
            missing = f"the part {exc} is missing" if isinstance(exc, KeyError) else str(exc)
            return _refuse(400, "bad_request", missing)
        if kind not in MESSAGE_TYPES:
            return _refuse(400, "bad_request", f"messagetype must be one of {list(MESSAGE_TYPES)}")
        if self._hit("refuse_send"):
            return _refuse(400, "refused", self.faults.refuse_reason)
        try:
            record = (
                self._send_edoc(system, data) if kind == "edoc" else self._send_status(system, data)
            )
        except EdxmlError as exc:
            return _refuse(400, exc.code, exc.message)
        except UnknownOrganError as exc:
            return _refuse(400, "unknown_organ", str(exc))
        if self._hit("drop_after_send"):
            if self.faults.drop_by_closing and request.transport is not None:
                request.transport.close()
            return _refuse(500, "internal", "the reply was lost (simulated)")
        return _answer(ok(docId=record.doc_id))

    # -- sending --------------------------------------------------------------------------------

    def _send_edoc(self, system: str, data: bytes) -> SentRecord:
        doc = self.codec.parse_document(data)
        header = doc.header
        to = [org.organ_id for org in header.to_orgs]
        strangers = [organ for organ in to if organ not in self.directory]
        if strangers:
            raise UnknownOrganError(f"To organs not on the axis: {strangers[:5]}")
        repeat = self._repeat(("edoc", doc.document_id))
        if repeat is not None:
            return repeat
        delivered = [organ for organ in dict.fromkeys(to) if organ in self.systems]
        for organ in delivered:
            self.enqueue(organ, "edoc", data, header.from_org.organ_id, doc.document_id)
        sent_at = _now().replace(microsecond=0)
        for organ in dict.fromkeys(to):
            if organ in self.responders:
                self._answer_with_statuses(system, doc, self.directory[organ], sent_at)
        record = self._record(system, "edoc", doc.document_id, header.from_org.organ_id, to, data)
        record.subject, record.delivered_to = header.subject, delivered
        record.attachments = [{"name": a.name, "size": a.size_bytes} for a in doc.attachments]
        self._sent_by_key["edoc", doc.document_id] = record
        return record

    def _send_status(self, system: str, data: bytes) -> SentRecord:
        msg = self.codec.parse_status(data)
        target, about = msg.response_for.organ_id, msg.response_for.document_id
        sender, code = msg.from_org.organ_id, msg.status_code.value
        key = ("status", sender, target, about, code, msg.timestamp.isoformat())
        repeat = self._repeat(key)
        if repeat is not None:
            return repeat
        delivered = [target] if target in self.systems else []
        for organ in delivered:
            self.enqueue(organ, "status", data, sender, about)
        record = self._record(system, "status", about, sender, [target], data)
        record.status_code, record.delivered_to = code, delivered
        self._sent_by_key[key] = record
        return record

    def _repeat(self, key: tuple[str, ...]) -> SentRecord | None:
        record = self._sent_by_key.get(key)
        if record is not None:
            record.times_sent += 1
            record.last_sent = _stamp()
            self.repeats += 1
        return record

    def _record(
        self,
        system: str,
        kind: MessageType,
        document_id: str,
        from_org: str,
        to: list[str],
        data: bytes,
    ) -> SentRecord:
        record = SentRecord(str(uuid.uuid4()), system, kind, document_id, from_org, to, data)
        self.sent.append(record)
        return record

    # -- automatic statuses ---------------------------------------------------------------------

    def _answer_with_statuses(
        self, system: str, doc: EdocDocument, agency: Organization, sent_at: datetime
    ) -> None:
        """Queue `status_sequence` from `agency` about `doc` for `system`, as switched."""
        header = doc.header
        number = header.code.number
        code = f"{number}/{header.code.notation}" if header.code.notation else number
        about = ResponseFor(
            organ_id=header.from_org.organ_id,
            code=code,
            promulgation_date=header.promulgation.date,
            document_id=doc.document_id,
        )
        bodies = [
            self.codec.build_status(
                StatusMessage(
                    response_for=about,
                    from_org=agency,
                    staff_info=CLERK,
                    status_code=StatusCode(status),
                    description=DESCRIPTIONS[status],
                    timestamp=sent_at + step * STATUS_STEP,
                )
            )
            for step, status in enumerate(self.faults.status_sequence, start=1)
        ]
        if self.faults.repeat_statuses:
            bodies = [body for body in bodies for _ in range(2)]
        if self.faults.reorder_statuses and len(set(bodies)) > 1:
            shuffled = self.rng.sample(bodies, len(bodies))
            bodies = shuffled if shuffled != bodies else bodies[::-1]
        queue = [(body, agency.organ_id, doc.document_id) for body in bodies]
        if self.faults.status_delay_s <= 0:
            for body, organ, document_id in queue:
                self.enqueue(system, "status", body, organ, document_id)
            self.statuses_queued += len(queue)
            return
        self.statuses_pending += len(queue)
        task = asyncio.get_running_loop().create_task(
            self._trickle(system, queue, self.faults.status_delay_s)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _trickle(
        self, system: str, queue: list[tuple[bytes, str, str]], delay_s: float
    ) -> None:
        for body, organ, document_id in queue:
            await self._sleep(delay_s)
            if self._closing.is_set():
                return
            self.enqueue(system, "status", body, organ, document_id)
            self.statuses_pending -= 1
            self.statuses_queued += 1

    # -- helpers --------------------------------------------------------------------------------

    def _hit(self, switch: str) -> bool:
        """Whether failure `switch` is on, counted against `count`."""
        if not getattr(self.faults, switch):
            return False
        self.fault_hits[switch] += 1
        if self.faults.count > 0:
            self.faults.count -= 1
            if self.faults.count == 0:
                for name in _FAILURES:
                    setattr(self.faults, name, False)
        return True

    def _item(self, system: str, query: dict[str, Any]) -> InboxItem | web.Response:
        """The inbox item a `{"docId": ...}` body names, or the refusal to answer."""
        doc_id = query.get("docId")
        if not isinstance(doc_id, str) or not 0 < len(doc_id) <= MAX_DOC_ID_CHARS:
            return _refuse(400, "bad_request", "docId must be a non-empty text")
        item = self.inboxes[system].get(doc_id)
        if item is None:
            return _refuse(404, "unknown_doc", f"no item {doc_id[:60]!r} in the inbox")
        return item

    def _described(self, item: InboxItem) -> tuple[str | None, str | None]:
        """(DocumentId, StatusCode) of an inbox item, as far as it parses."""
        if item.messagetype == "edoc" and item.document_id is not None:
            return item.document_id, None  # parsed when it was sent or generated
        try:
            if item.messagetype == "edoc":
                return self.codec.parse_document(item.body).document_id, None
            msg = self.codec.parse_status(item.body)
        except EdxmlError:
            return item.document_id, None
        return msg.response_for.document_id, msg.status_code.value

    def _generated_document(
        self, sender: Organization, receiver: Organization, size: int, subject: str | None
    ) -> EdocDocument:
        self.generated += 1
        number, today, now = str(self.generated), _now().date(), _now().replace(microsecond=0)
        notation = f"VP-{self._run_tag}"
        document_id = f"{sender.organ_id},{today:%Y/%m/%d},{number}/{notation}"
        attachments = (
            [
                Attachment(
                    attachment_id=f"vb-{number}.pdf",
                    name=f"van-ban-{number}.pdf",
                    content_type="application/pdf",
                    content=self.rng.randbytes(size),
                )
            ]
            if size
            else []
        )
        header = MessageHeader(
            from_org=sender,
            to_orgs=(receiver,),
            code=DocumentCode(number=number, notation=notation),
            promulgation=PromulgationInfo(place="Nghệ An", date=today),
            document_type=DocumentType(type_code=1, type_name="Công văn"),
            subject=subject or f"V/v liên thông văn bản số {number}/{notation}",
            document_id=document_id,
        )
        trace = TraceHeaderList(
            trace_headers=(TraceHeader(organ_id=sender.organ_id, timestamp=now),),
            business=Business(doc_type=BusinessDocType.new),
        )
        return EdocDocument(header=header, trace=trace, attachments=tuple(attachments))

    # -- control endpoints ----------------------------------------------------------------------

    async def _sim_inbox(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if body is None:
            return _bad_control("the body must be a JSON object")
        texts = [body.get(name) for name in ("system", "messagetype", "from", "body_base64")]
        if not all(isinstance(text, str) for text in texts):
            return _bad_control("system, messagetype, from and body_base64 are required texts")
        system, kind, sender, encoded = (str(text) for text in texts)
        try:
            data = base64.b64decode(encoded, validate=True)
            doc_id = self.enqueue(system, kind, data, sender)
        except (binascii.Error, ValueError) as exc:
            return _bad_control(str(exc))
        return _answer({"status": "ok", "docId": doc_id})

    async def _sim_documents(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if body is None:
            return _bad_control("the body must be a JSON object")
        system, sender, subject = body.get("system"), body.get("from"), body.get("subject")
        count, size = body.get("count", 1), body.get("attachment_bytes", 1024)
        if not isinstance(system, str) or not isinstance(sender, str):
            return _bad_control("system and from are required texts")
        if not isinstance(subject, str | None):
            return _bad_control("subject must be a text")
        try:
            items = self.generate_documents(
                system, sender, parse_count(count), parse_count(size), subject
            )
        except (ValueError, EdxmlError) as exc:
            return _bad_control(str(exc))
        return _answer(
            {
                "status": "ok",
                "docIds": [item.doc_id for item in items],
                "documentIds": [item.document_id for item in items],
            }
        )

    async def _sim_acks(self, _: web.Request) -> web.Response:
        return _answer({"acks": [asdict(ack) for ack in self.acks]})

    async def _sim_sent(self, _: web.Request) -> web.Response:
        return _answer({"sent": [record.listed() for record in self.sent]})


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


# -- standalone -----------------------------------------------------------------------------------


DEMO_SYSTEM = "000.00.00.H41"
DEMO_AGENCIES = (
    f"{DEMO_SYSTEM}=Văn phòng UBND tỉnh Nghệ An",
    "000.00.12.H41=Sở Tài nguyên và Môi trường tỉnh Nghệ An",
    "000.00.15.H41=Sở Xây dựng tỉnh Nghệ An",
)


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected ID=VALUE, got {text!r}")
    return name, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the document axis simulator until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument(
        "--system", type=_pair, action="append", default=[], help="ID=SECRET (repeatable)"
    )
    parser.add_argument(
        "--agency", type=_pair, action="append", default=[], help="ID=NAME (repeatable)"
    )
    parser.add_argument(
        "--responder", action="append", default=None, help="an agency that answers (repeatable)"
    )
    parser.add_argument("--namespace", default=NS_QCVN_102_2016)
    parser.add_argument("--max-document-bytes", type=int, default=10 * MB)
    parser.add_argument("--seed", type=int, default=0)
    return parser


async def _serve(args: argparse.Namespace) -> None:
    systems = dict(args.system or [(DEMO_SYSTEM, "sim-axis-secret")])
    agencies = [_pair(text) for text in DEMO_AGENCIES] if not args.agency else args.agency
    sim = AxisSimulator(
        args.host,
        args.port,
        systems=systems,
        agencies=[{"organId": organ, "organName": name} for organ, name in agencies],
        namespace=args.namespace,
        responders=args.responder,
        max_document_bytes=args.max_document_bytes,
        seed=args.seed,
    )

    calls = (LIST_PATH, GET_PATH, ACK_PATH, SEND_PATH, AGENCIES_PATH)

    def describe() -> list[str]:
        base = sim.base_url  # secrets are never printed
        return [
            f"document axis simulator: {base}  (namespace {sim.codec.namespace})",
            f"  systems: {', '.join(sim.systems)}  responders: {', '.join(sorted(sim.responders))}",
            f"  calls: POST {base}" + "{" + ",".join(calls) + "}",
            f"  faults: POST {base}{SIM_PREFIX}/faults   state: GET {base}{SIM_PREFIX}/state",
            f"  generate: POST {base}{SIM_PREFIX}/documents   GET {SIM_PREFIX}/acks, /sent",
        ]

    await serve_until_signalled(sim, "document axis simulator", describe)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
