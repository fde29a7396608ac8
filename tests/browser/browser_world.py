"""What the browser tests share (their fixtures, in conftest.py, are built on it): the hub's
dashboard world (a hub in process with the dashboard on, DVCQG's simulator, an HTTP client for
the APIs), the operators who log in, a hub of a test's own that it may stop and start, a TCP
proxy that can hang, and screenshots under `test-artifacts/screenshots/`. Test modules import
these from here, never from conftest.py or from each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from playwright.async_api import Page, expect

from hub.auth import hash_password
from hub.config import load_config
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER, UNIT, hub_overrides
from tests.support.parking import in_place

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
VIEWER, VIEWER_PASSWORD = "victor", "viewer-password"
OPERATOR, OPERATOR_PASSWORD = "alice", "operator-password"
PORTAL = "national_portal"
ACTION_TIMEOUT_MS = 10_000
# A full-page screenshot of a long page on a busy machine can take longer than an action.
SCREENSHOT_TIMEOUT_MS = 30_000


# -- screenshots --------------------------------------------------------------------------------


def _current_test() -> str:
    """The running test's name (with its parameters), from PYTEST_CURRENT_TEST."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "unknown::unknown (call)")
    name = current.rsplit("::", 1)[-1].rsplit(" (", 1)[0]
    return re.sub(r"[^A-Za-z0-9_.\-\[\]]", "_", name)


async def shoot(page: Page, step: str = "") -> Path:
    """Save a full-page screenshot as `<test name>[-<step>].png`; returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (f"{_current_test()}-{step}.png" if step else f"{_current_test()}.png")
    await page.screenshot(path=str(path), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)
    return path


# -- the hub ------------------------------------------------------------------------------------


class Site(Protocol):
    """Where a page goes: a hub's address."""

    def url(self, path: str) -> str: ...


async def log_in(page: Page, world: Site, username: str, password: str) -> None:
    """Log in through the form; on the overview when it returns."""
    await page.goto(world.url("/dashboard/login"))
    await page.fill("#login input[name=username]", username)
    await page.fill("#login input[name=password]", password)
    await page.click("#login [type=submit]")
    await page.wait_for_url(world.url("/dashboard/"))
    await expect(page.locator("[data-testid=user]")).to_contain_text(username)


@dataclass
class DashboardWorld:
    """The running hub, its DVCQG simulator and a plain HTTP client for the APIs."""

    hub: Hub
    sim: DvcqgSimulator
    http: aiohttp.ClientSession
    base: str
    _numbers: Iterator[int]

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def new_code(self) -> str:
        """A dossier code no other test of the session uses."""
        return f"{UNIT}-{datetime.now(VN_TZ):%y%m%d}-{next(self._numbers):04d}"

    async def post_events(self, *events: dict[str, Any]) -> dict[str, Any]:
        """POST canonical events as the one-stop system; every one must be accepted."""
        async with self.http.post(
            self.url("/api/v1/dossier-events"),
            json={"events": list(events)},
            headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
        ) as r:
            reply: dict[str, Any] = await r.json()
            assert r.status == 200, reply
        assert reply["rejected"] == 0, reply
        return reply

    async def admin_login(self, username: str, password: str) -> dict[str, str]:
        """Log in to the admin API; returns the headers (cookie, CSRF token) of the session."""
        async with self.http.post(
            self.url("/api/v1/admin/session"), json={"username": username, "password": password}
        ) as r:
            body = await r.json()
            assert r.status == 200, body
            session = r.cookies["hub_session"].value
        return {"Cookie": f"hub_session={session}", "X-CSRF-Token": body["csrf_token"]}

    async def parked_in_place(self, count: int) -> None:
        """Wait until DVCQG's parking queue holds `count` messages: whatever reads it (the
        dead-letter page and API) takes its messages and puts them back asynchronously."""
        portal = self.hub.connector(PORTAL)
        assert portal is not None
        assert portal.queues is not None
        assert self.hub.broker is not None
        await in_place(self.hub.broker, portal.queues.parking, count)

    async def dead_letters(self, headers: dict[str, str], connector: str) -> list[dict[str, Any]]:
        async with self.http.get(
            self.url(f"/api/v1/admin/dead-letters?connector={connector}"), headers=headers
        ) as r:
            body = await r.json()
            assert r.status == 200, body
        items: list[dict[str, Any]] = body["items"]
        return items


