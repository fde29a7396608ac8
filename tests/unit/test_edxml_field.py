"""edXML as written in the field (issue #19): QCVN 102's dates, several namespaces, packages
whose attachments are MIME parts named by `cid:`. (The settings that choose what is written,
and a status's StaffInfo on its way to the one-stop and DVCQG: test_vdxp_mapping.py; all of it
over HTTP: tests/integration/test_vdxp_field.py.)

The samples read here (tests/data/edxml: `document_qcvn102_slash_dates.xml`,
`status_*_staff.xml`, `package_*.eml`) are written by hand from QCVN 102 and RFC 2387/2392,
never by this project's codec or simulator, whose shared code could not catch a symmetric
mistake; the base64 and quoted-printable in them were encoded by other tools. What the hub
writes is checked against the standard library's `email` parser and plain text searches, not
only against the hub's own reader.
"""

from __future__ import annotations

import base64
import email
import io
import re
import tempfile
import tracemalloc
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from connectors.vdxp import mime
from connectors.vdxp.edxml import (
    CHUNK_BYTES,
    KNOWN_NAMESPACES,
    NS_GO_VN_EDOC,
    NS_QCVN_102_2016,
    EdxmlCodec,
    EdxmlError,
    SpooledAttachment,
    SpooledDocument,
    loaded,
)
from schemas.vdxp import (
    VIETNAM_TZ,
    Attachment,
    EdocDocument,
    StaffInfo,
    StatusCode,
    StatusMessage,
)
from tests.unit.edxml_world import Trickle, documents, edit, sample, statuses

MB = 1 << 20
BOTH = KNOWN_NAMESPACES
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
TO_KHAI = "Tờ khai đăng ký khai sinh của cháu Nguyễn Minh Anh.".encode()
QUYET_DINH = (
    "Quyết định số 15/QĐ-UBND ngày 14/03/2026 về việc giao đất cho hộ ông Nguyễn Văn Bình.\n"
).encode()
GIAY_CHUNG_SINH = (
    "Giấy chứng sinh số 0458/GCS, cấp ngày 10/03/2026 tại Bệnh viện Sản Nhi Nghệ An."
).encode()
CHUNKS = [1, 2, 3, 7, 64, 1000, CHUNK_BYTES]


def field_codec(
    namespace: str = NS_QCVN_102_2016, max_bytes: int = MB, max_att: int = MB, **kwargs: object
) -> EdxmlCodec:
    """A codec as the hub's default configuration makes it: both namespaces read."""
    return EdxmlCodec(namespace, max_bytes, max_att, accept=BOTH, **kwargs)  # type: ignore[arg-type]


def refusal(call: object, *args: object) -> EdxmlError:
    assert callable(call)
    with pytest.raises(EdxmlError) as caught:
        call(*args)
    return caught.value


def vn(
    year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=VIETNAM_TZ)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


# -- dates ----------------------------------------------------------------------------------------


def test_qcvn_dates_and_times_are_read() -> None:
    doc = field_codec().parse_document(sample("document_qcvn102_slash_dates.xml"))
    header = doc.header
    assert header.promulgation.date == date(2018, 9, 20)
    assert header.due_date == date(2018, 10, 5)
    assert header.response_for[0].promulgation_date == date(2018, 9, 12)
    assert header.document_id == "000.00.00.G22,2018/09/20,7816/VPCP-TTĐT"
    # Local time: 16:45:12 in Vietnam is 09:45:12 UTC.
    assert doc.trace.trace_headers[0].timestamp == datetime(2018, 9, 20, 9, 45, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "when"),
    [("status_qcvn102_staff.xml", vn(2026, 3, 20, 14, 5, 30)), ("status_go_vn_staff.xml", None)],
)
def test_qcvn_status_times_are_read(name: str, when: datetime | None) -> None:
    msg = field_codec().parse_status(sample(name))
    assert msg.response_for.promulgation_date == date(2026, 3, 20)
    assert msg.timestamp == (when or vn(2026, 3, 23, 9, 0, 0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/03/14", date(2026, 3, 14)),  # QCVN 102
        ("2026-03-14", date(2026, 3, 14)),  # ISO 8601
        ("\n   2026/03/14\n  ", date(2026, 3, 14)),  # indented by hand
    ],
)
def test_the_date_forms_read(text: str, expected: date) -> None:
    data = edit(
        sample("document_qcvn102.xml"), "<edXML:DueDate>2026-03-28<", f"<edXML:DueDate>{text}<"
    )
    assert field_codec().parse_document(data).header.due_date == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/03/14 10:02:31", vn(2026, 3, 14, 10, 2, 31)),  # QCVN 102, Vietnam time
        ("2026-03-14T10:02:31+07:00", vn(2026, 3, 14, 10, 2, 31)),
        ("2026-03-14T03:02:31Z", vn(2026, 3, 14, 10, 2, 31)),
        ("2026-03-14 10:02:31", vn(2026, 3, 14, 10, 2, 31)),
        ("2026-03-14T10:02", vn(2026, 3, 14, 10, 2, 0)),
        ("2026-03-14T10:02:31.250+0700", vn(2026, 3, 14, 10, 2, 31, 250_000)),
    ],
)
def test_the_time_forms_read(text: str, expected: datetime) -> None:
    data = edit(sample("status_qcvn102.xml"), "2026-03-14T10:02:31+07:00", text)
    assert field_codec().parse_status(data).timestamp == expected


