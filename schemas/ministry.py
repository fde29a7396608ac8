"""Canonical model of a result from a sectoral ministry system.

A ministry system (business registration, civil status, land, ...) reports what it decided
about a dossier the province handed off: a status, when, by whom, and the result's number.
Each system's own message is mapped once into `MinistryResult` at the edge (its mapping file,
`connectors.ministry.mapping`); inside the hub it becomes a processing step of the dossier
(`DossierEvent`, kind `step`) that flows to DVCQG like any other, and a `ministry.result`
event delivered to the one-stop system. This module must never depend on a transport, the
store or configuration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.canonical import DossierEvent, DossierStatus, ProcessingStep, ShortText, Text
from schemas.text import OneLine

RESULT_EVENT = "ministry.result"


def source_system(system: str) -> str:
    return f"ministry.{system}"


class MinistryResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str
    result_id: OneLine = Field(min_length=1, max_length=150)
    dossier_code: OneLine = Field(min_length=1, max_length=100)
    status: DossierStatus
    occurred_at: datetime
    handler_name: ShortText | None = None
    handler_title: ShortText | None = None
    department: Text | None = None
    content: Text | None = None
    result_number: ShortText | None = None
    result_name: Text | None = None

    @property
    def event_id(self) -> str:
        return f"{self.system}:{self.result_id}"

    def to_event(self) -> DossierEvent:
        """The dossier's processing step this result is."""
        step = ProcessingStep(
            dossier_code=self.dossier_code,
            status=self.status,
            processed_at=self.occurred_at,
            handler_name=self.handler_name,
            handler_title=self.handler_title,
            department=self.department,
            content=self._content(),
        )
        return DossierEvent(
            event_id=self.event_id,
            source_system=source_system(self.system),
            kind="step",
            dossier_code=self.dossier_code,
            status=self.status,
            occurred_at=self.occurred_at,
            step=step,
        )

    def _content(self) -> str | None:
        parts = [p for p in (self.content, self.result_name, self.result_number) if p]
        return " · ".join(parts)[:4000] if parts else None

    def to_message(self) -> dict[str, Any]:
        """The `ministry.result` event body delivered to subscribers (the one-stop system)."""
        return {
            "type": RESULT_EVENT,
            "event_id": self.event_id,
            "system": self.system,
            "dossier_code": self.dossier_code,
            "status": int(self.status),
            "status_name": self.status.name,
            "occurred_at": self.occurred_at.isoformat(),
            "result": self.model_dump(mode="json"),
        }
