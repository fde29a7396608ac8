"""edXML on the wire: build and parse documents and status messages, hardened, streamed.

`EdxmlCodec` turns the wire models of `schemas.vdxp` into edXML and back. The namespace is
configuration (the axis versions differ: `NS_QCVN_102_2016`, `NS_GO_VN_EDOC`, …); the shape is
the same in every namespace. Documents are written in one namespace (`namespace`, with the
prefix `edXML`) and read in that one and each of `accept` (any prefix, or none): one province
may receive both. Every element of a document is in its root's namespace:

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

Dates and times (PromulgationDate, DueDate, ResponseFor/PromulgationDate; TraceHeader/
Timestamp, Status/Timestamp) are read in QCVN 102's forms, `yyyy/MM/dd` and
`yyyy/MM/dd HH:mm:ss`, and in ISO 8601's (`yyyy-MM-dd`; `yyyy-MM-ddTHH:mm:ss`, "T" or a space,
fractions and an offset optional); a time without an offset is Vietnam time. Anything else is
`malformed`, naming the element and the forms. They are written as `date_format` says:
`qcvn102` (the default: QCVN 102's forms, times in Vietnam time to the second, as receiving
agencies parse them) or `iso` (Python's isoformat, offset and fractions kept).

Attachment content travels base64 inside the XML (AttachmentEncoded, joined to its manifest
entry on ContentId), or, as ebXML packaging has it, as a part of a MIME multipart/related
package whose root part is the envelope (`connectors.vdxp.mime`): the Reference's ContentId
`cid:x` names the part whose Content-ID is `<x>`. Both are read, in one document even; `cid:x`,
`<x>` and `x` name the same content. A Reference with content in neither place is
`missing_field`, naming it; content with no Reference, or in both places, is `malformed`.
Attachments are written as `packaging` says: `inline` (the default) or `mime` (a package: the
envelope without AttachmentEncoded, then each attachment's bytes as a binary part; an
attachment id must then be usable as a Content-ID, letters, digits and `._~!$&'*+=^@-`).

Two ways in and out, over one reader and one writer:

- in memory, `build_document`/`parse_document` (`EdocDocument`, content as bytes) and
  `build_status`/`parse_status`, for what fits in memory;
- streamed, `write_document`/`read_document` (`SpooledDocument`: each attachment's content is
  a file) and `read_status`, so that large attachments are never held whole.

Reading. The input is read in chunks of `CHUNK_BYTES`. Its first bytes tell an edXML (it starts
with `<`) from a package (a MIME header block of type multipart/related); a package is split as
it streams by (`_PackageReader`): the root part's content, decoded, goes on as the input, each
other part is decoded (binary, 8bit, 7bit, base64 or quoted-printable) into a new file of the
spool, refused past `max_attachment_bytes` as it is decoded. The input is fed to lxml's feed
parser, whose events go to a parser target (`_Reader`), not to a tree. Everything but
attachment content (the *frame*: headers, manifest, ContentIds) is built by an
`etree.TreeBuilder` into a small tree, read with the `_Part` tables. The text of edXMLBody/
AttachmentEncoded/Attachment/ContentTransferEncoded never reaches that tree: as libxml2
delivers it, in pieces of at most a chunk, it goes through an incremental base64 decoder
(pieces split anywhere, whitespace anywhere) into a sink: a new file in the spool directory for
`read_document` (unique names from `tempfile`, never from the document), a buffer for
`parse_document`. Memory for attachments is O(chunk). libxml2 caps a text node at 10 MB when it
builds a tree (XML_MAX_TEXT_LENGTH, `huge_tree` off), which capped one attachment near 7.5 MB;
a target builds no node and the cap does not apply (libxml2 2.14: a 27 MB base64 text arrives
in pieces of at most one fed chunk; tests/unit/test_edxml_streaming.py reads a 20 MB
attachment), so `max_bytes` and `max_attachment_bytes` are the limits. libxml2's other limits
stay on (names, attribute values, depth 256).

Writing. The frame is built with lxml as one tree whose ContentTransferEncoded elements hold
random placeholders, then serialized; its bytes are written around the placeholders, each
replaced by its attachment's base64, encoded from the content in pieces of `ENCODE_BYTES` (a
multiple of 3: the pieces join into one unbroken base64 text, byte for byte what
`base64.b64encode` of the whole gives). A package is the package's headers, the frame as
its root part, then each attachment's bytes copied from its content in pieces. The output's
length is known before the first byte is written, so an output over `max_bytes` is refused
before writing.

Reading refuses, before any model is built, each with a stable `EdxmlError.code`:

- `too_large`: input over `max_bytes`, counted while reading (at most `max_bytes` + 1 bytes
  are read); a frame over `MAX_FRAME_CHARS` characters of text or `MAX_FRAME_ELEMENTS`
  elements; more than `MAX_ATTACHMENTS` attachments (inline, or parts). The last three keep a
  `max_bytes` raised for large attachments from also admitting a huge tree in memory or
  thousands of files;
- `entities`: any DOCTYPE or ENTITY declaration, found in the raw bytes before the parser sees
  them (each chunk is searched together with the end of the one before, so a declaration split
  across chunks is found), and any DOCTYPE that reaches the parser anyway (the target refuses);
  in a package, the envelope's part is searched (an attachment may hold a DOCTYPE);
- `wrong_namespace`: a root in a namespace not accepted (the rest is then parsed for well-formedness
  only, nothing built or kept, so that bad XML is `malformed` whatever its namespace, as it
  was before streaming);
- `malformed`: bad or truncated XML, a root other than edXMLEnvelope, an element inside
  ContentTransferEncoded, content that is not base64, an attachment encoded twice or with no
  manifest entry, a Size other than the decoded size, a value of the wrong type, a date in
  neither form; a package that cannot be split (no closing boundary, a part with no
  Content-ID, an unknown Content-Transfer-Encoding, no part for the envelope). One kind of
  bad XML goes unseen: lxml does not tell a parser target of the namespace errors libxml2
  reports without stopping, so an element with an undeclared prefix is read as in no
  namespace (ignored, or `wrong_namespace` at the root) where a tree parser says `malformed`;
- `attachment_too_large`: an attachment over `max_attachment_bytes`, checked on the declared
  Size when its Reference ends (before the content, in the standard's order) and on the
  decoded byte count while decoding;
- `unknown_status`: a status code outside the table; `missing_field`: a required element, or
  the content of a manifest Reference (found neither inside the envelope nor as a part).

A document with two faults is refused for the first the reader reaches (a declared Size over
the limit, say, before a truncation further on; a tree parser used to name bad XML first). On
any refusal (any exception) `read_document` removes the files it created. A status message is
read the same way, its body (if any) skipped. Writing refuses what reading would refuse.

This module must never resolve entities, load a DTD, touch the network, or import hub code
(the axis simulator uses it too): the VDXP client translates `EdxmlError` into the hub's tree.
"""

