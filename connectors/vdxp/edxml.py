"""edXML on the wire: build and parse documents and status messages, hardened.

`EdxmlCodec` turns the wire models of `schemas.vdxp` into edXML bytes and back. The namespace
is configuration (the axis versions differ: `NS_QCVN_102_2016`, `NS_GO_VN_EDOC`, …); the
shape is the same in every namespace. Every element is qualified with the configured namespace
(written with the prefix `edXML`; any prefix, or none, is read):

    edXMLEnvelope
    ├── edXMLHeader
    │   ├── MessageHeader        a document: From, To+, Code, PromulgationInfo, DocumentType,
    │   │                        Subject, Content, SignerInfo, DueDate, OtherInfo,
    │   │                        ResponseFor*, SteeringType, DocumentId
    │   ├── TraceHeaderList      a document: TraceHeader*, Bussiness (the standard's spelling)
    │   └── Status               a status message: ResponseFor, From, StaffInfo, StatusCode,
    │                            Description, Timestamp
    └── edXMLBody                a document only
        ├── edXMLManifest/Reference*            ContentId, AttachmentName, ContentType,
        │                                       Description, Size
        └── AttachmentEncoded/Attachment*       ContentId, ContentTransferEncoded (base64)

The element names under each part, and the model field each one fills, are the `_Part` tables
below: they are the shape, read and written by the same two functions (`_Tree.write`,
`_Tree.read`); `schemas/vdxp.py` repeats each name in a comment. Elements are written in the
tables' order (the standard's sequence) and read in any order; elements the tables do not
name (vendor extras such as OrganizationInCharge, ToPlaces, TypeDetail) are ignored.

Dates are ISO `yyyy-mm-dd`, times ISO 8601 (no offset means Vietnam time). Attachment content
travels base64 inside the XML, joined to its manifest entry on ContentId; the MIME-part variant
of QCVN 102 (content in separate parts referenced by `cid:`) is the axis client's business.

Parsing refuses, before any model is built: input over `max_bytes`; any DOCTYPE or ENTITY
declaration (checked in the raw bytes before lxml sees them, and again after parsing); the
wrong namespace; bad XML; an attachment over `max_attachment_bytes` (checked on the declared
size and the base64 length before decoding); a status code outside the table; a required
element that is missing. Each refusal is an `EdxmlError` with a stable `code`. Building refuses
what parsing would refuse. libxml2 without `huge_tree` also caps one text node at 10 MB, so one
attachment is capped near 7.5 MB whatever the settings (streaming is later work).

This module must never resolve entities, load a DTD, touch the network, or import hub code
(the axis simulator uses it too): the VDXP client translates `EdxmlError` into the hub's tree.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any, Literal, TypeVar

from lxml import etree
from pydantic import BaseModel, ValidationError

from schemas.vdxp import Attachment, EdocDocument, StatusCode, StatusMessage

NS_QCVN_102_2016 = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
NS_GO_VN_EDOC = "http://www.go.vn/eDoc"
KNOWN_NAMESPACES = (NS_QCVN_102_2016, NS_GO_VN_EDOC)
PREFIX = "edXML"

EdxmlErrorCode = Literal[
    "entities",
    "too_large",
    "wrong_namespace",
    "malformed",
    "attachment_too_large",
    "unknown_status",
    "missing_field",
]

# A DTD is how entity expansion (billion laughs) and external entities arrive; edXML has none.
_FORBIDDEN = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)
_M = TypeVar("_M", bound=BaseModel)


class EdxmlError(Exception):
    """An edXML input refused (or a model that cannot be written); `code` is stable."""

    def __init__(self, code: EdxmlErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: EdxmlErrorCode = code
        self.message = message


# -- the shape, as data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One model field on the wire: `tag` holds a text (no `shape`) or a nested model;
    `many` fields repeat the tag, inside `wrapper` when there is one."""

    field: str
    tag: str
    shape: tuple[_Part, ...] | None = None
    many: bool = False
    wrapper: str | None = None


def _leaves(*pairs: tuple[str, str]) -> tuple[_Part, ...]:
    return tuple(_Part(field, tag) for field, tag in pairs)


