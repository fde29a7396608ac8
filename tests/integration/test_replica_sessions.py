"""What an operator meets behind a load balancer that sends each request to any of two
replicas (one PostgreSQL store): a session opened on one is good on the other, CSRF token
included; a pause made through one is seen by the other; a log-out on one ends the session on
both; and failed log-ins on one lock the name for that client on the other. Nothing of this
may live in one process's memory.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from tests.integration.dashboard_world import PASSWORDS, USERS, dashboard_overrides
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually, hub_overrides
from tests.support.serving import post_from

SESSION = "/api/v1/admin/session"
OVERVIEW = "/api/v1/admin/overview"
PAUSE = "/api/v1/admin/connectors/national_portal/pause"
RESUME = "/api/v1/admin/connectors/national_portal/resume"


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, csrf: str = ""
) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": csrf} if method != "GET" else {}
    async with http.request(method, url, json=body, headers=headers) as r:
        data = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, data


async def portal_state(http: aiohttp.ClientSession, base: str) -> str:
    status, overview = await call(http, "GET", f"{base}{OVERVIEW}")
    assert status == 200, overview
    card = next(c for c in overview["connectors"] if c["name"] == "national_portal")
    return str(card["state"])


async def test_a_session_a_pause_a_log_out_and_a_lock_out_hold_on_every_replica(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, postgres_database: str
) -> None:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        bases = []
        for name in ("a", "b"):
            settings = hub_overrides(tmp_path / name, rabbit_url, broker_prefix, portal.url)
            settings["store"] = {"backend": "postgresql", "url": postgres_database}
            settings["dashboard"] = dashboard_overrides()
            hub = await stack.enter_async_context(Hub(load_config(None, settings)))
            bases.append(f"http://127.0.0.1:{hub.port}")
        a, b = bases

        # Logged in on a; the cookie (the jar ignores ports, like a browser behind one
        # address) and the CSRF token are good on b.
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=bases)
        http = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=jar))
        login = {"username": USERS["operator"], "password": PASSWORDS["operator"]}
        status, reply = await call(http, "POST", f"{a}{SESSION}", login)
        assert status == 200, reply
        csrf = reply["csrf_token"]
        assert await portal_state(http, b) == "up"

        # Paused through b with the token a gave; a sees it (the store is the only channel).
        status, reply = await call(http, "POST", f"{b}{PAUSE}", {"reason": "bảo trì"}, csrf)
        assert status == 200, reply

        async def paused_on_a() -> bool:
            return await portal_state(http, a) == "paused"

        await eventually(paused_on_a, 20, "the pause made through b seen on a")
        status, reply = await call(http, "POST", f"{a}{RESUME}", {}, csrf)
        assert status == 200, reply

        # Logged out on b: the session is over on a as well.
        status, reply = await call(http, "DELETE", f"{b}{SESSION}", None, csrf)
        assert status in (200, 204), reply
        status, reply = await call(http, "GET", f"{a}{OVERVIEW}")
        assert status == 401, reply

        # Wrong passwords through a lock the name for this client on b, even the right one;
        # another client is not locked out by it.
        wrong = {"username": USERS["admin"], "password": "doan-mo"}
        right = {"username": USERS["admin"], "password": PASSWORDS["admin"]}
        seen = [(await post_from("127.0.0.11", f"{a}{SESSION}", wrong))[0] for _ in range(3)]
        assert seen == [401, 401, 429], seen
        status, reply = await post_from("127.0.0.11", f"{b}{SESSION}", right)
        assert (status, reply["error"]) == (429, "locked")
        status, reply = await post_from("127.0.0.12", f"{b}{SESSION}", right)
        assert status == 200, reply