from __future__ import annotations

import binascii
import io
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar, cast

from lxml import etree
from pydantic import BaseModel, ValidationError

from connectors.vdxp import mime
from schemas.vdxp import (
    VIETNAM_TZ,
    Attachment,
    AttachmentReference,
    EdocDocument,
    EdocManifest,
    MessageHeader,
    StatusCode,
    StatusMessage,
    TraceHeaderList,
)

NS_QCVN_102_2016 = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
NS_GO_VN_EDOC = "http://www.go.vn/eDoc"
KNOWN_NAMESPACES = (NS_QCVN_102_2016, NS_GO_VN_EDOC)
PREFIX = "edXML"
# How dates and times are written: QCVN 102's yyyy/MM/dd and yyyy/MM/dd HH:mm:ss, or ISO 8601.
DateFormat = Literal["qcvn102", "iso"]
DATE_FORMATS: tuple[DateFormat, ...] = ("qcvn102", "iso")
# How attachments are written: base64 inside the envelope, or parts of a MIME package.
Packaging = Literal["inline", "mime"]
PACKAGINGS: tuple[Packaging, ...] = ("inline", "mime")

CHUNK_BYTES = 64 * 1024  # read from the source, fed to the parser, at a time
ENCODE_BYTES = 57 * 1024  # content encoded at a time when writing (a multiple of 3)
MAX_FRAME_CHARS = 4 * 1024 * 1024  # text outside attachment content (the model's texts are short)
MAX_FRAME_ELEMENTS = 100_000  # elements in a document (a To is up to 8: thousands of recipients)
MAX_ATTACHMENTS = 1_000  # attachments in a document (one file each when spooled)

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
# Every declaration starts with "<!" (no case to fold): most chunks are ruled out by these.
_OPENERS = tuple("<!".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be"))
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
    `many` fields repeat the tag, inside `wrapper` when there is one. A text is a `date` or a
    `time` (date and time) in the forms of `_read_when` and `_write_when`."""

    field: str
    tag: str
    shape: tuple[_Part, ...] | None = None
    many: bool = False
    wrapper: str | None = None
    kind: Literal["text", "date", "time"] = "text"


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
_RESPONSE_FOR = (
    *_leaves(("organ_id", "OrganId"), ("code", "Code")),
    _Part("promulgation_date", "PromulgationDate", kind="date"),
    _Part("document_id", "DocumentId"),
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
        (_Part("place", "Place"), _Part("date", "PromulgationDate", kind="date")),
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
    _Part("due_date", "DueDate", kind="date"),
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
        (_Part("organ_id", "OrganId"), _Part("timestamp", "Timestamp", kind="time")),
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
    _Part("timestamp", "Timestamp", kind="time"),
)


# -- spooled documents ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpooledAttachment:
    """An attachment whose content is the file `path` (the decoded bytes, `size_bytes` of
    them), never held in memory; the other fields are its manifest entry, as in
    `schemas.vdxp.Attachment`."""

    attachment_id: str
    name: str
    content_type: str
    description: str | None
    size_bytes: int
    path: Path


@dataclass(frozen=True)
class SpooledDocument:
    """An edXML document whose attachments are files: what `read_document` gives and
    `write_document` takes. The files are the holder's: the codec never removes a file it
    returned, nor one it was given."""

    header: MessageHeader
    trace: TraceHeaderList
    attachments: tuple[SpooledAttachment, ...] = ()

    @property
    def document_id(self) -> str:
        return self.header.document_id


def spooled_from(doc: EdocDocument, spool_dir: Path) -> SpooledDocument:
    """`doc` with each attachment's content written to a new file in `spool_dir` (tests, small
    documents); the files are the caller's."""
    spool = _Files(spool_dir)
    try:
        attachments = []
        for attachment in doc.attachments:
            content = spool.open()
            content.sink.write(attachment.content)
            spool.close(content)
            attachments.append(_spooled(attachment, content))
    except BaseException:
        spool.remove()
        raise
    return SpooledDocument(doc.header, doc.trace, tuple(attachments))


def loaded(doc: SpooledDocument) -> EdocDocument:
    """`doc` with each attachment's content read into memory (tests, small documents)."""
    attachments = tuple(
        Attachment(
            attachment_id=attachment.attachment_id,
            name=attachment.name,
            content_type=attachment.content_type,
            description=attachment.description,
            size_bytes=attachment.size_bytes,
            content=attachment.path.read_bytes(),
        )
        for attachment in doc.attachments
    )
    return EdocDocument(header=doc.header, trace=doc.trace, attachments=attachments)


# -- the codec ------------------------------------------------------------------------------------


