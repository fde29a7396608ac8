"""edXML streamed: `write_document`/`read_document`/`read_status`, attachments as files.

The streamed functions share the reader and the writer of the in-memory ones (test_edxml.py,
whose strategies and helpers are reused here), so these tests check what streaming adds:
round trips through files, with the input fed in chunks of any size (down to one byte, so
that base64 quanta, whitespace and declarations are split across chunks); every refusal of the
in-memory parser provoked through the streamed reader, which must then leave no file behind; a
20 MiB attachment (beyond the 10 MB text node libxml2 allows a tree) read and written; and
memory that does not grow with the attachment.

Memory is measured twice, both robust to a busy machine (neither counts other processes).
tracemalloc sees the Python heap only (the chunks, the base64 text lxml hands over, the decoded
bytes), not libxml2's own allocations (malloc, not Python's allocator). The peak resident set
of a fresh interpreter (VmHWM, reset through /proc/self/clear_refs just before reading) sees
everything, libxml2 included, and how far it rises above the resident set before reading is
what reading cost: about 1 MiB for a 20 MiB attachment, where reading the file into memory
first costs 27 MiB.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.vdxp import edxml
from connectors.vdxp.edxml import (
    CHUNK_BYTES,
    ENCODE_BYTES,
    KNOWN_NAMESPACES,
    NS_GO_VN_EDOC,
    NS_QCVN_102_2016,
    EdxmlCodec,
    EdxmlError,
    SpooledAttachment,
    SpooledDocument,
    _Base64Decoder,
    _Content,
    _DeclarationGuard,
    loaded,
    spooled_from,
)
from schemas.vdxp import Attachment, EdocDocument, StatusCode
from tests.unit.edxml_world import (
    EXTRA_ATTACHMENT,
    MB,
    PDF_CONTENT_ID,
    Trickle,
    codec,
    documents,
    edit,
    sample,
)

ROOT = Path(__file__).resolve().parents[2]
BIG = 20 * MB
# The pdf's base64 in document_qcvn102.xml, and the text one's (on two indented lines).
PDF_BASE64 = "JVBERi0xLjQKJeLjz9MKMSAwIG9iago8PD4+CmVuZG9iagolJUVPRgo="
TEXT_BASE64_END = "ZyBo4buTIHPGoS4K"


def streamed_refusal(
    edxml_codec: EdxmlCodec, data: bytes, spool: Path, chunk: int = CHUNK_BYTES
) -> EdxmlError:
    """The refusal `read_document` gives for `data` fed in chunks of `chunk` bytes, having
    checked that it left no file in `spool`."""
    with pytest.raises(EdxmlError) as caught:
        edxml_codec.read_document(Trickle(data, chunk), spool)
    assert list(spool.iterdir()) == []
    return caught.value


def write(edxml_codec: EdxmlCodec, doc: SpooledDocument) -> bytes:
    out = io.BytesIO()
    written = edxml_codec.write_document(doc, out)
    assert written == len(out.getvalue())
    return out.getvalue()


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    path = tmp_path / "files"
    path.mkdir()
    return path


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", KNOWN_NAMESPACES)
@settings(max_examples=100, deadline=None)
@given(doc=documents, chunk=st.sampled_from([1, 2, 3, 5, 64, 1000, CHUNK_BYTES]))
def test_write_then_read_is_identity_in_any_chunks(
    namespace: str, doc: EdocDocument, chunk: int
) -> None:
    edxml_codec = codec(namespace)
    with tempfile.TemporaryDirectory() as given_dir, tempfile.TemporaryDirectory() as read_dir:
        spooled = spooled_from(doc, Path(given_dir))
        data = write(edxml_codec, spooled)
        assert data == edxml_codec.build_document(doc)  # one writer
        assert edxml_codec.parse_document(data) == doc
        read = edxml_codec.read_document(Trickle(data, chunk), Path(read_dir))
        assert loaded(read) == doc
        assert (read.header, read.trace, read.document_id) == (
            doc.header,
            doc.trace,
            doc.document_id,
        )
        for got, sent in zip(read.attachments, spooled.attachments, strict=True):
            assert got.path.read_bytes() == sent.path.read_bytes()
            assert got.path.parent == Path(read_dir)
            assert got.path.name.startswith("edxml-")  # never the document's names
            assert (got.attachment_id, got.name, got.size_bytes) == (
                sent.attachment_id,
                sent.name,
                sent.size_bytes,
            )
        assert len(list(Path(read_dir).iterdir())) == len(doc.attachments)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [(NS_QCVN_102_2016, "document_qcvn102.xml"), (NS_GO_VN_EDOC, "document_go_vn.xml")],
)
@pytest.mark.parametrize("chunk", [1, 7, CHUNK_BYTES])
def test_samples_read_streamed_equal_parsed(
    namespace: str, name: str, chunk: int, spool: Path
) -> None:
    data = sample(name)
    read = codec(namespace).read_document(Trickle(data, chunk), spool)
    assert loaded(read) == codec(namespace).parse_document(data)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [(NS_QCVN_102_2016, "status_qcvn102.xml"), (NS_GO_VN_EDOC, "status_go_vn.xml")],
)
@pytest.mark.parametrize("chunk", [1, 7, CHUNK_BYTES])
def test_status_samples_read_streamed_equal_parsed(namespace: str, name: str, chunk: int) -> None:
    data = sample(name)
    assert codec(namespace).read_status(Trickle(data, chunk)) == codec(namespace).parse_status(data)


def test_a_status_skips_attachment_content_it_does_not_use() -> None:
    data = edit(
        sample("status_qcvn102.xml"),
        "</edXML:edXMLEnvelope>",
        f"<edXML:edXMLBody><edXML:AttachmentEncoded>{EXTRA_ATTACHMENT}"
        "</edXML:AttachmentEncoded></edXML:edXMLBody></edXML:edXMLEnvelope>",
    )
    assert codec().read_status(Trickle(data, 5)).status_code is StatusCode.accepted


def test_the_manifest_may_follow_the_content(spool: Path) -> None:
    data = sample("document_qcvn102.xml")
    start, end = data.index(b"<edXML:edXMLManifest>"), data.index(b"<edXML:AttachmentEncoded>")
    manifest = data[start:end]
    moved = data[:start] + data[end:].replace(
        b"</edXML:edXMLBody>", manifest + b"</edXML:edXMLBody>"
    )
    read = codec().read_document(io.BytesIO(moved), spool)
    assert loaded(read) == codec().parse_document(data)
    for attachment in read.attachments:
        attachment.path.unlink()
    huge = edit(moved, "<edXML:Size>63</edXML:Size>", "<edXML:Size>64000</edXML:Size>")
    assert streamed_refusal(codec(max_att=1000), huge, spool).code == "attachment_too_large"


@pytest.mark.parametrize(
    "size", [0, 1, 2, 3, 4, ENCODE_BYTES - 1, ENCODE_BYTES, ENCODE_BYTES + 1, 2 * ENCODE_BYTES + 2]
)
def test_content_is_written_as_one_unbroken_base64_text(size: int, files: Path) -> None:
    content = random.Random(size).randbytes(size)
    doc = codec(NS_GO_VN_EDOC).parse_document(sample("document_go_vn.xml"))
    attachment = Attachment(
        attachment_id="a", name="a.bin", content_type="application/octet-stream", content=content
    )
    doc = doc.model_copy(update={"attachments": (attachment,)})
    data = write(codec(), spooled_from(doc, files))
    text = f"<edXML:ContentTransferEncoded>{base64.b64encode(content).decode()}<"
    assert text.encode() in data
    assert codec().parse_document(data) == doc


def test_spooled_from_and_loaded_are_inverse(files: Path) -> None:
    doc = codec().parse_document(sample("document_qcvn102.xml"))
    spooled = spooled_from(doc, files)
    assert [a.path.read_bytes() for a in spooled.attachments] == [
        a.content for a in doc.attachments
    ]
    assert loaded(spooled) == doc
    assert spooled.document_id == doc.document_id


# -- refusals, streamed ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
@pytest.mark.parametrize("chunk", [1, 4, CHUNK_BYTES])
def test_declarations_are_refused_in_any_chunks(name: str, chunk: int, spool: Path) -> None:
    data = sample(name)
    assert streamed_refusal(codec(), data, spool, chunk).code == "entities"
    assert refusal_of_status(data, chunk).code == "entities"


def refusal_of_status(data: bytes, chunk: int) -> EdxmlError:
    with pytest.raises(EdxmlError) as caught:
        codec().read_status(Trickle(data, chunk))
    return caught.value


class Chunks(io.BytesIO):
    """A source that returns its bytes in the chunks given, whatever the size asked."""

    def __init__(self, *chunks: bytes) -> None:
        super().__init__(b"".join(chunks))
        self.sizes = iter([len(chunk) for chunk in chunks])

    def read(self, n: int | None = -1, /) -> bytes:
        return super().read(next(self.sizes, 0))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
@pytest.mark.parametrize("cut", range(1, 9))
def test_a_doctype_split_across_two_chunks_is_refused(encoding: str, cut: int) -> None:
    """The first chunk ends `cut` characters into "<!DOCTYPE": neither chunk holds it whole,
    and the parser, which has seen the first, must not see the second."""
    text = sample("status_qcvn102.xml").decode()
    text = text.replace('encoding="UTF-8"', f'encoding="{encoding[:6].upper()}"')
    text = text.replace("<edXML:edXMLEnvelope", "<!DOCTYPE x>\n<edXML:edXMLEnvelope")
    data = ("\ufeff" if encoding != "utf-8" else "").encode(encoding) + text.encode(encoding)
    marker = "<!DOCTYPE".encode(encoding)
    at = data.index(marker) + cut * len(marker) // 9
    first, second = data[:at], data[at:]
    assert marker not in first
    assert marker not in second
    with pytest.raises(EdxmlError) as caught:
        codec().read_status(Chunks(first, second))
    assert caught.value.code == "entities"
    assert "reached the parser" not in caught.value.message  # the bytes were refused


@settings(max_examples=300, deadline=None)
@given(
    before=st.binary(max_size=40),
    after=st.binary(max_size=40),
    marker=st.sampled_from(edxml._FORBIDDEN),
    lower=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=100), max_size=6),
)
def test_the_declaration_guard_finds_a_marker_however_the_bytes_are_cut(
    before: bytes, after: bytes, marker: bytes, lower: bool, cuts: list[int]
) -> None:
    data = before + (marker.lower() if lower else marker) + after
    points = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    guard = _DeclarationGuard()
    with pytest.raises(EdxmlError) as caught:
        list(map(guard.check, chunks))
    assert caught.value.code == "entities"


def test_too_large_is_counted_while_reading(spool: Path) -> None:
    data = sample("document_qcvn102.xml")
    limited = codec(max_bytes=len(data))
    assert len(loaded(limited.read_document(Trickle(data, 100), spool)).attachments) == 2
    for path in spool.iterdir():
        path.unlink()
    source = Trickle(data + b" " * 10_000, 100)
    with pytest.raises(EdxmlError) as caught:
        limited.read_document(source, spool)
    assert caught.value.code == "too_large"
    assert source.tell() == len(data) + 1  # not a byte more than needed to know
    assert list(spool.iterdir()) == []


def test_wrong_namespace_is_refused_streamed(spool: Path) -> None:
    data = sample("document_qcvn102.xml")
    error = streamed_refusal(codec(NS_GO_VN_EDOC), data, spool, 3)
    assert error.code == "wrong_namespace"
    assert NS_QCVN_102_2016 in error.message
    data = edit(sample("document_go_vn.xml"), ' xmlns="http://www.go.vn/eDoc"', "")
    assert streamed_refusal(codec(NS_GO_VN_EDOC), data, spool).code == "wrong_namespace"


def test_bad_xml_is_malformed_before_its_namespace_is_wrong(
    spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As before streaming: bad XML is malformed whatever its namespace, so the wrong namespace
    is only said of well-formed XML, read to its end without building or keeping anything
    (no frame limit applies to it)."""
    assert streamed_refusal(codec(), b"<edXMLEnvelope><unclosed>", spool, 4).code == "malformed"
    cut = sample("document_go_vn.xml")[:-30]
    assert streamed_refusal(codec(), cut, spool, 4).code == "malformed"
    monkeypatch.setattr(edxml, "MAX_FRAME_ELEMENTS", 3)
    monkeypatch.setattr(edxml, "MAX_FRAME_CHARS", 10)
    assert streamed_refusal(codec(), sample("document_go_vn.xml"), spool).code == (
        "wrong_namespace"
    )


