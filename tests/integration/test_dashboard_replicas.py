"""The overview's replicas section: an operator logged in to one replica's dashboard sees every
live replica (holding a duty or standing by) and which duty each runs, with the lease's expiry
in UTC+7, this replica marked, and a duty nobody holds said in words. Two hubs on one
PostgreSQL store (the holder stops, the page shows the other holding everything), and one hub
alone on SQLite.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import lxml.html

from hub.config import load_config
from hub.dashboard.flows import TIMEZONE
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from tests.integration.dashboard_world import PASSWORDS, USERS, dashboard_overrides
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually, hub_overrides

LEASE_S = 2.0
RENEW_S = 0.3
MOMENT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


async def logged_in(stack: AsyncExitStack, hub: Hub) -> tuple[aiohttp.ClientSession, str]:
    """A viewer's session on `hub`'s dashboard, logged in through the form; and its address."""
    base = f"http://127.0.0.1:{hub.port}"
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])  # Secure cookies
    http = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=jar))
    async with http.get(f"{base}/dashboard/login") as r:
        form = lxml.html.fromstring(await r.text())
    nonce = form.xpath("string(//input[@name='login_nonce']/@value)")
    login = {"username": USERS["viewer"], "password": PASSWORDS["viewer"], "login_nonce": nonce}
    async with http.post(f"{base}/dashboard/login", data=login, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
    return http, base


async def replicas_section(http: aiohttp.ClientSession, base: str, lang: str) -> dict[str, Any]:
    """The overview's replicas section as an operator reads it: each replica's row (marked
    this one or not, its duties and their lease expiries), the duties held by none, and
    whether the store could not be read."""
    async with http.get(f"{base}/dashboard/?lang={lang}", allow_redirects=False) as r:
        assert r.status == 200, r.headers.get("Location")
        page = lxml.html.fromstring(await r.text())
    (section,) = page.xpath("//section[@data-testid='replicas']")
    rows = {}
    for row in section.xpath(".//tr[@data-testid='replica-row']"):
        rows[row.get("data-replica")] = {
            "this": row.get("data-this") == "yes",
            "name": row.xpath("string(th)").strip(),
            "duties": {li.get("data-duty"): li.text_content() for li in row.xpath(".//li")},
            "cell": row.xpath("string(td)").strip(),
        }
    (unheld,) = section.xpath(".//*[@data-testid='duties-unheld']")
    (unread,) = section.xpath(".//*[@data-testid='replicas-unread']")
    return {
        "rows": rows,
        "order": list(rows),
        "unheld": None
        if unheld.get("hidden") is not None
        else {
            "title": unheld.xpath("string(h3)"),
            "duties": {li.get("data-duty"): li.text_content() for li in unheld.xpath(".//li")},
        },
        "unread": unread.get("hidden") is None,
    }


def local_expiry(text: str) -> datetime:
    """The lease expiry a duty's line shows, read as the province's time (UTC+7)."""
    found = MOMENT.search(text)
    assert found, text
    return datetime.strptime(found.group(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=TIMEZONE)


def assert_expiries_ahead(duties: dict[str, str], lease_s: float) -> None:
    """Each lease ends within `lease_s` from now, read in UTC+7 (in UTC it would be 7 h off)."""
    now = datetime.now(UTC)
    for duty, line in duties.items():
        ends = local_expiry(line)
        assert now - timedelta(seconds=2) <= ends <= now + timedelta(seconds=lease_s + 2), (
            duty,
            line,
        )


async def test_one_replicas_dashboard_shows_both_and_their_duties_then_the_other_holding_them(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, postgres_database: str
) -> None:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        hubs: dict[str, Hub] = {}
        stops: dict[str, AsyncExitStack] = {}
        for name in ("a", "b"):
            settings = hub_overrides(tmp_path / name, rabbit_url, broker_prefix, portal.url)
            settings["store"] = {"backend": "postgresql", "url": postgres_database}
            settings["duties"] = {"lease_s": LEASE_S, "renew_every_s": RENEW_S}
            settings["dashboard"] = dashboard_overrides()
            stops[name] = await stack.enter_async_context(AsyncExitStack())
            hubs[name] = await stops[name].enter_async_context(Hub(load_config(None, settings)))
        a, b = (hubs[n].duties for n in ("a", "b"))
        assert a is not None
        assert b is not None
        duties = a.kept()
        assert {"alerts", "outbox-sweep"} <= set(duties)
        assert a.held() == duties  # hub a started first and took every duty at once

        # On hub b's dashboard: b itself first, marked, standing by; a running every duty.
        http, base = await logged_in(stack, hubs["b"])
        seen = await replicas_section(http, base, "en")
        assert seen["order"] == [b.holder, a.holder]
        mine, theirs = seen["rows"][b.holder], seen["rows"][a.holder]
        assert mine["this"]
        assert not theirs["this"]
        assert mine["name"] == f"{b.holder} (this replica)"
        assert (mine["duties"], mine["cell"]) == ({}, "holds no duty: standing by")
        assert theirs["name"] == a.holder
        assert sorted(theirs["duties"]) == duties
        assert_expiries_ahead(theirs["duties"], LEASE_S)
        assert all("until " in line for line in theirs["duties"].values())
        assert seen["unheld"] is None
        assert not seen["unread"]
        vi = await replicas_section(http, base, "vi")
        assert vi["rows"][b.holder]["name"] == f"{b.holder} (bản chạy này)"

        # The admin API's overview says the same.
        async with http.get(f"{base}/api/v1/admin/overview") as r:
            body = (await r.json())["replicas"]
        assert body["this_replica"] == b.holder
        assert body["store_read"] is True
        assert [(p["name"], p["this"]) for p in body["replicas"]] == [
            (b.holder, True),
            (a.holder, False),
        ]
        assert [d["name"] for d in body["replicas"][1]["duties"]] == duties
        assert body["unheld"] == []

        # On hub a's dashboard b is listed too, though it holds no duty: its presence lease.
        http_a, base_a = await logged_in(stack, hubs["a"])
        seen_a = await replicas_section(http_a, base_a, "en")
        assert seen_a["order"] == [a.holder, b.holder]
        assert seen_a["rows"][b.holder]["cell"] == "holds no duty: standing by"
        assert sorted(seen_a["rows"][a.holder]["duties"]) == duties

        # Hub a stops and hands its duties over: b's page shows b running every one of them.
        await stops["a"].aclose()

        async def b_runs_everything() -> bool:
            now = await replicas_section(http, base, "en")
            return now["order"] == [b.holder] and sorted(now["rows"][b.holder]["duties"]) == (
                duties
            )

        await eventually(b_runs_everything, 30, "hub b's page showing it running every duty")
        seen = await replicas_section(http, base, "en")
        assert seen["rows"][b.holder]["this"]
        assert_expiries_ahead(seen["rows"][b.holder]["duties"], LEASE_S)
        assert seen["unheld"] is None
        assert not seen["unread"]


async def test_a_hub_alone_on_sqlite_shows_itself_running_its_duties_and_a_lapsed_one_as_unheld(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        settings = hub_overrides(tmp_path, rabbit_url, broker_prefix, portal.url)
        settings["store"] = {"path": str(tmp_path / "hub.db")}
        settings["dashboard"] = dashboard_overrides()
        hub = await stack.enter_async_context(Hub(load_config(None, settings)))
        duties = hub.duties
        assert duties is not None
        assert duties.held() == duties.kept()
        http, base = await logged_in(stack, hub)

        seen = await replicas_section(http, base, "en")
        assert seen["order"] == [duties.holder]
        row = seen["rows"][duties.holder]
        assert row["this"]
        assert row["name"] == f"{duties.holder} (this replica)"
        assert sorted(row["duties"]) == duties.kept()
        assert_expiries_ahead(row["duties"], hub.config.duties.lease_s)
        assert seen["unheld"] is None
        assert not seen["unread"]

        # A duty whose holder died (a replica with a connector this one lacks): its lease
        # lapsed and nobody takes it. The page says it runs nowhere, and whose lease lapsed.
        assert hub.store is not None
        gone = await hub.store.leases.acquire("ministry-poll-tax", "hub-gone-1a2b", 0.001)
        lapsed_at = datetime.fromtimestamp(gone.expires_at, UTC).astimezone(TIMEZONE)

        async def shown_unheld() -> bool:
            return (await replicas_section(http, base, "en"))["unheld"] is not None

        await eventually(shown_unheld, 10, "the lapsed duty on the overview")
        seen = await replicas_section(http, base, "en")
        assert seen["unheld"] == {
            "title": "Not running: 1 duty(ies) held by no replica",
            "duties": {
                "ministry-poll-tax": "ministry-poll-tax: the lease of hub-gone-1a2b lapsed at "
                f"{lapsed_at:%Y-%m-%d %H:%M:%S}; no replica has taken it since"
            },
        }
        assert list(seen["rows"]) == [duties.holder]  # a lapsed holder is not a replica
        vi = await replicas_section(http, base, "vi")
        assert vi["unheld"] is not None
        assert vi["unheld"]["title"] == "Không chạy: 1 nhiệm vụ không có bản chạy nào giữ"