class EdxmlCodec:
    """Builds and parses edXML within configured sizes: in memory (`build_*`, `parse_*`) or
    streamed (`write_document`, `read_*`), through one reader and one writer. It writes in
    `namespace`, dates as `date_format` says, attachments as `packaging` says; it reads
    `namespace` and each of `accept`, dates in either form, attachments either way."""

    def __init__(
        self,
        namespace: str,
        max_bytes: int,
        max_attachment_bytes: int,
        *,
        accept: Iterable[str] = (),
        date_format: DateFormat = "qcvn102",
        packaging: Packaging = "inline",
    ) -> None:
        accepted = tuple(dict.fromkeys((namespace, *accept)))
        if not all(accepted):
            raise ValueError("namespaces must not be empty")
        if max_bytes <= 0 or max_attachment_bytes <= 0:
            raise ValueError("max_bytes and max_attachment_bytes must be positive")
        if date_format not in DATE_FORMATS or packaging not in PACKAGINGS:
            raise ValueError(f"date_format is one of {DATE_FORMATS}, packaging of {PACKAGINGS}")
        self.namespace = namespace
        self.accepted = accepted
        self.max_bytes = max_bytes
        self.max_attachment_bytes = max_attachment_bytes
        self.date_format: DateFormat = date_format
        self.packaging: Packaging = packaging
        self._tree = _Tree(namespace, date_format)

    # -- in memory --------------------------------------------------------------------------------

    def build_document(self, doc: EdocDocument) -> bytes:
        """`doc` through the streamed writer, into memory."""
        out = io.BytesIO()
        self._write(doc.header, doc.trace, doc.attachments, out)
        return out.getvalue()

    def parse_document(self, data: bytes) -> EdocDocument:
        """`data` (an edXML or a package) through the streamed reader, attachment content
        decoded into buffers."""
        fields = self._read_document(io.BytesIO(data), _Buffers())
        for entry in fields["attachments"]:
            entry["content"] = entry["content"].read()
        return _validated(EdocDocument, fields)

    def build_status(self, msg: StatusMessage) -> bytes:
        root, header = self._envelope()
        with _writing():
            self._tree.write(self._tree.sub(header, "Status"), msg, _STATUS)
        data = _serialized(root)
        if len(data) > self.max_bytes:
            raise EdxmlError("too_large", f"{len(data)} bytes built, the limit is {self.max_bytes}")
        return data

    def parse_status(self, data: bytes) -> StatusMessage:
        return self.read_status(io.BytesIO(data))

    # -- streamed ---------------------------------------------------------------------------------

    def write_document(self, doc: SpooledDocument, out: BinaryIO) -> int:
        """Write the edXML of `doc` to `out`, base64-encoding each attachment from its file in
        pieces of `ENCODE_BYTES`; the number of bytes written. Refuses what `read_document`
        would refuse, before writing anything; a file whose length is not its `size_bytes` is
        refused too (`malformed`), and if it changes while being written, the refusal comes
        with `out` holding part of the document, for the caller to discard."""
        references = [_reference_fields(attachment) for attachment in doc.attachments]
        _validated(
            EdocManifest, {"header": doc.header, "trace": doc.trace, "attachments": references}
        )
        for attachment in doc.attachments:
            length = attachment.path.stat().st_size
            if length != attachment.size_bytes:
                raise EdxmlError(
                    "malformed",
                    f"attachment {attachment.attachment_id[:100]!r}: size_bytes "
                    f"{attachment.size_bytes} != file length {length}",
                )
        return self._write(doc.header, doc.trace, doc.attachments, out)

    def read_document(self, source: BinaryIO, spool_dir: Path) -> SpooledDocument:
        """Parse the edXML or package read from `source` in chunks of `CHUNK_BYTES`, each
        attachment's content (inside the envelope or a part of the package) decoded as it
        arrives into a new file in `spool_dir` (a directory that must exist; names from
        `tempfile`, never from the document). On any refusal or other error the files created
        are removed; on success they are the caller's."""
        if not spool_dir.is_dir():
            raise NotADirectoryError(f"the spool directory {spool_dir} does not exist")
        spool = _Files(spool_dir)
        try:
            doc = self._spooled_document(self._read_document(source, spool))
        except BaseException:
            spool.remove()
            raise
        # Every content is an attachment of `doc` or a refusal, so this removes nothing; it is
        # here so that a file could not be left behind if that ever stopped being true.
        spool.remove(keep={attachment.path for attachment in doc.attachments})
        return doc

    def read_status(self, source: BinaryIO) -> StatusMessage:
        """Parse a status message (an edXML or a package) read from `source` in chunks (any
        attachment content in it is skipped, neither decoded nor kept)."""
        reader = self._reader(None)
        root = _parse_hardened(self._envelope_chunks(source, None, {}), reader)
        tree = reader.tree
        status = tree.required(tree.required(root, "edXMLHeader"), "Status")
        fields = tree.read(status, _STATUS)
        if "status_code" in fields:
            fields["status_code"] = _status_code(fields["status_code"])
        return _validated(StatusMessage, fields)

    # -- reading ----------------------------------------------------------------------------------

    def _reader(self, spool: _Spool | None) -> _Reader:
        return _Reader(self.accepted, self.max_attachment_bytes, spool)

    def _counted(self, source: BinaryIO) -> Iterator[bytes]:
        """`source` in chunks; no more than `max_bytes` + 1 bytes are read."""
        total = 0
        while chunk := source.read(min(CHUNK_BYTES, self.max_bytes + 1 - total)):
            total += len(chunk)
            if total > self.max_bytes:
                raise EdxmlError(
                    "too_large", f"{total} bytes read so far, the limit is {self.max_bytes}"
                )
            yield chunk

    def _envelope_chunks(
        self, source: BinaryIO, spool: _Spool | None, parts: dict[str, _Content]
    ) -> Iterator[bytes]:
        """The edXML envelope's bytes for the parser: `source` itself, or the root part of the
        package `source` holds, whose other parts are decoded on the way into `parts` (by
        Content-ID; skipped without a spool). Each chunk is searched for declarations (with
        the end of the chunk before) before the parser sees it."""
        guard = _DeclarationGuard()
        try:
            package, chunks = mime.sniff(self._counted(source))
            if package is not None:
                split = _PackageReader(package, spool, self.max_attachment_bytes, parts)
                chunks = split.envelope(chunks)
            for chunk in chunks:
                guard.check(chunk)
                yield chunk
        except mime.PackageError as exc:
            raise EdxmlError("malformed", f"not a readable MIME package: {exc}") from None

    def _read_document(self, source: BinaryIO, spool: _Spool) -> dict[str, Any]:
        """The document's raw fields; each attachment entry's "content" is its `_Content`."""
        reader = self._reader(spool)
        parts: dict[str, _Content] = {}
        root = _parse_hardened(self._envelope_chunks(source, spool, parts), reader)
        tree = reader.tree
        header = tree.required(root, "edXMLHeader")
        message = tree.required(header, "MessageHeader")
        trace = tree.required(header, "TraceHeaderList")
        return {
            "header": tree.read(message, _MESSAGE_HEADER),
            "trace": tree.read(trace, _TRACE),
            "attachments": self._read_body(tree, root, reader.contents, parts),
        }

    def _read_body(
        self,
        tree: _Tree,
        root: etree._Element,
        decoded: dict[etree._Element, _Content],
        parts: dict[str, _Content],
    ) -> list[dict[str, Any]]:
        body = tree.only(root, "edXMLBody")
        if body is None:
            return _joined([], {}, parts)
        manifest = tree.only(body, "edXMLManifest")
        references = [] if manifest is None else tree.children(manifest, "Reference")
        entries = [tree.read(reference, _REFERENCE) for reference in references]
        for entry in entries:  # again: a manifest after the content was not checked yet
            _check_declared_size(entry, self.max_attachment_bytes)
        return _joined(entries, self._contents(tree, body, decoded), parts)

    def _contents(
        self, tree: _Tree, body: etree._Element, decoded: dict[etree._Element, _Content]
    ) -> dict[str, _Content]:
        """The content inside the envelope, by Content-ID (`mime.content_id_key`)."""
        encoded = tree.only(body, "AttachmentEncoded")
        items = [] if encoded is None else tree.children(encoded, "Attachment")
        contents: dict[str, _Content] = {}
        for item in items:
            content_id = mime.content_id_key(tree.required_text(item, "ContentId"))
            if content_id in contents:
                raise EdxmlError("malformed", f"attachment {content_id!r} is encoded twice")
            contents[content_id] = decoded[tree.required(item, "ContentTransferEncoded")]
        return contents

    def _spooled_document(self, fields: dict[str, Any]) -> SpooledDocument:
        """The model of a document read into files: validated as `EdocManifest` (the rules of
        `EdocDocument` but the content), each Size checked against the decoded length."""
        contents: list[_Content] = []
        for entry in fields["attachments"]:
            contents.append(entry.pop("content"))
            entry.setdefault("size_bytes", contents[-1].size)  # as Attachment fills it
        manifest = _validated(EdocManifest, fields)
        for index, (reference, content) in enumerate(
            zip(manifest.attachments, contents, strict=True)
        ):
            if reference.size_bytes != content.size:
                raise EdxmlError(
                    "malformed",
                    f"EdocManifest.attachments.{index}: size_bytes {reference.size_bytes} "
                    f"!= content length {content.size}",
                )
        attachments = tuple(
            _spooled(reference, content)
            for reference, content in zip(manifest.attachments, contents, strict=True)
        )
        return SpooledDocument(manifest.header, manifest.trace, attachments)

    # -- writing ----------------------------------------------------------------------------------

    def _envelope(self) -> tuple[etree._Element, etree._Element]:
        root = etree.Element(self._tree.tag("edXMLEnvelope"), nsmap={PREFIX: self.namespace})
        return root, self._tree.sub(root, "edXMLHeader")

    def _write(
        self,
        header: MessageHeader,
        trace: TraceHeaderList,
        attachments: Sequence[Attachment | SpooledAttachment],
        out: BinaryIO,
    ) -> int:
        """The document written to `out`, as `packaging` says; the number of bytes written.
        Inline: the frame's bytes around each attachment's base64, streamed from its content."""
        keys: set[str] = set()
        for attachment in attachments:
            _check_attachment(
                attachment.attachment_id, attachment.size_bytes, self.max_attachment_bytes
            )
            key = mime.content_id_key(attachment.attachment_id)
            if key in keys:  # read back, two such ids would be one attachment encoded twice
                raise EdxmlError(
                    "malformed", f"attachment ids name the Content-ID {key[:100]!r} twice"
                )
            keys.add(key)
        if self.packaging == "mime":
            return self._write_package(header, trace, attachments, out)
        frame, placeholder = self._frame(header, trace, attachments)
        total = (
            len(frame)
            - len(placeholder) * len(attachments)
            + sum(_encoded_length(attachment.size_bytes) for attachment in attachments)
        )
        if total > self.max_bytes:
            raise EdxmlError("too_large", f"{total} bytes built, the limit is {self.max_bytes}")
        pieces = frame.split(placeholder)
        out.write(pieces[0])
        for attachment, piece in zip(attachments, pieces[1:], strict=True):
            with _opened(attachment) as content:
                _copy_base64(content, out, attachment)
            out.write(piece)
        return total

    def _write_package(
        self,
        header: MessageHeader,
        trace: TraceHeaderList,
        attachments: Sequence[Attachment | SpooledAttachment],
        out: BinaryIO,
    ) -> int:
        """The document written to `out` as a MIME package (`connectors.vdxp.mime`): the
        envelope, whose manifest names each attachment by its id, as the root part, then each
        attachment's bytes as a part whose Content-ID is that id's; the number of bytes."""
        ids = []
        for attachment in attachments:
            content_id = mime.writable_id(attachment.attachment_id)
            if content_id is None:
                raise EdxmlError(
                    "malformed",
                    f"attachment id {attachment.attachment_id[:100]!r} cannot be written as a "
                    "Content-ID (letters, digits and ._~!$&'*+=^@- only)",
                )
            ids.append(content_id)
        frame = self._frame(header, trace, attachments, inline=False)[0]
        boundary = mime.new_boundary()  # 128 random bits: never in the content by chance
        root_id = f"edxml-envelope.{boundary[8:]}"
        head = mime.package_head(boundary, root_id) + mime.part_head(
            boundary, root_id, mime.ROOT_TYPE
        )
        heads = [
            b"\r\n" + mime.part_head(boundary, content_id, mime.header_type(a.content_type))
            for content_id, a in zip(ids, attachments, strict=True)
        ]
        closing = mime.closing(boundary)
        total = (
            len(head)
            + len(frame)
            + sum(len(part) + a.size_bytes for part, a in zip(heads, attachments, strict=True))
            + len(closing)
        )
        if total > self.max_bytes:
            raise EdxmlError("too_large", f"{total} bytes built, the limit is {self.max_bytes}")
        out.write(head)
        out.write(frame)
        for attachment, part in zip(attachments, heads, strict=True):
            out.write(part)
            with _opened(attachment) as content:
                _copy_raw(content, out, attachment)
        out.write(closing)
        return total

    def _frame(
        self,
        header: MessageHeader,
        trace: TraceHeaderList,
        attachments: Sequence[Attachment | SpooledAttachment],
        inline: bool = True,
    ) -> tuple[bytes, bytes]:
        """The document serialized with a placeholder for each attachment's base64, and the
        placeholder (random, so no text of the document can be taken for one); without
        AttachmentEncoded (and placeholders) when the content is not `inline`."""
        tree = self._tree
        root, head = self._envelope()
        with _writing():
            tree.write(tree.sub(head, "MessageHeader"), header, _MESSAGE_HEADER)
            tree.write(tree.sub(head, "TraceHeaderList"), trace, _TRACE)
            body = tree.sub(root, "edXMLBody")
            manifest = tree.sub(body, "edXMLManifest")
            for attachment in attachments:
                tree.write(tree.sub(manifest, "Reference"), attachment, _REFERENCE)
            if not inline:
                return _serialized(root), b""
            encoded = tree.sub(body, "AttachmentEncoded")
            slots = []
            for attachment in attachments:
                item = tree.sub(encoded, "Attachment")
                tree.sub(item, "ContentId", attachment.attachment_id)
                slots.append(tree.sub(item, "ContentTransferEncoded", ""))
        while True:
            placeholder = f"edxml-content-{uuid.uuid4().hex}"
            for slot in slots:
                slot.text = placeholder
            frame = _serialized(root)
            if frame.count(placeholder.encode("ascii")) == len(slots):
                return frame, placeholder.encode("ascii")


