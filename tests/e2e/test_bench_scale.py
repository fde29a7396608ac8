"""`python -m bench --quick --phases scale` as a slow test: replicas on PostgreSQL, payments and
axis documents on PostgreSQL, both failover pauses and the projection, at tiny sizes.

The bench starts its own RabbitMQ node (the phase asks it which replica is the active consumer
of a queue), its own PostgreSQL and its own three-node cluster, all in the test's folder
(`--var`). The test checks that the run completes (exit 0: no part failed) and that every
figure is there and positive; it never judges a figure's value (tiny sizes on a shared
machine say nothing about the targets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import run_bench

pytestmark = pytest.mark.slow

RUNS = ("sqlite_1", "postgresql_1", "postgresql_2", "postgresql_3")


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and value > 0


def test_the_scale_phase_reports_every_figure(tmp_path: Path) -> None:
    said, results = run_bench(tmp_path, "--phases", "scale", timeout_s=1500)
    scale = results["scale"]
    assert "failures" not in scale, scale["failures"]
    assert positive(scale["relay_baseline"]["messages_per_s"])

    for name in RUNS:
        figures = scale["dossiers"][name]
        for key in ("events_per_s", "ratio_to_relay", "ratio_to_sqlite"):
            assert positive(figures[key]), (name, key, figures)
        cost = figures["cpu_ms_per_event"]
        parts = ("hubs", "broker", "postgresql") if name != "sqlite_1" else ("hubs", "broker")
        for part in parts:
            assert positive(cost[part]), (name, part, cost)
        assert len(cost["replicas"]) == figures["replicas"]
        assert all(positive(ms) for ms in cost["replicas"]), (name, cost)
        if name != "sqlite_1":
            assert figures["postgresql_sessions"]["samples"] > 0, (name, figures)

    for name in ("payments_postgresql", "payments_postgresql_2_replicas"):
        pay = scale[name]
        assert positive(pay["callbacks_per_s"]), (name, pay)
        assert positive(pay["ratio_to_relay"]), (name, pay)
        for part in ("hub", "postgresql", "bench"):
            assert positive(pay["cpu_ms_per_callback"][part]), (name, part, pay)
        assert 0 < pay["machine"]["busy_share"] <= 1, (name, pay["machine"])
    assert scale["payments_postgresql_2_replicas"]["full"]["replicas"] == 2
    axis = scale["axis_postgresql"]
    assert positive(axis["receive_documents_per_s"]), axis
    assert positive(axis["send_documents_per_s"]), axis
    for kind in ("replica_kill", "broker_node_kill"):
        pause = scale["failover"][kind]
        assert positive(pause["pause_s"]), (kind, pause)

    machines = {m["cores"]: m for m in scale["projection"]["machines"]}
    for cores in (8, 32):
        assert positive(machines[cores]["events_per_s"]), machines[cores]
        assert machines[cores]["bottleneck"] in machines[cores]["limits_events_per_s"]

    for line in (
        "1 replica on PostgreSQL",
        "3 replicas on PostgreSQL",
        "failover pause, replica kill",
        "failover pause, broker-node kill",
        "8 cores (6 replica(s))",
        "32 cores (30 replica(s))",
        "dossier events 1 replica PostgreSQL / SQLite",
        "payment callbacks PostgreSQL / raw ceiling",
        "payment callbacks on PostgreSQL, 2 replicas",
    ):
        assert line in said, line
