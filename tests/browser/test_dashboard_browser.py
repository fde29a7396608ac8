"""The operators' dashboard in headless Chromium, against a running hub with traffic.

Logging in (and being refused with a wrong password), the overview's numbers moving while
events flow without the page reloading, a dossier found by its code with its journey from the
one-stop system to DVCQG, a dead letter replayed by an operator and delivered, the same action
refused to a viewer, and the language switch. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.conftest import (
    OPERATOR,
    OPERATOR_PASSWORD,
    PORTAL,
    VIEWER,
    VIEWER_PASSWORD,
    DashboardWorld,
    record_event,
    shoot,
)

LIVE_TIMEOUT_MS = 15_000


async def until(check: Callable[[], bool | Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """Wait until `check()` (plain or awaitable) is true; fail after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while True:
            outcome = check()
            if await outcome if inspect.isawaitable(outcome) else outcome:
                return
            await asyncio.sleep(0.1)


def count_of(text: str) -> int:
    """A number as the dashboard writes it (thousands separated): "1,204" → 1204."""
    return int(re.sub(r"[^0-9]", "", text))


def has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){name}(\s|$)")


async def log_in(page: Page, world: DashboardWorld, username: str, password: str) -> None:
    await page.goto(world.url("/dashboard/login"))
    await page.fill("#login input[name=username]", username)
    await page.fill("#login input[name=password]", password)
    await page.click("#login [type=submit]")
    await page.wait_for_url(world.url("/dashboard/"))
    await expect(page.locator("[data-testid=user]")).to_contain_text(username)


async def park(world: DashboardWorld) -> tuple[str, str]:
    """A dossier whose delivery DVCQG refuses for good (item code 07): its message is parked.

    Returns the dossier code and the parked message's id, read through the admin API."""
    code = world.new_code()
    world.sim.faults.reject[code] = "07"
    await world.post_events(record_event(code))
    operator = await world.admin_login(OPERATOR, OPERATOR_PASSWORD)
    found: list[dict[str, Any]] = []

    async def parked() -> bool:
        items = await world.dead_letters(operator, PORTAL)
        found[:] = [i for i in items if i["dossier_code"] == code]
        return bool(found)

    await until(parked)
    return code, str(found[0]["message_id"])


async def still_parked(world: DashboardWorld, message_id: str) -> bool:
    operator = await world.admin_login(OPERATOR, OPERATOR_PASSWORD)
    items = await world.dead_letters(operator, PORTAL)
    return any(i["message_id"] == message_id for i in items)


@contextlib.asynccontextmanager
async def traffic(world: DashboardWorld, every_s: float = 0.2) -> AsyncIterator[list[str]]:
    """New dossiers from the one-stop system, one every `every_s`, while the block runs."""
    sent: list[str] = []

    async def run() -> None:
        while True:
            code = world.new_code()
            await world.post_events(record_event(code))
            sent.append(code)
            await asyncio.sleep(every_s)

    task = asyncio.create_task(run())
    try:
        yield sent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- logging in ---------------------------------------------------------------------------------


async def test_a_wrong_password_is_refused_and_the_right_one_lets_in(
    page: Page, world: DashboardWorld
) -> None:
    await page.goto(world.url("/dashboard/"))
    await page.wait_for_url("**/dashboard/login**")  # not logged in: sent to the login page
    await page.fill("#login input[name=username]", VIEWER)
    await page.fill("#login input[name=password]", "not-the-password")
    await page.click("#login [type=submit]")
    error = page.locator("[data-testid=login-error]")
    await expect(error).to_be_visible()
    assert "/dashboard/login" in page.url
    assert not [c for c in await page.context.cookies() if c["name"] == "hub_session"]
    await shoot(page, "refused")

    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    session = [c for c in await page.context.cookies() if c["name"] == "hub_session"]
    assert session, "no session cookie after a good login"
    assert session[0]["httpOnly"]
    assert session[0]["sameSite"] == "Strict"
    assert session[0]["secure"]  # cookie_secure is on by default; Chromium keeps it on 127.0.0.1