@pytest.mark.parametrize("tag", ["edXML:", "edXML:a:b"])
def test_a_name_that_is_no_qualified_name_is_malformed(tag: str, spool: Path) -> None:
    data = edit(
        sample("document_qcvn102.xml"), "<edXML:TyperNotation>", f"<{tag}/><edXML:TyperNotation>"
    )
    assert streamed_refusal(codec(), data, spool).code == "malformed"


@pytest.mark.parametrize("chunk", [1, 13, CHUNK_BYTES])
@pytest.mark.parametrize(
    "marker",
    [
        "<edXML:Code>",
        "<edXML:edXMLManifest>",
        "bmcgdsSDbiBz",
        TEXT_BASE64_END,
        "</edXML:edXMLBody>",
    ],
)
def test_a_truncated_stream_is_malformed(marker: str, chunk: int, spool: Path) -> None:
    data = sample("document_qcvn102.xml")
    cut = data[: data.index(marker.encode()) + 3]
    assert streamed_refusal(codec(), cut, spool, chunk).code == "malformed"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (PDF_BASE64, "JVBERi0x*LjQK"),  # not the alphabet
        (PDF_BASE64, PDF_BASE64[:-1]),  # padding missing
        (PDF_BASE64, PDF_BASE64 + "YQ=="),  # text after the padding
        (PDF_BASE64, PDF_BASE64 + "\n  YQ=="),  # the same, on another line
        (PDF_BASE64, "=" + PDF_BASE64[1:]),  # padding first
        (PDF_BASE64, PDF_BASE64[:8] + "é" + PDF_BASE64[9:]),  # not ASCII
        (TEXT_BASE64_END, TEXT_BASE64_END[:-1]),  # across lines, one character short
        ("<edXML:Size>63</edXML:Size>", "<edXML:Size>64</edXML:Size>"),  # not the decoded size
        ("<edXML:Size>63</edXML:Size>", "<edXML:Size>sáu mươi</edXML:Size>"),
        (PDF_BASE64, PDF_BASE64[:8] + "<edXML:b/>" + PDF_BASE64[8:]),  # an element inside
        ("<edXML:AttachmentEncoded>", f"<edXML:AttachmentEncoded>{EXTRA_ATTACHMENT}"),
        (PDF_CONTENT_ID, PDF_CONTENT_ID.replace("so-do.pdf", "cv-123.txt")),  # encoded twice
        (
            f"{PDF_BASE64}</edXML:ContentTransferEncoded>",
            f"{PDF_BASE64}</edXML:ContentTransferEncoded>"
            "<edXML:ContentTransferEncoded>YQ==</edXML:ContentTransferEncoded>",
        ),
        ("<edXML:Priority>1</edXML:Priority>", "<edXML:Priority>một</edXML:Priority>"),
        ("<edXML:Content>", "<edXML:Subject>Một trích yếu nữa</edXML:Subject><edXML:Content>"),
    ],
    ids=[
        "bad-base64",
        "no-padding",
        "after-padding",
        "after-padding-next-line",
        "leading-padding",
        "non-ascii",
        "short-across-lines",
        "size-mismatch",
        "size-not-a-number",
        "element-in-content",
        "content-without-manifest-entry",
        "encoded-twice",
        "two-contents",
        "text-for-a-number",
        "two-subjects",
    ],
)
@pytest.mark.parametrize("chunk", [1, 5, CHUNK_BYTES])
def test_malformed_documents_are_refused_streamed(
    old: str, new: str, chunk: int, spool: Path
) -> None:
    data = edit(sample("document_qcvn102.xml"), old, new)
    assert streamed_refusal(codec(), data, spool, chunk).code == "malformed"
    assert refusal_of_document(data).code == "malformed"  # the same in memory