# -- reading: the parser target -------------------------------------------------------------------


@dataclass
class _Content:
    """One attachment's decoded content, as the reader leaves it: `size` bytes in `sink`, a
    buffer (still open, `path` None) or the file `path` (closed)."""

    sink: BinaryIO
    path: Path | None
    size: int = 0

    def read(self) -> bytes:
        self.sink.seek(0)
        return self.sink.read()


class _Spool:
    """Where the reader puts attachment content: a new `_Content` per attachment."""

    def open(self) -> _Content:
        raise NotImplementedError

    def close(self, content: _Content) -> None:
        """The content is complete."""


class _Buffers(_Spool):
    """Content in memory (`parse_document`)."""

    def open(self) -> _Content:
        return _Content(io.BytesIO(), None)


class _Files(_Spool):
    """Content in new files of one directory, named by `tempfile` (unique, owner-only); the
    files created are remembered, to be removed when the document is refused."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.created: list[_Content] = []

    def open(self) -> _Content:
        handle, name = tempfile.mkstemp(prefix="edxml-", suffix=".attachment", dir=self.directory)
        content = _Content(os.fdopen(handle, "wb"), Path(name))
        self.created.append(content)
        return content

    def close(self, content: _Content) -> None:
        content.sink.close()

    def remove(self, keep: Collection[Path] = ()) -> None:
        """Each file created but those in `keep` closed (if a refusal left it open) and
        removed."""
        for content in self.created:
            if content.path is not None and content.path not in keep:
                content.sink.close()
                content.path.unlink(missing_ok=True)


class _Reader:
    """The parser target. Elements go to an `etree.TreeBuilder`, which builds the frame (a
    small tree: everything but attachment content); the text of each edXMLBody/
    AttachmentEncoded/Attachment/ContentTransferEncoded goes instead through a `_Base64Decoder`
    into a new `_Content` of `spool` (`contents` maps that element of the tree to it), or
    nowhere when there is no spool (a status message). The root's namespace, one of
    `accepted`, is the document's: `tree` reads it. Refusals are raised from the parser's
    callbacks, which stops the parser."""

    def __init__(
        self, accepted: tuple[str, ...], max_attachment_bytes: int, spool: _Spool | None
    ) -> None:
        self._accepted = accepted
        self.tree = _Tree(accepted[0])  # until the root says which
        self._max_attachment_bytes = max_attachment_bytes
        self._spool = spool
        self._builder = etree.TreeBuilder()
        # lxml's TreeBuilder returns the element it opens or closes (as ElementTree's does);
        # types-lxml says None.
        self._start = cast("Callable[[str, dict[str, str]], etree._Element]", self._builder.start)
        self._end = cast("Callable[[str], etree._Element]", self._builder.end)
        self._path: list[str] = []
        self._content_path: list[str] = []
        self._attachment_path: list[str] = []
        self._reference_path: list[str] = []
        self._attachment: etree._Element | None = None  # the Attachment being read
        self._decoder: _Base64Decoder | None = None  # in a ContentTransferEncoded, spooling
        self._skipping = False  # in a ContentTransferEncoded, no spool
        self._elements = 0
        self._chars = 0
        self.contents: dict[etree._Element, _Content] = {}
        self.failure: Exception | None = None  # raised in a callback
        self.foreign: EdxmlError | None = None  # the root is in another namespace

    # lxml's target interface. An exception raised in a callback stops the parser, and lxml
    # raises it from `feed`, but not always: raised at the root's start, it can come out as
    # lxml's own "missing toplevel element". So it is also kept in `failure`, which
    # `_parse_hardened` prefers.

    def start(self, tag: str, attrib: dict[str, str], /) -> None:
        with self._failing():
            self._on_start(tag)

    def data(self, text: str, /) -> None:
        with self._failing():
            self._on_data(text)

    def end(self, tag: str, /) -> None:
        with self._failing():
            self._on_end(tag)

    def doctype(
        self, root_tag: str | None, public_id: str | None, system_id: str | None, /
    ) -> None:
        with self._failing():
            raise EdxmlError("entities", "a DOCTYPE reached the parser (the byte check missed it)")

    def comment(self, text: str, /) -> None:
        """Comments are dropped."""

    def pi(self, target: str, data: str, /) -> None:
        """Processing instructions are dropped."""

    def start_ns(self, prefix: str, uri: str, /) -> None:
        """Namespace declarations need no event: tags come qualified."""

    def end_ns(self, prefix: str, /) -> None:
        """Namespace declarations need no event: tags come qualified."""

    def close(self) -> etree._Element | None:
        """The frame's root; None when the root is in another namespace (nothing built)."""
        return None if self.foreign is not None else self._builder.close()

    # the events. A root in another namespace is refused (`foreign`) once the input has
    # proved to be well-formed XML, as bad XML is `malformed` whatever its namespace; until
    # then nothing is built, counted or decoded.

    @contextmanager
    def _failing(self) -> Iterator[None]:
        try:
            yield
        except ValueError as exc:  # a name lxml cannot make a tag of ("e:"): bad XML
            error = EdxmlError("malformed", f"not well-formed XML: {exc}")
            self.failure = self.failure or error
            raise error from exc
        except Exception as exc:
            self.failure = self.failure or exc  # the first is the cause
            raise

    def _on_start(self, tag: str) -> None:
        if self.foreign is not None or (not self._path and self._is_foreign(tag)):
            return
        if self._decoder is not None or self._skipping:
            raise EdxmlError("malformed", "an element inside ContentTransferEncoded")
        self._elements += 1
        if self._elements > MAX_FRAME_ELEMENTS:
            raise EdxmlError("too_large", f"more than {MAX_FRAME_ELEMENTS} elements")
        if not self._path and etree.QName(tag).localname != "edXMLEnvelope":
            raise EdxmlError("malformed", f"the root is {etree.QName(tag).localname}")
        self._path.append(tag)
        element = self._start(tag, {})  # attributes are never read: not kept
        if self._path == self._attachment_path:
            self._attachment = element
        elif self._path == self._content_path:
            self._open_content()

    def _on_data(self, text: str) -> None:
        if self.foreign is not None:
            return
        if self._decoder is not None:
            self._decoder.feed(text)
        elif not self._skipping:
            self._chars += len(text)
            if self._chars > MAX_FRAME_CHARS:
                raise EdxmlError(
                    "too_large",
                    f"more than {MAX_FRAME_CHARS} characters of text outside attachment content",
                )
            self._builder.data(text)

    def _on_end(self, tag: str) -> None:
        if self.foreign is not None:
            return
        element = self._end(tag)
        if self._path == self._content_path:
            self._close_content(element)
        elif self._path == self._reference_path and self._spool is not None:
            _check_declared_size(self.tree.read(element, _REFERENCE), self._max_attachment_bytes)
        self._path.pop()

    def _is_foreign(self, root: str) -> bool:
        """Whether the root is in a namespace not accepted; if it is accepted, the paths
        watched are set in it."""
        found = etree.QName(root).namespace
        if found not in self._accepted:
            expected = (
                f"namespace {self._accepted[0]!r}"
                if len(self._accepted) == 1
                else f"one of the namespaces {', '.join(map(repr, self._accepted))}"
            )
            self.foreign = EdxmlError("wrong_namespace", f"expected {expected}, found {found!r}")
            return True
        tree = self.tree = _Tree(found)
        self._content_path = [
            tree.tag(name)
            for name in (
                "edXMLEnvelope",
                "edXMLBody",
                "AttachmentEncoded",
                "Attachment",
                "ContentTransferEncoded",
            )
        ]
        self._attachment_path = self._content_path[:-1]
        self._reference_path = [
            tree.tag(name) for name in ("edXMLEnvelope", "edXMLBody", "edXMLManifest", "Reference")
        ]
        return False

    # attachment content

    def _open_content(self) -> None:
        if self._spool is None:
            self._skipping = True
            return
        if len(self.contents) >= MAX_ATTACHMENTS:
            raise EdxmlError("too_large", f"more than {MAX_ATTACHMENTS} attachments")
        content = self._spool.open()
        self._decoder = _Base64Decoder(content, self._max_attachment_bytes, self._label())

    def _close_content(self, element: etree._Element) -> None:
        if self._spool is None or self._decoder is None:
            self._skipping = False
            return
        content = self._decoder.finish()
        self._spool.close(content)
        self.contents[element] = content
        self._decoder = None

    def _label(self) -> str:
        """The attachment's ContentId if it came before the content, else its position."""
        found = (
            None if self._attachment is None else self._attachment.find(self.tree.tag("ContentId"))
        )
        if found is not None and found.text:
            return found.text
        return f"#{len(self.contents) + 1}"


