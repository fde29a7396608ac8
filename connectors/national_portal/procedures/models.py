"""The procedure API's request and reply bodies: `procedures.api` replies through them and the
OpenAPI fragment (`connectors.national_portal.openapi`) names them. A procedure's record is
the canonical `schemas.procedure.Procedure`. This module must never read the store.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.api import Reply
from schemas.procedure import Procedure

ProcedureCode = Annotated[str, Field(pattern=r"^[0-9]{1,2}\.[0-9]{6}$", examples=["1.000494"])]


class ProcedureItem(Reply):
    """A procedure's current record."""

    code: str
    version: int = Field(description="a substantive change makes the next version")
    revision: int = Field(description="an editorial change makes the next revision")
    state: Literal["active", "locked"]
    changed_at: str
    cursor: int = Field(description="its place in the change order (pass as cursor)")
    procedure: Procedure


class ProcedurePage(Reply):
    """Procedures changed after the time and/or the cursor, oldest change first."""

    items: list[ProcedureItem]
    next_cursor: int = Field(description="pass as cursor to continue; unchanged when empty")


class VersionSummary(Reply):
    version: int
    revision: int
    created_at: str
    locked_at: str | None
    lock_reason: Literal["superseded", "removed", "unpublished"] | None


class DiffEntry(Reply):
    path: str = Field(description="a JSON pointer into the record")
    before: Any
    after: Any
    substantive: bool


class Change(Reply):
    event_id: str
    version: int
    revision: int
    type: str = Field(description="the event: procedure.created, procedure.updated, ...")
    change: str = Field(
        description="created, editorial, substantive, reinstated; or why it was locked"
    )
    diff: list[DiffEntry]
    at: str


class ProcedureDetail(ProcedureItem):
    """The current record, every version, and the change history with field-level diffs."""

    versions: list[VersionSummary]
    history: list[Change]


class ProcedureVersion(VersionSummary):
    """One version of a procedure, its record under `procedure`."""

    code: str
    procedure: Procedure


class QuarantinedRecord(Reply):
    id: int
    code: str
    run_id: int | None
    field: str | None
    reason: str
    reason_code: str | None = Field(
        description="the reason as a code (missing, wrong_type, bad_amount, unknown_unit, "
        "not_json, not_found, code_mismatch …); null for records held back before the hub "
        "kept codes"
    )
    excerpt: str | None
    at: str


class QuarantinePage(Reply):
    """Catalogue records refused by validation, newest first."""

    items: list[QuarantinedRecord]


class SyncRun(Reply):
    id: int
    kind: Literal["full", "codes"]
    requested: list[str]
    trigger: str = Field(description="schedule, cli, api:<source>, ...")
    state: Literal["listing", "fetching", "done", "partial", "failed"]
    started_at: str
    finished_at: str | None
    detail: str | None
    counts: dict[str, int]


class SyncRuns(Reply):
    """The 20 most recent catalogue sync runs."""

    items: list[SyncRun]


class SyncRequest(BaseModel):
    """Which procedures to sync: `{}` for all of them."""

    model_config = ConfigDict(extra="allow")

    codes: list[ProcedureCode] | None = Field(None, min_length=1, max_length=1000)


class SyncStarted(Reply):
    """The sync started; follow it in procedure-sync-runs."""

    status: Literal["started"]
    codes: list[str] | None


class CatalogueEntry(Reply):
    code: str
    name: str
    extra: str | None


class CatalogueList(Reply):
    """A reference list of the catalogue."""

    items: list[CatalogueEntry]
