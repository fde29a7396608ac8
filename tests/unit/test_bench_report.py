"""The bench's closing table: each missed target names what holds it, from the run's own
figures (pure logic; the expected texts are worked out by hand from the inputs)."""

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


def line_of(table: str, start: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(start))


def test_missed_dossier_events_name_what_one_whole_core_would_give() -> None:
    # 1,000 events/s against a 2,500 msg/s ceiling (0.4), the hub at 0.8 cores: 0.8 ms an
    # event, so one core gives 1,250/s (0.5); 0.8 x 2,500 = 2,000/s needs 0.5 ms an event.
    table = report.targets_table(
        {
            "throughput": {
                "events_per_s": 1000.0,
                "cpu_cores_used": {"hub": 0.8},
                "relay_baseline": {"messages_per_s": 2500.0},
            }
        }
    )
    line = line_of(table, "dossier events / raw ceiling")
    assert "MISS" in line
    assert "hub 0.80 CPU ms/event: one whole core sustains 0.50; 0.8 needs <= 0.50 ms/event" in line


def test_missed_soap_hand_offs_compare_cpu_per_item_with_the_bare_client() -> None:
    # The hub: 0.8 cores for 160 hand-offs/s = 5 ms each; zeep alone: 1 core for 500/s = 2 ms.
    table = report.targets_table(
        {
            "ministries": {
                "soap": {
                    "ratio_hub_to_raw": 0.32,
                    "hub": {"round_trips_per_s": 160.0, "cpu_cores_used": {"hub": 0.8}},
                    "raw": {"calls_per_s": 500.0, "cpu_cores_used": {"client": 1.0}},
                }
            }
        }
    )
    line = line_of(table, "SOAP hand-offs")
    assert "MISS" in line
    assert (
        "CPU ms/hand-off: hub 5.00 at 0.80 cores, bare 2.00 at 1.00 cores; at equal cores "
        "0.40; 0.8 needs the hub <= 2.50 ms/hand-off"
    ) in line


def test_missed_payment_p99_names_littles_law() -> None:
    unique = {"callbacks_per_s": 400.0, "p99_ms": 95.0, "cpu_ms_per_callback": {"hub": 2.5}}
    table = report.targets_table(
        {"payments": {"concurrency": 32, "ratio_to_relay": 0.2, "variants": {"unique": unique}}}
    )
    p99 = line_of(table, "payment 00 p99")
    assert "32 in flight at 400/s: 80 ms a reply on average (Little's law)" in p99
    assert "p99 < 50 ms needs more than 640/s" in p99
    # 0.2 at 400/s, 2.5 ms a callback: one core sustains 400/s (0.2); 0.5 needs 1 ms.
    rate = line_of(table, "payment callbacks / raw ceiling")
    assert "one whole core sustains 0.20; 0.5 needs <= 1.00 ms/callback" in rate


def test_missed_axis_and_catalogue_name_their_cpu_per_item() -> None:
    side = {"hub": {"cpu_ms_per_document": 10.0}, "raw": {"cpu_ms_per_document": 4.0}}
    table = report.targets_table(
        {
            "vdxp": {
                "loads": {
                    "50 KB": {
                        "attachment_bytes": 51200,
                        "receive": {**side, "ratio_hub_to_raw": 0.3},
                        "send": {**side, "ratio_hub_to_raw": 0.9},
                    }
                }
            },
            "catalogue": {
                "settings": {
                    "concurrency_bound": {
                        "cpu_cores_used": {"hub": 0.75},
                        "full_sync": {"ratio_to_ideal": 1.6, "procedures_per_s": 250.0},
                    }
                }
            },
        }
    )
    receive = line_of(table, "axis 51 KB receive")
    assert "CPU ms/document: hub 10.00, bare 4.00; at equal cores 0.40" in receive
    assert "0.7 needs the hub <= 5.71 ms/document" in receive
    assert "CPU" not in line_of(table, "axis 51 KB send")  # met: nothing named
    catalogue = line_of(table, "catalogue concurrency-bound")
    assert "hub 0.75 cores, 3.00 CPU ms/procedure; on one whole core at that cost 1.20" in catalogue


def test_missed_memory_and_postgresql_ratio_name_their_figures() -> None:
    scale = {
        "dossiers": {
            "sqlite_1": {"cpu_ms_per_event": {"hubs": 1.0, "broker": 0.3}},
            "postgresql_1": {
                "ratio_to_sqlite": 0.7,
                "cpu_ms_per_event": {"hubs": 1.2, "broker": 0.3, "postgresql": 0.4},
            },
        }
    }
    soak = {
        "events": 15000,
        "rss_start_mb": 120.0,
        "rss_peak_mb": 160.0,
        "slope_mb_per_10k_events": 2.5,
    }
    table = report.targets_table({"soak": soak, "scale": scale})
    memory = line_of(table, "hub peak RSS over 15,000 events")
    assert "MISS" in memory
    assert "hub RSS 120.0 MB at the start; second half's slope 2.50 MB per 10,000 events" in memory
    pg = line_of(table, "dossier events 1 replica PostgreSQL / SQLite")
    assert "MISS" in pg
    assert (
        "CPU ms/event on PostgreSQL hubs 1.200 / broker 0.300 / PG 0.400; "
        "on SQLite hubs 1.000 / broker 0.300 / PG n/a"
    ) in pg
