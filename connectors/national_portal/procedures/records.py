"""Plain records that cross the procedure store's interface (`ProcedureStore`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RunState(StrEnum):
    listing = "listing"  # reading the national list
    fetching = "fetching"  # reading each procedure; items say which are left
    done = "done"  # every item read, removals applied
    partial = "partial"  # finished, but some items failed or removals were withheld
    failed = "failed"  # the national list could not be read


class ItemState(StrEnum):
    pending = "pending"
    done = "done"
    quarantined = "quarantined"
    failed = "failed"  # the portal kept failing for this item; the next sync tries again


@dataclass(frozen=True)
class SyncRun:
    id: int
    kind: str  # full | codes
    requested: list[str]
    trigger: str
    state: RunState
    owner: str
    started_at: str
    finished_at: str | None = None
    detail: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    resumed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "requested": self.requested,
            "trigger": self.trigger,
            "state": self.state.value,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "detail": self.detail,
            "counts": self.counts,
        }


@dataclass(frozen=True)
class ProcedureRow:
    code: str
    version: int
    revision: int
    state: str
    changed_at: str
    change_seq: int
    record: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "version": self.version,
            "revision": self.revision,
            "state": self.state,
            "changed_at": self.changed_at,
            "cursor": self.change_seq,
            "procedure": self.record,
        }


@dataclass(frozen=True)
class VersionRow:
    code: str
    version: int
    revision: int
    created_at: str
    locked_at: str | None
    lock_reason: str | None
    record: dict[str, Any]

    def as_json(self, with_record: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "revision": self.revision,
            "created_at": self.created_at,
            "locked_at": self.locked_at,
            "lock_reason": self.lock_reason,
        }
        if with_record:
            out["procedure"] = self.record
        return out


@dataclass(frozen=True)
class ChangeRow:
    event_id: str
    version: int
    revision: int
    type: str
    change: str
    diff: list[dict[str, Any]]
    at: str

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "version": self.version,
            "revision": self.revision,
            "type": self.type,
            "change": self.change,
            "diff": self.diff,
            "at": self.at,
        }


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    code: str
    run_id: int | None
    field: str | None
    reason: str
    excerpt: str | None
    at: str
    reason_code: str | None = None  # None: held back before the hub kept codes

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "run_id": self.run_id,
            "field": self.field,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "excerpt": self.excerpt,
            "at": self.at,
        }


@dataclass(frozen=True)
class ListEntry:
    """One entry of a catalogue reference list (a field or an agency)."""

    code: str
    name: str
    extra: str | None = None


@dataclass(frozen=True)
class Refused:
    """A catalogue record (or list entry) the hub will not use, and why: `reason` in the
    hub's words (logs, the technical reader), `reason_code` as a code the console words
    (`value.code.<reason_code>`: missing, bad_amount, not_found …)."""

    code: str
    reason: str
    field: str | None
    excerpt: str | None
    reason_code: str


@dataclass(frozen=True)
class Listing:
    """The national list: unique codes in national order, and entries without a usable code."""

    codes: list[str]
    refused: list[Refused]
