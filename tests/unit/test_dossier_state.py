"""Folding dossier events into the newest state (guarantee 3): order never matters."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.dossier_state import DossierState, apply, order_key, outbound_record
from schemas.canonical import DossierEvent, DossierRecord, DossierStatus, ProcessingStep

CODE = "000.00.41.H41-221005-0012"
T0 = datetime(2022, 10, 5, 1, 30, tzinfo=UTC)  # 08:30 in Hanoi
S = DossierStatus


def record_event(
    at: datetime, status: DossierStatus, summary: str, *, ended: datetime | None = None
) -> DossierEvent:
    record = DossierRecord(
        dossier_code=CODE,
        status=status,
        procedure_code="1.001234",
        owner_name="Nguyễn Văn An",
        phone="0912345678",
        summary=summary,
        received_at=T0,
        due_at=T0 + timedelta(days=15),
        processing_ended_at=ended,
    )
    return DossierEvent(
        event_id=f"record-{summary}",
        source_system="onestop",
        kind="record",
        dossier_code=CODE,
        status=status,
        occurred_at=at,
        record=record,
    )


def step_event(at: datetime, status: DossierStatus, content: str = "") -> DossierEvent:
    step = ProcessingStep(
        dossier_code=CODE,
        status=status,
        processed_at=at,
        handler_name="Trần Thị B",
        department="Phòng Tư pháp",
        content=content or status.name,
    )
    return DossierEvent(
        event_id=f"step-{status.name}-{at.isoformat()}",
        source_system="onestop",
        kind="step",
        dossier_code=CODE,
        status=status,
        occurred_at=at,
        step=step,
    )


def fold(events: list[DossierEvent] | tuple[DossierEvent, ...]) -> DossierState:
    return reduce(lambda state, event: apply(state, event)[0], events, DossierState())


H = timedelta(hours=1)
D = timedelta(days=1)

# One dossier's realistic life: records and steps, every event at its own moment.
LIFE = [
    record_event(T0, S.accepted, "v1"),
    step_event(T0 + 5 * timedelta(minutes=1), S.accepted),
    step_event(T0 + H, S.processing),
    record_event(T0 + 2 * H, S.processing, "v2"),
    step_event(T0 + D, S.supplement_requested),
    step_event(T0 + 3 * D, S.processing),
    record_event(T0 + 3 * D + H, S.processing, "v3"),
    step_event(T0 + 10 * D, S.processed),
    record_event(T0 + 10 * D + H, S.processed, "v4", ended=T0 + 10 * D + H),
    step_event(T0 + 12 * D, S.returned),
]


def test_life_in_order_ends_returned_with_freshest_record() -> None:
    state = fold(LIFE)
    assert state.status is S.returned
    assert state.status_at == T0 + 12 * D
    assert state.record is not None
    assert state.record.summary == "v4"
    assert state.record_key == order_key(LIFE[8])


@settings(max_examples=200, deadline=None)
@given(st.permutations(LIFE))
def test_any_arrival_order_gives_the_same_state(events: list[DossierEvent]) -> None:
    assert fold(events) == fold(LIFE)


_KINDS = st.sampled_from(["record", "step"])
_STATUSES = st.sampled_from(list(DossierStatus))


@st.composite
def random_lives(draw: st.DrawFn) -> list[DossierEvent]:
    offsets = draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=12, unique=True))
    events = []
    for i, minutes in enumerate(offsets):
        at = T0 + timedelta(minutes=minutes)
        status = draw(_STATUSES)
        if draw(_KINDS) == "record":
            events.append(record_event(at, status, f"r{i}"))
        else:
            events.append(step_event(at, status, f"s{i}"))
    return events


@settings(max_examples=200, deadline=None)
@given(random_lives(), st.data())
def test_random_lives_are_order_independent(
    events: list[DossierEvent], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    chronological = sorted(events, key=lambda e: e.occurred_at)
    state = fold(shuffled)
    assert state == fold(chronological)
    newest = chronological[-1]
    assert state.status is newest.status
    records = [e for e in chronological if e.record is not None]
    assert state.record == (records[-1].record if records else None)


def test_late_older_step_never_overwrites_newer_status() -> None:
    state = fold([step_event(T0 + 2 * D, S.processed)])
    late = step_event(T0 + D, S.processing)
    new, changed = apply(state, late)
    assert changed is False
    assert new.status is S.processed
    assert new.status_at == T0 + 2 * D


def test_late_older_record_keeps_newer_record_and_status() -> None:
    newer = record_event(T0 + 2 * D, S.processed, "newer", ended=T0 + 2 * D)
    older = record_event(T0 + D, S.processing, "older")
    state, _ = apply(DossierState(), newer)
    new, changed = apply(state, older)
    assert changed is False
    assert new.status is S.processed
    assert new.record is not None
    assert new.record.summary == "newer"


def test_step_at_equal_time_outranks_record_in_both_orders() -> None:
    at = T0 + D
    step = step_event(at, S.processing)
    # The record names a higher status at the very same moment: the step still wins.
    record = record_event(at, S.processed, "same-moment")
    for events in ([step, record], [record, step]):
        state = fold(events)
        assert state.status is S.processing
        assert state.record is not None
        assert state.record.summary == "same-moment"


def test_repeated_event_changes_nothing() -> None:
    event = record_event(T0, S.accepted, "v1")
    state, changed = apply(DossierState(), event)
    assert changed is True
    again, changed_again = apply(state, event)
    assert changed_again is False
    assert again == state


def test_newer_step_reports_change() -> None:
    state = fold([record_event(T0, S.accepted, "v1")])
    new, changed = apply(state, step_event(T0 + H, S.processing))
    assert changed is True
    assert new.status is S.processing


def test_outbound_record_is_freshest_record_with_newest_status() -> None:
    state = fold(LIFE)
    out = outbound_record(state)
    assert out is not None
    assert out.summary == "v4"
    assert out.status is S.returned
    # Every other field comes from the freshest record unchanged.
    assert state.record is not None
    assert out.model_dump(exclude={"status"}) == state.record.model_dump(exclude={"status"})


def test_outbound_record_unchanged_when_statuses_agree() -> None:
    state = fold([record_event(T0, S.accepted, "v1")])
    assert outbound_record(state) is state.record


def test_outbound_record_none_without_record() -> None:
    assert outbound_record(DossierState()) is None
    assert outbound_record(fold([step_event(T0, S.processing)])) is None


def test_path_2_4_5_4_9_10_via_steps_ends_at_returned_in_every_order() -> None:
    path = [S.accepted, S.processing, S.supplement_requested, S.processing, S.processed]
    path.append(S.returned)
    steps = [step_event(T0 + i * H, status) for i, status in enumerate(path)]
    finals = {fold(order).status for order in itertools.permutations(steps)}
    assert finals == {S.returned}
    assert fold(list(reversed(steps))).status_at == T0 + 5 * H


def test_an_undated_record_arriving_late_never_rolls_the_status_back() -> None:
    accepted = step_event(T0 + timedelta(hours=1), DossierStatus.accepted, "Tiếp nhận")
    undated = DossierEvent(
        event_id="record-undated",
        source_system="onestop",
        kind="record",
        dossier_code=CODE,
        status=DossierStatus.submitted,
        occurred_at=T0 + timedelta(days=3),  # the hub's arrival time, later than the step
        record=DossierRecord(dossier_code=CODE, status=DossierStatus.submitted, summary="x"),
    )
    state, _ = apply(DossierState(), accepted)
    state, changed = apply(state, undated)
    assert state.status == DossierStatus.accepted
    assert state.record is not None  # its fields still fill in the dossier
    assert changed
    # And alone it still starts a dossier.
    alone, _ = apply(DossierState(), undated)
    assert alone.status == DossierStatus.submitted
