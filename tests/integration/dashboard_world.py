"""A hub with the dashboard on, DVCQG's simulator behind it, and operators of every role.

Shared by the admin API tests and the sync-figure tests: `DashboardWorld.operator(role)` gives
a logged-in HTTP session (cookie jar plus CSRF token), `post_events` sends canonical events with
the one-stop's bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from hub.auth import hash_password
from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER, hub_overrides

PASSWORDS = {"viewer": "viewer-pass-1", "operator": "operator-pass-1", "admin": "admin-pass-1"}
USERS = {role: f"{role}1" for role in PASSWORDS}
_HASHES = {role: hash_password(pw) for role, pw in PASSWORDS.items()}


def dashboard_overrides(**extra: Any) -> dict[str, Any]:
    return {
        "users": {
            USERS[role]: {"password_hash": _HASHES[role], "role": role} for role in PASSWORDS
        },
        "failed_login_delay_s": 0.05,
        "max_failed_logins": 3,
        "lockout_s": 60,
        "sample_interval_s": 0.5,
        "overview_cache_s": 0,
        **extra,
    }


@dataclass
class Session:
    http: aiohttp.ClientSession
    base: str
    csrf: str = ""
    role: str = ""

    async def call(
        self, method: str, path: str, body: Any = None, csrf: str | None = None
    ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf} if method != "GET" else {}
        async with self.http.request(method, f"{self.base}{path}", json=body, headers=headers) as r:
            data = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, data


@dataclass
class DashboardWorld:
    hub: Hub
    sim: DvcqgSimulator
    base: str
    stack: AsyncExitStack
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    async def client(self) -> Session:
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[self.base])
        http = await self.stack.enter_async_context(aiohttp.ClientSession(cookie_jar=jar))
        return Session(http, self.base)

    async def operator(self, role: str) -> Session:
        session = await self.client()
        status, reply = await session.call(
            "POST", "/api/v1/admin/session", {"username": USERS[role], "password": PASSWORDS[role]}
        )
        assert status == 200, reply
        session.csrf, session.role = reply["csrf_token"], role
        return session

    async def post_events(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        session = await self.client()
        async with session.http.post(
            f"{self.base}/api/v1/dossier-events",
            json={"events": events},
            headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
        ) as r:
            assert r.status == 200
            reply: dict[str, Any] = await r.json()
            return reply


def record_event(code: str, event_id: str, status: str, at: datetime) -> dict[str, Any]:
    """A whole-record event: the dossier's status `status` at `at` (the one-stop's clock)."""
    return {
        "event_id": event_id,
        "dossier_code": code,
        "kind": "record",
        "occurred_at": at.isoformat(),
        "status": status,
        "record": {
            "procedure_code": "1.000494",
            "owner_name": "Nguyễn Văn An",
            "phone": "0912345678",
            "received_at": at.isoformat(),
        },
    }


@asynccontextmanager
async def dashboard_world(
    tmp_path: Path, rabbit_url: str, prefix: str, **dashboard: Any
) -> AsyncIterator[DashboardWorld]:
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        overrides = hub_overrides(tmp_path, rabbit_url, prefix, sim.url)
        overrides["dashboard"] = dashboard_overrides(**dashboard)
        hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
        yield DashboardWorld(hub, sim, f"http://127.0.0.1:{hub.port}", stack)
