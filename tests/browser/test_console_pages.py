"""The console's pages in headless Chromium, at 1440 px and at a phone's width: a flow page as
a working table (Vietnamese headers and values, local times, paging, a filter, CSV export), a
payment platform outage on the payments page without a reload, the charts (13 px ticks, a
value on hover), the live bar (last updated, pause, connection lost, the title), the menu on a
phone, and axe-core's accessibility pass with no serious or critical violation.

The hub runs in process with the payment platform's simulator (and DVCQG's), as in the
payment integration tests; the payments are made by the simulator's signed callbacks.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from hub.config import load_config
from hub.dashboard.formats import when
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import PaymentPlatformSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.browser.browser_world import (
    OPERATOR,
    OPERATOR_PASSWORD,
    VIEWER,
    VIEWER_PASSWORD,
    DashboardWorld,
    OwnHub,
    Site,
    dashboard_section,
    record_event,
    shoot,
)
from tests.integration.payments_world import FEE, PARTNER, SECRET, SUB_TOKEN, payment_overrides
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER, UNIT
from tests.support.waiting import eventually

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}
PAID, FAILED, REFUSED = 32, 8, 3  # payments made, of which failed; callbacks refused
LOCAL_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


@dataclass
class PayConsole:
    """A hub with the dashboard and the payment platform on, and what the test made there."""

    hub: Hub
    platform: PaymentPlatformSimulator
    http: aiohttp.ClientSession
    made: list[dict[str, Any]]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.hub.port}{path}"


@pytest.fixture
async def pay_console(tmp_path: Path, rabbit_url: str) -> AsyncIterator[PayConsole]:
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
        PaymentPlatformSimulator(partner_code=PARTNER, secret=SECRET) as platform,
    ):
        prefix = f"t{secrets.token_hex(4)}"
        overrides = payment_overrides(
            tmp_path, rabbit_url, prefix, portal.url, platform.base_url, receiver.url
        )
        overrides["dashboard"] = dashboard_section()
        # One refused status check is an outage (the default waits for five).
        overrides["connectors"]["payment_platform"]["breaker"] = {
            "failure_threshold": 1,
            "recovery_s": 600,
        }
        async with Hub(load_config(None, overrides)) as hub, aiohttp.ClientSession() as http:
            path = hub.config.connectors.payment_platform.callback_path
            platform.callback_url = f"http://127.0.0.1:{hub.port}{path}"
            console = PayConsole(hub, platform, http, [])
            await _make_payments(console)
            yield console


async def _make_payments(console: PayConsole) -> None:
    """PAID payments by signed callbacks (every FAILED-th one failed), an hour apart going
    back, and REFUSED callbacks with a bad signature."""
    numbers = count(1)
    now = datetime.now(VN_TZ)
    for i in range(PAID):
        code = f"{UNIT}-{now:%y%m%d}-{next(numbers):04d}"
        event = record_event(code, "payment_requested")
        async with console.http.post(
            console.url("/api/v1/dossier-events"),
            json={"events": [event]},
            headers={"Authorization": "Bearer " + _onestop_token()},
        ) as r:
            assert r.status == 200, await r.text()
        state = "4" if i % (PAID // FAILED) == 0 else "1"
        tx = console.platform.new_transaction(code, FEE, now - timedelta(hours=i), state)
        replies = await console.platform.send_callback(tx)
        assert [r["MaLoi"] for r in replies] == ["00"]
        console.made.append({"code": code, "at": tx.at, "failed": state == "4"})
    for _ in range(REFUSED):
        tx = console.platform.new_transaction(console.made[0]["code"], FEE)
        replies = await console.platform.send_callback(tx, "bad_signature")
        assert [r["MaLoi"] for r in replies] != ["00"]


def _onestop_token() -> str:
    return ONESTOP_TOKEN


async def _log_in(
    page: Page, site: Site, user: str = VIEWER, password: str = VIEWER_PASSWORD
) -> None:
    await page.goto(site.url("/dashboard/login"))
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await expect(page.locator("[data-testid=user]")).to_be_visible()


async def _no_sideways_scroll(page: Page) -> None:
    wide = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 1, f"the page is {wide} px wider than the screen"


# -- a flow page as a working table -------------------------------------------------------------


@pytest.mark.parametrize("screen", list(WIDTHS))
async def test_the_payments_page_is_a_working_table(
    pay_console: PayConsole, page: Page, screen: str
) -> None:
    width, height = WIDTHS[screen]
    await page.set_viewport_size({"width": width, "height": height})
    await _log_in(page, pay_console)
    await page.goto(pay_console.url("/dashboard/payments"))
    table = page.locator("[data-testid=table-payments]")
    headers = await table.locator("thead th").all_inner_texts()
    assert headers[:5] == ["Trục nhận lúc", "Thời điểm giao dịch", "Mã hồ sơ", "Số tiền", "Kết quả"]
    total = page.locator("[data-testid=total-payments]")
    await expect(total).to_contain_text(f"{PAID} dòng")
    await expect(total).to_contain_text(f"tổng Số tiền: {PAID * FEE:,} đ".replace(",", "."))
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(25)
    # The newest first, in the province's time to the second, its outcome in words.
    first = rows.first
    cells = [t.strip() for t in await first.locator("td").all_inner_texts()]
    assert LOCAL_TIME.match(cells[0]), cells
    newest = pay_console.made[-1]
    assert cells[1] == when(newest["at"].isoformat())
    assert cells[2] == newest["code"]
    assert cells[3].endswith("150.000 đ")
    assert cells[4].endswith("Không thành công" if newest["failed"] else "Đã thanh toán")
    if screen == "phone":
        # Cards, not a wide table: each cell a label and its value, nothing off the screen.
        display = await first.locator("td").nth(0).evaluate("td => getComputedStyle(td).display")
        assert display == "grid"
        await _no_sideways_scroll(page)
    await shoot(page, "page-1")

    # Paging: the second and last page holds the rest.
    await page.locator("[data-testid=pager-payments] a[rel=next]").click()
    await expect(page.locator("[data-testid=pager-payments]")).to_contain_text("Trang 2/2")
    await expect(rows).to_have_count(PAID - 25)

    # A filter: the failed ones only (its words in the list), counted and summed.
    await page.select_option("select[name=payments-outcome]", label="Không thành công")
    await page.locator("[data-testid=filters-payments] button[type=submit]").click()
    await expect(total).to_contain_text(f"{FAILED} dòng")
    await expect(rows).to_have_count(FAILED)
    for text in await rows.locator("td:nth-child(5)").all_inner_texts():
        assert text.strip().endswith("Không thành công")
    await shoot(page, "filtered")

    # CSV: the filtered rows, all of them, as the page reads them.
    async with page.expect_download() as download_info:
        await page.locator("[data-testid=csv-payments]").click()
    download = await download_info.value
    saved = await download.path()
    text = await asyncio.to_thread(Path(str(saved)).read_text, "utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0][:5] == [
        "Trục nhận lúc",
        "Thời điểm giao dịch",
        "Mã hồ sơ",
        "Số tiền",
        "Kết quả",
    ]
    assert len(lines) == 1 + FAILED
    assert {line[4] for line in lines[1:]} == {"Không thành công"}
    assert all(LOCAL_TIME.match(line[1]) for line in lines[1:])
    assert {line[2] for line in lines[1:]} == {m["code"] for m in pay_console.made if m["failed"]}

    # Refused callbacks are visible, with their verdict in words.
    callbacks = page.locator("[data-testid=total-callbacks]")
    await page.select_option("select[name=callbacks-verdict]", label="Bị từ chối")
    await page.locator("[data-testid=filters-callbacks] button[type=submit]").click()
    await expect(callbacks).to_contain_text(f"{REFUSED} dòng")
    await expect(page.locator("[data-fact=refused_callbacks]")).to_have_text(str(REFUSED))


async def test_a_payment_platform_outage_shows_on_the_payments_page_without_a_reload(
    pay_console: PayConsole, page: Page
) -> None:
    await _log_in(page, pay_console)
    await page.goto(pay_console.url("/dashboard/payments"))
    card = page.locator("[data-testid=flow-connector][data-connector=payment_platform]")
    await expect(card.locator("h2 a")).to_have_text("Nền tảng thanh toán (Cổng DVCQG)")
    await expect(card.locator("[data-field=state]")).to_have_text("Hoạt động")
    await expect(page).to_have_title(re.compile(r"^Thanh toán · "))

    # The platform answers 503: a status check round meets the outage.
    pay_console.platform.faults.status_outage_remaining = 1000
    pending = pay_console.platform.new_transaction(
        pay_console.made[1]["code"], FEE, datetime.now(VN_TZ) - timedelta(hours=1), "3"
    )
    assert [r["MaLoi"] for r in await pay_console.platform.send_callback(pending)] == ["00"]
    async with pay_console.http.post(
        pay_console.url("/api/v1/payments/status-checks"),
        headers={"Authorization": "Bearer " + _onestop_token()},
    ) as r:
        assert r.status in (200, 503), await r.text()

    await expect(card.locator("[data-field=state]")).to_have_text("Gián đoạn kết nối")
    ongoing = card.locator("[data-testid=outage][data-ended=no]")
    await expect(ongoing).to_have_count(1)
    await expect(ongoing).to_contain_text("đang diễn ra")
    await expect(page).to_have_title(re.compile(r"^⚠ 1 kết nối có sự cố · Thanh toán"))


# -- charts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("screen", list(WIDTHS))
async def test_the_charts_read_at_their_size_and_show_values_on_hover(
    world: DashboardWorld, page: Page, screen: str
) -> None:
    width, height = WIDTHS[screen]
    await page.set_viewport_size({"width": width, "height": height})
    await world.post_events(*(record_event(world.new_code()) for _ in range(5)))
    portal = world.hub.connector("national_portal")
    assert portal is not None
    assert portal.consumer is not None
    await eventually(
        lambda: portal.consumer is not None and portal.consumer.stats.done >= 5,
        30,
        "DVCQG took the five dossiers",
    )
    await eventually(lambda: _sampled(world), 30, "a sample counted them")
    await _log_in(page, world)
    await page.goto(world.url("/dashboard/connectors/national_portal?hours=1"))
    await expect(page.locator("h1")).to_contain_text("Cổng DVCQG")
    chart = page.locator("[data-testid=chart][data-chart-id=throughput]")
    await expect(chart.locator("svg text.tick").first).to_be_visible()
    await expect(chart.locator("figcaption")).to_contain_text("Lưu lượng và lỗi theo thời gian")
    await expect(chart.locator("[data-testid=chart-range]")).to_contain_text("UTC+7")
    sizes = await chart.locator("svg text.tick").evaluate_all(
        "ts => ts.map(t => [getComputedStyle(t).fontSize, t.getBoundingClientRect().height])"
    )
    assert sizes
    for font, box_height in sizes:
        assert font == "13px", sizes
        assert box_height >= 12, sizes  # drawn at its size, not scaled down
    ticks = await chart.locator("svg text.tick").evaluate_all("ts => ts.map(t => t.textContent)")
    values = [t for t in ticks if ":" not in t]
    assert values[0] == "0", ticks  # round ticks from 0
    times = [t for t in ticks if ":" in t]
    assert all(t.endswith("0") for t in times), times  # round minutes
    box = await chart.locator("svg").bounding_box()
    assert box is not None
    assert box["width"] <= width
    await page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] / 2)
    tip = chart.locator("[data-testid=chart-tip]")
    await expect(tip).to_be_visible()
    await expect(tip).to_contain_text("thành công/phút:")
    await expect(tip).to_contain_text("tin/phút")
    if screen == "phone":
        await _no_sideways_scroll(page)


async def _sampled(world: DashboardWorld) -> bool:
    assert world.hub.board is not None
    data = await world.hub.board.connector("national_portal", 1)
    return any((s["throughput_per_min"] or 0) > 0 for s in data["series"])


# -- liveness -----------------------------------------------------------------------------------


async def test_the_live_bar_says_when_it_updated_and_the_operator_may_pause_it(
    world: DashboardWorld, page: Page
) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/admin/overview" in r.url else None)
    await _log_in(page, world)
    bar = page.locator("[data-testid=live-bar]")
    await expect(bar).to_be_visible()
    updated = bar.locator("[data-testid=live-updated]")
    first = await updated.inner_text()
    assert LOCAL_TIME.match(first), first
    await expect(updated).not_to_have_text(first)  # it refreshes by itself
    await expect(bar.locator("[data-testid=live-state]")).to_have_attribute("aria-live", "polite")

    await bar.locator("[data-testid=live-pause]").click()
    await expect(bar.locator("[data-testid=live-pause]")).to_have_attribute("aria-pressed", "true")
    await expect(bar.locator("[data-testid=live-state]")).to_have_text("Đã tạm dừng tự cập nhật")
    await expect(page).to_have_title(re.compile(r"^⏸ Tạm dừng cập nhật · "))
    paused_at = await updated.inner_text()
    before = len(asked)
    # While paused the hub moves on (a dossier goes through) and the page asks nothing.
    await world.post_events(record_event(world.new_code()))
    await eventually(lambda: _overview_done(world), 30, "DVCQG took the dossier")
    assert len(asked) == before
    assert await updated.inner_text() == paused_at
    await shoot(page, "paused")

    await bar.locator("[data-testid=live-pause]").click()
    await expect(bar.locator("[data-testid=live-state]")).to_have_text("")
    await expect(updated).not_to_have_text(paused_at)
    assert len(asked) > before


async def _overview_done(world: DashboardWorld) -> bool:
    assert world.hub.board is not None
    world.hub.board._overview = None  # the cached figures: read fresh here
    data = await world.hub.board.overview()
    return any(c["delivered_since_start"] for c in data["connectors"])


async def test_a_lost_hub_shows_on_the_live_bar_and_in_the_title(
    own_hub: OwnHub, page: Page
) -> None:
    await _log_in(page, own_hub)
    await page.goto(own_hub.url("/dashboard/connectors/national_portal"))
    bar = page.locator("[data-testid=live-bar]")
    await expect(bar).to_be_visible()
    await own_hub.stop()
    await expect(bar.locator("[data-testid=live-state]")).to_contain_text(
        "Mất kết nối với trục từ", timeout=15_000
    )
    await expect(page).to_have_title(re.compile(r"^⚠ Mất kết nối · "))
    await shoot(page, "lost")
    await own_hub.start()
    await expect(bar.locator("[data-testid=live-state]")).to_have_text("", timeout=15_000)
    await expect(page).not_to_have_title(re.compile("Mất kết nối"))


# -- phone and accessibility --------------------------------------------------------------------


async def test_on_a_phone_the_menu_folds_and_the_skip_link_comes_first(
    world: DashboardWorld, page: Page
) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    await _log_in(page, world)
    menu = page.locator("#menu")
    toggle = page.locator("[data-testid=menu-toggle]")
    await expect(toggle).to_be_visible()
    await expect(menu).to_be_hidden()
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(menu.get_by_role("link", name="Tin lỗi")).to_be_visible()
    await _no_sideways_scroll(page)
    await page.goto(world.url("/dashboard/"))  # focus at the start of the page again
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.dataset.testid")
    assert focused == "skip-link"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"


async def _axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page, serious and critical ones only."""
    await page.evaluate(AXE.read_text("utf-8"))
    result = await page.evaluate(
        """async () => {
            const r = await axe.run(document);
            return {passes: r.passes.length, violations: r.violations.map(v => ({
              id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))};
        }"""
    )
    assert result["passes"] > 10, result  # it ran its rules on this page
    violations: list[dict[str, Any]] = result["violations"]
    return [v for v in violations if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("screen", list(WIDTHS))
async def test_the_console_passes_axe_with_no_serious_violation(
    pay_console: PayConsole, page: Page, screen: str
) -> None:
    width, height = WIDTHS[screen]
    await page.set_viewport_size({"width": width, "height": height})
    await page.goto(pay_console.url("/dashboard/login"))
    assert await _axe(page) == []
    await _log_in(page, pay_console, OPERATOR, OPERATOR_PASSWORD)
    found: dict[str, list[dict[str, Any]]] = {}
    for path in (
        "/dashboard/",
        "/dashboard/connectors/national_portal",
        "/dashboard/connectors/payment_platform",
        "/dashboard/payments",
        "/dashboard/payments?payments-outcome=failed",
        "/dashboard/procedures",
        "/dashboard/audit",
    ):
        await page.goto(pay_console.url(path))
        await expect(page.locator("main h1")).to_be_visible()
        if violations := await _axe(page):
            found[path] = violations
    assert found == {}
