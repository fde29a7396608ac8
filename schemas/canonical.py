"""Canonical models: the one vocabulary inside the hub.

Every inbound payload (the DVCQG-compatible facade, the canonical REST API, later the ministry
and axis connectors) is mapped once into these models at the edge; nothing inside the hub sees
a wire model. Names are English snake_case; times are timezone-aware datetimes.

This module must never depend on a transport, the store or configuration.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from schemas.text import PlainObject, Printable

Text = Annotated[Printable, Field(max_length=4000)]
ShortText = Annotated[Printable, Field(max_length=500)]


class DossierStatus(IntEnum):
    """Dossier status as DVCQG numbers it (TrangThaiHoSo); the canonical status set."""

    submitted = 1  # Mới đăng ký: submitted online, not yet checked
    accepted = 2  # Được tiếp nhận: accepted at the one-stop desk
    refused = 3  # Không được tiếp nhận: refused at the desk (terminal)
    processing = 4  # Đang xử lý: with the specialist department
    supplement_requested = 5  # Yêu cầu bổ sung giấy tờ
    payment_requested = 6  # Yêu cầu thực hiện nghĩa vụ tài chính
    withdrawn = 7  # Công dân yêu cầu rút hồ sơ (terminal)
    stopped = 8  # Dừng xử lý (terminal)
    processed = 9  # Đã xử lý xong: result sent back to the desk
    returned = 10  # Đã trả kết quả: result handed to the applicant (terminal)

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {DossierStatus.refused, DossierStatus.withdrawn, DossierStatus.stopped, DossierStatus.returned}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Attachment(_Model):
    file_id: ShortText | None = None
    name: ShortText | None = None
    deleted: bool = False
    component_code: ShortText | None = None
    url: Text | None = None


class Fee(_Model):
    name: ShortText | None = None
    code: ShortText | None = None
    collection_method: ShortText | None = None
    amount_vnd: int | None = Field(None, ge=0)
    kind: ShortText | None = None


class ResultDocument(_Model):
    name: ShortText | None = None
    component_code: ShortText | None = None
    document_id: ShortText | None = None
    url: Text | None = None


class DossierRecord(_Model):
    """The whole dossier as the one-stop system knows it (DVCQG `DongBoHoSoMC` item)."""

    dossier_code: str
    status: DossierStatus
    procedure_code: ShortText | None = None
    procedure_name: Text | None = None
    field_code: ShortText | None = None
    field_name: Text | None = None
    receipt_number: ShortText | None = None
    owner_name: ShortText | None = None
    applicant_type: ShortText | None = None
    applicant_id: ShortText | None = None
    other_info: Text | None = None
    email: ShortText | None = None
    fax: ShortText | None = None
    phone: ShortText | None = None
    summary: Text | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None
    returned_at: datetime | None = None
    return_info: Text | None = None
    return_method: ShortText | None = None
    processing_ended_at: datetime | None = None
    handling_unit: Text | None = None
    note: Text | None = None
    submitted_documents: list[Attachment] = Field(default_factory=list)
    fees: list[Fee] = Field(default_factory=list)
    other_attachments: list[PlainObject] = Field(default_factory=list)
    supplements: list[PlainObject] = Field(default_factory=list)
    result_documents: list[ResultDocument] = Field(default_factory=list)

    @field_validator("due_at")
    @classmethod
    def _due_after_received(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        received = info.data.get("received_at")
        if value is not None and received is not None and value < received:
            raise ValueError("the due date is before the date the dossier was received")
        return value

    def progress_time(self) -> datetime | None:
        """The latest moment the record itself vouches for; orders records without steps."""
        times = [t for t in (self.received_at, self.processing_ended_at, self.returned_at) if t]
        return max(times) if times else None


class ProcessingStep(_Model):
    """One processing step (DVCQG `CapNhatTienDoHoSoMC` item)."""

    dossier_code: str
    status: DossierStatus
    processed_at: datetime
    handler_name: ShortText | None = None
    handler_title: ShortText | None = None
    department: Text | None = None
    content: Text | None = None
    started_at: datetime | None = None
    due_at: datetime | None = None


EventKind = Literal["record", "step"]


class DossierEvent(_Model):
    """One change to one dossier, from one source, with a stable idempotency key."""

    event_id: Printable = Field(max_length=200)
    source_system: str
    kind: EventKind
    dossier_code: str
    status: DossierStatus
    occurred_at: datetime
    sub_status: ShortText | None = None
    vendor_status: ShortText | None = None
    record: DossierRecord | None = None
    step: ProcessingStep | None = None

    @property
    def idempotency_key(self) -> str:
        return f"{self.source_system}:{self.event_id}"


def content_id(payload: Any) -> str:
    """A stable id for a payload that carries none: the SHA-256 of its canonical JSON (a lone
    surrogate hashed as its code point's bytes: such a payload is refused, but it is named)."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class DossierSnapshot(_Model):
    """The newest state of a dossier, as the hub serves it (feed, look-up, outbound)."""

    dossier_code: str
    status: DossierStatus
    status_at: datetime
    version: int
    record: DossierRecord | None
    updated_at: datetime