class _Base64Decoder:
    """Base64 text in pieces split anywhere, with whitespace anywhere, decoded into a
    `_Content` as it comes and refused past `limit` decoded bytes. It accepts exactly what
    `base64.b64decode(text, validate=True)` accepts once the whitespace is removed, and gives
    the same bytes: quanta decode strictly as they complete; the padding ends the text (only
    more "=" may follow), and must complete the last quantum (any number of "=" may follow a
    complete one, as b64decode allows). Holds fewer than four characters between pieces."""

    def __init__(self, content: _Content, limit: int, label: str) -> None:
        self._content = content
        self._limit = limit
        self._label = label
        self._pending = ""  # the start of the next quantum, fewer than 4 characters
        self._data = False  # a character other than "=" was seen
        self._padding = 0  # the "=" seen so far

    def feed(self, text: str) -> None:
        compact = "".join(text.split())
        if not compact:
            return
        if self._padding:
            head, tail = "", compact
        else:
            head, equals, tail = compact.partition("=")
            tail = equals + tail
        if tail.strip("="):
            raise self._refused("text after the padding")
        self._padding += len(tail)
        if head:
            self._data = True
            quanta = self._pending + head
            cut = len(quanta) - len(quanta) % 4
            self._pending = quanta[cut:]
            if cut:
                self._decode(quanta[:cut])

    def finish(self) -> _Content:
        if self._padding and not self._data:
            raise self._refused("it starts with padding")
        needed = {0: self._padding, 2: 2, 3: 1}.get(len(self._pending))
        if needed != self._padding:
            raise self._refused("its length or padding is wrong")
        if self._pending:
            self._decode(self._pending + "=" * needed)
        return self._content

    def _decode(self, quanta: str) -> None:
        try:
            raw = binascii.a2b_base64(quanta.encode("ascii"), strict_mode=True)
        except (UnicodeEncodeError, binascii.Error) as exc:
            raise self._refused(str(exc)) from exc
        size = self._content.size + len(raw)
        _check_attachment(self._label, size, self._limit, exact=False)
        self._content.sink.write(raw)
        self._content.size = size

    def _refused(self, why: str) -> EdxmlError:
        return EdxmlError("malformed", f"attachment {self._label[:100]!r} is not base64: {why}")


