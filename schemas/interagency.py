"""Canonical models of inter-agency (liên thông) exchange over the document axis.

* `InterAgencyTransfer`: the one-stop system hands a dossier to another agency. The VDXP
  connector turns it into an edXML document from the province's agency to the targets.
* `DocumentStatus`: where an agency is with a document (arrived, accepted, processing,
  completed, ...). Linked to a dossier, it becomes a processing step of that dossier
  (`to_event`), which flows to DVCQG like any other; it is also a `vdxp.status` event for the
  systems that follow the dossier (`to_message`).
* A received document becomes a `vdxp.document` event (built by the connector, which knows
  where its attachments are served).

This module must never depend on XML, a transport, the store or configuration.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.canonical import DossierEvent, DossierStatus, ProcessingStep, ShortText, Text
from schemas.vdxp import StatusCode

SOURCE_SYSTEM = "vdxp"
DOCUMENT_EVENT = "vdxp.document"
STATUS_EVENT = "vdxp.status"

# QCVN 102:2016 agency code, e.g. 000.00.00.H41 (the same rule as hub.config_blocks).
AgencyCode = Annotated[str, Field(pattern=r"^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$")]
TransferId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransferAttachment(_Model):
    name: ShortText = Field(description="file name shown to the receiving agency")
    content_type: ShortText = "application/octet-stream"
    description: Text | None = None


MAX_TRANSFER_ATTACHMENTS = 50


class InterAgencyTransfer(_Model):
    """A dossier handed to other agencies (hồ sơ liên thông), as the one-stop system says it."""

    transfer_id: TransferId = Field(description="the sender's id; a repeat is the same transfer")
    dossier_code: str = Field(min_length=1, max_length=100)
    to: list[AgencyCode] = Field(min_length=1, max_length=20, description="receiving agencies")
    subject: Text = Field(description="trích yếu")
    code_number: ShortText = Field(description="số văn bản, e.g. 123")
    code_notation: ShortText | None = Field(None, description="ký hiệu, e.g. UBND-VP")
    document_type: int = Field(1, ge=0, le=1000, description="edXML DocumentType/Type")
    document_type_name: ShortText = "Công văn"
    content: Text | None = None
    promulgation_place: ShortText | None = None
    signer_competence: ShortText | None = None
    signer_position: ShortText | None = None
    signer_name: ShortText | None = None
    due_date: date | None = None
    steering_type: int | None = Field(None, ge=0, le=100)
    attachments: list[TransferAttachment] = Field(
        default_factory=list, max_length=MAX_TRANSFER_ATTACHMENTS
    )


STATUS_TEXT: dict[StatusCode, str] = {
    StatusCode.arrived: "Văn bản đã đến",
    StatusCode.refused: "Từ chối tiếp nhận",
    StatusCode.accepted: "Đã tiếp nhận",
    StatusCode.assigned: "Đã phân công xử lý",
    StatusCode.processing: "Đang xử lý",
    StatusCode.completed: "Đã hoàn thành",
    StatusCode.recalled: "Bên gửi lấy lại văn bản",
    StatusCode.recall_agreed: "Đồng ý lấy lại/cập nhật",
    StatusCode.recall_refused: "Từ chối lấy lại/cập nhật",
}


class DocumentStatus(_Model):
    """One status of one document, from the agency holding it; `department` and
    `handler_name` are who there dealt with it (edXML StaffInfo Department and Staff)."""

    document_id: str
    dossier_code: str | None
    from_organ: str
    from_name: str | None = None
    status: StatusCode
    description: str | None = None
    occurred_at: datetime
    department: ShortText | None = None
    handler_name: ShortText | None = None

    @property
    def key(self) -> str:
        """Stable across repeats: the same status of the same document from the same agency
        at the same time is one status, however often the axis lists it."""
        stamp = self.occurred_at.isoformat()
        return f"{self.document_id}|{self.from_organ}|{self.status.value}|{stamp}"

    def to_event(self, dossier_status: DossierStatus) -> DossierEvent:
        """The dossier's processing step this status is (needs `dossier_code`): its
        department is the agency's (with the department there, when the status names one:
        "Văn thư (Bộ Tư pháp)"), its handler the staff member the status names."""
        assert self.dossier_code is not None
        agency = self.from_name or self.from_organ
        text = f"{agency}: {STATUS_TEXT[self.status]}"
        if self.description:
            text += f" ({self.description})"
        department = f"{self.department} ({agency})" if self.department else agency
        step = ProcessingStep(
            dossier_code=self.dossier_code,
            status=dossier_status,
            processed_at=self.occurred_at,
            handler_name=self.handler_name,
            department=department[:4000],
            content=text[:4000],
        )
        return DossierEvent(
            event_id=self.key,
            source_system=SOURCE_SYSTEM,
            kind="step",
            dossier_code=self.dossier_code,
            status=dossier_status,
            occurred_at=self.occurred_at,
            step=step,
        )

    def to_message(self) -> dict[str, Any]:
        return {
            "type": STATUS_EVENT,
            "event_id": f"{SOURCE_SYSTEM}:{self.key}",
            "document_id": self.document_id,
            "dossier_code": self.dossier_code,
            "from_organ": self.from_organ,
            "from_name": self.from_name,
            "status": self.status.value,
            "status_name": self.status.name,
            "status_text": STATUS_TEXT[self.status],
            "description": self.description,
            "occurred_at": self.occurred_at.isoformat(),
            "department": self.department,
            "handler_name": self.handler_name,
        }