def record_event(code: str, status: str = "accepted", **extra: Any) -> dict[str, Any]:
    """The one-stop system's canonical record event for dossier `code`."""
    at = datetime.now(VN_TZ) - timedelta(minutes=5)
    return {
        "event_id": f"ev-{code}-{status}-{secrets.token_hex(3)}",
        "dossier_code": code,
        "kind": "record",
        "status": status,
        "occurred_at": at.isoformat(),
        "record": {
            "procedure_code": "1.000894",
            "procedure_name": "Đăng ký khai sinh",
            "owner_name": "Nguyễn Văn An",
            "received_at": at.isoformat(),
        },
        **extra,
    }


def dashboard_section() -> dict[str, Any]:
    return {
        "enabled": True,
        "users": {
            VIEWER: {"password_hash": hash_password(VIEWER_PASSWORD), "role": "viewer"},
            OPERATOR: {"password_hash": hash_password(OPERATOR_PASSWORD), "role": "operator"},
        },
        "refresh_s": 1,  # the overview polls fast enough for a test to see numbers move
        "overview_cache_s": 0.5,
        "sample_interval_s": 1,
        "failed_login_delay_s": 0.2,
    }


@asynccontextmanager
async def open_world(tmp: Path, broker_url: str) -> AsyncIterator[DashboardWorld]:
    """A hub with the dashboard on, on `broker_url`, DVCQG's simulator, its own queues."""
    prefix = f"t{secrets.token_hex(4)}"
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        overrides = hub_overrides(tmp, broker_url, prefix, sim.url)
        overrides["dashboard"] = dashboard_section()
        async with Hub(load_config(None, overrides)) as hub, aiohttp.ClientSession() as http:
            yield DashboardWorld(hub, sim, http, f"http://127.0.0.1:{hub.port}", count(9001))


@dataclass
class OwnHub:
    """A hub of one test's own, which it may stop and start again: the same port, store and
    broker queues each time (so a browser's session survives, as it does a real restart)."""

    overrides: dict[str, Any]
    port: int
    _stack: AsyncExitStack | None = field(default=None, repr=False)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> Hub:
        assert self._stack is None, "already running"
        stack = AsyncExitStack()
        hub = await stack.enter_async_context(Hub(load_config(None, self.overrides)))
        self._stack = stack
        return hub

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()


class TcpProxy:
    """A loopback TCP proxy to `target_port`. `hang()` makes it hold every byte a client sends
    (the connection stays open, no answer comes: a hub that hangs); `relay()` lets them through
    again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._relaying = asyncio.Event()
        self._relaying.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hang(self) -> None:
        self._relaying.clear()

    def relay(self) -> None:
        self._relaying.set()

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *_: object) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        self._relaying.set()  # held pipes see their closed ends and finish
        # The page keeps polling until it is closed, after this: a connection accepted just
        # before the close may still be opening its pipe, so close what is open until none is.
        for _round in range(50):
            for writer in list(self._writers):
                writer.close()
            if not self._writers:
                break
            await asyncio.sleep(0.1)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._closing:
            client_w.close()
            return
        self._writers.add(client_w)
        try:
            hub_r, hub_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            self._writers.discard(client_w)
            client_w.close()
            return
        self._writers.add(hub_w)
        try:
            await asyncio.gather(self._pipe(client_r, hub_w), self._pipe(hub_r, client_w))
        finally:
            self._writers.difference_update((client_w, hub_w))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self._relaying.wait()
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()