class _RawPart:
    """Part content as it comes (Content-Transfer-Encoding binary, 8bit or 7bit) into a
    `_Content`, refused past `limit` bytes."""

    def __init__(self, content: _Content, limit: int, label: str) -> None:
        self._content = content
        self._limit = limit
        self._label = label

    def feed(self, data: bytes) -> None:
        size = self._content.size + len(data)
        _check_attachment(self._label, size, self._limit, exact=False)
        self._content.sink.write(data)
        self._content.size = size

    def finish(self) -> _Content:
        return self._content


class _Base64Part:
    """Part content in base64 (lines of any length, split anywhere), through `_Base64Decoder`."""

    def __init__(self, content: _Content, limit: int, label: str) -> None:
        self._decoder = _Base64Decoder(content, limit, label)
        self._label = label

    def feed(self, data: bytes) -> None:
        try:
            text = data.decode("ascii")  # the rest of what is not base64 is refused there
        except UnicodeDecodeError:
            raise EdxmlError(
                "malformed", f"attachment {self._label[:100]!r} is not base64: a byte over 127"
            ) from None
        self._decoder.feed(text)

    def finish(self) -> _Content:
        return self._decoder.finish()


class _QuotedPrintablePart:
    """Part content in quoted-printable, decoded a run of whole lines at a time (MIME's lines
    are at most 76 characters: a line longer than `CHUNK_BYTES` is refused)."""

    def __init__(self, content: _Content, limit: int, label: str) -> None:
        self._raw = _RawPart(content, limit, label)
        self._label = label
        self._pending = b""

    def feed(self, data: bytes) -> None:
        text = self._pending + data
        cut = text.rfind(b"\n") + 1
        self._pending = text[cut:]
        if len(self._pending) > CHUNK_BYTES:
            raise EdxmlError(
                "malformed", f"part {self._label[:100]!r}: a quoted-printable line is too long"
            )
        if cut:
            self._raw.feed(binascii.a2b_qp(text[:cut]))

    def finish(self) -> _Content:
        if self._pending:
            self._raw.feed(binascii.a2b_qp(self._pending))
        return self._raw.finish()


_PartDecoder = _RawPart | _Base64Part | _QuotedPrintablePart


def _part_decoder(
    headers: mime.PartHeaders, content: _Content, limit: int, label: str
) -> _PartDecoder:
    encoding = headers.transfer_encoding
    if encoding in ("binary", "8bit", "7bit"):
        return _RawPart(content, limit, label)
    if encoding == "base64":
        return _Base64Part(content, limit, label)
    if encoding == "quoted-printable":
        return _QuotedPrintablePart(content, limit, label)
    raise EdxmlError(
        "malformed",
        f"part {label[:100]!r}: Content-Transfer-Encoding {encoding[:40]!r} is not binary, 8bit, "
        "7bit, base64 or quoted-printable",
    )


