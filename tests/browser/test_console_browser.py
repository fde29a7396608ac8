"""The console an operator uses during an outage and after it, in headless Chromium: the
stuck-dossier page reached from the overview's completeness card (as many as it counts,
filtered by agency), the search (a fragment in any case, an owner's whole name shown masked),
a refused dossier's "why" with its replay, and a bulk replay and a bulk discard of hundreds of
dead letters with a preview, a confirmation and progress, the broker's counts after each.
Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Page, expect

from connectors.national_portal.procedures.store import SqliteProcedures
from hub.broker import CONNECTOR_HEADER, REASON_HEADER, message
from hub.dashboard import i18n
from hub.health import QueueProbe
from tests.browser.browser_world import (
    OPERATOR,
    OPERATOR_PASSWORD,
    PORTAL,
    VIEWER,
    VIEWER_PASSWORD,
    DashboardWorld,
    log_in,
    record_event,
    shoot,
)
from tests.support import eventually

LIVE_TIMEOUT_MS = 30_000


def vi(key: str, **values: object) -> str:
    return i18n.translate("vi", key, **values)


def digits(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text))


async def test_the_stuck_page_lists_what_dvcqg_has_not_confirmed(
    world: DashboardWorld, page: Page
) -> None:
    await world.hub.set_paused(PORTAL, OPERATOR, "maintenance", True)
    codes = [world.new_code() for _ in range(3)]
    other = codes[0].replace("000.00.41.H41", "000.20.41.H41")
    for code in [*codes, other]:
        await world.post_events(record_event(code))

    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    await page.reload()
    unconfirmed = digits(
        await page.locator("[data-testid=completeness-dossiers]").inner_text()
    ) - digits(await page.locator("[data-testid=completeness-confirmed]").inner_text())
    assert unconfirmed >= 4
    await page.locator("[data-testid=stuck-link]").click()
    await page.wait_for_url(re.compile(r"/dashboard/stuck\?destination=national_portal"))
    total = page.locator("[data-testid=stuck-total]")
    await expect(total).to_have_attribute("data-total", str(unconfirmed))
    row = page.locator(f"tr[data-testid=stuck-row][data-code='{codes[1]}']")
    await expect(row).to_contain_text(vi("stuck.outcome.waiting"))
    await expect(row).to_contain_text(vi("state.paused"))
    await shoot(page, "stuck")

    await page.fill("input[name=agency]", "000.20.41.H41")
    await page.click("[data-testid=stuck-filters] button[type=submit]")
    await expect(total).to_have_attribute("data-total", "1")
    await expect(page.locator("tr[data-testid=stuck-row]")).to_have_count(1)
    await expect(page.locator("tr[data-testid=stuck-row]")).to_contain_text(other)
    await shoot(page, "by-agency")

    await world.hub.set_paused(PORTAL, OPERATOR, "", False)
    await eventually(lambda: other in world.sim.dossiers, 30, "the dossier at DVCQG")

    async def none_left() -> bool:
        await page.reload()
        return await total.get_attribute("data-total") == "0"

    await eventually(none_left, 30, "the agency's dossier confirmed")


async def test_a_search_finds_a_fragment_in_any_case_and_an_owner_by_name(
    world: DashboardWorld, page: Page
) -> None:
    codes = [world.new_code() for _ in range(3)]
    for code in codes:
        await world.post_events(record_event(code))
    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    await page.goto(world.url("/dashboard/dossiers"))
    fragment = codes[0].split("-", 1)[1][:6].lower()  # the day, from inside the code
    await page.fill("[data-testid=search-box]", f"h41-{fragment}")
    await page.press("[data-testid=search-box]", "Enter")
    hits = page.locator("tr[data-testid=hit]")
    await expect(hits).not_to_have_count(0)
    shown = [await hits.nth(i).inner_text() for i in range(await hits.count())]
    assert all(any(c in text for text in shown) for c in codes), shown
    await expect(page.locator("[data-testid=search-total]")).to_be_visible()

    # The owner, by the whole name typed without accents: found, and shown masked.
    await page.fill("[data-testid=search-box]", "nguyen van an")
    await page.press("[data-testid=search-box]", "Enter")
    owned = page.locator("tr[data-testid=hit][data-matched=owner]")
    await expect(owned).not_to_have_count(0)
    owner = await owned.first.locator("[data-testid=owner]").inner_text()
    assert owner.endswith("An"), owner
    assert "Nguyễn" not in owner, owner
    assert "Nguyễn Văn An" not in await page.locator("table[data-testid=hits]").inner_text()
    await shoot(page, "owner")

    await page.fill("[data-testid=search-box]", "Nguyễn")  # a part of a name finds no one
    await page.press("[data-testid=search-box]", "Enter")
    await expect(page.locator("[data-testid=not-found]")).to_be_visible()


async def test_a_refused_dossier_says_why_and_is_replayed_from_its_page(
    world: DashboardWorld, page: Page
) -> None:
    code = world.new_code()
    world.sim.faults.reject[code] = "07"
    await world.post_events(record_event(code))
    await log_in(page, world, OPERATOR, OPERATOR_PASSWORD)

    async def refused() -> bool:
        await page.goto(world.url(f"/dashboard/dossiers/{code}"))
        return await page.locator("[data-testid=why-error]").count() > 0

    await eventually(refused, 30, "the refusal on the dossier's page")
    why = page.locator("[data-testid=why]")
    portal = why.locator(f"[data-testid=why-destination][data-destination={PORTAL}]")
    await expect(portal).to_have_attribute("data-confirmed", "no")
    # DVCQG's refusal in words by its code (journaled with it), its own reply folded beside.
    words = vi("reason.national_portal.07")
    error = why.locator("[data-testid=why-error]")
    await expect(error.locator(".reason-words")).to_have_text(words)
    await expect(error.locator("details.raw code")).to_contain_text(f"{code}: 07")
    await expect(error.locator("details.raw summary")).to_have_text(vi("reason.raw"))
    await expect(portal.locator(".reason-words")).to_have_text(words)
    await expect(why.locator("[data-testid=why-verdict]")).to_have_text(vi("why.not_all"))
    # The timeline: newest first, readable payloads (Vietnamese as text, no \\u escapes).
    first_hop = page.locator("[data-testid=hop]").first
    assert await first_hop.get_attribute("data-kind") in ("parked", "refused")
    payload = page.locator("[data-testid=hop][data-kind=received] [data-testid=payload]").first
    text = await payload.text_content() or ""
    assert "Đăng ký khai sinh" in text, text
    assert "\\u" not in text, text
    refused_hop = page.locator("[data-testid=hop][data-kind=refused] [data-testid=hop-detail]")
    await expect(refused_hop.locator(".reason-words")).to_have_text(words)
    await shoot(page, "why")

    # The unsynced dossiers list it with the same words, never DVCQG's English.
    await page.goto(world.url(f"/dashboard/stuck?destination={PORTAL}"))
    row = page.locator(f"tr[data-testid=stuck-row][data-code='{code}']")
    await expect(row).to_contain_text(vi("stuck.outcome.parked"))
    await expect(row.locator(".reason-words")).to_have_text(words)
    assert "DVCQG refused" not in await row.locator(".reason-words").inner_text()
    await expect(row.locator("details.raw code")).to_contain_text("DVCQG refused")
    await shoot(page, "stuck-refused")
    await page.goto(world.url(f"/dashboard/dossiers/{code}"))

    del world.sim.faults.reject[code]
    await world.parked_in_place(1)
    await why.locator(f"[data-testid=why-replay][data-connector={PORTAL}]").click()
    preview = page.locator("[data-testid=bulk-preview]")
    await expect(preview).to_have_attribute("data-matched", "1")
    await shoot(page, "preview")
    await page.click("[data-testid=bulk-go]")
    job = page.locator("[data-testid=bulk-job]")
    await expect(job).to_have_attribute("data-state", "done", timeout=LIVE_TIMEOUT_MS)
    await expect(job).to_have_attribute("data-done", "1")
    await eventually(lambda: code in world.sim.dossiers, 30, "the replayed dossier at DVCQG")

    async def confirmed() -> bool:
        await page.goto(world.url(f"/dashboard/dossiers/{code}"))
        verdict = page.locator("[data-testid=why-verdict]")
        return await verdict.inner_text() == vi("why.all_confirmed")

    await eventually(confirmed, 30, "DVCQG's confirmation on the dossier's page")
    # The replay in the timeline: who replayed it, and the refusal it replayed, in words.
    replayed = page.locator("[data-testid=hop][data-kind=replayed] [data-testid=hop-detail]")
    await expect(replayed).to_contain_text(vi("hop.by", by=OPERATOR))
    await expect(replayed.locator(".reason-words")).to_have_text(words)
    await shoot(page, "confirmed")


MANY = 400


async def test_bulk_replay_and_discard_with_a_preview_and_a_confirmation(
    world: DashboardWorld, page: Page
) -> None:
    hub = world.hub
    portal = hub.connector(PORTAL)
    assert portal is not None
    assert portal.queues is not None
    assert hub.broker is not None
    broker, queues = hub.broker, portal.queues
    await hub.set_paused(PORTAL, OPERATOR, "counting", True)  # replayed ones wait, counted
    refused = {REASON_HEADER: "DVCQG refused: 07 missing field", CONNECTOR_HEADER: PORTAL}
    limit = {REASON_HEADER: "dead-lettered by the broker", CONNECTOR_HEADER: PORTAL}
    base = world.new_code()
    sent = [
        broker.publish(
            broker.channel.default_exchange,
            queues.parking,
            message(
                {"dossier_code": f"{base}{i % 25:02d}", "version": 1},
                f"m{i}",
                refused if i % 4 else limit,
            ),
        )
        for i in range(MANY)
    ]
    await asyncio.gather(*sent)
    await world.parked_in_place(MANY)
    probe = QueueProbe(broker)

    await log_in(page, world, OPERATOR, OPERATOR_PASSWORD)
    await page.goto(world.url(f"/dashboard/dead-letters?connector={PORTAL}"))
    total = page.locator("[data-testid=dead-total]")
    await expect(total).to_have_attribute("data-matched", str(MANY))
    groups = page.locator("tr[data-testid=dead-group]")
    assert await groups.count() == 50  # 25 dossiers × 2 reasons, each listed once
    await shoot(page, "grouped")

    # Narrow to the refusals, then replay them all: the preview counts them first.
    await page.fill("[data-testid=dead-filters] input[name=reason]", "07")
    await page.click("[data-testid=dead-filters] button[type=submit]")
    refusals = MANY * 3 // 4
    await expect(total).to_have_attribute("data-matched", str(refusals))
    await page.click("[data-testid=bulk-replay]")
    await expect(page.locator("[data-testid=bulk-preview]")).to_have_attribute(
        "data-matched", str(refusals)
    )
    await shoot(page, "replay-preview")
    await page.click("[data-testid=bulk-go]")
    job = page.locator("[data-testid=bulk-job]")
    await expect(job).to_have_attribute("data-state", "done", timeout=LIVE_TIMEOUT_MS)
    await expect(job).to_have_attribute("data-done", str(refusals))
    await shoot(page, "replayed")

    async def parked_left(n: int) -> bool:
        return await probe.count(queues.parking) == n

    await eventually(lambda: parked_left(MANY - refusals), 30, "the refusals replayed")

    # Discard the rest: it says it cannot be undone and will not go without the tick.
    await page.goto(world.url(f"/dashboard/dead-letters?connector={PORTAL}"))
    await expect(total).to_have_attribute("data-matched", str(MANY - refusals))
    await page.click("[data-testid=bulk-discard]")
    await expect(page.locator("[data-testid=cannot-undo]")).to_be_visible()
    await page.click("[data-testid=bulk-go]")  # the browser refuses: the box is required
    await expect(page.locator("[data-testid=cannot-undo]")).to_be_visible()
    assert "/bulk-actions/new" in page.url
    await shoot(page, "discard-confirm")
    await page.check("[data-testid=confirm-discard]")
    await page.click("[data-testid=bulk-go]")
    await expect(job).to_have_attribute("data-state", "done", timeout=LIVE_TIMEOUT_MS)
    await expect(job).to_have_attribute("data-done", str(MANY - refusals))
    await eventually(lambda: parked_left(0), 30, "the rest discarded")
    await page.click("[data-testid=back]")
    await expect(page.locator("[data-testid=no-dead-letters]")).to_be_visible()
    await shoot(page, "empty")


async def test_a_held_back_catalogue_record_reads_in_words_its_text_folded(
    world: DashboardWorld, page: Page
) -> None:
    """The procedures page's held-back records: the reason in the page's words by its code,
    filterable by them, DVCQG's and the hub's English only under "Chi tiết kỹ thuật"; a record
    held back before the hub kept codes still shows its text there."""
    store = world.hub.store
    assert store is not None
    procedures = store.slice("procedures", SqliteProcedures)
    fee = "CACHTHUCTHUCHIEN.0.THOIGIAN.0.PHILEPHI.0.SOTIEN must be a non-negative whole amount"
    await procedures.quarantine(None, "1.000111", fee, "SOTIEN", None, "bad_amount")
    await procedures.quarantine(None, "1.000222", "LayThuTuc: not found (x)", None, None)
    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    await page.goto(world.url("/dashboard/procedures"))
    held = page.locator("[data-testid=table-held_records]")
    coded = held.locator("tr", has_text="1.000111")
    await expect(coded).to_contain_text(vi("value.code.bad_amount"))
    assert "non-negative" not in await coded.evaluate("r => r.innerText")  # folded away
    raw = coded.locator("details.raw")
    await expect(raw.locator("summary")).to_have_text(vi("reason.raw"))
    await expect(raw.locator("code")).to_have_text(fee)
    old = held.locator("tr", has_text="1.000222")
    await expect(old.locator("details.raw code")).to_have_text("LayThuTuc: not found (x)")
    # The filter offers the codes in words, and keeps only what it names.
    await page.select_option(
        "select[name=held_records-reason_code]", label=vi("value.code.bad_amount")
    )
    await page.click("[data-testid=filters-held_records] button[type=submit]")
    await expect(page.locator("[data-testid=total-held_records]")).to_have_attribute(
        "data-total", "1"
    )
    await expect(held.locator("tbody tr")).to_have_count(1)
    await shoot(page, "held-records")