async def test_vietnamese_by_default_and_the_switch_shows_english(
    page: Page, world: DashboardWorld
) -> None:
    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    html = page.locator("html")
    await expect(html).to_have_attribute("lang", "vi")
    switch = page.locator("[data-testid=lang-switch]")
    await expect(switch).to_have_text("English")  # the switch offers the other language
    vietnamese = await page.locator("body").inner_text()
    await shoot(page, "vi")

    await switch.click()
    await expect(html).to_have_attribute("lang", "en")
    await expect(switch).to_have_text("Tiếng Việt")
    english = await page.locator("body").inner_text()
    assert english != vietnamese
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    assert cookies.get("hub_lang") == "en"
    await shoot(page, "en")

    # The choice sticks on the next page.
    await page.goto(world.url("/dashboard/dead-letters"))
    await expect(html).to_have_attribute("lang", "en")


# -- the overview -------------------------------------------------------------------------------


async def test_the_overview_numbers_move_while_traffic_flows_without_a_reload(
    page: Page, world: DashboardWorld
) -> None:
    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    card = page.locator(f"[data-testid=connector-card][data-connector={PORTAL}]")
    await expect(card).to_be_visible()
    for field in ("state", "throughput", "error_rate", "queue_depth", "dead_letters"):
        await expect(card.locator(f"[data-field={field}]")).to_have_count(1)
    for testid in ("completeness", "lag-p50", "lag-p95", "updated-at"):
        await expect(page.locator(f"[data-testid={testid}]")).to_be_visible()
    await page.evaluate("window.__sameDocument = 'yes'")
    # The completeness box holds the ratio, and "confirmed / dossiers" below it.
    dossiers = "[data-testid=completeness-dossiers]"
    throughput = f"[data-connector={PORTAL}] [data-field=throughput]"
    before = {sel: await page.locator(sel).inner_text() for sel in (dossiers, throughput)}
    await shoot(page, "before")

    async with traffic(world) as sent:
        for selector, text in before.items():
            await page.wait_for_function(
                """([selector, before]) => {
                    const node = document.querySelector(selector);
                    return node !== null && node.textContent.trim() !== before.trim();
                }""",
                arg=[selector, text],
                timeout=LIVE_TIMEOUT_MS,
            )
    assert sent, "no traffic was sent"
    assert count_of(await page.locator(dossiers).inner_text()) > count_of(before[dossiers])
    await shoot(page, "after")
    # The same document all along: the numbers came by polling, not by reloading.
    assert await page.evaluate("window.__sameDocument") == "yes"
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1


# -- a dossier's journey ------------------------------------------------------------------------


async def test_a_dossier_found_by_its_code_shows_its_journey_to_dvcqg(
    page: Page, world: DashboardWorld
) -> None:
    code = world.new_code()
    await world.post_events(record_event(code))
    await until(lambda: code in world.sim.dossiers)

    viewer = await world.admin_login(VIEWER, VIEWER_PASSWORD)

    async def delivered() -> bool:
        async with world.http.get(world.url(f"/api/v1/admin/dossiers/{code}"), headers=viewer) as r:
            body = await r.json()
        return r.status == 200 and any(h["kind"] == "delivered" for h in body["timeline"])

    await until(delivered)

    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    await page.goto(world.url("/dashboard/dossiers"))
    await page.fill("input[name=q]", code)
    await page.press("input[name=q]", "Enter")
    await page.wait_for_url(world.url(f"/dashboard/dossiers/{code}"))
    timeline = page.locator("[data-testid=timeline]")
    await expect(timeline).to_be_visible()
    hops = timeline.locator("[data-testid=hop]")
    kinds = [await hops.nth(i).get_attribute("data-kind") for i in range(await hops.count())]
    assert "received" in kinds, kinds
    assert "delivered" in kinds, kinds
    assert kinds.index("received") < kinds.index("delivered"), kinds
    received = timeline.locator("[data-testid=hop][data-kind=received]").first
    await expect(received).to_contain_text("onestop")
    delivered_hop = timeline.locator("[data-testid=hop][data-kind=delivered]").first
    await expect(delivered_hop).to_contain_text(PORTAL)
    await shoot(page, "timeline")

    unknown = world.new_code()
    response = await page.goto(world.url(f"/dashboard/dossiers/{unknown}"))
    assert response is not None
    assert response.status == 404
    await expect(page.locator("[data-testid=not-found]")).to_be_visible()