_ORGANIZATION = _leaves(
    ("organ_id", "OrganId"),
    ("organ_name", "OrganName"),
    ("address", "OrganAdd"),
    ("email", "Email"),
    ("telephone", "Telephone"),
    ("fax", "Fax"),
    ("website", "Website"),
)
_RESPONSE_FOR = _leaves(
    ("organ_id", "OrganId"),
    ("code", "Code"),
    ("promulgation_date", "PromulgationDate"),
    ("document_id", "DocumentId"),
)
_STAFF_INFO = _leaves(
    ("department", "Department"), ("staff", "Staff"), ("mobile", "Mobile"), ("email", "Email")
)
_OTHER_INFO = (
    *_leaves(
        ("priority", "Priority"),
        ("sphere_of_promulgation", "SphereOfPromulgation"),
        ("typer_notation", "TyperNotation"),
        ("promulgation_amount", "PromulgationAmount"),
        ("page_amount", "PageAmount"),
    ),
    _Part("appendixes", "Appendix", many=True, wrapper="Appendixes"),
)
_MESSAGE_HEADER = (
    _Part("from_org", "From", _ORGANIZATION),
    _Part("to_orgs", "To", _ORGANIZATION, many=True),
    _Part("code", "Code", _leaves(("number", "CodeNumber"), ("notation", "CodeNotation"))),
    _Part(
        "promulgation",
        "PromulgationInfo",
        _leaves(("place", "Place"), ("date", "PromulgationDate")),
    ),
    _Part(
        "document_type", "DocumentType", _leaves(("type_code", "Type"), ("type_name", "TypeName"))
    ),
    _Part("subject", "Subject"),
    _Part("content", "Content"),
    _Part(
        "signer",
        "SignerInfo",
        _leaves(("competence", "Competence"), ("position", "Position"), ("full_name", "FullName")),
    ),
    _Part("due_date", "DueDate"),
    _Part("other_info", "OtherInfo", _OTHER_INFO),
    _Part("response_for", "ResponseFor", _RESPONSE_FOR, many=True),
    _Part("steering_type", "SteeringType"),
    _Part("document_id", "DocumentId"),
)
_BUSINESS_DOCUMENT_INFO = (
    *_leaves(("document_info", "DocumentInfo"), ("document_receiver", "DocumentReceiver")),
    _Part(
        "receivers",
        "Receiver",
        _leaves(("receiver_type", "ReceiverType"), ("organ_id", "OrganId")),
        many=True,
        wrapper="ReceiverList",
    ),
)
_BUSINESS = (
    *_leaves(
        ("doc_type", "BussinessDocType"),
        ("reason", "BussinessDocReason"),
        ("document_id", "DocumentId"),
        ("paper", "Paper"),
    ),
    _Part("document_info", "BussinessDocumentInfo", _BUSINESS_DOCUMENT_INFO),
    _Part("staff_info", "StaffInfo", _STAFF_INFO),
)
_TRACE = (
    _Part(
        "trace_headers",
        "TraceHeader",
        _leaves(("organ_id", "OrganId"), ("timestamp", "Timestamp")),
        many=True,
    ),
    _Part("business", "Bussiness", _BUSINESS),
)
_REFERENCE = _leaves(
    ("attachment_id", "ContentId"),
    ("name", "AttachmentName"),
    ("content_type", "ContentType"),
    ("description", "Description"),
    ("size_bytes", "Size"),
)
_STATUS = (
    _Part("response_for", "ResponseFor", _RESPONSE_FOR),
    _Part("from_org", "From", _ORGANIZATION),
    _Part("staff_info", "StaffInfo", _STAFF_INFO),
    _Part("status_code", "StatusCode"),
    _Part("description", "Description"),
    _Part("timestamp", "Timestamp"),
)


# -- the codec ------------------------------------------------------------------------------------


