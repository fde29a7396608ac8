"""The dossier status flow's test world: the DVCQG simulator and a hub in process, a bare
one-stop adapter calling the facade, and what DVCQG must end up holding. Shared by the
status-flow test modules (which import it from here, never from each other)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator, step_key
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    hub_config,
)


@pytest.fixture
async def sim() -> AsyncIterator[DvcqgSimulator]:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as s:
        yield s


@pytest.fixture
async def hub(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, sim: DvcqgSimulator
) -> AsyncIterator[Hub]:
    async with Hub(hub_config(tmp_path, rabbit_url, broker_prefix, sim.url)) as h:
        yield h


def facade_url(hub: Hub) -> str:
    return f"http://127.0.0.1:{hub.port}/dvcqg"


class FacadeCaller:
    """A bare one-stop adapter: logs in once, then posts what a test gives it."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.session = ""

    async def login(self) -> None:
        async with self.http.post(
            self.url, json={"username": ONESTOP_USER, "password": ONESTOP_PASSWORD}
        ) as r:
            self.session = (await r.json())["session"]

    async def call(self, service: str, **body: Any) -> tuple[int, dict[str, Any]]:
        payload = {"service": service, "session": self.session, "madonvi": UNIT, **body}
        async with self.http.post(self.url, json=payload) as r:
            return r.status, await r.json()


@pytest.fixture
async def caller(hub: Hub) -> AsyncIterator[FacadeCaller]:
    async with aiohttp.ClientSession() as http:
        c = FacadeCaller(http, facade_url(hub))
        await c.login()
        yield c


def expected_state(traffic_report: Any) -> tuple[dict[str, str], set[tuple[str, str, str, str]]]:
    expected = traffic_report.expected_state()
    statuses = {code: str(record["TrangThaiHoSo"]) for code, record in expected.records.items()}
    return statuses, expected.steps


def sim_steps(sim: DvcqgSimulator) -> set[tuple[str, str, str, str]]:
    return {step_key(s) for steps in sim.steps.values() for s in steps}
