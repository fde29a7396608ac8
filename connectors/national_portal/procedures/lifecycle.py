"""The procedure lifecycle (seed `000_…` Điều 10.5) as pure transitions.

Given what the hub holds of a procedure (`Current`, or nothing) and what the national catalogue
now says (a record, or "it is gone"), `on_record` and `on_removed` return the `Transition` to
apply: which version to lock and why, which version and revision the procedure has after,
and the one event to announce, if any. The store applies a transition as it is, in one
transaction, with the event in the outbox.

* first seen → version 1, `procedure.created`;
* same content → nothing;
* wording only → same version, next revision, `procedure.updated` (change `editorial`);
* substance changed → current version locked (`superseded`), next version,
  `procedure.updated` (change `substantive`) carrying the diff;
* unpublished (TRANGTHAI) or missing from the national list → current version locked,
  `procedure.locked`; never deleted;
* a locked procedure published again → next version, `procedure.updated` (`reinstated`).

Event ids are derived from the procedure, version, revision and type, so the same change is
announced under the same id however often a sync is repeated or resumed.

This module is pure: no store, no transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from connectors.national_portal.procedures.versioning import (
    ChangeKind,
    DiffEntry,
    classify,
    content_hash,
    substance_hash,
)

CREATED = "procedure.created"
UPDATED = "procedure.updated"
LOCKED = "procedure.locked"


class State(StrEnum):
    active = "active"  # published nationally; its current version is in force
    locked = "locked"  # no longer published: kept with its history, never deleted


class LockReason(StrEnum):
    superseded = "superseded"  # a substantive change created the next version
    removed = "removed"  # gone from the national list
    unpublished = "unpublished"  # the national record says it is not published


@dataclass(frozen=True)
class Current:
    """What the store holds of one procedure."""

    code: str
    version: int
    revision: int
    state: State
    record: dict[str, Any]


@dataclass(frozen=True)
class Transition:
    code: str
    change: str  # a ChangeKind value, or a LockReason for a lock
    version: int
    revision: int
    state: State
    record: dict[str, Any]
    content_hash: str
    substance_hash: str
    lock_version: int | None = None  # lock this version (with `lock_reason`) first
    lock_reason: LockReason | None = None
    new_version: bool = False  # insert a version row for `version`
    event_type: str | None = None
    diff: list[DiffEntry] = field(default_factory=list)

    @property
    def event_id(self) -> str:
        suffix = (self.event_type or "none").removeprefix("procedure.")
        return f"{self.code}/v{self.version}r{self.revision}/{suffix}"

    def event(self, at: datetime, run_id: int | None) -> dict[str, Any]:
        """The message subscribers receive."""
        return {
            "event_id": self.event_id,
            "type": self.event_type,
            "code": self.code,
            "localized_code": self.record.get("localized_code"),
            "version": self.version,
            "revision": self.revision,
            "change": self.change,
            "state": self.state.value,
            "locked_version": self.lock_version,
            "lock_reason": self.lock_reason.value if self.lock_reason else None,
            "diff": [d.as_json() for d in self.diff],
            "procedure": self.record,
            "occurred_at": at.isoformat(),
            "sync_run": run_id,
        }


def _hashed(record: dict[str, Any]) -> dict[str, Any]:
    return {"content_hash": content_hash(record), "substance_hash": substance_hash(record)}


def on_record(current: Current | None, record: dict[str, Any]) -> Transition | None:
    """The transition for a record read from the catalogue; None when nothing changed."""
    published = bool(record.get("published", True))
    if current is None:
        if not published:
            return None  # never announced, never in force: nothing to tell anyone
        return Transition(
            record["code"], ChangeKind.created, 1, 0, State.active, record, **_hashed(record),
            new_version=True, event_type=CREATED,
        )  # fmt: skip
    locked = current.state is State.locked
    if not published:
        return None if locked else _lock(current, LockReason.unpublished, record)
    found = classify(current.record, record, previous_locked=locked)
    if found.kind is ChangeKind.unchanged:
        return None
    if found.kind is ChangeKind.editorial:
        return Transition(
            current.code, found.kind, current.version, current.revision + 1, State.active,
            record, **_hashed(record), event_type=UPDATED, diff=found.diff,
        )  # fmt: skip
    # substantive, or reinstated after a lock: the next version
    return Transition(
        current.code, found.kind, current.version + 1, 0, State.active, record,
        **_hashed(record), new_version=True, event_type=UPDATED, diff=found.diff,
        lock_version=None if locked else current.version,
        lock_reason=None if locked else LockReason.superseded,
    )  # fmt: skip


def on_removed(current: Current) -> Transition | None:
    """The transition for a procedure missing from the national list."""
    if current.state is State.locked:
        return None
    return _lock(current, LockReason.removed, current.record)


def _lock(current: Current, reason: LockReason, record: dict[str, Any]) -> Transition:
    return Transition(
        current.code, reason, current.version, current.revision, State.locked, record,
        **_hashed(record), lock_version=current.version, lock_reason=reason,
        event_type=LOCKED,
    )  # fmt: skip