# -- dead letters -------------------------------------------------------------------------------


async def test_an_operator_replays_a_dead_letter_and_dvcqg_receives_it(
    page: Page, world: DashboardWorld
) -> None:
    code, message_id = await park(world)
    assert code not in world.sim.dossiers

    await log_in(page, world, OPERATOR, OPERATOR_PASSWORD)
    await page.goto(world.url(f"/dashboard/dead-letters?connector={PORTAL}"))
    row = page.locator(f"tr[data-testid=dead-letter][data-message-id='{message_id}']")
    await expect(row).to_be_visible()
    await expect(row).to_contain_text(code)
    await expect(row).to_contain_text("07")
    await shoot(page, "parked")

    del world.sim.faults.reject[code]  # DVCQG takes the dossier now
    await row.locator("input[name=message_id]").check()
    replay = page.locator("button[data-testid=replay]")
    await expect(replay).to_be_enabled()
    await replay.click()
    flash = page.locator("[data-testid=flash]")
    await expect(flash).to_be_visible()
    await expect(flash).to_have_class(has_class("ok"))
    await shoot(page, "replayed")

    await until(lambda: code in world.sim.dossiers)
    assert not await still_parked(world, message_id)
    await expect(
        page.locator(f"tr[data-testid=dead-letter][data-message-id='{message_id}']")
    ).to_have_count(0)

    # The dossier's timeline tells the story: parked, replayed, delivered.
    await page.goto(world.url(f"/dashboard/dossiers/{code}"))
    hops = page.locator("[data-testid=timeline] [data-testid=hop]")
    for kind in ("parked", "replayed", "delivered"):
        await expect(hops.and_(page.locator(f"[data-kind={kind}]"))).not_to_have_count(0)
    await shoot(page, "timeline")

    # And the audit log names who replayed what.
    await page.goto(world.url("/dashboard/audit"))
    entry = page.locator("tr[data-testid=audit-entry]").filter(has_text=message_id)
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text(OPERATOR)
    await expect(entry).to_contain_text("replay")


async def test_a_viewer_may_not_replay_a_dead_letter(page: Page, world: DashboardWorld) -> None:
    code, message_id = await park(world)
    # DVCQG would take it now: if the refusal leaked, the dossier would arrive there.
    del world.sim.faults.reject[code]

    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    await page.goto(world.url(f"/dashboard/dead-letters?connector={PORTAL}"))
    row = page.locator(f"tr[data-testid=dead-letter][data-message-id='{message_id}']")
    await expect(row).to_be_visible()
    replay = page.locator("button[data-testid=replay]")
    await expect(replay).to_be_disabled()
    await expect(page.locator("button[data-testid=discard]")).to_be_disabled()
    await shoot(page, "disabled")

    # Force it: what a viewer could do by editing the page.
    await page.evaluate(
        """() => document
            .querySelectorAll('button[data-testid=replay], input[name=message_id]')
            .forEach((node) => node.removeAttribute('disabled'))"""
    )
    await row.locator("input[name=message_id]").check()
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await replay.click()
    assert (await answer.value).status == 403
    flash = page.locator("[data-testid=flash]")
    await expect(flash).to_be_visible()
    await expect(flash).to_have_class(has_class("error"))
    await shoot(page, "refused")

    await asyncio.sleep(1.0)  # a replay that slipped through would reach DVCQG by now
    assert code not in world.sim.dossiers
    assert await still_parked(world, message_id)

    # Nor may a viewer read the audit log.
    response = await page.goto(world.url("/dashboard/audit"))
    assert response is not None
    assert response.status == 403
