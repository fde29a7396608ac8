"""The scale phase's projection (`bench.scale`): the hub's CPU split between what the replicas
share and what only the active consumer does, and which part a machine of N cores saturates
first, computed by hand for small round numbers."""

from __future__ import annotations

import pytest

from bench.report import scale_details
from bench.scale import (
    CpuPerEvent,
    cost_from,
    delivery_pause,
    project,
    projection,
    split_hub_cpu,
)


def test_one_replica_cannot_tell_the_active_consumer_apart() -> None:
    assert split_hub_cpu([2.0], 1000) == (2.0, 0.0)


def test_the_busiest_replica_beyond_the_others_mean_is_the_active_consumers_own_work() -> None:
    # 3 replicas over 1000 events: 1.5 s, 0.5 s, 0.5 s. The others' mean is 0.5 s, so the
    # active consumer's own work is 1.0 s (1 ms/event); the rest, 1.5 s, is shared.
    shared, serial = split_hub_cpu([0.5, 1.5, 0.5], 1000)
    assert shared == pytest.approx(1.5)
    assert serial == pytest.approx(1.0)


def test_a_replica_idler_than_the_others_gives_no_negative_serial_work() -> None:
    shared, serial = split_hub_cpu([1.0, 1.0], 1000)
    assert shared == pytest.approx(2.0)
    assert serial == 0.0


def test_no_events_is_refused() -> None:
    with pytest.raises(ValueError, match="positive event count"):
        split_hub_cpu([1.0], 0)


COST = CpuPerEvent(hub_parallel_ms=2.0, hub_serial_ms=0.5, broker_ms=0.5, postgresql_ms=0.25)


def test_two_cores_are_held_by_the_cores_themselves() -> None:
    # Total 3.25 ms/event: 2 cores → 615.4/s. One replica (2 cores − 2 serial, at least 1):
    # active consumer 0.5 + 2.0 = 2.5 ms → 400/s, less than that: it holds.
    two = project(COST, 2)
    assert two["replicas"] == 1
    assert two["limits_events_per_s"] == {
        "all cores": 615.4,
        "broker (one core)": 2000.0,
        "PostgreSQL (one core)": 4000.0,
        "active consumer (one replica's core)": 400.0,
    }
    assert two["events_per_s"] == 400.0
    assert two["bottleneck"] == "active consumer (one replica's core)"
    assert two["next"] == "all cores"


def test_eight_cores_six_replicas_and_the_active_consumer_holds() -> None:
    # 6 replicas: active consumer 0.5 + 2/6 = 0.8333 ms → 1200/s; all cores 8000/3.25 = 2461.5;
    # broker 2000/s.
    eight = project(COST, 8)
    assert eight["replicas"] == 6
    assert eight["events_per_s"] == 1200.0
    assert eight["bottleneck"] == "active consumer (one replica's core)"
    assert eight["next"] == "broker (one core)"


def test_thirty_two_cores_the_active_consumer_still_before_the_broker() -> None:
    # 30 replicas: 0.5 + 2/30 = 0.5667 ms → 1764.7/s, under the broker's 2000/s.
    big = project(COST, 32)
    assert big["events_per_s"] == 1764.7
    assert big["next"] == "broker (one core)"


def test_a_serial_broker_heavier_than_the_hub_holds_a_big_machine() -> None:
    heavy_broker = CpuPerEvent(
        hub_parallel_ms=2.0, hub_serial_ms=0.1, broker_ms=1.0, postgresql_ms=0.2
    )
    big = project(heavy_broker, 32)
    assert big["bottleneck"] == "broker (one core)"
    assert big["events_per_s"] == 1000.0
    # Then PostgreSQL (0.2 ms → 5000/s) before the active consumer (0.1 + 2/30 ms → 6000/s).
    assert big["next"] == "PostgreSQL (one core)"
    assert big["limits_events_per_s"]["active consumer (one replica's core)"] == 6000.0


def test_a_part_measured_at_zero_never_limits() -> None:
    free = CpuPerEvent(hub_parallel_ms=1.0, hub_serial_ms=0.0, broker_ms=0.0, postgresql_ms=0.0)
    one = project(free, 1)
    assert one["limits_events_per_s"]["broker (one core)"] is None
    assert one["events_per_s"] == 1000.0


def test_a_run_result_becomes_its_cost_and_the_report_says_which_part_holds() -> None:
    run = {
        "events": 1000,
        "cpu_s": {"replicas": [0.5, 1.5, 0.5]},
        "cpu_ms_per_event": {"broker": 0.5, "postgresql": 0.25},
    }
    cost = cost_from(run)
    assert cost == CpuPerEvent(1.5, 1.0, 0.5, 0.25)
    proj = {"basis": "postgresql_3", **projection(cost, (8,))}
    (line_head, eight) = scale_details({"projection": proj})
    assert "hub shared by the replicas 1.500" in line_head
    # 6 replicas: 1.0 + 1.5/6 = 1.25 ms → 800/s.
    assert "8 cores (6 replica(s)): 800 events/s, held by active consumer" in eight


def test_the_pause_runs_to_the_first_change_sent_after_the_kill() -> None:
    # Killed at 10.0; a push in hand lands at 10.05; nothing until 11.0 and 11.2; a change
    # sent after the kill lands at 11.2. The pause is 10.05 → 11.0, not 0.05.
    times = [9.5, 9.9, 10.05, 11.0, 11.2, 11.4]
    assert delivery_pause(times, killed_at=10.0, fresh_at=11.2) == pytest.approx(0.95)


def test_the_pause_with_no_delivery_in_between_is_kill_to_fresh() -> None:
    assert delivery_pause([9.0, 12.5], killed_at=10.0, fresh_at=12.5) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="before the kill"):
        delivery_pause([], killed_at=10.0, fresh_at=9.0)