def refusal_of_document(data: bytes) -> EdxmlError:
    with pytest.raises(EdxmlError) as caught:
        codec().parse_document(data)
    return caught.value


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<edXML:BussinessDocType>2</edXML:BussinessDocType>", ""),
        (PDF_CONTENT_ID, "<edXML:ContentTransfer"),  # content without a ContentId
        (
            "<edXML:ContentId>cv-123.txt</edXML:ContentId>\n        <edXML:AttachmentName>",
            "<edXML:AttachmentName>",
        ),
    ],
    ids=["business-doc-type", "content-id", "manifest-content-id"],
)
def test_missing_fields_are_refused_streamed(old: str, new: str, spool: Path) -> None:
    data = edit(sample("document_qcvn102.xml"), old, new)
    assert streamed_refusal(codec(), data, spool, 11).code == "missing_field"


def test_unknown_status_and_missing_fields_in_status_streamed() -> None:
    data = sample("status_qcvn102.xml")
    unknown = edit(data, ">03<", ">07<")
    assert refusal_of_status(unknown, 3).code == "unknown_status"
    missing = edit(data, "<edXML:StatusCode>03</edXML:StatusCode>", "")
    assert refusal_of_status(missing, 3).code == "missing_field"


def test_attachments_over_the_limit_are_refused_streamed(spool: Path) -> None:
    data = sample("document_qcvn102.xml")
    source = Trickle(data, 9)
    with pytest.raises(EdxmlError) as caught:  # the declared Size, 63, before any content
        codec(max_att=62).read_document(source, spool)
    assert (caught.value.code, "cv-123.txt" in caught.value.message) == (
        "attachment_too_large",
        True,
    )
    assert source.tell() < data.index(b"<edXML:AttachmentEncoded>")
    assert list(spool.iterdir()) == []
    lying = edit(data, "<edXML:Size>63</edXML:Size>", "<edXML:Size>1</edXML:Size>")
    error = streamed_refusal(codec(max_att=62), lying, spool, 9)  # decoded, 63
    assert (error.code, "cv-123.txt" in error.message) == ("attachment_too_large", True)


