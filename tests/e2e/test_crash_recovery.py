"""Guarantee 1 under fire: the hub process is killed with SIGKILL at random moments while a
one-stop keeps sending, restarted each time, and nothing it acknowledged is missing at DVCQG.

The hub runs as a real `hub run` process; the DVCQG simulator and the one-stop traffic run in
the test process, the traffic retrying each call until the hub answers "00" like a real adapter.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from sims.national_portal.simulator import DvcqgSimulator
from sims.one_stop.simulator import OneStopTraffic
from tests.integration.status_world import sim_steps
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    HubProcess,
    eventually,
    hub_overrides,
)

pytestmark = pytest.mark.slow


async def test_sigkill_mid_stream_loses_nothing_acknowledged(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, hub_process: HubProcess
) -> None:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        hub_process.settings = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
        hub_process.start()  # not waited for: the one-stop retries until the hub answers

        traffic = OneStopTraffic(
            hub_process.facade_url,
            ONESTOP_USER,
            ONESTOP_PASSWORD,
            UNIT,
            seed=21,
            request_timeout_s=3,
        )
        run = asyncio.create_task(traffic.run(traffic.plan(60), rate_per_s=40))
        rng = random.Random(4)
        for _ in range(4):
            await asyncio.sleep(rng.uniform(0.8, 2.0))
            hub_process.kill()
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            hub_process.start()
        report = await asyncio.wait_for(run, 240)
        assert report.completed, report.summary()
        # The kills landed mid-stream: the one-stop saw failed calls and repeated them.
        assert report.retries > 0, report.summary()

        state = report.expected_state()
        steps = state.steps
        expected = {code: str(r["TrangThaiHoSo"]) for code, r in state.records.items()}
        assert len(expected) == 60

        def delivered() -> bool:
            held = {c: str(d["TrangThaiHoSo"]) for c, d in sim.dossiers.items()}
            return held == expected and steps <= sim_steps(sim)

        try:
            await eventually(
                delivered, 90, lambda: f"every dossier and step at DVCQG\n{hub_process.log_tail()}"
            )
        finally:
            exit_code = await hub_process.shut_down()
        assert exit_code == 0, hub_process.log_tail()
        assert sim_steps(sim) == steps
        # A step whose reply a kill cut off was settled with TraCuuHoSo, not sent again.
        assert sim.state()["step_receipts"]["duplicates"] == 0, sim.state()["step_receipts"]
