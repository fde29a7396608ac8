"""What the edXML test modules share: the hand-written samples, a codec, editing a sample, and
hypothesis strategies for documents and status messages (Vietnamese and awkward text
included). Used by test_edxml.py (in memory) and test_edxml_streaming.py (streamed)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import strategies as st

from connectors.vdxp.edxml import NS_QCVN_102_2016, EdxmlCodec
from connectors.vdxp.mime import content_id_key
from schemas.vdxp import (
    VIETNAM_TZ,
    Attachment,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    DocumentCode,
    DocumentType,
    EdocDocument,
    MessageHeader,
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
    TraceHeaderList,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "edxml"
MB = 1 << 20
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
DOC_ID = "000.00.00.H41,2026/03/14,123/UBND-VP"
# The pdf's ContentId inside AttachmentEncoded (the manifest's is followed by AttachmentName).
PDF_CONTENT_ID = "<edXML:ContentId>so-do.pdf</edXML:ContentId>\n        <edXML:ContentTransfer"
EXTRA_ATTACHMENT = (
    "<edXML:Attachment><edXML:ContentId>thừa.txt</edXML:ContentId>"
    "<edXML:ContentTransferEncoded>YQ==</edXML:ContentTransferEncoded></edXML:Attachment>"
)


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def codec(namespace: str = NS_QCVN_102_2016, max_bytes: int = MB, max_att: int = MB) -> EdxmlCodec:
    return EdxmlCodec(namespace, max_bytes, max_att)


def edit(data: bytes, old: str, new: str) -> bytes:
    """`data` with `old` replaced once; `old` must be there, so a test cannot pass by a typo."""
    assert old.encode() in data, old
    return data.replace(old.encode(), new.encode(), 1)


# -- strategies -----------------------------------------------------------------------------------

VIETNAMESE = (
    "Ủy ban nhân dân tỉnh Nghệ An",
    "Sở Tài nguyên và Môi trường",
    "Nguyễn Thị Ánh Tuyết",
    "V/v đề nghị thẩm định hồ sơ giao đất, cho thuê đất",
    "Quyết định số 15/QĐ-UBND",
    "  có khoảng trắng ở hai đầu  ",
    "dòng 1\r\ndòng 2\tcột",
    "ký tự đặc biệt: a & b < c > d \"e\" 'f' ]]>",
)
_XML_CHARS = st.characters(
    exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff", include_characters="\t\n\r"
)


def texts(max_size: int = 30) -> st.SearchStrategy[str]:
    return st.sampled_from(VIETNAMESE) | st.text(_XML_CHARS, min_size=1, max_size=max_size)


def maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


counts = st.integers(min_value=0, max_value=1_000_000)
dates = st.dates()
offsets = st.sampled_from([VIETNAM_TZ, UTC, timezone(timedelta(hours=-3, minutes=-30))])
# Whole seconds: QCVN 102's yyyy/MM/dd HH:mm:ss (the default form written) has no fractions;
# test_edxml_field.py checks that ISO keeps them.
timestamps = st.datetimes(
    min_value=datetime(1900, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.one_of(st.none(), offsets),
).map(lambda moment: moment.replace(microsecond=0))
organizations = st.builds(
    Organization,
    organ_id=texts(),
    organ_name=maybe(texts()),
    address=maybe(texts()),
    email=maybe(texts()),
    telephone=maybe(texts()),
    fax=maybe(texts()),
    website=maybe(texts()),
)
responses = st.builds(
    ResponseFor,
    organ_id=texts(),
    code=texts(),
    promulgation_date=maybe(dates),
    document_id=texts(),
)
staff = st.builds(
    StaffInfo,
    department=maybe(texts()),
    staff=maybe(texts()),
    mobile=maybe(texts()),
    email=maybe(texts()),
)
headers = st.builds(
    MessageHeader,
    from_org=organizations,
    to_orgs=st.lists(organizations, min_size=1, max_size=3).map(tuple),
    code=st.builds(DocumentCode, number=texts(), notation=maybe(texts())),
    promulgation=st.builds(PromulgationInfo, place=maybe(texts()), date=dates),
    document_type=st.builds(DocumentType, type_code=counts, type_name=maybe(texts())),
    subject=texts(200),
    content=maybe(texts(200)),
    signer=maybe(
        st.builds(
            SignerInfo, competence=maybe(texts()), position=maybe(texts()), full_name=maybe(texts())
        )
    ),
    due_date=maybe(dates),
    other_info=maybe(
        st.builds(
            OtherInfo,
            priority=maybe(counts),
            sphere_of_promulgation=maybe(texts()),
            typer_notation=maybe(texts()),
            promulgation_amount=maybe(counts),
            page_amount=maybe(counts),
            appendixes=st.lists(texts(), max_size=3).map(tuple),
        )
    ),
    response_for=st.lists(responses, max_size=2).map(tuple),
    steering_type=maybe(counts),
    document_id=texts(),
)
businesses = st.builds(
    Business,
    doc_type=st.sampled_from(BusinessDocType),
    reason=maybe(texts()),
    document_id=maybe(texts()),
    paper=maybe(counts),
    document_info=maybe(
        st.builds(
            BusinessDocumentInfo,
            document_info=maybe(counts),
            document_receiver=maybe(counts),
            receivers=st.lists(
                st.builds(Receiver, receiver_type=counts, organ_id=texts()), max_size=2
            ).map(tuple),
        )
    ),
    staff_info=maybe(staff),
)
traces = st.builds(
    TraceHeaderList,
    trace_headers=st.lists(
        st.builds(TraceHeader, organ_id=texts(), timestamp=timestamps), max_size=3
    ).map(tuple),
    business=businesses,
)
attachments = st.builds(
    Attachment,
    attachment_id=texts(),
    name=texts(),
    content_type=st.sampled_from(["application/pdf", "text/plain; charset=utf-8"]) | texts(),
    description=maybe(texts()),
    content=st.binary(max_size=600),
)
documents = st.builds(
    EdocDocument,
    header=headers,
    trace=traces,
    # Ids that name one Content-ID (`x`, `cid:x`, ` x `) are one attachment to the reader.
    attachments=st.lists(
        attachments, max_size=3, unique_by=lambda a: content_id_key(a.attachment_id)
    ).map(tuple),
)
statuses = st.builds(
    StatusMessage,
    response_for=responses,
    from_org=organizations,
    staff_info=maybe(staff),
    status_code=st.sampled_from(StatusCode),
    description=maybe(texts(200)),
    timestamp=timestamps,
)


class Trickle(io.BytesIO):
    """A source that returns at most `size` bytes per read, as a socket may."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__(data)
        self.size = size

    def read(self, n: int | None = -1, /) -> bytes:
        return super().read(self.size if n is None or n < 0 else min(n, self.size))
