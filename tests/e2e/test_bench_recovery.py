"""`python -m bench --phases recovery` as a slow test, with one short outage.

The phase is not in the quick smoke run (its outages take minutes at full size), so nothing
else runs it: this test does, with DVCQG down 3 s under the phase's steady traffic, and checks
that the run completes (exit 0), that every step of the backlog reached DVCQG, and that the
figures are there. It never judges a figure's value (a 3 s outage on a shared machine says
nothing about the target).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import run_bench

pytestmark = pytest.mark.slow


def test_the_recovery_phase_drains_a_short_outage_and_reports_it(
    rabbit_url: str, tmp_path: Path
) -> None:
    said, results = run_bench(
        tmp_path, "--phases", "recovery", "--recovery-outages-s", "3", "--broker-url", rabbit_url,
        timeout_s=600,
    )  # fmt: skip
    recovery = results["recovery"]
    assert not recovery.get("failures"), recovery["failures"]
    assert recovery["settings"]["capacity_events_per_s"] > recovery["offered_events_per_s"]
    outage = recovery["outages"]["3"]
    assert outage["complete"] is True, outage
    assert outage["backlog_messages"] > 0, outage
    assert outage["recovery_s"] > 0, outage
    assert outage["probes"] >= 1, outage
    assert outage["parked_at_end"] == 0, outage
    # Both peaks are read: the log-ins' (before the traffic) and the traffic's own.
    assert outage["rss_peak_before_traffic_mb"] > 0, outage
    assert outage["rss_peak_mb"] > 0, outage
    assert "recovery, DVCQG down 3 s" in said