class _PackageReader:
    """The parts of a MIME package (`mime.split`) as they stream by: the root part's content,
    decoded, is handed on for the XML parser (`envelope`); every other part is decoded into a
    new `_Content` of the spool and kept in `parts` by its Content-ID, or skipped when there is
    no spool (a status message). Memory: a chunk and a delimiter, as for the envelope."""

    def __init__(
        self,
        package: mime.Package,
        spool: _Spool | None,
        max_attachment_bytes: int,
        parts: dict[str, _Content],
    ) -> None:
        self._package = package
        self._spool = spool
        self._limit = max_attachment_bytes
        self.parts = parts
        self._root_seen = False
        self._root: _Content | None = None  # the root part, while it is read
        self._decoder: _PartDecoder | None = None  # of the part being read, if it is kept
        self._key = ""  # the Content-ID of the part being read

    def envelope(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for event in mime.split(chunks, self._package.boundary):
            if isinstance(event, mime.PartHeaders):
                self._begin(event)
            elif event is None:
                yield from self._end()
            elif self._decoder is not None:
                self._decoder.feed(event)
                yield from self._envelope_bytes()
        if not self._root_seen:
            start = self._package.start
            raise EdxmlError(
                "malformed",
                "the package has no part"
                + ("" if start is None else f" with Content-ID {start[:100]!r}")
                + " to hold the edXML envelope",
            )

    def _begin(self, headers: mime.PartHeaders) -> None:
        """A part begins: the root (the one `start` names, else the first) or another."""
        start = self._package.start
        if not self._root_seen and (start is None or headers.content_id == start):
            self._root_seen = True
            self._root = _Content(io.BytesIO(), None)
            self._decoder = _part_decoder(headers, self._root, 1 << 62, "the edXML envelope")
        else:
            self._root = None
            self._key, self._decoder = self._open(headers)

    def _end(self) -> Iterator[bytes]:
        if self._decoder is not None:
            content = self._decoder.finish()
            if self._root is not None:
                yield from self._envelope_bytes()
            elif self._spool is not None:
                self._spool.close(content)
                self.parts[self._key] = content
        self._root, self._decoder = None, None

    def _envelope_bytes(self) -> Iterator[bytes]:
        if self._root is not None and (data := _drained(self._root)):
            yield data

    def _open(self, headers: mime.PartHeaders) -> tuple[str, _PartDecoder | None]:
        if self._spool is None:
            return "", None
        key = headers.content_id
        if not key:
            raise EdxmlError("malformed", "a part of the package has no Content-ID")
        if key in self.parts:
            raise EdxmlError("malformed", f"two parts of the package have Content-ID {key!r}")
        if len(self.parts) >= MAX_ATTACHMENTS:
            raise EdxmlError("too_large", f"more than {MAX_ATTACHMENTS} parts in the package")
        return key, _part_decoder(headers, self._spool.open(), self._limit, key)


def _drained(content: _Content) -> bytes:
    """What a buffer `_Content` holds, taken out of it."""
    sink = cast("io.BytesIO", content.sink)
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


class _DeclarationGuard:
    """Refuses a DOCTYPE or ENTITY declaration in raw bytes fed in chunks, one split across
    chunks included: each chunk is searched together with the end of the one before."""

    _KEEP = max(len(marker) for marker in _FORBIDDEN) - 1

    def __init__(self) -> None:
        self._tail = b""

    def check(self, chunk: bytes) -> None:
        window = self._tail + chunk
        _refuse_declarations(window)
        self._tail = window[-self._KEEP :]


# -- element helpers ------------------------------------------------------------------------------


class _Tree:
    """Reads and writes elements of one namespace, driven by the `_Part` shapes above; dates
    and times are written in the form `dates` names and read in either."""

    def __init__(self, namespace: str, dates: DateFormat = "qcvn102") -> None:
        self.namespace = namespace
        self.dates: DateFormat = dates

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

    def write(self, parent: etree._Element, model: object, shape: tuple[_Part, ...]) -> None:
        for part in shape:
            value = getattr(model, part.field)
            items = value if part.many else () if value is None else (value,)
            if not items:
                continue
            target = parent if part.wrapper is None else self.sub(parent, part.wrapper)
            for item in items:
                if part.shape is None:
                    self.sub(target, part.tag, _text(item, self.dates))
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
            text = element.text or None
            return text if text is None or part.kind == "text" else _read_when(text, part)
        return self.read(element, part.shape)  # an empty structure is present, all defaults


def _name(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def _text(value: object, dates: DateFormat = "qcvn102") -> str:
    if isinstance(value, Enum):
        return _text(value.value)
    if isinstance(value, date):  # datetimes too
        return _write_when(value, dates)
    if isinstance(value, str | int):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as edXML text")


# QCVN 102's forms, which the axes and the agencies' software write; and ISO 8601's.
_QCVN_DATE = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2})")
_QCVN_TIME = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?"
    r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?"
)


def _read_when(text: str, part: _Part) -> str:
    """A date (`yyyy/MM/dd` or ISO `yyyy-MM-dd`) or a time (`yyyy/MM/dd HH:mm:ss`, or ISO
    8601 with "T" or a space, seconds and fractions optional, an offset or none) as the ISO
    text pydantic validates (the calendar is checked there); white space around it is
    ignored. Any other form is refused naming the element and the forms accepted."""
    value = text.strip()
    if part.kind == "date":
        found = _QCVN_DATE.fullmatch(value)
        if found:
            return "-".join(found.groups())
        if _ISO_DATE.fullmatch(value):
            return value
        forms = "yyyy/MM/dd (QCVN 102) or yyyy-MM-dd (ISO 8601)"
    else:
        found = _QCVN_TIME.fullmatch(value)
        if found:
            return "-".join(found.groups()[:3]) + "T" + found.group(4)
        if _ISO_TIME.fullmatch(value):
            return value
        forms = (
            "yyyy/MM/dd HH:mm:ss (QCVN 102) or ISO 8601 (yyyy-MM-ddTHH:mm:ss, an offset or none)"
        )
    raise EdxmlError(
        "malformed", f"{part.tag} {value[:40]!r} is not a {part.kind} in the form {forms}"
    )


def _write_when(value: date, dates: DateFormat) -> str:
    """A date or time in the form `dates` names: QCVN 102's `yyyy/MM/dd` and
    `yyyy/MM/dd HH:mm:ss` in Vietnam time (whole seconds), or ISO 8601 as Python writes it."""
    if dates == "iso":
        return value.isoformat()
    if isinstance(value, datetime):
        local = value.astimezone(VIETNAM_TZ) if value.tzinfo else value
        day = f"{local.year:04d}/{local.month:02d}/{local.day:02d}"
        return f"{day} {local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