@pytest.mark.parametrize(
    ("where", "old", "text"),
    [
        ("document", "<edXML:DueDate>2026-03-28<", "14/03/2026"),  # the Vietnamese habit
        ("document", "<edXML:DueDate>2026-03-28<", "2026/3/14"),
        ("document", "<edXML:DueDate>2026-03-28<", "2026.03.14"),
        ("document", "<edXML:DueDate>2026-03-28<", "2026/02/30"),  # no such day
        ("status", "2026-03-14T10:02:31+07:00", "2026/03/14T10:02:31"),
        ("status", "2026-03-14T10:02:31+07:00", "2026/03/14 10:02"),
        ("status", "2026-03-14T10:02:31+07:00", "1773457351"),  # unix seconds
    ],
)
def test_other_date_forms_are_malformed_naming_the_element(where: str, old: str, text: str) -> None:
    if where == "document":
        data = edit(sample("document_qcvn102.xml"), old, f"<edXML:DueDate>{text}<")
        error = refusal(field_codec().parse_document, data)
    else:
        error = refusal(field_codec().parse_status, edit(sample("status_qcvn102.xml"), old, text))
    assert error.code == "malformed"
    assert ("DueDate" if where == "document" else "Timestamp") in error.message or (
        "valid date" in error.message  # 2026/02/30: the form is right, the calendar says no
    )


