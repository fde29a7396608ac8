"""The ministries API's reply bodies and the push door's: `api` and `routes` reply through
them and the OpenAPI fragment (`connectors.ministry.openapi`) names them. What a system pushes
is its own JSON, shaped as its mapping file says: no model here. This module must never read
the store.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.admin import Circuit
from schemas.api import Reply

Verdict = Literal["accepted", "duplicate", "quarantined"]


class PollReport(Reply):
    """One poll round: when, pages read, results per verdict, the cursor after it."""

    system: str
    at: str = Field(description="when the round ended (UTC, ISO 8601)")
    pages: int
    results: dict[str, int] = Field(description="verdict → count")
    cursor: str | None
    error: str | None = Field(description="why the round stopped (HTTP 502), else null")


class MinistrySystem(Reply):
    system: str
    name: str
    kind: Literal["soap", "rest"]
    procedures: list[str] = Field(description="procedure codes whose dossiers it takes")
    handoff: bool = Field(description="dossiers are handed off to it")
    poll: bool = Field(description="the hub polls it for results")
    push: bool = Field(description="it pushes its results to the hub")
    cursor: str | None = Field(description="where the next poll starts")
    circuit: Circuit
    last_poll: PollReport | None = Field(description="the last poll round, null before one")


class MinistrySystems(Reply):
    """The configured ministry systems."""

    systems: list[MinistrySystem]


class Handoff(Reply):
    system: str
    dossier_code: str
    procedure_code: str | None
    status: int = Field(description="the dossier's status when it was handed off")
    reference: str | None = Field(description="the system's own reference, if it gave one")
    submitted_at: str


class Handoffs(Reply):
    """Dossiers handed off to a system, newest first."""

    handoffs: list[Handoff]


class QuarantinedResult(Reply):
    id: int
    system: str
    via: Literal["poll", "push"]
    code: str = Field(description="not_handed_to_system, missing, unknown_code, wrong_type, ...")
    reason: str
    dossier_code: str | None
    item: Any = Field(description="the result as the system sent it, masked")
    first_at: str
    last_at: str
    seen: int = Field(description="how many times the system sent it")


class Quarantine(Reply):
    """Results the hub refused to forward, newest first."""

    quarantine: list[QuarantinedResult]


class PushedItem(Reply):
    """One pushed result's outcome; an absent key has no value."""

    index: int
    verdict: Verdict
    result_id: str | None = None
    dossier_code: str | None = None
    code: str | None = Field(None, description="why it was quarantined")
    reason: str | None = None


class PushReply(Reply):
    """Counts per verdict and one outcome per result, in order."""

    accepted: int
    duplicate: int
    quarantined: int
    items: list[PushedItem]