@contextmanager
def _writing() -> Iterator[None]:
    """Turns lxml's refusal of a text (control characters, U+FFFE…) into an EdxmlError."""
    try:
        yield
    except ValueError as exc:
        raise EdxmlError("malformed", f"cannot be written as XML: {exc}") from exc


# -- parsing and writing helpers ------------------------------------------------------------------


def _refuse_declarations(data: bytes) -> None:
    if not any(opener in data for opener in _OPENERS):
        return
    upper = data.upper()
    if any(marker in upper for marker in _FORBIDDEN):
        raise EdxmlError("entities", "DOCTYPE and ENTITY declarations are not accepted")


def _parse_hardened(chunks: Iterable[bytes], target: _Reader) -> etree._Element:
    """`chunks` fed to lxml's parser with no DTD, no entities, no network and libxml2's size
    limits on, its events going to `target`; the frame's root. A DOCTYPE that reaches the
    parser (the byte check was fooled) is refused by the target."""
    parser = etree.XMLParser(
        target=target,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for chunk in chunks:
            parser.feed(chunk)
        root = parser.close()
    except etree.LxmlError as exc:
        if target.failure is not None:
            raise target.failure from None
        raise EdxmlError("malformed", f"not well-formed XML: {exc}") from exc
    if target.foreign is not None:  # refused now that the input is known to be XML
        raise target.foreign
    if root is None:  # not reached: a target without a foreign root returns one
        raise EdxmlError("malformed", "no root element")
    return root


def _check_attachment(content_id: str, size_bytes: int, limit: int, exact: bool = True) -> None:
    if size_bytes > limit:
        raise EdxmlError(
            "attachment_too_large",
            f"attachment {content_id[:100]!r} has {size_bytes}{'' if exact else ' or more'} "
            f"bytes, the limit is {limit}",
        )


def _check_declared_size(entry: dict[str, Any], limit: int) -> None:
    """A manifest entry's Size (raw text) against the limit, before any content is decoded."""
    declared = entry.get("size_bytes")
    if isinstance(declared, str) and declared.isascii() and declared.isdigit():
        size = limit + 1 if len(declared) > 18 else int(declared)
        _check_attachment(str(entry.get("attachment_id")), size, limit)


def _joined(
    entries: list[dict[str, Any]], inline: dict[str, _Content], parts: dict[str, _Content]
) -> list[dict[str, Any]]:
    """Each manifest entry with its content, found by its ContentId (`cid:x`, `<x>` and `x`
    name the same) inside the envelope or among the package's parts; an entry with no content
    or with content in both places, and content without an entry, are refused."""
    for entry in entries:
        content_id = entry.get("attachment_id")
        if not isinstance(content_id, str):
            raise EdxmlError("missing_field", "a manifest Reference has no ContentId")
        key = mime.content_id_key(content_id)
        found = [c for c in (inline.pop(key, None), parts.pop(key, None)) if c is not None]
        if not found:
            name = entry.get("name")
            raise EdxmlError(
                "missing_field",
                f"attachment {content_id[:100]!r}"
                + (f" ({name[:100]!r})" if isinstance(name, str) else "")
                + " has no content: neither in AttachmentEncoded nor a part of the package",
            )
        if len(found) > 1:
            raise EdxmlError(
                "malformed",
                f"attachment {content_id[:100]!r} has content both in AttachmentEncoded and in "
                "a part of the package",
            )
        entry["content"] = found[0]
    if inline:
        raise EdxmlError("malformed", f"content without a manifest entry: {sorted(inline)}")
    if parts:
        raise EdxmlError(
            "malformed", f"parts of the package without a manifest entry: {sorted(parts)}"
        )
    return entries


def _serialized(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _encoded_length(size_bytes: int) -> int:
    """The length of the base64 of `size_bytes` bytes (unbroken, padded)."""
    return (size_bytes + 2) // 3 * 4


def _opened(attachment: Attachment | SpooledAttachment) -> BinaryIO:
    if isinstance(attachment, Attachment):
        return io.BytesIO(attachment.content)
    return attachment.path.open("rb")


def _copy_base64(
    source: BinaryIO, out: BinaryIO, attachment: Attachment | SpooledAttachment
) -> None:
    """`attachment`'s content from `source` to `out` as one unbroken base64 text, encoded in
    pieces of `ENCODE_BYTES`; content longer or shorter than its `size_bytes` is refused."""
    remaining = attachment.size_bytes
    carry = b""  # fewer than 3 bytes, when `source` returns a piece that is not a multiple of 3
    while piece := source.read(min(ENCODE_BYTES, remaining + 1)):
        if len(piece) > remaining:
            raise _changed(attachment)
        remaining -= len(piece)
        data = carry + piece if carry else piece
        cut = len(data) - len(data) % 3
        carry = data[cut:]
        out.write(binascii.b2a_base64(data[:cut], newline=False))
    if remaining:
        raise _changed(attachment)
    if carry:
        out.write(binascii.b2a_base64(carry, newline=False))


def _copy_raw(source: BinaryIO, out: BinaryIO, attachment: Attachment | SpooledAttachment) -> None:
    """`attachment`'s content from `source` to `out` as it is, in pieces of `CHUNK_BYTES`;
    content longer or shorter than its `size_bytes` is refused."""
    remaining = attachment.size_bytes
    while piece := source.read(min(CHUNK_BYTES, remaining + 1)):
        if len(piece) > remaining:
            raise _changed(attachment)
        remaining -= len(piece)
        out.write(piece)
    if remaining:
        raise _changed(attachment)


def _changed(attachment: Attachment | SpooledAttachment) -> EdxmlError:
    return EdxmlError(
        "malformed",
        f"attachment {attachment.attachment_id[:100]!r} is no longer {attachment.size_bytes} "
        "bytes long (it changed while being written)",
    )


def _reference_fields(attachment: SpooledAttachment) -> dict[str, Any]:
    return {
        "attachment_id": attachment.attachment_id,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "description": attachment.description,
        "size_bytes": attachment.size_bytes,
    }


def _spooled(reference: AttachmentReference | Attachment, content: _Content) -> SpooledAttachment:
    if content.path is None:
        raise ValueError("content in memory is not spooled")
    return SpooledAttachment(
        attachment_id=reference.attachment_id,
        name=reference.name,
        content_type=reference.content_type,
        description=reference.description,
        size_bytes=reference.size_bytes,
        path=content.path,
    )


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
