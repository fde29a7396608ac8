"""How events fold into a dossier's newest state, without ever regressing.

Pure logic, no I/O: the store calls `apply` inside its transaction. The rules (guarantee 3):

* A step carries the exact moment it happened (`ThoiDiemXuLy`), so steps order the status.
* A whole record (`DongBoHoSoMC` item) carries no change time of its own; its moment is the
  latest date it vouches for (received, processing ended, returned). At the same moment a step
  outranks a record, and a higher status code breaks any remaining tie, so the outcome does not
  depend on arrival order.
* A record with no date at all ranks below every dated event: it fills in a new dossier but
  never rolls a known status back.
* The descriptive fields come from the most advanced record by the same ordering; the status
  sent out is always the newest status, whichever kind of event brought it.

A late or repeated event therefore never overwrites a newer state; it is still kept in the
history by the store. This module must never read clocks or perform I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from schemas.canonical import DossierEvent, DossierRecord, DossierStatus

# At equal times a step (exact time) outranks a record (inferred time).
_RANK = {"record": 0, "step": 1}

OrderKey = tuple[datetime, int, int]
_UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DossierState:
    status: DossierStatus | None = None
    status_key: OrderKey | None = None
    record: DossierRecord | None = None
    record_key: OrderKey | None = None

    @property
    def status_at(self) -> datetime | None:
        return self.status_key[0] if self.status_key else None


def order_key(event: DossierEvent) -> OrderKey:
    if event.kind == "record" and event.record is not None and not event.record.progress_time():
        # A record vouching for no date at all cannot say when it was true: it ranks below
        # everything dated, so its arrival time can never roll a newer status back.
        return (_UNDATED, _RANK[event.kind], int(event.status))
    return (event.occurred_at, _RANK[event.kind], int(event.status))


def apply(state: DossierState, event: DossierEvent) -> tuple[DossierState, bool]:
    """Fold one new event in; return the new state and whether anything outbound changed."""
    key = order_key(event)
    new = state
    if state.status_key is None or key > state.status_key:
        new = replace(new, status=event.status, status_key=key)
    if event.record is not None and (state.record_key is None or key >= state.record_key):
        new = replace(new, record=event.record, record_key=key)
    changed = (new.status, new.record) != (state.status, state.record)
    return new, changed


def outbound_record(state: DossierState) -> DossierRecord | None:
    """The record to send out: the freshest fields with the newest status."""
    if state.record is None or state.status is None:
        return None
    if state.record.status == state.status:
        return state.record
    return state.record.model_copy(update={"status": state.status})