def test_an_attachment_over_the_limit_is_refused_while_decoding(spool: Path) -> None:
    """No Size: the decoded count refuses it, long before its end is read."""
    content = base64.encodebytes(bytes(2 * MB)).decode()
    data = edit(sample("document_go_vn.xml"), "UXV54bq/dCDEkeG7i25oIGdpYW8gxJHhuqV0", content)
    source = Trickle(data, CHUNK_BYTES)
    with pytest.raises(EdxmlError) as caught:
        codec(NS_GO_VN_EDOC, max_bytes=4 * MB, max_att=100_000).read_document(source, spool)
    assert caught.value.code == "attachment_too_large"
    assert "qd-2045" in caught.value.message
    assert source.tell() < 300_000 < len(data)
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize(
    ("limit", "value"),
    [("MAX_ATTACHMENTS", 1), ("MAX_FRAME_ELEMENTS", 50), ("MAX_FRAME_CHARS", 1000)],
)
def test_the_frame_limits_are_refused_as_too_large(
    limit: str, value: int, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = sample("document_qcvn102.xml")
    monkeypatch.setattr(edxml, limit, value)
    error = streamed_refusal(codec(), data, spool, 50)
    assert (error.code, str(value) in error.message) == ("too_large", True)


def test_files_are_removed_when_the_source_fails(spool: Path) -> None:
    data = sample("document_qcvn102.xml")
    half = data.index(TEXT_BASE64_END.encode())  # the pdf is spooled, the text one is open

    class Failing(io.BytesIO):
        def read(self, n: int | None = -1, /) -> bytes:
            if self.tell() >= half:
                raise OSError("connection reset")
            return super().read(10)

    with pytest.raises(OSError, match="connection reset"):
        codec().read_document(Failing(data), spool)
    assert list(spool.iterdir()) == []


def test_the_spool_directory_must_exist(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        codec().read_document(io.BytesIO(sample("document_qcvn102.xml")), tmp_path / "missing")


# -- the incremental base64 decoder ---------------------------------------------------------------

_BASE64_ISH = st.text(alphabet="AQgw+/=  \n\r\t*é", max_size=40) | st.builds(
    lambda raw, gaps: "\n".join(
        base64.b64encode(raw).decode()[i : i + gaps] for i in range(0, len(raw) * 2 + 4, gaps)
    ),
    st.binary(max_size=30),
    st.integers(min_value=1, max_value=9),
)


@settings(max_examples=500, deadline=None)
@given(text=_BASE64_ISH, cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=8))
def test_the_decoder_agrees_with_b64decode_however_the_text_is_cut(
    text: str, cuts: list[int]
) -> None:
    """Fed in pieces, the decoder accepts what b64decode(validate=True) accepts once the
    whitespace is removed, refuses the rest (as malformed), and gives the same bytes."""
    try:
        expected: bytes | None = base64.b64decode("".join(text.split()), validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII text
        expected = None
    points = sorted({min(cut, len(text)) for cut in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert decoded(pieces) == expected


def decoded(pieces: list[str]) -> bytes | None:
    """The bytes the decoder gives for `pieces`, or None if it refuses them (as malformed)."""
    content = _Content(io.BytesIO(), None)
    decoder = _Base64Decoder(content, limit=1000, label="x")
    try:
        for piece in pieces:
            decoder.feed(piece)
        decoder.finish()
    except EdxmlError as exc:
        if exc.code != "malformed":
            raise
        return None
    assert content.size == len(content.read())
    return content.read()


# -- writing --------------------------------------------------------------------------------------


def spooled_sample(files: Path) -> SpooledDocument:
    return spooled_from(codec().parse_document(sample("document_qcvn102.xml")), files)


def test_write_refuses_before_writing(files: Path) -> None:
    doc = spooled_sample(files)
    cases: list[tuple[EdxmlCodec, SpooledDocument, str]] = [
        (codec(max_att=62), doc, "attachment_too_large"),
        (codec(max_bytes=len(write(codec(), doc)) - 1), doc, "too_large"),
        (codec(), replace_first(doc, name=""), "malformed"),
        (codec(), replace_first(doc, name="chuông \x07 kêu"), "malformed"),
        (codec(), replace_first(doc, size_bytes=62), "malformed"),  # not the file's length
        (codec(), replace_first(doc, attachment_id=doc.attachments[1].attachment_id), "malformed"),
    ]
    for edxml_codec, bad, code in cases:
        out = io.BytesIO()
        with pytest.raises(EdxmlError) as caught:
            edxml_codec.write_document(bad, out)
        assert caught.value.code == code, (bad.attachments[0], caught.value)
        assert out.getvalue() == b""
    assert codec(max_bytes=len(write(codec(), doc))).write_document(doc, io.BytesIO()) > 0


def replace_first(doc: SpooledDocument, **changes: Any) -> SpooledDocument:
    first, *rest = doc.attachments
    return dataclasses.replace(doc, attachments=(dataclasses.replace(first, **changes), *rest))


def test_a_file_that_changes_while_written_is_refused(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = spooled_sample(files)
    grown = doc.attachments[0].path.read_bytes() + b"!"  # as read, after the length was checked
    monkeypatch.setattr(edxml, "_opened", lambda attachment: io.BytesIO(grown))
    with pytest.raises(EdxmlError) as caught:
        codec().write_document(doc, io.BytesIO())
    assert caught.value.code == "malformed"
    assert "changed" in caught.value.message


# -- large attachments and memory -----------------------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A 20 MiB attachment (random bytes) in a file, and the edXML written from it."""
    directory = tmp_path_factory.mktemp("big")
    content = directory / "content.bin"
    generator = random.Random(2026)
    with content.open("wb") as out:
        for _ in range(BIG // MB):
            out.write(generator.randbytes(MB))
    edxml_file = directory / "document.xml"
    with edxml_file.open("wb") as out:
        big_codec().write_document(big_document(content), out)
    yield content, edxml_file
    content.unlink()  # 48 MiB: not left for pytest's retention of temporary directories
    edxml_file.unlink()


def big_codec() -> EdxmlCodec:
    return EdxmlCodec(NS_QCVN_102_2016, max_bytes=2 * BIG, max_attachment_bytes=BIG)


def big_document(content: Path) -> SpooledDocument:
    base = codec().parse_document(sample("document_qcvn102.xml"))
    attachment = SpooledAttachment(
        "ban-do.tif", "Bản đồ địa chính.tif", "image/tiff", "Bản đồ", BIG, content
    )
    return SpooledDocument(base.header, base.trace, (attachment,))


def same_bytes(a: Path, b: Path) -> bool:
    with a.open("rb") as first, b.open("rb") as second:
        while True:
            x, y = first.read(MB), second.read(MB)
            if x != y:
                return False
            if not x:
                return True


def test_a_20_mib_attachment_round_trips(big: tuple[Path, Path], spool: Path) -> None:
    content, edxml_file = big
    assert edxml_file.stat().st_size > BIG * 4 // 3  # one base64 text over libxml2's 10 MB
    with edxml_file.open("rb") as source:
        read = big_codec().read_document(source, spool)
    (attachment,) = read.attachments
    assert (attachment.attachment_id, attachment.size_bytes) == ("ban-do.tif", BIG)
    assert same_bytes(attachment.path, content)
    assert read.header == big_document(content).header
    # One byte fewer allowed: refused, no file left.
    with edxml_file.open("rb") as source, pytest.raises(EdxmlError) as caught:
        EdxmlCodec(NS_QCVN_102_2016, 2 * BIG, BIG - 1).read_document(source, spool)
    assert caught.value.code == "attachment_too_large"
    assert list(spool.iterdir()) == [attachment.path]


def test_python_memory_stays_small_with_a_20_mib_attachment(
    big: tuple[Path, Path], spool: Path, tmp_path: Path
) -> None:
    """tracemalloc's peak (the Python heap) while writing, then reading, the big document."""
    content, edxml_file = big
    peaks = []
    for step in ("write", "read"):
        tracemalloc.start()
        try:
            if step == "write":
                with (tmp_path / "again.xml").open("wb") as out:
                    big_codec().write_document(big_document(content), out)
            else:
                with edxml_file.open("rb") as source:
                    big_codec().read_document(source, spool)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert max(peaks) < 2 * MB, peaks  # measured about 0.2 MiB writing, 0.4 MiB reading


_PROBE = """
import json, sys
from pathlib import Path
from connectors.vdxp.edxml import EdxmlCodec, NS_QCVN_102_2016

def kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])

codec = EdxmlCodec(NS_QCVN_102_2016, int(sys.argv[3]), int(sys.argv[4]))
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # the peak resident set (VmHWM) starts again from the current one
before = kib("VmRSS")
with open(sys.argv[1], "rb") as source:
    doc = codec.read_document(source, Path(sys.argv[2]))
size = doc.attachments[0].size_bytes
print(json.dumps({"rss_kib": before, "peak_kib": kib("VmHWM"), "size": size}))
"""


@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's /proc/self/clear_refs"
)
def test_the_whole_process_peak_does_not_grow_with_the_attachment(
    big: tuple[Path, Path], spool: Path
) -> None:
    """A fresh interpreter reads the big document: its peak resident set (libxml2 included)
    rises by far less than the attachment above what it was before reading (measured: about
    1 MiB for 20 MiB; reading the same file whole into memory first raises it by 27 MiB)."""
    _, edxml_file = big
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(edxml_file), str(spool), str(2 * BIG), str(BIG)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    probe = json.loads(result.stdout)
    assert probe["size"] == BIG
    growth = (probe["peak_kib"] - probe["rss_kib"]) * 1024
    assert growth < BIG // 4, probe
