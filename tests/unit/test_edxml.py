"""edXML documents and status messages: hand-written samples, round trips and refusals.

The samples under tests/data/edxml are written by hand in both known namespaces (prefixed,
unprefixed, default namespace) and must parse to the values asserted here. Hypothesis checks
that build-then-parse gives back the same model, Vietnamese and awkward text included. Every
refusal the codec promises is provoked once and checked by its stable code. These are the
in-memory functions; the streamed ones, over the same reader and writer, are checked in
test_edxml_streaming.py; both take their samples, helpers and strategies from edxml_world.py.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings

from connectors.vdxp.edxml import (
    NS_GO_VN_EDOC,
    NS_QCVN_102_2016,
    DateFormat,
    EdxmlCodec,
    EdxmlError,
    _parse_hardened,
)
from schemas.vdxp import (
    VIETNAM_TZ,
    Attachment,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    DocumentCode,
    DocumentType,
    EdocDocument,
    Organization,
    OtherInfo,
    PromulgationInfo,
    Receiver,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusMessage,
    TraceHeader,
)
from tests.unit.edxml_world import (
    DOC_ID,
    EXTRA_ATTACHMENT,
    MB,
    PDF,
    PDF_CONTENT_ID,
    codec,
    documents,
    edit,
    sample,
    statuses,
)


def refusal(call: object, *args: object) -> EdxmlError:
    assert callable(call)
    with pytest.raises(EdxmlError) as caught:
        call(*args)
    return caught.value


# -- hand-written samples -------------------------------------------------------------------------


def test_qcvn_document_sample_parses_to_the_expected_model() -> None:
    doc = codec().parse_document(sample("document_qcvn102.xml"))
    header = doc.header
    assert header.document_id == doc.document_id == DOC_ID
    assert header.from_org == Organization(
        organ_id="000.00.00.H41",
        organ_name="Văn phòng UBND tỉnh Nghệ An",
        address="Số 3 Trường Thi, TP. Vinh, Nghệ An",
        email="vanphong@nghean.gov.vn",
        telephone="0238 3844 511",
        fax="0238 3843 049",
        website="https://nghean.gov.vn",
    )
    assert [org.organ_id for org in header.to_orgs] == ["000.00.12.H41", "000.00.15.H41"]
    assert header.to_orgs[1].organ_name == "Sở Xây dựng"
    assert header.code == DocumentCode(number="123", notation="UBND-VP")
    assert header.promulgation == PromulgationInfo(place="Nghệ An", date=date(2026, 3, 14))
    assert header.document_type == DocumentType(type_code=1, type_name="Công văn")
    assert header.subject == "V/v liên thông hồ sơ giao đất của ông Nguyễn Văn Bình"
    assert header.content == "Đề nghị Sở Tài nguyên và Môi trường thẩm định hồ sơ kèm theo."
    assert header.signer == SignerInfo(
        competence="KT. CHÁNH VĂN PHÒNG", position="Phó Chánh Văn phòng", full_name="Trần Thị Hương"
    )
    assert header.due_date == date(2026, 3, 28)
    assert header.other_info == OtherInfo(
        priority=1,
        sphere_of_promulgation="Liên thông văn bản tỉnh",
        typer_notation="TTH",
        promulgation_amount=3,
        page_amount=2,
        appendixes=("Phụ lục I: Danh mục hồ sơ", "Phụ lục II: Sơ đồ thửa đất"),
    )
    assert header.response_for == (
        ResponseFor(
            organ_id="000.00.12.H41",
            code="45/STNMT-QLĐĐ",
            promulgation_date=date(2026, 3, 2),
            document_id="000.00.12.H41,2026/03/02,45/STNMT-QLĐĐ",
        ),
    )
    assert header.steering_type == 1


def test_qcvn_document_sample_trace_and_attachments() -> None:
    doc = codec().parse_document(sample("document_qcvn102.xml"))
    assert doc.trace.trace_headers == (
        TraceHeader(
            organ_id="000.00.00.H41", timestamp=datetime(2026, 3, 14, 9, 15, tzinfo=VIETNAM_TZ)
        ),
        TraceHeader(
            organ_id="000.00.00.G22", timestamp=datetime(2026, 3, 14, 2, 15, 7, tzinfo=UTC)
        ),
    )
    business = doc.trace.business
    assert business.doc_type is BusinessDocType.update
    assert business.reason == "Bổ sung Sở Xây dựng vào nơi nhận"
    assert (business.document_id, business.paper) == (DOC_ID, 0)
    assert business.document_info == BusinessDocumentInfo(
        document_info=0,
        document_receiver=1,
        receivers=(Receiver(receiver_type=1, organ_id="000.00.15.H41"),),
    )
    assert business.staff_info == StaffInfo(
        department="Phòng Hành chính - Tổ chức",
        staff="Lê Văn Đức",
        mobile="0912345678",
        email="duclv@nghean.gov.vn",
    )
    text, pdf = doc.attachments  # manifest order, though the content came in the other order
    assert (text.attachment_id, text.name, text.size_bytes) == (
        "cv-123.txt",
        "Công văn 123.txt",
        63,
    )
    assert (text.content_type, text.description) == (
        "text/plain; charset=utf-8",
        "Nội dung công văn",
    )
    assert text.content.decode() == "Công văn số 123/UBND-VP về việc liên thông hồ sơ.\n"
    assert (pdf.attachment_id, pdf.name, pdf.content_type) == (
        "so-do.pdf",
        "Sơ đồ thửa đất.pdf",
        "application/pdf",
    )
    assert (pdf.description, pdf.content, pdf.size_bytes) == (None, PDF, len(PDF))


def test_go_vn_document_sample_in_the_default_namespace() -> None:
    doc = codec(NS_GO_VN_EDOC).parse_document(sample("document_go_vn.xml"))
    assert doc.header.from_org == Organization(
        organ_id="000.00.03.H29", organ_name="Sở Tư pháp Hà Nội"
    )
    assert doc.header.to_orgs == (Organization(organ_id="000.00.07.H29"),)
    assert doc.header.code == DocumentCode(number="2045", notation="STP-HCTP")
    assert doc.header.promulgation == PromulgationInfo(date=date(2026, 1, 5))
    assert doc.header.document_type == DocumentType(type_code=2, type_name="Quyết định")
    assert doc.header.subject == "Quyết định cấp phiếu lý lịch tư pháp số 2045"
    assert (doc.header.content, doc.header.signer, doc.header.other_info) == (None, None, None)
    assert doc.document_id == "000.00.03.H29,2026/01/05,2045/STP-HCTP"
    # A time without an offset is Vietnam time.
    assert doc.trace.trace_headers[0].timestamp == datetime(2026, 1, 5, 9, 40, 12, tzinfo=UTC)
    assert doc.trace.business == Business(doc_type=BusinessDocType.new)
    (attachment,) = doc.attachments
    assert attachment.attachment_id == "qd-2045"
    assert attachment.content.decode() == "Quyết định giao đất"


def test_qcvn_status_sample() -> None:
    msg = codec().parse_status(sample("status_qcvn102.xml"))
    assert msg.response_for == ResponseFor(
        organ_id="000.00.00.H41",
        code="123/UBND-VP",
        promulgation_date=date(2026, 3, 14),
        document_id=DOC_ID,
    )
    assert msg.from_org == Organization(
        organ_id="000.00.12.H41",
        organ_name="Sở Tài nguyên và Môi trường",
        email="stnmt@nghean.gov.vn",
    )
    assert msg.staff_info == StaffInfo(
        department="Văn thư", staff="Phạm Thị Lan", mobile="0987654321", email="lanpt@nghean.gov.vn"
    )
    assert msg.status_code is StatusCode.accepted
    assert msg.description == "Đã tiếp nhận văn bản vào sổ"
    assert msg.timestamp == datetime(2026, 3, 14, 3, 2, 31, tzinfo=UTC)


def test_go_vn_status_sample_with_another_prefix_and_a_one_digit_code() -> None:
    msg = codec(NS_GO_VN_EDOC).parse_status(sample("status_go_vn.xml"))
    assert msg.status_code is StatusCode.completed  # sent as "6"
    assert msg.response_for.document_id == "000.00.03.H29,2026/01/05,2045/STP-HCTP"
    assert msg.response_for.promulgation_date is None
    assert msg.from_org == Organization(organ_id="000.00.07.H29")
    assert (msg.staff_info, msg.description) == (None, None)
    assert msg.timestamp == datetime(2026, 1, 9, 1, 0, tzinfo=UTC)


def test_status_table() -> None:
    assert {code.value: code.name for code in StatusCode} == {
        "01": "arrived",
        "02": "refused",
        "03": "accepted",
        "04": "assigned",
        "05": "processing",
        "06": "completed",
        "13": "recalled",
        "15": "recall_agreed",
        "16": "recall_refused",
    }


def test_built_document_uses_the_configured_namespace_and_the_edxml_prefix() -> None:
    doc = codec().parse_document(sample("document_qcvn102.xml"))
    built = codec(NS_GO_VN_EDOC).build_document(doc)
    assert built.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<edXML:edXMLEnvelope")
    assert b'xmlns:edXML="http://www.go.vn/eDoc"' in built
    assert NS_QCVN_102_2016.encode() not in built
    assert codec(NS_GO_VN_EDOC).parse_document(built) == doc


# -- round trips ----------------------------------------------------------------------------------


# Each namespace with QCVN 102's dates, and ISO dates once.
FORMS = [(NS_QCVN_102_2016, "qcvn102"), (NS_GO_VN_EDOC, "qcvn102"), (NS_QCVN_102_2016, "iso")]


@pytest.mark.parametrize(("namespace", "dates"), FORMS)
@settings(max_examples=150, deadline=None)
@given(doc=documents)
def test_document_build_then_parse_is_identity(
    namespace: str, dates: DateFormat, doc: EdocDocument
) -> None:
    edxml = EdxmlCodec(namespace, MB, MB, date_format=dates)
    assert edxml.parse_document(edxml.build_document(doc)) == doc


@pytest.mark.parametrize(("namespace", "dates"), FORMS)
@settings(max_examples=150, deadline=None)
@given(msg=statuses)
def test_status_build_then_parse_is_identity(
    namespace: str, dates: DateFormat, msg: StatusMessage
) -> None:
    edxml = EdxmlCodec(namespace, MB, MB, date_format=dates)
    assert edxml.parse_status(edxml.build_status(msg)) == msg


@settings(max_examples=30, deadline=None)
@given(msg=statuses)
def test_built_status_is_refused_in_the_other_namespace(msg: StatusMessage) -> None:
    built = codec(NS_QCVN_102_2016).build_status(msg)
    assert refusal(codec(NS_GO_VN_EDOC).parse_status, built).code == "wrong_namespace"


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_entity_declarations_are_refused_before_parsing(name: str) -> None:
    data = sample(name)
    assert refusal(codec().parse_status, data).code == "entities"
    assert refusal(codec().parse_document, data).code == "entities"


def test_declarations_are_refused_even_when_the_rest_is_not_xml() -> None:
    data = sample("billion_laughs.xml")[:-40]  # lxml alone would call this malformed
    assert refusal(codec().parse_status, data).code == "entities"


def test_a_bare_doctype_is_refused() -> None:
    data = edit(
        sample("status_qcvn102.xml"), "<edXML:edXMLEnvelope", "<!DOCTYPE x>\n<edXML:edXMLEnvelope"
    )
    assert refusal(codec().parse_status, data).code == "entities"


def test_a_utf16_doctype_is_refused() -> None:
    text = sample("billion_laughs.xml").decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert refusal(codec().parse_status, text.encode("utf-16")).code == "entities"


def test_a_dtd_past_the_byte_check_is_refused_by_the_parser() -> None:
    data = b'<!DOCTYPE r [<!ENTITY e "expanded">]><r>&e;</r>'
    error = refusal(_parse_hardened, [data], codec()._reader(None))
    assert error.code == "entities"
    assert "reached the parser" in error.message


def test_too_large_is_refused_and_the_limit_is_inclusive() -> None:
    data = sample("status_qcvn102.xml")
    assert codec(max_bytes=len(data)).parse_status(data).status_code is StatusCode.accepted
    error = refusal(codec(max_bytes=len(data) - 1).parse_status, data)
    assert error.code == "too_large"
    assert str(len(data)) in error.message


def test_building_beyond_max_bytes_is_refused() -> None:
    msg = codec().parse_status(sample("status_qcvn102.xml"))
    assert refusal(codec(max_bytes=200).build_status, msg).code == "too_large"


def test_wrong_namespace_names_both() -> None:
    error = refusal(codec(NS_GO_VN_EDOC).parse_document, sample("document_qcvn102.xml"))
    assert error.code == "wrong_namespace"
    assert NS_GO_VN_EDOC in error.message
    assert NS_QCVN_102_2016 in error.message


def test_no_namespace_is_the_wrong_namespace() -> None:
    data = edit(sample("document_go_vn.xml"), ' xmlns="http://www.go.vn/eDoc"', "")
    error = refusal(codec(NS_GO_VN_EDOC).parse_document, data)
    assert error.code == "wrong_namespace"
    assert "None" in error.message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("</edXML:edXMLEnvelope>", ""),  # truncated
        ("<edXML:Priority>1</edXML:Priority>", "<edXML:Priority>một</edXML:Priority>"),
        ("<edXML:DueDate>2026-03-28</edXML:DueDate>", "<edXML:DueDate>28/03/2026</edXML:DueDate>"),
        (
            "<edXML:BussinessDocType>2</edXML:BussinessDocType>",
            "<edXML:BussinessDocType>7</edXML:BussinessDocType>",
        ),
        (
            "<edXML:Size>63</edXML:Size>",
            "<edXML:Size>64</edXML:Size>",
        ),  # disagrees with the content
        ("JVBERi0xLjQKJeLjz9MKMSAwIG9iago8PD4+CmVuZG9iagolJUVPRgo=", "JVBERi0x*LjQK"),  # not base64
        ("<edXML:Content>", "<edXML:Subject>Một trích yếu nữa</edXML:Subject><edXML:Content>"),
        ("<edXML:AttachmentEncoded>", f"<edXML:AttachmentEncoded>{EXTRA_ATTACHMENT}"),
    ],
    ids=[
        "truncated",
        "text-for-a-number",
        "dd-mm-yyyy-date",
        "business-type-outside-0-3",
        "size-mismatch",
        "bad-base64",
        "two-subjects",
        "content-without-manifest-entry",
    ],
)
def test_malformed_documents_are_refused(old: str, new: str) -> None:
    data = edit(sample("document_qcvn102.xml"), old, new)
    assert refusal(codec().parse_document, data).code == "malformed"


def test_a_root_other_than_the_envelope_is_malformed() -> None:
    data = sample("status_qcvn102.xml").replace(b"edXML:edXMLEnvelope", b"edXML:Envelope")
    assert refusal(codec().parse_status, data).code == "malformed"


def test_not_xml_is_malformed() -> None:
    assert refusal(codec().parse_status, b"").code == "malformed"
    assert refusal(codec().parse_status, b'{"status": "01"}').code == "malformed"


def test_text_xml_cannot_hold_is_refused_when_building() -> None:
    msg = codec().parse_status(sample("status_qcvn102.xml"))
    broken = msg.model_copy(update={"description": "chuông \x07 kêu"})
    assert refusal(codec().build_status, broken).code == "malformed"


def test_attachment_over_the_declared_size_limit_is_refused() -> None:
    data = sample("document_qcvn102.xml")
    assert len(codec(max_att=63).parse_document(data).attachments) == 2
    error = refusal(codec(max_att=62).parse_document, data)
    assert error.code == "attachment_too_large"
    assert "cv-123.txt" in error.message


def test_attachment_over_the_limit_without_a_size_is_refused_on_its_decoded_length() -> None:
    data = sample("document_go_vn.xml")  # no Size: the length decoded so far decides
    assert codec(NS_GO_VN_EDOC, max_att=27).parse_document(data).attachments[0].size_bytes == 27
    assert (
        refusal(codec(NS_GO_VN_EDOC, max_att=26).parse_document, data).code
        == "attachment_too_large"
    )


def test_a_huge_declared_size_is_refused_before_the_content_is_looked_at() -> None:
    huge = "<edXML:Size>" + "9" * 40 + "</edXML:Size>"
    data = edit(sample("document_qcvn102.xml"), "<edXML:Size>63</edXML:Size>", huge)
    assert refusal(codec().parse_document, data).code == "attachment_too_large"


def test_a_lying_small_size_does_not_get_a_large_attachment_through() -> None:
    data = edit(
        sample("document_qcvn102.xml"), "<edXML:Size>63</edXML:Size>", "<edXML:Size>1</edXML:Size>"
    )
    assert refusal(codec(max_att=62).parse_document, data).code == "attachment_too_large"


def test_building_an_attachment_over_the_limit_is_refused() -> None:
    doc = codec().parse_document(sample("document_qcvn102.xml"))
    assert refusal(codec(max_att=62).build_document, doc).code == "attachment_too_large"


@pytest.mark.parametrize("code", ["07", "14", "00", "99", "003", "3a", "０３"])
def test_status_codes_outside_the_table_are_refused(code: str) -> None:
    data = edit(sample("status_qcvn102.xml"), ">03<", f">{code}<")
    error = refusal(codec().parse_status, data)
    assert error.code == "unknown_status"
    assert "13" in error.message  # the table is named


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            f"<edXML:DocumentId>{DOC_ID}</edXML:DocumentId>\n    </edXML:MessageHeader>",
            "</edXML:MessageHeader>",
        ),
        (
            "<edXML:Subject>V/v liên thông hồ sơ giao đất của ông Nguyễn Văn Bình</edXML:Subject>",
            "<edXML:Subject/>",
        ),
        ("<edXML:BussinessDocType>2</edXML:BussinessDocType>", ""),
        ("<edXML:TraceHeaderList>", "<edXML:Trace>"),
        (PDF_CONTENT_ID, "<edXML:ContentId>khác.pdf</edXML:ContentId><edXML:ContentTransfer"),
        (PDF_CONTENT_ID, "<edXML:ContentTransfer"),
    ],
    ids=[
        "document-id",
        "empty-subject",
        "business-doc-type",
        "trace-header-list",
        "attachment-content",
        "attachment-content-id",
    ],
)
def test_missing_fields_in_documents_are_refused(old: str, new: str) -> None:
    data = edit(sample("document_qcvn102.xml"), old, new)
    if new == "<edXML:Trace>":
        data = edit(data, "</edXML:TraceHeaderList>", "</edXML:Trace>")
    assert refusal(codec().parse_document, data).code == "missing_field"


def test_missing_fields_in_status_messages_are_refused() -> None:
    data = sample("status_qcvn102.xml")
    assert refusal(
        codec().parse_status, edit(data, "<edXML:StatusCode>03</edXML:StatusCode>", "")
    ).code == ("missing_field")
    assert refusal(codec().parse_document, data).code == "missing_field"  # a status is no document
    assert refusal(codec().parse_status, sample("document_qcvn102.xml")).code == "missing_field"


def test_the_codec_refuses_a_meaningless_configuration() -> None:
    with pytest.raises(ValueError, match="namespace"):
        EdxmlCodec("", MB, MB)
    with pytest.raises(ValueError, match="positive"):
        EdxmlCodec(NS_GO_VN_EDOC, 0, MB)


def test_attachment_size_must_match_its_content() -> None:
    attachment = Attachment(
        attachment_id="a", name="a.txt", content_type="text/plain", content=b"abc"
    )
    assert attachment.size_bytes == 3
    with pytest.raises(ValueError, match="size_bytes"):
        Attachment(
            attachment_id="a", name="a.txt", content_type="text/plain", content=b"abc", size_bytes=4
        )
    assert base64.b64encode(attachment.content) in codec().build_document(
        codec()
        .parse_document(sample("document_qcvn102.xml"))
        .model_copy(update={"attachments": (attachment,)})
    )
