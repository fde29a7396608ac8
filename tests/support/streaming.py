"""A stream of dossiers through a hub's facade, and its readiness, for the tests that break
something under a stream (the broker, the store) and count what arrives."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import aiohttp

from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator, step_key
from sims.one_stop.simulator import OneStopTraffic
from tests.support import ONESTOP_PASSWORD, ONESTOP_USER, UNIT

# A dossier's life through the hub's own door, each status a minute after the one before,
# and DVCQG's number (TrangThaiHoSo) of each status.
LIFE = ["submitted", "accepted", "processing", "processed", "returned"]
NUMBERS = {"submitted": 1, "accepted": 2, "processing": 4, "processed": 9, "returned": 10}


def life_record(code: str, step: int, start: datetime, event_id: str) -> dict[str, Any]:
    """The whole-record event (`/api/v1/dossier-events`) of the dossier's `step`-th status."""
    return {
        "event_id": event_id,
        "dossier_code": code,
        "kind": "record",
        "status": LIFE[step],
        "occurred_at": (start + timedelta(minutes=step)).isoformat(),
        "record": {
            "procedure_code": "1.000894",
            "procedure_name": "Đăng ký khai sinh",
            "received_at": start.isoformat(),
        },
    }


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
