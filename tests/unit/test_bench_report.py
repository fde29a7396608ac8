"""The bench's closing table: a missed step latency, or a missed payments-on-PostgreSQL ratio,
names what holds it (pure logic)."""

from __future__ import annotations

from typing import Any

from bench import report


def results(p99_ms: float, answered: float) -> dict[str, Any]:
    return {
        "latency": {
            "offered_events_per_s": 500.0,
            "answered_events_per_s": answered,
            "p99_ms": p99_ms,
        },
        "stages": {
            "flows": {
                "dossier_events_one_item": {
                    "hub_cpu_ms_per_event": 2.0,
                    "hub_cores_used": 0.9,
                    "stages": {
                        "store": {"cpu_ms_per_event": 0.8, "share": 0.4},
                        "event loop": {"cpu_ms_per_event": 0.5, "share": 0.25},
                    },
                }
            }
        },
    }


def latency_line(table: str) -> str:
    return next(line for line in table.splitlines() if line.startswith("step p99"))


def test_a_missed_step_latency_names_the_answered_rate_the_batching_and_the_top_stage() -> None:
    line = latency_line(report.targets_table(results(4200.0, 310.5)))
    assert "MISS" in line
    assert "calls answered at 310.5/s of 500/s offered" in line
    assert "a DVCQG batch waits up to linger_ms=200" in line
    assert "store: 0.800 of 2.000 CPU ms/event (40%); hub 0.9 cores" in line


def test_a_met_step_latency_names_nothing() -> None:
    line = latency_line(report.targets_table(results(80.0, 500.0)))
    assert "ok" in line.lower()
    assert "answered" not in line
    assert "linger" not in line


def scale_results(ratio: float) -> dict[str, Any]:
    return {
        "scale": {
            "payments_postgresql": {
                "ratio_to_relay": ratio,
                "machine": {"cores": 2, "busy_share": 0.874},
                "cpu_ms_per_callback": {
                    "hub": 1.31,
                    "bench": 0.55,
                    "rabbitmq": 0.36,
                    "postgresql": 0.48,
                },
            }
        }
    }


def payments_line(table: str) -> str:
    return next(line for line in table.splitlines() if line.startswith("payment callbacks Postg"))


def test_missed_payments_on_postgresql_name_the_busy_machine_and_each_process_cpu() -> None:
    line = payments_line(report.targets_table(scale_results(0.34)))
    assert "MISS" in line
    assert (
        "machine 87% busy of 2 cores; CPU ms/callback hub 1.31 PG 0.48 broker 0.36 client 0.55"
    ) in line


def test_met_payments_on_postgresql_name_nothing() -> None:
    line = payments_line(report.targets_table(scale_results(0.52)))
    assert "machine" not in line