class EdxmlCodec:
    """Builds and parses edXML in one configured namespace, within configured sizes."""

    def __init__(self, namespace: str, max_bytes: int, max_attachment_bytes: int) -> None:
        if not namespace:
            raise ValueError("namespace must not be empty")
        if max_bytes <= 0 or max_attachment_bytes <= 0:
            raise ValueError("max_bytes and max_attachment_bytes must be positive")
        self.namespace = namespace
        self.max_bytes = max_bytes
        self.max_attachment_bytes = max_attachment_bytes
        self._tree = _Tree(namespace)

    def build_document(self, doc: EdocDocument) -> bytes:
        for attachment in doc.attachments:
            self._check_attachment(attachment.attachment_id, attachment.size_bytes)
        root, header = self._envelope()
        with _writing():
            self._tree.write(self._tree.sub(header, "MessageHeader"), doc.header, _MESSAGE_HEADER)
            self._tree.write(self._tree.sub(header, "TraceHeaderList"), doc.trace, _TRACE)
            self._write_body(root, doc.attachments)
        return self._serialized(root)

    def parse_document(self, data: bytes) -> EdocDocument:
        root = self._parse(data)
        header = self._tree.required(root, "edXMLHeader")
        message = self._tree.required(header, "MessageHeader")
        trace = self._tree.required(header, "TraceHeaderList")
        fields = {
            "header": self._tree.read(message, _MESSAGE_HEADER),
            "trace": self._tree.read(trace, _TRACE),
            "attachments": self._read_body(root),
        }
        return _validated(EdocDocument, fields)

    def build_status(self, msg: StatusMessage) -> bytes:
        root, header = self._envelope()
        with _writing():
            self._tree.write(self._tree.sub(header, "Status"), msg, _STATUS)
        return self._serialized(root)

    def parse_status(self, data: bytes) -> StatusMessage:
        root = self._parse(data)
        status = self._tree.required(self._tree.required(root, "edXMLHeader"), "Status")
        fields = self._tree.read(status, _STATUS)
        if "status_code" in fields:
            fields["status_code"] = _status_code(fields["status_code"])
        return _validated(StatusMessage, fields)

    # -- envelope ---------------------------------------------------------------------------------

    def _envelope(self) -> tuple[etree._Element, etree._Element]:
        root = etree.Element(self._tree.tag("edXMLEnvelope"), nsmap={PREFIX: self.namespace})
        return root, self._tree.sub(root, "edXMLHeader")

    def _serialized(self, root: etree._Element) -> bytes:
        data = etree.tostring(root, xml_declaration=True, encoding="utf-8")
        if len(data) > self.max_bytes:
            raise EdxmlError("too_large", f"{len(data)} bytes built, the limit is {self.max_bytes}")
        return data

    def _parse(self, data: bytes) -> etree._Element:
        if len(data) > self.max_bytes:
            raise EdxmlError("too_large", f"{len(data)} bytes, the limit is {self.max_bytes}")
        _refuse_declarations(data)
        root = _parse_hardened(data)
        found = etree.QName(root).namespace
        if found != self.namespace:
            raise EdxmlError(
                "wrong_namespace", f"expected namespace {self.namespace!r}, found {found!r}"
            )
        if etree.QName(root).localname != "edXMLEnvelope":
            raise EdxmlError("malformed", f"the root is {etree.QName(root).localname}")
        return root

    # -- attachments ------------------------------------------------------------------------------

    def _check_attachment(self, content_id: str, size_bytes: int) -> None:
        if size_bytes > self.max_attachment_bytes:
            raise EdxmlError(
                "attachment_too_large",
                f"attachment {content_id[:100]!r} has {size_bytes} bytes, "
                f"the limit is {self.max_attachment_bytes}",
            )

    def _write_body(self, root: etree._Element, attachments: Iterable[Attachment]) -> None:
        tree = self._tree
        body = tree.sub(root, "edXMLBody")
        manifest = tree.sub(body, "edXMLManifest")
        encoded = tree.sub(body, "AttachmentEncoded")
        for attachment in attachments:
            tree.write(tree.sub(manifest, "Reference"), attachment, _REFERENCE)
            item = tree.sub(encoded, "Attachment")
            tree.sub(item, "ContentId", attachment.attachment_id)
            content = base64.b64encode(attachment.content).decode("ascii")
            tree.sub(item, "ContentTransferEncoded", content)

    def _read_body(self, root: etree._Element) -> list[dict[str, Any]]:
        body = self._tree.only(root, "edXMLBody")
        if body is None:
            return []
        manifest = self._tree.only(body, "edXMLManifest")
        references = [] if manifest is None else self._tree.children(manifest, "Reference")
        entries = [self._tree.read(reference, _REFERENCE) for reference in references]
        for entry in entries:
            self._check_declared_size(entry)
        return _joined(entries, self._contents(body))

    def _check_declared_size(self, entry: dict[str, Any]) -> None:
        declared = entry.get("size_bytes")
        if isinstance(declared, str) and declared.isascii() and declared.isdigit():
            size = self.max_attachment_bytes + 1 if len(declared) > 18 else int(declared)
            self._check_attachment(str(entry.get("attachment_id")), size)

    def _contents(self, body: etree._Element) -> dict[str, bytes]:
        encoded = self._tree.only(body, "AttachmentEncoded")
        items = [] if encoded is None else self._tree.children(encoded, "Attachment")
        contents: dict[str, bytes] = {}
        for item in items:
            content_id = self._tree.required_text(item, "ContentId")
            if content_id in contents:
                raise EdxmlError("malformed", f"attachment {content_id!r} is encoded twice")
            contents[content_id] = self._decoded(content_id, item)
        return contents

    def _decoded(self, content_id: str, item: etree._Element) -> bytes:
        text = self._tree.required(item, "ContentTransferEncoded").text or ""
        compact = "".join(text.split())
        self._check_attachment(content_id, _decoded_length(compact))
        try:
            return base64.b64decode(compact, validate=True)
        except binascii.Error as exc:
            raise EdxmlError("malformed", f"attachment {content_id!r} is not base64") from exc


# -- element helpers ------------------------------------------------------------------------------


