"""Wire models of the hub's own REST API (`/api/v1/...`), in English snake_case.

They double as the source of the OpenAPI document (`/api/v1/openapi.json`). Inbound models
forbid unknown fields so a typo is an error, not silently lost data.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordIn(_In):
    """The whole dossier (all fields optional except what the event carries)."""

    procedure_code: str | None = Field(None, max_length=500)
    procedure_name: str | None = Field(None, max_length=4000)
    field_code: str | None = Field(None, max_length=500)
    field_name: str | None = Field(None, max_length=4000)
    receipt_number: str | None = Field(None, max_length=500)
    owner_name: str | None = Field(None, max_length=500)
    applicant_type: str | None = Field(None, max_length=500)
    applicant_id: str | None = Field(None, max_length=500)
    other_info: str | None = Field(None, max_length=4000)
    email: str | None = Field(None, max_length=500)
    fax: str | None = Field(None, max_length=500)
    phone: str | None = Field(None, max_length=500)
    summary: str | None = Field(None, max_length=4000)
    received_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None
    returned_at: AwareDatetime | None = None
    return_info: str | None = Field(None, max_length=4000)
    return_method: str | None = Field(None, max_length=500)
    processing_ended_at: AwareDatetime | None = None
    handling_unit: str | None = Field(None, max_length=4000)
    note: str | None = Field(None, max_length=4000)
    submitted_documents: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    fees: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    other_attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    supplements: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    result_documents: list[dict[str, Any]] = Field(default_factory=list, max_length=200)


class StepIn(_In):
    handler_name: str | None = Field(None, max_length=500)
    handler_title: str | None = Field(None, max_length=500)
    department: str | None = Field(None, max_length=4000)
    content: str | None = Field(None, max_length=4000)
    started_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None


class DossierEventIn(_In):
    """One event. Give `status` (canonical name) or `vendor_status` (your own code)."""

    event_id: str = Field(min_length=1, max_length=200, description="your stable id")
    dossier_code: str = Field(max_length=100)
    kind: Literal["record", "step"]
    occurred_at: AwareDatetime = Field(description="when it happened, ISO 8601 with offset")
    status: str | None = Field(
        None, max_length=50, description="canonical status name, e.g. processing"
    )
    vendor_status: str | None = Field(
        None, max_length=200, description="vendor code, translated by mappings/"
    )
    record: RecordIn | None = Field(None, description="required when kind is record")
    step: StepIn | None = Field(None, description="optional details when kind is step")


class EventsRequest(BaseModel):
    events: list[Any] = Field(description="items are validated one by one (DossierEventIn)")


class ItemError(BaseModel):
    code: str
    field: str | None
    message: str


class ItemResultOut(BaseModel):
    index: int
    event_id: str | None
    outcome: Literal["accepted", "duplicate", "rejected"]
    error: ItemError | None = None


class EventsResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[ItemResultOut]


class FeedItemOut(BaseModel):
    cursor: str
    dossier_code: str
    status: int
    status_name: str
    status_at: str
    version: int
    record: dict[str, Any] | None


class FeedPage(BaseModel):
    items: list[FeedItemOut]
    next_cursor: str = Field(description="pass as `after` to continue; unchanged when empty")


class ErrorOut(BaseModel):
    error: str
    message: str
