"""A stream of dossiers through a hub's facade, and its readiness, for the tests that break
something under a stream (the broker, the store) and count what arrives."""

from __future__ import annotations

from typing import Any

import aiohttp

from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator, step_key
from sims.one_stop.simulator import OneStopTraffic
from tests.support import ONESTOP_PASSWORD, ONESTOP_USER, UNIT


class Stream:
    """Waves of dossiers through the facade; remembers what DVCQG must end up holding."""

    def __init__(self, hub: Hub) -> None:
        self.url = f"http://127.0.0.1:{hub.port}/dvcqg"
        self.statuses: dict[str, str] = {}
        self.steps: set[Any] = set()
        self.seed = 40

    async def wave(self, n: int) -> None:
        self.seed += 1
        traffic = OneStopTraffic(self.url, ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=self.seed)
        report = await traffic.run(traffic.plan(n))
        expected = report.expected_state()
        self.statuses |= {c: str(r["TrangThaiHoSo"]) for c, r in expected.records.items()}
        self.steps |= expected.steps

    def delivered(self, sim: DvcqgSimulator) -> bool:
        held = {c: str(d["TrangThaiHoSo"]) for c, d in sim.dossiers.items()}
        got = {step_key(s) for ss in sim.steps.values() for s in ss}
        return held == self.statuses and got == self.steps


async def ready_status(hub: Hub) -> int:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{hub.port}/readyz") as r,
        ):
            return r.status
    except aiohttp.ClientError:
        return 0