def test_the_hub_writes_qcvn_dates_by_default() -> None:
    doc = field_codec().parse_document(sample("document_qcvn102.xml"))
    written = field_codec().build_document(doc).decode()
    assert "<edXML:PromulgationDate>2026/03/14</edXML:PromulgationDate>" in written
    assert "<edXML:DueDate>2026/03/28</edXML:DueDate>" in written
    assert "<edXML:PromulgationDate>2026/03/02</edXML:PromulgationDate>" in written  # ResponseFor
    # Times in Vietnam time, to the second: 09:15+07:00 as it is, 02:15:07Z as 09:15:07.
    stamps = re.findall(r"<edXML:Timestamp>([^<]*)</edXML:Timestamp>", written)
    assert stamps == ["2026/03/14 09:15:00", "2026/03/14 09:15:07"]
    assert not re.search(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", written)

    status = field_codec().parse_status(sample("status_qcvn102.xml"))
    built = field_codec().build_status(status).decode()
    assert "<edXML:Timestamp>2026/03/14 10:02:31</edXML:Timestamp>" in built
    assert "<edXML:PromulgationDate>2026/03/14</edXML:PromulgationDate>" in built


def test_the_hub_writes_iso_dates_when_configured() -> None:
    doc = field_codec().parse_document(sample("document_qcvn102_slash_dates.xml"))
    written = field_codec(date_format="iso").build_document(doc).decode()
    assert "<edXML:PromulgationDate>2018-09-20</edXML:PromulgationDate>" in written
    assert "<edXML:Timestamp>2018-09-20T16:45:12+07:00</edXML:Timestamp>" in written
    assert "2018/09/20<" not in written  # the DocumentId keeps its own yyyy/MM/dd


@settings(max_examples=60, deadline=None)
@given(msg=statuses, micro=st.integers(1, 999_999))
def test_iso_keeps_fractions_of_a_second(msg: StatusMessage, micro: int) -> None:
    precise = msg.model_copy(update={"timestamp": msg.timestamp.replace(microsecond=micro)})
    iso = field_codec(date_format="iso")
    assert iso.parse_status(iso.build_status(precise)) == precise
    # QCVN 102's form has whole seconds.
    qcvn = field_codec()
    assert qcvn.parse_status(qcvn.build_status(precise)).timestamp == msg.timestamp


# -- namespaces -----------------------------------------------------------------------------------


@pytest.mark.parametrize("writes", BOTH)
def test_one_hub_reads_both_namespaces(writes: str) -> None:
    edxml = field_codec(writes)
    assert edxml.parse_document(sample("document_qcvn102_slash_dates.xml")).header.due_date
    assert edxml.parse_document(sample("document_go_vn.xml")).header.code.number == "2045"
    assert edxml.parse_status(sample("status_qcvn102_staff.xml")).status_code is StatusCode.accepted
    assert edxml.parse_status(sample("status_go_vn_staff.xml")).status_code is StatusCode.processing
    # It writes the one configured.
    built = edxml.build_status(edxml.parse_status(sample("status_go_vn_staff.xml")))
    assert etree.QName(etree.fromstring(built)).namespace == writes


def test_a_namespace_not_accepted_is_refused_naming_those_that_are() -> None:
    data = sample("status_go_vn_staff.xml").replace(
        NS_GO_VN_EDOC.encode(), b"http://example.invalid/edXML"
    )
    error = refusal(field_codec().parse_status, data)
    assert error.code == "wrong_namespace"
    assert NS_QCVN_102_2016 in error.message
    assert NS_GO_VN_EDOC in error.message
    assert "http://example.invalid/edXML" in error.message


def test_elements_in_another_namespace_than_the_root_are_not_read() -> None:
    """A root in one accepted namespace does not make the other one's elements its own."""
    data = edit(
        sample("status_go_vn_staff.xml"),
        "<StatusCode>05</StatusCode>",
        f'<q:StatusCode xmlns:q="{NS_QCVN_102_2016}">05</q:StatusCode>',
    )
    assert refusal(field_codec().parse_status, data).code == "missing_field"


# -- packages: reading ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", CHUNKS)
def test_a_package_with_crlf_and_the_envelope_first_is_read(chunk: int, spool: Path) -> None:
    """go.vn namespace, a folded Content-Type, a preamble, an 8bit and a base64 part."""
    data = sample("package_go_vn.eml")
    assert b"\r\n" in data  # written with CRLF, as MIME says
    doc = field_codec().read_document(Trickle(data, chunk), spool)
    assert doc.document_id == "000.00.42.H41,2026/03/14,318/STP-HCTP"
    assert doc.header.promulgation.date == date(2026, 3, 14)
    assert doc.header.due_date == date(2026, 3, 21)
    assert doc.trace.trace_headers[0].timestamp == vn(2026, 3, 14, 15, 20, 3)
    text, pdf = doc.attachments  # the manifest's order
    assert (text.attachment_id, text.name) == (
        "cid:to-khai-4711@stp.nghean.gov.vn",
        "Tờ khai khai sinh.txt",
    )
    assert (text.content_type, text.description) == ("text/plain; charset=utf-8", "Tờ khai đã ký")
    assert text.path.read_bytes() == TO_KHAI  # the CRLF before the boundary is the boundary's
    assert (pdf.attachment_id, pdf.size_bytes) == ("cid:ban-sao-4711@stp.nghean.gov.vn", 41)
    assert pdf.path.read_bytes() == PDF
    assert sorted(spool.iterdir()) == sorted([text.path, pdf.path])


@pytest.mark.parametrize("chunk", CHUNKS)
def test_a_package_with_lf_and_the_envelope_last_is_read(chunk: int, spool: Path) -> None:
    """QCVN 102 namespace, `start` naming the last part, base64 in 76-column lines,
    quoted-printable with soft line breaks, a percent-escaped cid: URL, an epilogue."""
    data = sample("package_qcvn102_root_last.eml")
    assert b"\r\n" not in data  # LF only, as a file edited by hand
    doc = field_codec().read_document(Trickle(data, chunk), spool)
    assert doc.document_id == "000.00.12.H41,2026/03/16,15/QĐ-STNMT"
    assert doc.header.response_for[0].promulgation_date == date(2026, 3, 2)
    assert doc.trace.business.staff_info == StaffInfo(
        department="Phòng Quản lý đất đai", staff="Lê Thị Hoa"
    )
    decision, certificate = doc.attachments
    assert decision.path.read_bytes() == QUYET_DINH
    assert decision.size_bytes == len(QUYET_DINH) == 109  # its Size, checked
    assert certificate.attachment_id == "cid:giay-chung-sinh%40ubnd.nghean.gov.vn"
    assert certificate.path.read_bytes() == GIAY_CHUNG_SINH


def test_packages_read_in_memory_as_streamed(spool: Path) -> None:
    for name in ("package_go_vn.eml", "package_qcvn102_root_last.eml"):
        data = sample(name)
        assert field_codec().parse_document(data) == loaded(
            field_codec().read_document(io.BytesIO(data), spool)
        )


def test_a_reference_with_no_content_anywhere_is_refused_naming_it(spool: Path) -> None:
    error = refusal(
        field_codec().read_document, io.BytesIO(sample("package_missing_part.eml")), spool
    )
    assert error.code == "missing_field"
    assert "cid:phu-luc-319@stp.nghean.gov.vn" in error.message
    assert "Phụ lục 319.pdf" in error.message
    assert list(spool.iterdir()) == []  # the part that was there is not left behind
    # Inside an envelope alone too.
    data = edit(
        sample("document_qcvn102_slash_dates.xml"),
        "<edXML:ContentId>cid:7816-vpcp@vpcp.gov.vn</edXML:ContentId>\n        <edXML:Content",
        "<edXML:ContentId>cid:khac@vpcp.gov.vn</edXML:ContentId>\n        <edXML:Content",
    )
    error = refusal(field_codec().parse_document, data)
    assert error.code == "missing_field"
    assert "cid:7816-vpcp@vpcp.gov.vn" in error.message


def test_an_inline_cid_reference_is_joined_to_its_content() -> None:
    (attachment,) = (
        field_codec().parse_document(sample("document_qcvn102_slash_dates.xml")).attachments
    )
    assert (attachment.attachment_id, attachment.content) == ("cid:7816-vpcp@vpcp.gov.vn", PDF)
    # `cid:x` in the manifest and `x` in AttachmentEncoded name the same content.
    data = edit(
        sample("document_qcvn102_slash_dates.xml"),
        "<edXML:ContentId>cid:7816-vpcp@vpcp.gov.vn</edXML:ContentId>\n        <edXML:Content",
        "<edXML:ContentId>7816-vpcp@vpcp.gov.vn</edXML:ContentId>\n        <edXML:Content",
    )
    assert field_codec().parse_document(data).attachments == (attachment,)


GO_VN = sample("package_go_vn.eml")
BOUNDARY = b"------=_Part_4711_1986.1741915203"
CLOSE = BOUNDARY + b"--\r\n"
EXTRA_PART = (
    BOUNDARY + b"\r\nContent-Type: text/plain\r\nContent-ID: <thua@x>\r\n\r\nthua\r\n" + CLOSE
)


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ((CLOSE, EXTRA_PART), "malformed", "without a manifest entry"),
        ((b"Content-ID: <ban-sao-4711@stp.nghean.gov.vn>\r\n", b""), "malformed", "no Content-ID"),
        ((b"Transfer-Encoding: base64", b"Transfer-Encoding: x-uuencode"), "malformed", "uuencode"),
        ((b"JVBERi0xLjQKJeLjz9MK", b"JVBERi0xLjQKJeLjz9M*"), "malformed", "not base64"),
        ((b"JVBERi0xLjQK", b"JVBERi0x\xa0LjQK"), "malformed", "over 127"),  # not white space
        ((b"<edxml-4711@", b"<other@"), "malformed", "'other@stp.nghean.gov.vn'"),  # start
        ((b"Multipart/Related", b"Multipart/Mixed"), "malformed", "multipart/mixed"),
        ((b'boundary="----=_Part_4711_1986.1741915203"', b'boundary="khac"'), "malformed", ""),
        ((b"<Size>41</Size>", b"<Size>40</Size>"), "malformed", "size_bytes 40"),
        (  # the content both as a part and inside the envelope
            (
                b"</edXMLManifest>",
                b"</edXMLManifest><AttachmentEncoded><Attachment><ContentId>"
                b"cid:ban-sao-4711@stp.nghean.gov.vn</ContentId><ContentTransferEncoded>YQ=="
                b"</ContentTransferEncoded></Attachment></AttachmentEncoded>",
            ),
            "malformed",
            "both",
        ),
        ((b"<?xml", b'<!DOCTYPE x [<!ENTITY a "b">]><?xml'), "entities", ""),
    ],
)
def test_bad_packages_are_refused(
    change: tuple[bytes, bytes], code: str, words: str, spool: Path
) -> None:
    old, new = change
    assert old in GO_VN, old
    data = GO_VN.replace(old, new, 1)
    for chunk in (5, CHUNK_BYTES):
        error = refusal(field_codec().read_document, Trickle(data, chunk), spool)
        assert (error.code, words in error.message) == (code, True), error.message
        assert list(spool.iterdir()) == []


