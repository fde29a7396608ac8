"""edXML packages: the MIME multipart/related form of an edXML document, read and written in a
stream.

edXML follows ebXML packaging: a document may travel as a MIME message of type
multipart/related whose root part is the edXML envelope and whose other parts are the
attachments, each named by its Content-ID, which the manifest's Reference names as a `cid:`
URL (RFC 2392: `cid:abc@x` is the part with `Content-ID: <abc@x>`):

    MIME-Version: 1.0
    Content-Type: multipart/related; boundary="b1"; type="text/xml"; start="<edxml>"

    --b1
    Content-Type: text/xml; charset=utf-8
    Content-ID: <edxml>

    <edXML:edXMLEnvelope …> … <edXML:ContentId>cid:cv-123@so.gov.vn</edXML:ContentId> …
    --b1
    Content-Type: application/pdf
    Content-Transfer-Encoding: base64
    Content-ID: <cv-123@so.gov.vn>

    JVBERi0xLjQK…
    --b1--

The root part is the one the `start` parameter names, else the first (RFC 2387). What the
parser meets first decides what it is: an XML document starts with `<` (after a byte-order
mark or white space); anything else whose header block says multipart/related is a package.

Reading (`sniff`, then `split`). Headers, the package's and each part's, are parsed with the
standard library's `email` parser; bodies never are: `split` finds the boundaries itself,
holding at most one chunk and a delimiter's length, and hands each part's content on in
pieces as it arrives, for the edXML codec to decode (Content-Transfer-Encoding binary, 8bit,
7bit, base64 or quoted-printable) into a file or into the XML parser. Lines may end in CRLF, as
MIME says, or in a bare LF, as files edited by hand do; a CR or LF before a boundary belongs to
the boundary. The preamble and the epilogue are skipped. A header block over
`MAX_HEADER_BYTES`, a boundary followed by text, no boundary at all or no closing one
(truncated) are refused (`PackageError`, which the codec reports as `malformed`).

Writing (`package_head`, `part_head`, `closing`). The hub writes CRLF, a random boundary, the
root part first (`text/xml; charset=utf-8`, Content-Transfer-Encoding binary), then each
attachment's bytes as they are (binary: HTTP carries eight bits), so the length of the whole is
known before it is written.

This module must never import hub code (the axis simulator uses it through the codec).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from urllib.parse import unquote

MAX_HEADER_BYTES = 16 * 1024  # a part's header block, and the package's own
MAX_PADDING_BYTES = 1024  # white space allowed after a boundary on its line
PACKAGE_TYPE = "multipart/related"
ROOT_TYPE = "text/xml; charset=utf-8"
# What the hub writes as a Content-ID: no percent-escapes needed in a cid: URL, nothing a header
# could be broken with.
_WRITABLE_ID = re.compile(r"[A-Za-z0-9._~!$&'*+=^@-]{1,200}")
_PRINTABLE = re.compile(r"[\x20-\x7e]{1,200}")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class PackageError(ValueError):
    """A MIME package that cannot be read."""


@dataclass(frozen=True)
class Package:
    """A package's own headers: how its parts are separated and which one is the root."""

    content_type: str  # the Content-Type header as written (unfolded)
    boundary: str
    start: str | None  # the root part's Content-ID (without <>), if named


@dataclass(frozen=True)
class PartHeaders:
    """A part begins: what its headers say."""

    content_id: str | None  # without <>
    content_type: str  # main/sub, lower case (text/plain when absent, as MIME says)
    transfer_encoding: str  # lower case; binary when absent


def content_id_key(text: str) -> str:
    """The Content-ID a `cid:` URL, a Content-ID header or a plain ContentId names, as one
    key: `cid:a%40b`, `<a@b>` and `a@b` are all `a@b` (RFC 2392)."""
    value = text.strip()
    if value[:4].lower() == "cid:":
        value = unquote(value[4:]).strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


# -- reading --------------------------------------------------------------------------------------