class _Tree:
    """Reads and writes elements of one namespace, driven by the `_Part` shapes above."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def tag(self, name: str) -> str:
        return f"{{{self.namespace}}}{name}"

    def sub(self, parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        child = etree.SubElement(parent, self.tag(name))
        if text is not None:
            child.text = text
        return child

    def children(self, parent: etree._Element, name: str) -> list[etree._Element]:
        return parent.findall(self.tag(name))

    def only(self, parent: etree._Element, name: str) -> etree._Element | None:
        found = self.children(parent, name)
        if len(found) > 1:
            raise EdxmlError("malformed", f"{name} appears {len(found)} times in {_name(parent)}")
        return found[0] if found else None

    def required(self, parent: etree._Element, name: str) -> etree._Element:
        child = self.only(parent, name)
        if child is None:
            raise EdxmlError("missing_field", f"{_name(parent)} has no {name}")
        return child

    def required_text(self, parent: etree._Element, name: str) -> str:
        text = self.required(parent, name).text
        if not text:
            raise EdxmlError("missing_field", f"{name} in {_name(parent)} is empty")
        return text

    def write(self, parent: etree._Element, model: BaseModel, shape: tuple[_Part, ...]) -> None:
        for part in shape:
            value = getattr(model, part.field)
            items = value if part.many else () if value is None else (value,)
            if not items:
                continue
            target = parent if part.wrapper is None else self.sub(parent, part.wrapper)
            for item in items:
                if part.shape is None:
                    self.sub(target, part.tag, _text(item))
                else:
                    self.write(self.sub(target, part.tag), item, part.shape)

    def read(self, element: etree._Element, shape: tuple[_Part, ...]) -> dict[str, Any]:
        """The fields under `element` as raw texts and dicts, for pydantic to validate; an
        empty text element counts as absent."""
        data: dict[str, Any] = {}
        for part in shape:
            container = element if part.wrapper is None else self.only(element, part.wrapper)
            found = [] if container is None else self.children(container, part.tag)
            if len(found) > 1 and not part.many:
                raise EdxmlError("malformed", f"{part.tag} appears {len(found)} times")
            values = [value for child in found if (value := self._value(child, part)) is not None]
            if values:
                data[part.field] = values if part.many else values[0]
        return data

    def _value(self, element: etree._Element, part: _Part) -> Any:
        if part.shape is None:
            return element.text or None
        return self.read(element, part.shape)  # an empty structure is present, all defaults


def _name(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def _text(value: object) -> str:
    if isinstance(value, Enum):
        return _text(value.value)
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, str | int):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as edXML text")


@contextmanager
def _writing() -> Iterator[None]:
    """Turns lxml's refusal of a text (control characters, U+FFFE…) into an EdxmlError."""
    try:
        yield
    except ValueError as exc:
        raise EdxmlError("malformed", f"cannot be written as XML: {exc}") from exc


# -- parsing --------------------------------------------------------------------------------------


def _refuse_declarations(data: bytes) -> None:
    upper = data.upper()
    if any(marker in upper for marker in _FORBIDDEN):
        raise EdxmlError("entities", "DOCTYPE and ENTITY declarations are not accepted")


def _parse_hardened(data: bytes) -> etree._Element:
    """`data` parsed with no DTD, no entities, no network and libxml2's size limits on; a
    document that still carries a DTD (the byte check was fooled) is refused."""
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise EdxmlError("malformed", f"not well-formed XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise EdxmlError("entities", "DOCTYPE and ENTITY declarations are not accepted")
    return root


def _decoded_length(compact: str) -> int:
    """The length base64 text decodes to (exact when it is valid), known before decoding."""
    padding = len(compact) - len(compact.rstrip("="))
    return len(compact) * 3 // 4 - padding


def _joined(entries: list[dict[str, Any]], contents: dict[str, bytes]) -> list[dict[str, Any]]:
    """Each manifest entry with its content; content without an entry is refused."""
    for entry in entries:
        content_id = entry.get("attachment_id")
        if content_id not in contents:
            raise EdxmlError("missing_field", f"attachment {content_id!r} has no content")
        entry["content"] = contents.pop(content_id)
    if contents:
        raise EdxmlError("malformed", f"content without a manifest entry: {sorted(contents)}")
    return entries


def _status_code(text: str) -> StatusCode:
    """The StatusCode of the table; a one-digit code is read as zero-padded ("1" is "01")."""
    raw = text.strip()
    if raw.isascii() and raw.isdigit() and len(raw) == 1:
        raw = raw.zfill(2)
    try:
        return StatusCode(raw)
    except ValueError:
        table = ", ".join(code.value for code in StatusCode)
        raise EdxmlError(
            "unknown_status", f"StatusCode {text[:20]!r} is not one of {table}"
        ) from None


def _validated(model: type[_M], fields: dict[str, Any]) -> _M:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        code: EdxmlErrorCode = (
            "missing_field" if all(e["type"] == "missing" for e in errors) else "malformed"
        )
        first = errors[0]
        where = ".".join(str(step) for step in (model.__name__, *first["loc"]))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise EdxmlError(code, f"{where}: {first['msg']}{more}") from exc
