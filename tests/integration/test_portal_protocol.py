"""The DVCQG client against a double written here from PROTOCOL.md alone (not the project's
simulator, whose shared code could hide a mistake made on both sides): wrong credentials
(`-1`) and a session the portal keeps refusing make the connector "credentials refused"
without looping through log-ins, and the dossier flow and the catalogue sync share one
session per account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors.national_portal.client import PortalClient, PortalSession
from connectors.national_portal.config import NationalPortalConfig
from connectors.national_portal.mapping import PortalCodes
from hub.config_blocks import BreakerConfig, RetryConfig
from hub.errors import CredentialsRefused
from hub.outage import State

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "hub-h41", "dung-mat-khau"


@dataclass
class Portal:
    """Login (`username`, `password`) → `{"error_code": 0, "session": ...}` or HTTP 401
    `{"error_code": -1}`; a service call answers as `mode` says."""

    mode: str = "ok"
    logins: int = 0
    sessions: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        if "username" in body:
            if (body["username"], body["password"]) != (USER, PASSWORD):
                return web.json_response({"error_code": -1, "message": "Sai mật khẩu"}, status=401)
            self.logins += 1
            self.sessions.append(f"phien-{self.logins}")
            return web.json_response({"error_code": 0, "session": self.sessions[-1]})
        if self.mode == "no_rights":
            return web.json_response({"error_code": -1, "message": "Tài khoản không có quyền"})
        if self.mode == "session_refused" or body.get("session") not in self.sessions:
            return web.json_response({"error_code": "401", "message": "Phiên hết hạn"}, status=401)
        return web.json_response({"error_code": "00", "data": {"mahoso": body.get("mahoso")}})


@pytest.fixture
async def portal() -> AsyncIterator[tuple[Portal, str]]:
    double = Portal()
    app = web.Application()
    app.router.add_post("/api", double.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield double, f"http://127.0.0.1:{port}/api"
    await runner.cleanup()


def client(url: str, http: aiohttp.ClientSession, **kwargs: Any) -> PortalClient:
    config = NationalPortalConfig(
        base_url=url,
        username=USER,
        password=PASSWORD,
        retry=RetryConfig(attempts=1),
        breaker=BreakerConfig(failure_threshold=1, first_probe_s=0.1, recovery_s=0.2),
    )
    codes = PortalCodes.load(ROOT / "mappings" / "national_portal.yaml")
    return PortalClient(config, codes, http, **kwargs)


async def test_minus_one_on_a_call_means_wrong_credentials_not_an_expired_session(
    portal: tuple[Portal, str],
) -> None:
    double, url = portal
    double.mode = "no_rights"
    async with aiohttp.ClientSession() as http:
        dvcqg = client(url, http)
        with pytest.raises(CredentialsRefused, match="credentials"):
            await dvcqg.lookup("000.00.41.H41-261206-0001")
        assert dvcqg.guard.gate.state() is State.credentials_refused
    assert double.logins == 1  # no log-in loop


async def test_a_session_refused_right_after_its_log_in_stops_the_loop(
    portal: tuple[Portal, str],
) -> None:
    double, url = portal
    double.mode = "session_refused"
    async with aiohttp.ClientSession() as http:
        dvcqg = client(url, http)
        with pytest.raises(CredentialsRefused, match="just issued"):
            await dvcqg.lookup("000.00.41.H41-261206-0001")
    assert double.logins == 2  # the first session, then one renewal; no more


async def test_the_flow_and_the_catalogue_share_one_session(portal: tuple[Portal, str]) -> None:
    double, url = portal
    async with aiohttp.ClientSession() as http:
        shared = PortalSession()
        flow = client(url, http, session=shared)
        catalogue = client(url, http, guard_name="national_portal.catalogue", session=shared)
        for dvcqg in (flow, catalogue, flow, catalogue):
            await dvcqg.lookup("000.00.41.H41-261206-0001")
        assert double.logins == 1
        # The portal forgets it: one renewal serves both clients.
        double.sessions.clear()
        await flow.lookup("000.00.41.H41-261206-0002")
        await catalogue.lookup("000.00.41.H41-261206-0002")
        assert double.logins == 2
        assert shared.logins == 2