def sniff(chunks: Iterable[bytes]) -> tuple[Package | None, Iterator[bytes]]:
    """What `chunks` hold: a package (its headers, and the chunks of its body after them) or
    anything else (None, and the chunks unchanged, for the XML parser to read or refuse).
    Reads no more than it needs to decide: a first byte `<`, or a header block."""
    source = iter(chunks)
    head = b""
    for chunk in source:
        head += chunk
        start = head.lstrip(b" \t\r\n")
        if not start:
            continue
        if start[:1] in (b"<", b"\xef", b"\xfe", b"\xff", b"\x00"):  # XML, maybe with a BOM
            break
        found = _HEADER_END.search(head)
        if found is None:
            if len(head) > MAX_HEADER_BYTES:
                break
            continue
        package = _package(head[: found.start()])
        if package is None:
            break
        return package, _chained(head[found.end() :], source)
    return None, _chained(head, source)


def split(chunks: Iterable[bytes], boundary: str) -> Iterator[PartHeaders | bytes | None]:
    """The parts of a package body, as events: `PartHeaders` when a part begins, then its
    content in pieces (bytes, never empty, never more than a chunk and a delimiter long),
    then None when it ends. `PackageError` for a body that is not one."""
    return _Splitter(chunks, boundary.encode("ascii")).events()


