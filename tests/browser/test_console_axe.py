"""axe-core's accessibility pass on the pages of the console that test_console_pages.py does not
cover: a dossier and its "why", a search, the unsynced dossiers, the dead letters (the list,
one message, a bulk action's preview and its progress), the users (as an admin) and the audit
log, at 1440 px and at a phone's width, with something on each page (a refused dossier, its
parked messages, a finished bulk replay). No serious or critical violation is allowed.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from hub.auth import hash_password
from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from tests.browser.browser_world import (
    PORTAL,
    DashboardWorld,
    dashboard_section,
    log_in,
    record_event,
)
from tests.browser.test_console_pages import WIDTHS, _axe
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually, hub_overrides

ADMIN, ADMIN_PASSWORD = "quantri", "admin-password"


@pytest.fixture
async def admin_world(tmp_path: Path, rabbit_url: str) -> AsyncIterator[DashboardWorld]:
    """The browser tests' world with an admin too (the users page is an admin's)."""
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        overrides = hub_overrides(tmp_path, rabbit_url, f"t{secrets.token_hex(4)}", sim.url)
        dashboard = dashboard_section()
        dashboard["users"][ADMIN] = {
            "password_hash": hash_password(ADMIN_PASSWORD),
            "role": "admin",
        }
        overrides["dashboard"] = dashboard
        async with Hub(load_config(None, overrides)) as hub, aiohttp.ClientSession() as http:
            yield DashboardWorld(hub, sim, http, f"http://127.0.0.1:{hub.port}", count(9001))


async def _refused_dossier(world: DashboardWorld) -> str:
    code = world.new_code()
    world.sim.faults.reject[code] = "04"
    await world.post_events(record_event(code))
    await world.parked_in_place(1)
    return code


@pytest.mark.parametrize("screen", list(WIDTHS))
async def test_the_dossier_stuck_dead_letter_users_and_audit_pages_pass_axe(
    admin_world: DashboardWorld, page: Page, screen: str
) -> None:
    world = admin_world
    width, height = WIDTHS[screen]
    await page.set_viewport_size({"width": width, "height": height})
    code = await _refused_dossier(world)
    waiting = world.new_code()
    await world.hub.set_paused(PORTAL, ADMIN, "bảo trì", True)
    await world.post_events(record_event(waiting))
    await log_in(page, world, ADMIN, ADMIN_PASSWORD)

    await page.goto(world.url(f"/dashboard/dead-letters?connector={PORTAL}"))
    inspect = page.locator("tr[data-testid=dead-group] a").filter(has_text="Xem").first
    message_page = await inspect.get_attribute("href")
    assert message_page
    fragment = code.split("-", 1)[1][:6]
    pages: list[tuple[str, str]] = [
        ("dossier", f"/dashboard/dossiers/{code}"),
        ("waiting dossier", f"/dashboard/dossiers/{waiting}"),
        ("search", f"/dashboard/dossiers?q={fragment}"),
        ("search, nothing", "/dashboard/dossiers?q=nobody-at-all"),
        ("stuck", f"/dashboard/stuck?destination={PORTAL}"),
        ("dead letters", f"/dashboard/dead-letters?connector={PORTAL}"),
        ("one dead letter", message_page),
        ("bulk replay preview", f"/dashboard/bulk-actions/new?action=replay&connector={PORTAL}"),
        ("bulk discard preview", f"/dashboard/bulk-actions/new?action=discard&connector={PORTAL}"),
        ("users", "/dashboard/users"),
        ("audit", "/dashboard/audit"),
    ]
    found: dict[str, list[dict[str, Any]]] = {}
    for name, path in pages:
        await page.goto(world.url(path))
        await expect(page.locator("main h1")).to_be_visible()
        if violations := await _axe(page):
            found[name] = violations

    # A bulk replay's progress page, once done.
    await world.hub.set_paused(PORTAL, ADMIN, "", False)
    del world.sim.faults.reject[code]
    await eventually(lambda: waiting in world.sim.dossiers, 30, "the waiting dossier delivered")
    await page.goto(world.url(f"/dashboard/bulk-actions/new?action=replay&connector={PORTAL}"))
    await page.click("[data-testid=bulk-go]")
    job = page.locator("[data-testid=bulk-job]")
    await expect(job).to_have_attribute("data-state", "done", timeout=30_000)
    if violations := await _axe(page):
        found["bulk progress"] = violations
    assert found == {}
