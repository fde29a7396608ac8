"""`python -m bench --quick` (`make bench-quick`) as a smoke test in the suite.

It runs the quick phases against the session's RabbitMQ in a folder of the test's own, and
checks that the run completes (exit 0: no phase failed, no reply refused, no event missing or
twice) and reports every figure: each phase's result, the CPU per event by stage of each
profiled flow, and the table of targets at the end. Timing is never judged here (small sizes
on a shared machine say nothing about the targets): `--quick` reports a missed target
without failing, and this test asserts no figure's value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import QUICK_PHASES
from tests.e2e.harness import run_bench

pytestmark = pytest.mark.slow

PROFILED = (
    "dossier_events",
    "dossier_events_one_item",
    "payment_callbacks",
    "catalogue_concurrency_bound",
)


def test_the_quick_bench_completes_and_reports_every_figure(
    rabbit_url: str, tmp_path: Path
) -> None:
    said, results = run_bench(tmp_path, "--broker-url", rabbit_url, timeout_s=1200)
    for phase in QUICK_PHASES:
        assert phase in results, phase
        assert "error" not in results[phase], (phase, results[phase])
    for flow in PROFILED:
        figures = results["stages"]["flows"][flow]
        assert figures["samples"] > 0, (flow, figures)
        assert figures["stages"], (flow, figures)
        assert Path(figures["flame_graph"]["speedscope"]).exists()
    assert results["latency"]["answered_events_per_s"] > 0
    for figure in (
        "dossier events / raw ceiling",
        "payment callbacks / raw ceiling",
        "catalogue concurrency-bound wall / ideal",
        "hub CPU ms per event (share)",
    ):
        assert figure in said, figure