@pytest.mark.parametrize("cut", [-3, -len(CLOSE) - 2, len(GO_VN) // 2, 400, 130])
def test_a_truncated_package_is_malformed(cut: int, spool: Path) -> None:
    error = refusal(field_codec().read_document, Trickle(GO_VN[:cut], 7), spool)
    assert error.code == "malformed", error.message
    assert list(spool.iterdir()) == []


def test_a_doctype_in_an_attachment_part_is_content_not_a_declaration(spool: Path) -> None:
    html = b'<!DOCTYPE html>\r\n<html lang="vi"><p>To khai</p></html>'
    data = GO_VN.replace("Tờ khai đăng ký khai sinh của cháu Nguyễn Minh Anh.".encode(), html)
    text, _ = field_codec().read_document(io.BytesIO(data), spool).attachments
    assert text.path.read_bytes() == html


def test_parts_are_checked_against_the_attachment_limit_while_decoded(spool: Path) -> None:
    assert field_codec(max_att=61).parse_document(GO_VN).attachments[0].size_bytes == 61
    error = refusal(field_codec(max_att=60).read_document, Trickle(GO_VN, 3), spool)
    assert error.code == "attachment_too_large"
    assert "to-khai-4711@stp.nghean.gov.vn" in error.message
    assert list(spool.iterdir()) == []
    error = refusal(field_codec(max_bytes=len(GO_VN) - 1).read_document, io.BytesIO(GO_VN), spool)
    assert error.code == "too_large"


def test_a_status_may_come_as_a_package_its_parts_skipped() -> None:
    status = sample("status_qcvn102_staff.xml")
    data = (
        b'Content-Type: multipart/related; boundary="s"\r\n\r\n--s\r\n'
        b"Content-Type: text/xml\r\n\r\n" + status + b"\r\n--s\r\nContent-ID: <chu-ky>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nbm90IGRlY29kZWQ=\r\n--s--\r\n"
    )
    msg = field_codec().read_status(Trickle(data, 4))
    assert msg == field_codec().parse_status(status)


def test_what_is_neither_xml_nor_a_package_is_still_malformed() -> None:
    for data in (b"not xml at all", b"Subject: hi\r\n\r\nbody", b"\r\n\r\n"):
        assert refusal(field_codec().parse_document, data).code == "malformed"


# -- the splitter, alone --------------------------------------------------------------------------


def _events(body: bytes, boundary: str, chunk: int) -> list[tuple[str | None, bytes]]:
    parts: list[tuple[str | None, bytes]] = []
    pieces = [body[at : at + chunk] for at in range(0, len(body), chunk)]
    for event in mime.split(pieces, boundary):
        if isinstance(event, mime.PartHeaders):
            parts.append((event.content_id, b""))
        elif event is not None:
            assert event
            parts[-1] = (parts[-1][0], parts[-1][1] + event)
    return parts


# Content that looks like a boundary without being one, and line ends next to the boundary.
TRICKY = st.sampled_from(
    [b"", b"\r", b"\n", b"\r\n", b"--b", b"\r\n--", b"\n--b-not", b"--b--x", b"x\r\n--bb", b"-"]
)


@settings(max_examples=200, deadline=None)
@given(
    contents=st.lists(
        st.lists(TRICKY | st.binary(max_size=40), max_size=6).map(b"".join), min_size=1, max_size=4
    ),
    newline=st.sampled_from([b"\r\n", b"\n"]),
    chunk=st.sampled_from([1, 2, 3, 5, 8, 64]),
)
def test_the_splitter_gives_each_part_back_whatever_the_chunks(
    contents: list[bytes], newline: bytes, chunk: int
) -> None:
    boundary = "b"
    delimiter = b"--" + boundary.encode()
    # A part's content must not hold the delimiter at a line start (RFC 2046): leave those out.
    contents = [c for c in contents if not re.search(rb"(^|\n)--b($|[ \t\r\n]|--)", c)]
    if not contents:
        return
    body = b"preamble" + newline
    for index, content in enumerate(contents):
        body += delimiter + newline + f"Content-ID: <p{index}>".encode() + newline * 2
        body += content + newline
    body += delimiter + b"--" + newline + b"epilogue"
    expected = [(f"p{index}", content) for index, content in enumerate(contents)]
    # The line end before a delimiter is the delimiter's: a content ending in CR then LF reads
    # back without that CR when the lines end in LF only.
    got = _events(body, boundary, chunk)
    assert [cid for cid, _ in got] == [cid for cid, _ in expected]
    for (_, data), (_, content) in zip(got, expected, strict=True):
        assert data == (content[:-1] if newline == b"\n" and content.endswith(b"\r") else content)


def test_content_id_keys() -> None:
    key = mime.content_id_key
    assert (
        key("cid:a%40b.vn") == key("<a@b.vn>") == key(" a@b.vn ") == key("CID:a@b.vn") == "a@b.vn"
    )
    assert mime.writable_id("cid:attachment-1.ab@000.00.41.H41") == "attachment-1.ab@000.00.41.H41"
    assert mime.writable_id("tệp đính kèm") is None
    assert mime.header_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    assert mime.header_type("text/plain\r\nX-Injected: 1") == "application/octet-stream"


# -- packages: writing ----------------------------------------------------------------------------


def _hub_document(ids: tuple[str, ...] = ("cid:to-khai@hub", "cid:ban-do@hub")) -> EdocDocument:
    base = field_codec().parse_document(sample("document_qcvn102.xml"))
    contents = (TO_KHAI + b"\r\n--=_edxml_ but not a boundary\r\n", PDF)
    attachments = tuple(
        Attachment(attachment_id=i, name=f"Tệp {n}", content_type=t, content=c)
        for n, (i, t, c) in enumerate(
            zip(ids, ("text/plain; charset=utf-8", "application/pdf"), contents, strict=True)
        )
    )
    return base.model_copy(update={"attachments": attachments})


def test_the_hub_writes_a_package_any_mime_reader_reads() -> None:
    doc = _hub_document()
    data = field_codec(packaging="mime").build_document(doc)
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/related"
    root, *parts = message.iter_parts()
    assert f"<{message.get_param('start')}>".strip("<>") == str(root["Content-ID"]).strip("<>")
    assert root.get_content_type() == "text/xml"
    payload = root.get_payload(decode=True)
    assert isinstance(payload, bytes)
    envelope = etree.fromstring(payload)
    ns = {"e": NS_QCVN_102_2016}
    assert envelope.xpath("//e:Reference/e:ContentId/text()", namespaces=ns) == [
        "cid:to-khai@hub",
        "cid:ban-do@hub",
    ]
    assert envelope.xpath("//e:AttachmentEncoded", namespaces=ns) == []
    assert envelope.xpath("//e:PromulgationDate/text()", namespaces=ns)[0] == "2026/03/14"
    assert [str(p["Content-ID"]) for p in parts] == ["<to-khai@hub>", "<ban-do@hub>"]
    assert [p.get_payload(decode=True) for p in parts] == [a.content for a in doc.attachments]
    assert [p.get_content_type() for p in parts] == ["text/plain", "application/pdf"]
    # And the hub reads back what it wrote.
    assert field_codec().parse_document(data) == doc


def test_a_package_is_streamed_from_the_files(tmp_path: Path, spool: Path) -> None:
    doc = _hub_document()
    files = []
    for attachment in doc.attachments:
        path = tmp_path / attachment.name
        path.write_bytes(attachment.content)
        files.append(
            SpooledAttachment(
                attachment.attachment_id,
                attachment.name,
                attachment.content_type,
                None,
                attachment.size_bytes,
                path,
            )
        )
    spooled = SpooledDocument(doc.header, doc.trace, tuple(files))
    out = io.BytesIO()
    edxml = field_codec(packaging="mime")
    assert edxml.write_document(spooled, out) == len(out.getvalue())
    assert loaded(edxml.read_document(io.BytesIO(out.getvalue()), spool)) == doc
    too_small = field_codec(max_bytes=len(out.getvalue()) - 1, packaging="mime")
    assert refusal(too_small.write_document, spooled, io.BytesIO()).code == "too_large"


def test_an_id_that_cannot_be_a_content_id_is_refused_before_writing() -> None:
    doc = _hub_document(("cid:to-khai@hub", "bản đồ.pdf"))
    error = refusal(field_codec(packaging="mime").build_document, doc)
    assert (error.code, "bản đồ.pdf" in error.message) == ("malformed", True)
    # Inline, any id goes; two ids naming one Content-ID do not, either way.
    assert field_codec().build_document(doc)
    same = _hub_document(("cid:to-khai@hub", "to-khai@hub"))
    for packaging in ("inline", "mime"):
        error = refusal(field_codec(packaging=packaging).build_document, same)
        assert error.code == "malformed"


ids = st.from_regex(r"cid:[a-z0-9][a-z0-9.-]{0,12}@[a-z]{1,6}\.vn", fullmatch=True)


@settings(max_examples=80, deadline=None)
@given(
    doc=documents,
    contents=st.lists(
        st.lists(TRICKY | st.binary(max_size=200), max_size=5).map(b"".join), max_size=3
    ),
    names=st.lists(ids, min_size=3, max_size=3, unique=True),
    chunk=st.sampled_from([1, 3, 64, CHUNK_BYTES]),
    namespace=st.sampled_from(BOTH),
)
def test_a_package_write_then_read_is_identity(
    doc: EdocDocument, contents: list[bytes], names: list[str], chunk: int, namespace: str
) -> None:
    attachments = tuple(
        Attachment(attachment_id=n, name="tệp", content_type="application/pdf", content=c)
        for n, c in zip(names, contents, strict=False)
    )
    doc = doc.model_copy(update={"attachments": attachments})
    edxml = EdxmlCodec(namespace, MB, MB, packaging="mime")
    data = edxml.build_document(doc)
    with tempfile.TemporaryDirectory() as files:
        assert loaded(edxml.read_document(Trickle(data, chunk), Path(files))) == doc


def test_memory_stays_small_reading_a_20_mib_part(tmp_path: Path, spool: Path) -> None:
    """A package with a 20 MiB binary part and one in base64: the Python heap's peak while
    reading stays far below either."""
    big = 20 * MB
    block = bytes(range(256)) * 3 * 1024  # 768 KiB: base64 of it needs no padding
    package = tmp_path / "big.eml"
    envelope = sample("package_go_vn.eml")
    head, _, _ = envelope.partition(
        b"\r\n------=_Part_4711_1986.1741915203\r\nContent-Type: text/plain"
    )
    with package.open("wb") as out:
        out.write(head.replace(b"<Size>41</Size>", b""))
        out.write(
            b"\r\n" + BOUNDARY + b"\r\nContent-Transfer-Encoding: binary\r\n"
            b"Content-ID: <to-khai-4711@stp.nghean.gov.vn>\r\n\r\n"
        )
        for _ in range(big // MB):
            out.write(bytes(range(256)) * 4096)
        out.write(
            b"\r\n" + BOUNDARY + b"\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-ID: <ban-sao-4711@stp.nghean.gov.vn>\r\n\r\n"
        )
        encoded = base64.encodebytes(block)  # 76-column lines
        for _ in range(big // len(block) + 1):
            out.write(encoded)
        out.write(b"\r\n" + CLOSE)
    edxml = field_codec(max_bytes=64 * MB, max_att=big + MB)
    tracemalloc.start()
    try:
        with package.open("rb") as source:
            doc = edxml.read_document(source, spool)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [a.size_bytes for a in doc.attachments] == [big, (big // len(block) + 1) * len(block)]
    with doc.attachments[1].path.open("rb") as content:
        assert content.read(len(block)) == block
    assert peak < 2 * MB, peak
    package.unlink()
