"""The pages an operator keeps open during an outage refresh by themselves: the unsynced-dossier
list empties as DVCQG confirms, with a filter being typed left as it is, and a dossier's page
turns from "not confirmed" to "confirmed" with the payload the operator opened still open;
the live bar is on both. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

from playwright.async_api import Page, expect

from hub.dashboard import i18n
from tests.browser.browser_world import (
    OPERATOR,
    PORTAL,
    VIEWER,
    VIEWER_PASSWORD,
    DashboardWorld,
    log_in,
    record_event,
    shoot,
)
from tests.browser.test_console_pages import _axe
from tests.support import eventually

LIVE_TIMEOUT_MS = 30_000


def vi(key: str, **values: object) -> str:
    return i18n.translate("vi", key, **values)


async def test_the_stuck_page_empties_by_itself_as_dvcqg_comes_back(
    world: DashboardWorld, page: Page
) -> None:
    await world.hub.set_paused(PORTAL, OPERATOR, "maintenance", True)
    codes = [world.new_code() for _ in range(3)]
    for code in codes:
        await world.post_events(record_event(code))
    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    await page.goto(world.url(f"/dashboard/stuck?destination={PORTAL}"))
    total = page.locator("[data-testid=stuck-total]")
    await expect(total).to_have_attribute("data-total", str(len(codes)))
    bar = page.locator("[data-testid=live-bar]")
    await expect(bar).to_be_visible()
    updated = await bar.locator("[data-testid=live-updated]").inner_text()
    await expect(bar.locator("[data-testid=live-updated]")).not_to_have_text(updated)
    await page.fill("input[name=procedure]", "1.0008")  # typed, not submitted
    await shoot(page, "waiting")

    await world.hub.set_paused(PORTAL, OPERATOR, "", False)
    await eventually(lambda: all(c in world.sim.dossiers for c in codes), 30, "DVCQG has them")
    await expect(total).to_have_attribute("data-total", "0", timeout=LIVE_TIMEOUT_MS)
    await expect(page.locator("[data-testid=no-stuck]")).to_be_visible()
    assert await page.input_value("input[name=procedure]") == "1.0008"
    assert "/stuck?destination=" in page.url  # no reload, no navigation
    await shoot(page, "emptied")


async def test_a_dossier_page_follows_its_delivery_and_keeps_an_open_payload_open(
    world: DashboardWorld, page: Page
) -> None:
    await world.hub.set_paused(PORTAL, OPERATOR, "maintenance", True)
    code = world.new_code()
    await world.post_events(record_event(code))
    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    await page.goto(world.url(f"/dashboard/dossiers/{code}"))
    verdict = page.locator("[data-testid=why-verdict]")
    await expect(verdict).to_have_text(vi("why.not_all"))
    received = page.locator("[data-testid=hop][data-kind=received] details").first
    await received.locator("summary").click()
    await expect(received.locator("[data-testid=payload]")).to_be_visible()
    await page.evaluate("window.__same_page = true")  # gone if the page were loaded again

    await world.hub.set_paused(PORTAL, OPERATOR, "", False)
    await eventually(lambda: code in world.sim.dossiers, 30, "the dossier at DVCQG")
    await expect(verdict).to_have_text(vi("why.all_confirmed"), timeout=LIVE_TIMEOUT_MS)
    portal = page.locator(f"[data-testid=why-destination][data-destination={PORTAL}]")
    await expect(portal).to_have_attribute("data-confirmed", "yes")
    await expect(received.locator("[data-testid=payload]")).to_be_visible()
    assert await page.evaluate("window.__same_page === true")
    await shoot(page, "confirmed")


async def test_the_overview_shows_another_replicas_duty_and_one_run_nowhere_without_a_reload(
    world: DashboardWorld, page: Page
) -> None:
    """As another replica takes a duty and a third's lease lapses, the replicas section
    follows: a new row for the other, and the duty run nowhere said in words; axe-core finds
    nothing serious in what the script built."""
    duties = world.hub.duties
    store = world.hub.store
    assert duties is not None
    assert store is not None
    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    section = page.locator("[data-testid=replicas]")
    rows = section.locator("[data-testid=replica-row]")
    await expect(rows).to_have_count(1)
    mine = rows.first
    await expect(mine).to_have_attribute("data-this", "yes")
    await expect(mine.locator("th")).to_have_text(f"{duties.holder} ({vi('replicas.this')})")
    await expect(mine.locator("li[data-duty]")).to_have_count(len(duties.kept()))
    unheld = section.locator("[data-testid=duties-unheld]")
    await expect(unheld).to_be_hidden()

    assert (await store.leases.acquire("vdxp-poll", "hub-other-1a2b", 300)).live
    await store.leases.acquire("ministry-poll-tax", "hub-gone-3c4d", 0.001)
    other = section.locator("[data-testid=replica-row][data-replica=hub-other-1a2b]")
    await expect(other).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(other).to_have_attribute("data-this", "no")
    await expect(other.locator("li[data-duty=vdxp-poll]")).to_contain_text(
        vi("replicas.until", time="")
    )
    await expect(unheld).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(unheld.locator("h3")).to_have_text(vi("replicas.unheld", n=1))
    await expect(unheld.locator("li[data-duty=ministry-poll-tax]")).to_contain_text("hub-gone-3c4d")
    await expect(rows).to_have_count(2)  # a lapsed holder is no replica
    assert page.url == world.url("/dashboard/")  # no reload, no navigation
    await shoot(page, "replicas")
    assert await _axe(page) == []  # the rows and the red box as the script built them
