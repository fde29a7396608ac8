"""Wire models of the document interchange axis (VDXP): edXML documents and status messages.

These mirror edXML (QCVN 102:2016) as the hub reads and writes it; the comment after each field
names its edXML element, relative to the element of the model it sits in. They are wire types:
the VDXP connector maps them once into canonical models and they travel no further.

Texts are kept exactly as sent (no trimming), and an empty element counts as absent, so every
text field is either None or at least one character. Times without an offset are Vietnam time
(UTC+7), as the axis writes them. Attachment content is held as bytes, decoded once; a document
whose attachments are too large for memory is described by `EdocManifest` (header, trace and the
manifest's `AttachmentReference`s) while the edXML codec keeps the content in files.

This module must never depend on XML, a transport, the store or configuration.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

VIETNAM_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


def _vietnam_if_naive(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=VIETNAM_TZ)


Id = Annotated[str, Field(min_length=1, max_length=200)]
ShortText = Annotated[str, Field(min_length=1, max_length=500)]
Text = Annotated[str, Field(min_length=1, max_length=20_000)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
ByteCount = Annotated[int, Field(ge=0)]
Timestamp = Annotated[datetime, AfterValidator(_vietnam_if_naive)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organization(_Model):
    """An agency on the axis (From, To)."""

    organ_id: Id  # OrganId: the agency's code on the axis, e.g. 000.00.01.H41
    organ_name: ShortText | None = None  # OrganName
    address: ShortText | None = None  # OrganAdd
    email: ShortText | None = None  # Email
    telephone: ShortText | None = None  # Telephone
    fax: ShortText | None = None  # Fax
    website: ShortText | None = None  # Website


class DocumentCode(_Model):
    """Số và ký hiệu văn bản, e.g. 123/UBND-VP."""

    number: ShortText  # CodeNumber: 123
    notation: ShortText | None = None  # CodeNotation: UBND-VP


class PromulgationInfo(_Model):
    place: ShortText | None = None  # Place: Hà Nội
    date: date  # PromulgationDate


class DocumentType(_Model):
    type_code: Count  # Type: 1 administrative document, 2 legal normative document
    type_name: ShortText | None = None  # TypeName: Công văn, Quyết định…


class SignerInfo(_Model):
    competence: ShortText | None = None  # Competence: signing authority (TM., KT., …)
    position: ShortText | None = None  # Position
    full_name: ShortText | None = None  # FullName


class OtherInfo(_Model):
    priority: Count | None = None  # Priority: 0 normal … urgent grades
    sphere_of_promulgation: ShortText | None = None  # SphereOfPromulgation
    typer_notation: ShortText | None = None  # TyperNotation: the typist's initials
    promulgation_amount: Count | None = None  # PromulgationAmount: copies issued
    page_amount: Count | None = None  # PageAmount
    appendixes: tuple[ShortText, ...] = ()  # Appendixes/Appendix (repeated)


class ResponseFor(_Model):
    """The document an answer or a status refers to."""

    organ_id: Id  # OrganId: the agency that sent that document
    code: ShortText  # Code: its number and notation as one text, e.g. 123/UBND-VP
    promulgation_date: date | None = None  # PromulgationDate
    document_id: Id  # DocumentId


class MessageHeader(_Model):
    """edXMLHeader/MessageHeader: what the document is, who sends it and to whom."""

    from_org: Organization  # From
    to_orgs: tuple[Organization, ...] = Field(min_length=1)  # To (repeated)
    code: DocumentCode  # Code
    promulgation: PromulgationInfo  # PromulgationInfo
    document_type: DocumentType  # DocumentType
    subject: Text  # Subject: trích yếu
    content: Text | None = None  # Content
    signer: SignerInfo | None = None  # SignerInfo
    due_date: date | None = None  # DueDate
    other_info: OtherInfo | None = None  # OtherInfo
    response_for: tuple[ResponseFor, ...] = ()  # ResponseFor (repeated)
    steering_type: Count | None = None  # SteeringType: 0 none, 1 steering, 2 report…
    document_id: Id  # DocumentId: the axis-wide id; intake de-duplicates on it


class BusinessDocType(IntEnum):
    """Bussiness/BussinessDocType: what this sending does to the document."""

    new = 0  # Văn bản mới: a new document
    revoke = 1  # Thu hồi: revokes a document sent before
    update = 2  # Cập nhật: updates a document sent before
    replace = 3  # Thay thế: replaces a document sent before


class StaffInfo(_Model):
    department: ShortText | None = None  # Department
    staff: ShortText | None = None  # Staff
    mobile: ShortText | None = None  # Mobile
    email: ShortText | None = None  # Email


class Receiver(_Model):
    receiver_type: Count  # ReceiverType
    organ_id: Id  # OrganId


class BusinessDocumentInfo(_Model):
    """For an update: which parts of the document changed."""

    document_info: Count | None = None  # DocumentInfo: 1 when the document's data changed
    document_receiver: Count | None = None  # DocumentReceiver: 1 when its receivers changed
    receivers: tuple[Receiver, ...] = ()  # ReceiverList/Receiver (repeated)


class Business(_Model):
    """TraceHeaderList/Bussiness (the standard's spelling)."""

    doc_type: BusinessDocType  # BussinessDocType
    reason: Text | None = None  # BussinessDocReason: why a document is revoked/updated/replaced
    document_id: Id | None = None  # DocumentId: the document concerned
    paper: Count | None = None  # Paper: 1 when a paper copy follows
    document_info: BusinessDocumentInfo | None = None  # BussinessDocumentInfo
    staff_info: StaffInfo | None = None  # StaffInfo


class TraceHeader(_Model):
    organ_id: Id  # OrganId: an agency the document passed through
    timestamp: Timestamp  # Timestamp


class TraceHeaderList(_Model):
    """edXMLHeader/TraceHeaderList."""

    trace_headers: tuple[TraceHeader, ...] = ()  # TraceHeader (repeated)
    business: Business  # Bussiness


class Attachment(_Model):
    """One manifest entry (edXMLBody/edXMLManifest/Reference) with its content
    (edXMLBody/AttachmentEncoded/Attachment, joined on ContentId). `size_bytes` is filled from
    the content when not given and must match it."""

    attachment_id: Id  # ContentId (in both Reference and Attachment)
    name: ShortText  # AttachmentName
    content_type: ShortText  # ContentType: a MIME type
    description: Text | None = None  # Description
    # Size: not in QCVN 102 as far as known; written by the hub, checked when read. The default
    # is never kept: the validator below fills it from the content.
    size_bytes: ByteCount = 0
    content: bytes = Field(repr=False)  # Attachment/ContentTransferEncoded (base64 on the wire)

    @model_validator(mode="before")
    @classmethod
    def _size_from_content(cls, data: Any) -> Any:
        if isinstance(data, dict) and "size_bytes" not in data:
            content = data.get("content")
            if isinstance(content, bytes):
                return {**data, "size_bytes": len(content)}
        return data

    @model_validator(mode="after")
    def _size_matches(self) -> Attachment:
        if self.size_bytes != len(self.content):
            raise ValueError(f"size_bytes {self.size_bytes} != content length {len(self.content)}")
        return self


class AttachmentReference(_Model):
    """One manifest entry (edXMLBody/edXMLManifest/Reference) without its content: what is known
    of an attachment whose content is kept elsewhere (a spooled attachment keeps it in a file).
    The fields are those of `Attachment`, `size_bytes` required: it is the content's length."""

    attachment_id: Id  # ContentId
    name: ShortText  # AttachmentName
    content_type: ShortText  # ContentType
    description: Text | None = None  # Description
    size_bytes: ByteCount  # Size (as in Attachment: checked against the content when read)


class _WholeDocument(_Model):
    """Header, trace and attachments (with their content or without), attachment ids unique."""

    header: MessageHeader  # edXMLHeader/MessageHeader
    trace: TraceHeaderList  # edXMLHeader/TraceHeaderList
    attachments: tuple[Attachment | AttachmentReference, ...] = ()  # edXMLBody

    @model_validator(mode="after")
    def _unique_attachment_ids(self) -> Self:
        ids = [attachment.attachment_id for attachment in self.attachments]
        if len(ids) != len(set(ids)):
            raise ValueError("attachment ids (ContentId) must be unique")
        return self

    @property
    def document_id(self) -> str:
        return self.header.document_id


class EdocDocument(_WholeDocument):
    """A whole edXML document: header, trace and attachments with their content."""

    attachments: tuple[Attachment, ...] = ()  # edXMLBody


class EdocManifest(_WholeDocument):
    """A whole edXML document without its attachment content: header, trace and manifest,
    under the same rules as `EdocDocument`."""

    attachments: tuple[AttachmentReference, ...] = ()  # edXMLBody/edXMLManifest


class StatusCode(StrEnum):
    """Status/StatusCode: where the receiving agency is with a document."""

    arrived = "01"  # Đã đến: the document reached the receiving agency
    refused = "02"  # Từ chối tiếp nhận: refused at intake
    accepted = "03"  # Đã tiếp nhận: registered by the clerk
    assigned = "04"  # Phân công: assigned to a handler
    processing = "05"  # Đang xử lý
    completed = "06"  # Hoàn thành
    recalled = "13"  # Lấy lại: the sender recalls the document
    recall_agreed = "15"  # Đồng ý lấy lại/cập nhật: recall or update agreed
    recall_refused = "16"  # Từ chối lấy lại/cập nhật: recall or update refused


class StatusMessage(_Model):
    """edXMLHeader/Status: one status of one document, sent by the agency holding it."""

    response_for: ResponseFor  # ResponseFor: the document this status is about
    from_org: Organization  # From
    staff_info: StaffInfo | None = None  # StaffInfo
    status_code: StatusCode  # StatusCode
    description: Text | None = None  # Description
    timestamp: Timestamp  # Timestamp
