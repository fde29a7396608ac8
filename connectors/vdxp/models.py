"""The document axis API's request and reply bodies: `api` replies through them and the
OpenAPI fragment (`connectors.vdxp.openapi`) names them. A transfer is the canonical
`schemas.interagency.InterAgencyTransfer`; sent as JSON, each attachment carries its content
in base64 (`TransferRequest`). This module must never read the store.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.admin import Circuit
from schemas.api import Reply
from schemas.interagency import InterAgencyTransfer, TransferAttachment
from schemas.vdxp import StatusCode


class AttachmentUpload(TransferAttachment):
    content_base64: str = Field(description="the file, base64")


class TransferRequest(InterAgencyTransfer):
    """A transfer sent as JSON: attachments inline (the whole body within
    http.max_body_bytes; send large files as multipart/form-data)."""

    # The same field, each attachment with its content: pydantic allows the narrower type.
    attachments: list[AttachmentUpload] = Field(  # type: ignore[assignment]
        default_factory=list, max_length=50
    )


class AxisState(Reply):
    """The document axis connector's state."""

    organ_id: str = Field(description="the province's agency on the axis")
    axis: str = Field(description="the axis's base URL")
    circuit: Circuit
    agencies: int = Field(description="agencies on the axis's list, as last read")
    last_poll: str | None
    last_error: str | None


class DocumentAttachment(Reply):
    attachment_id: str = Field(description="for GET /api/v1/vdxp/attachment")
    name: str
    content_type: str
    size_bytes: int
    description: str | None


class Document(Reply):
    """A document sent or received over the axis."""

    document_id: str
    direction: Literal["in", "out"]
    transfer_id: str | None = Field(description="the one-stop system's id of a transfer")
    dossier_code: str | None
    from_organ: str
    to_organs: list[str]
    code: str = Field(description="số/ký hiệu")
    subject: str
    business_type: int
    attachments: list[DocumentAttachment]
    state: Literal["queued", "sent", "refused", "received"]
    axis_id: str | None = Field(description="the axis's id once sent")
    detail: str | None
    created_at: str
    updated_at: str


class TransferAccepted(Document):
    """The transfer is durable and queued for the axis."""

    created: bool = Field(description="false: the hub already held this transfer id")


class Status(Reply):
    from_organ: str
    status: StatusCode
    description: str | None
    occurred_at: str
    received_at: str


class DocumentWithStatuses(Document):
    """One document and its statuses, in the order they happened."""

    statuses: list[Status]


class Documents(Reply):
    """Documents, newest first."""

    documents: list[Document]


class IntakeItem(Reply):
    transport_id: str
    messagetype: Literal["edoc", "status"]
    from_organ: str | None
    verdict: Literal["accepted", "duplicate", "refused"]
    code: str | None = Field(
        description="why it was refused: malformed, entities, wrong_namespace, too_large, "
        "attachment_too_large, unknown_status, missing_field, unknown_organ, not_addressed, "
        "unknown_document"
    )
    reason: str | None
    document_id: str | None
    taken_at: str
    acked_at: str | None


class IntakeLog(Reply):
    """Items taken from the axis, newest first."""

    items: list[IntakeItem]


class RoundReport(Reply):
    """One round of taking what waits on the axis."""

    taken: dict[str, int] = Field(description="verdict → count")
    error: str | None = Field(description="why the round stopped (HTTP 502), else null")