def _chained(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _package(block: bytes) -> Package | None:
    """The package a header block describes; None if it is no MIME header block at all."""
    headers = _parsed(block)
    raw = headers.get("Content-Type")
    if raw is None:
        return None
    kind = headers.get_content_type()
    if kind != PACKAGE_TYPE:
        raise PackageError(f"a MIME message of type {kind[:60]!r}, not {PACKAGE_TYPE}")
    boundary = _param(headers, "boundary")
    if boundary is None or not 0 < len(boundary) <= 200 or not _PRINTABLE.fullmatch(boundary):
        raise PackageError("the package's boundary is missing or invalid")
    start = _param(headers, "start")
    return Package(
        content_type=" ".join(str(raw).split()),
        boundary=boundary,
        start=None if start is None else content_id_key(start),
    )


def _parsed(block: bytes) -> Message:
    return BytesHeaderParser(policy=policy.compat32).parsebytes(block + b"\r\n\r\n")


def _param(headers: Message, name: str) -> str | None:
    value = headers.get_param(name)
    if value is None or isinstance(value, str):
        return value
    return str(collapse_rfc2231_value(value))


class _Splitter:
    """Finds the boundaries of a package body fed in chunks. The buffer holds the text not yet
    handed on: less than a chunk plus a delimiter while in a part's content."""

    def __init__(self, chunks: Iterable[bytes], boundary: bytes) -> None:
        self._source = iter(chunks)
        self._delimiter = b"\n--" + boundary
        self._buffer = b"\n"  # so that a boundary at the very start is found like any other
        self._eof = False
        self._found = False  # whether the last `_content` ended at a delimiter

    def events(self) -> Iterator[PartHeaders | bytes | None]:
        for _ in self._content():  # the preamble
            pass
        if not self._found:
            raise PackageError("no boundary of the package found")
        while not self._closing():
            yield self._headers()
            yield from self._content()
            if not self._found:
                raise PackageError("the package ends inside a part (no closing boundary)")
            yield None

    def _more(self) -> bool:
        if self._eof:
            return False
        for chunk in self._source:
            if chunk:
                self._buffer += chunk
                return True
        self._eof = True
        return False

    def _content(self) -> Iterator[bytes]:
        """The bytes up to the next delimiter, which is consumed (`_found`), or to the end of
        the input (`_found` False)."""
        size = len(self._delimiter)
        while True:
            at = self._find()
            if at >= 0:
                data = self._buffer[:at]
                if data.endswith(b"\r"):
                    data = data[:-1]
                if data:
                    yield data
                self._buffer = self._buffer[at + size :]
                self._found = True
                return
            cut = len(self._buffer) - size - 2  # a delimiter could start in what is kept
            if cut > 0:
                yield self._buffer[:cut]
                self._buffer = self._buffer[cut:]
            if not self._more():
                self._found = False
                return

    def _find(self) -> int:
        """Where the first delimiter starts in the buffer; -1 if there is none, or if the one
        found cannot be told from a longer word yet (the bytes after it are still to come)."""
        size = len(self._delimiter)
        start = 0
        while (at := self._buffer.find(self._delimiter, start)) >= 0:
            after = self._buffer[at + size : at + size + 2]
            if len(after) < 2 and not self._eof:
                return -1
            if after == b"--" or after[:1] in (b"", b" ", b"\t", b"\r", b"\n"):
                return at
            start = at + 1
        return -1

    def _closing(self) -> bool:
        """After a delimiter: True for the closing one ("--"), else the rest of its line (white
        space only) is consumed."""
        while len(self._buffer) < 2 and self._more():
            pass
        if self._buffer.startswith(b"--"):
            return True
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > MAX_PADDING_BYTES or not self._more():
                raise PackageError("a boundary is not followed by a line break")
        if self._buffer[:end].strip(b" \t\r"):
            raise PackageError("text after a boundary on its line")
        self._buffer = self._buffer[end + 1 :]
        return False

    def _headers(self) -> PartHeaders:
        while True:
            if self._buffer.startswith((b"\r\n", b"\n")):  # a part with no headers
                block, rest = b"", self._buffer[1 if self._buffer[:1] == b"\n" else 2 :]
                break
            found = _HEADER_END.search(self._buffer)
            if found is not None:
                block, rest = self._buffer[: found.start()], self._buffer[found.end() :]
                break
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise PackageError(f"a part's headers are longer than {MAX_HEADER_BYTES} bytes")
            if not self._more():
                raise PackageError("the package ends inside a part's headers")
        if len(block) > MAX_HEADER_BYTES:
            raise PackageError(f"a part's headers are longer than {MAX_HEADER_BYTES} bytes")
        self._buffer = rest
        headers = _parsed(block)
        content_id = headers.get("Content-ID")
        encoding = headers.get("Content-Transfer-Encoding")
        return PartHeaders(
            content_id=None if content_id is None else content_id_key(str(content_id)),
            content_type=headers.get_content_type(),
            transfer_encoding="binary" if encoding is None else str(encoding).strip().lower(),
        )


# -- writing --------------------------------------------------------------------------------------


def writable_id(attachment_id: str) -> str | None:
    """The Content-ID the hub writes for an attachment id (`cid:x` or `x`), or None when it
    cannot be one as it is (the hub names its own attachments; ids from elsewhere are kept)."""
    key = content_id_key(attachment_id)
    return key if _WRITABLE_ID.fullmatch(key) else None


def header_type(content_type: str) -> str:
    """A media type as a part's Content-Type: as given when it is printable ASCII with a
    slash, else application/octet-stream (the manifest keeps the text as given)."""
    if _PRINTABLE.fullmatch(content_type) and "/" in content_type:
        return content_type
    return "application/octet-stream"


def new_boundary() -> str:
    return f"=_edxml_{uuid.uuid4().hex}"


def package_head(boundary: str, root_id: str) -> bytes:
    return (
        "MIME-Version: 1.0\r\n"
        f'Content-Type: {PACKAGE_TYPE}; boundary="{boundary}"; type="text/xml"; '
        f'start="<{root_id}>"\r\n\r\n'
    ).encode("ascii")


def part_head(boundary: str, content_id: str, content_type: str) -> bytes:
    """A part's delimiter and headers; every part but the first is preceded by CRLF."""
    return (
        f"--{boundary}\r\n"
        f"Content-Type: {content_type}\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        f"Content-ID: <{content_id}>\r\n\r\n"
    ).encode("ascii")


def closing(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode("ascii")


def content_type_of(head: bytes) -> str | None:
    """The Content-Type of the package whose first bytes are `head` (enough to hold its
    headers), or None when they are not a package's: what a package is sent as."""
    package, _ = sniff([head])
    return None if package is None else package.content_type
