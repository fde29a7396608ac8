"""The outage at 2 a.m., walked through in headless Chromium as the operators' guide tells it
(docs/how-to/outage-walkthrough.md), its screenshots taken on the way.

A hub in process with DVCQG's simulator and a one-stop system sending dossiers through the
hub's DVCQG facade (`sims.one_stop`). Three stages:

1. **before**: traffic flows; DVCQG refuses a few dossiers itself (code 04), which are parked;
2. **outage**: DVCQG answers HTTP 503 while the one-stop keeps sending; thousands of old
   refusals sit parked too (published straight into the parking queue, code 07);
3. **recovery**: DVCQG answers again; the operator fixes and replays the refusals, and
   discards the old ones, each with a preview and a confirmation.

At each stage the test opens the overview, DVCQG's page, the unsynced dossiers, the dead
letters and a refused dossier's "why", and holds every number on them to the broker's
(`rabbitmqctl`, and aio-pika's own count) and the store's (its SQLite file, read directly).

Screenshots (JPEG, 1440 × 900, one at 390 px) go to `HUB_SCREENSHOTS_DIR` when it is set (the
docs' are regenerated with `HUB_SCREENSHOTS_DIR=docs/how-to/img/outage`), else to
test-artifacts/screenshots/outage-walkthrough/.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, ViewportSize, expect

from hub.broker import CONNECTOR_HEADER, ERROR_CODE_HEADER, PARKED_AT_HEADER, REASON_HEADER
from hub.broker import message as broker_message
from hub.dashboard import i18n
from hub.health import QueueProbe, Watched
from hub.validation import VN_TZ
from sims.one_stop.simulator import OneStopTraffic, TrafficReport
from sims.rabbitmq_node import RabbitNode
from tests.browser.browser_world import (
    OPERATOR,
    OPERATOR_PASSWORD,
    PORTAL,
    SCREENSHOTS,
    DashboardWorld,
    log_in,
)
from tests.support import ONESTOP_PASSWORD, ONESTOP_USER, UNIT, eventually
from tests.support.stores import store_rows

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("HUB_SCREENSHOTS_DIR") or SCREENSHOTS / "outage-walkthrough")
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
OLD_PARKED = 3_000  # yesterday's refusals, still parked: 10 deliveries each of 300 dossiers
REFUSED_BY_DVCQG = 3  # dossiers DVCQG refuses (code 04) while it is up
LIVE_MS = 30_000


def vi(key: str, **values: object) -> str:
    return i18n.translate("vi", key, **values)


def digits(text: str) -> int:
    """A count as the page writes it in Vietnamese (2.004)."""
    return int(re.sub(r"[^0-9]", "", text) or "0")


async def shot(page: Page, name: str) -> None:
    """The page as the operator sees it (the screen, not the whole scroll), small enough for
    the docs: JPEG at quality 70."""
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.jpg"), type="jpeg", quality=70)


class Truth:
    """The broker's and the store's numbers, read independently of the dashboard."""

    def __init__(self, world: DashboardWorld, node: RabbitNode, portal: Watched) -> None:
        assert portal.queues is not None
        assert world.hub.broker is not None
        self.node = node
        self.queues = portal.queues
        self.probe = QueueProbe(world.hub.broker)
        self.store_config = world.hub.config.store

    def _ctl(self) -> tuple[int, int]:
        counts: dict[str, int] = {}
        for line in self.node.ctl("list_queues", "name", "messages").splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[1].isdigit():
                counts[fields[0]] = int(fields[1])
        work = [self.queues.work, *(q for q, _ in self.queues.retry)]
        return sum(counts.get(q, 0) for q in work), counts.get(self.queues.parking, 0)

    async def rabbitmqctl(self) -> tuple[int, int]:
        """(waiting, parked) as `rabbitmqctl` counts them: ready and unacknowledged alike."""
        return await asyncio.to_thread(self._ctl)

    async def parked(self) -> int:
        return await self.probe.count(self.queues.parking) or 0

    async def parked_is(self, n: int) -> bool:
        return await self.parked() == n

    async def store(self) -> tuple[int, int]:
        """(dossiers the hub holds, those whose newest state DVCQG has not confirmed)."""
        (held,) = await store_rows(self.store_config, "SELECT COUNT(*) AS n FROM dossiers")
        (behind,) = await store_rows(
            self.store_config,
            "SELECT COUNT(*) AS n FROM dossiers d LEFT JOIN destination_state s"
            " ON s.dossier_code = d.code AND s.destination = ?"
            " WHERE s.dossier_code IS NULL OR s.behind = 1",
            PORTAL,
        )
        return int(held["n"]), int(behind["n"])


async def settle(
    what: str, read: Callable[[], Awaitable[object]], truth: Callable[[], Awaitable[object]]
) -> None:
    """Wait until the page's reading equals the truth, read again each time (both may move
    for a moment: the page refreshes itself, the outbox still publishes)."""
    seen: dict[str, object] = {}

    async def same() -> bool:
        seen["truth"] = await truth()
        seen["page"] = await read()
        return seen["page"] == seen["truth"]

    await eventually(same, 60, lambda: f"{what}: {seen}")


async def card_counts(page: Page) -> tuple[int, int]:
    card = page.locator(f"[data-testid=connector-card][data-connector={PORTAL}]")
    waiting = await card.locator("[data-field=queue_depth]").inner_text()
    parked = await card.locator("[data-field=dead_letters]").inner_text()
    return digits(waiting), digits(parked)


async def brokers_counts(truth: Truth) -> tuple[int, int]:
    """rabbitmqctl's counts once they agree with aio-pika's (rabbitmqctl reads a quorum
    queue's figures as the node last published them, every few seconds)."""
    said: dict[str, object] = {}

    async def agreed() -> bool:
        ctl = await truth.rabbitmqctl()
        said["ctl"], said["amqp"] = ctl, await truth.parked()
        return ctl[1] == said["amqp"]

    await eventually(agreed, 60, lambda: f"broker counts disagree: {said}")
    ctl = said["ctl"]
    assert isinstance(ctl, tuple)
    return ctl


async def overview(page: Page, world: DashboardWorld, truth: Truth, name: str) -> None:
    """The overview: DVCQG's waiting and dead letters are the broker's, its dossiers and
    unconfirmed ones the store's."""
    await page.goto(world.url("/dashboard/"))
    await settle("waiting, dead letters", lambda: card_counts(page), lambda: brokers_counts(truth))

    async def completeness() -> tuple[int, int]:
        held = await page.locator("[data-testid=completeness-dossiers]").inner_text()
        ok = await page.locator("[data-testid=completeness-confirmed]").inner_text()
        return digits(held), digits(held) - digits(ok)

    await settle("completeness", completeness, truth.store)
    await shot(page, name)


async def connector_page(page: Page, world: DashboardWorld, name: str) -> Locator:
    await page.goto(world.url(f"/dashboard/connectors/{PORTAL}?hours=1"))
    await expect(page.locator("h1")).to_contain_text(vi("connector.national_portal"))
    await shot(page, name)
    return page.locator("[data-testid=state-line]")


async def stuck_page(page: Page, world: DashboardWorld, truth: Truth, name: str) -> int:
    """The unsynced dossiers at DVCQG: as many as the store counts behind."""
    await page.goto(world.url(f"/dashboard/stuck?destination={PORTAL}"))
    total = page.locator("[data-testid=stuck-total]")

    async def shown() -> int:
        return int(await total.get_attribute("data-total") or -1)

    async def behind() -> int:
        return (await truth.store())[1]

    await settle("unsynced dossiers", shown, behind)
    await shot(page, name)
    return await shown()


async def dead_letter_page(page: Page, world: DashboardWorld, truth: Truth, name: str) -> int:
    """The dead letters, grouped, with their true total: the broker's."""
    await page.goto(world.url(f"/dashboard/dead-letters?connector={PORTAL}"))
    _, parked = await brokers_counts(truth)
    matched = page.locator("[data-testid=dead-total]")
    await expect(matched).to_have_attribute("data-matched", str(parked))
    await expect(matched).to_have_attribute("data-parked", str(parked))
    await shot(page, name)
    return parked


async def why_page(page: Page, world: DashboardWorld, code: str, name: str) -> Locator:
    await page.goto(world.url(f"/dashboard/dossiers/{code}"))
    why = page.locator("[data-testid=why]")
    await expect(why).to_be_visible()
    await shot(page, name)
    return why


async def send(world: DashboardWorld, n: int, seed: int, rate: float | None) -> TrafficReport:
    """n dossiers from the one-stop system, through the hub's DVCQG facade."""
    traffic = OneStopTraffic(
        world.url("/dvcqg"), ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=seed, batch_size=5
    )
    report = await traffic.run(traffic.plan(n), rate_per_s=rate)
    assert report.completed, report.summary()
    assert not report.refused, report.summary()
    return report


async def park_old_refusals(world: DashboardWorld, portal: Watched) -> None:
    """Yesterday's refusals, as the hub parks them: DVCQG's code 07, ten per dossier."""
    assert portal.queues is not None
    broker = world.hub.broker
    assert broker is not None
    yesterday = datetime.now(VN_TZ) - timedelta(days=1)
    day = f"{yesterday:%y%m%d}"
    sent = []
    for i in range(OLD_PARKED):
        code = f"{UNIT}-{day}-{8000 + i // 10:04d}"
        headers = {
            REASON_HEADER: f"DVCQG refused DongBoHoSoMC for {code}: 07 TrangThaiHoSo không hợp lệ",
            ERROR_CODE_HEADER: "07",
            CONNECTOR_HEADER: PORTAL,
            PARKED_AT_HEADER: (yesterday + timedelta(seconds=i)).isoformat(),
        }
        body = {"dossier_code": code, "version": 1}
        sent.append(
            broker.publish(
                broker.channel.default_exchange,
                portal.queues.parking,
                broker_message(body, f"old-{i}", headers),
            )
        )
    await asyncio.gather(*sent)


async def bulk(page: Page, world: DashboardWorld, action: str, query: str, expected: int) -> None:
    """A bulk action from the dead-letter page's filter: its preview counts `expected` first."""
    await page.goto(world.url(f"/dashboard/dead-letters?connector={PORTAL}&{query}"))
    await expect(page.locator("[data-testid=dead-total]")).to_have_attribute(
        "data-matched", str(expected)
    )
    await page.click(f"[data-testid=bulk-{action}]")
    preview = page.locator("[data-testid=bulk-preview]")
    await expect(preview).to_have_attribute("data-matched", str(expected))
    if action == "discard":
        await page.check("[data-testid=confirm-discard]")
    await shot(page, f"{action}-preview")
    await page.click("[data-testid=bulk-go]")
    job = page.locator("[data-testid=bulk-job]")
    await expect(job).to_have_attribute("data-state", "done", timeout=LIVE_MS)
    await expect(job).to_have_attribute("data-done", str(expected))
    await shot(page, f"{action}-done")


async def test_an_outage_at_2am_walked_through_with_the_numbers_of_the_broker_and_the_store(
    node_world: DashboardWorld, rabbit_node: RabbitNode, page: Page
) -> None:
    world, sim = node_world, node_world.sim
    portal = world.hub.connector(PORTAL)
    assert portal is not None
    assert portal.parking is not None
    truth = Truth(world, rabbit_node, portal)
    await page.set_viewport_size(DESKTOP)

    # -- 1. before: traffic flows, DVCQG refuses a few dossiers itself ------------------------
    planned = OneStopTraffic(world.url("/dvcqg"), ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=11)
    refused = [s.code for s in planned.plan(20)[:REFUSED_BY_DVCQG]]
    for code in refused:
        sim.faults.reject[code] = "04"
    before = await send(world, 20, seed=11, rate=None)
    await eventually(
        lambda: len(sim.dossiers) >= 20 - REFUSED_BY_DVCQG, 60, "DVCQG took the others"
    )

    async def drained() -> bool:
        waiting, parked = await brokers_counts(truth)
        return waiting == 0 and parked > 0

    await eventually(drained, 60, "the first traffic settled")
    real = await truth.parked()  # each refused dossier's record and its steps
    assert real >= REFUSED_BY_DVCQG

    await log_in(page, world, OPERATOR, OPERATOR_PASSWORD)
    await overview(page, world, truth, "01-before-overview")
    await stuck_page(page, world, truth, "02-before-stuck")
    # A refusal journaled by DVCQG's code reads in words; its reply only under the details.
    refused_row = page.locator(f"tr[data-testid=stuck-row][data-code='{refused[0]}']")
    await expect(refused_row).to_contain_text(vi("stuck.outcome.parked"))
    await expect(refused_row.locator(".reason-words")).to_have_text(vi("reason.national_portal.04"))
    await expect(refused_row.locator("details.raw code")).to_contain_text(": 04 ")
    await dead_letter_page(page, world, truth, "03-before-dead-letters")
    group = page.locator(f"tr[data-testid=dead-group][data-dossier='{refused[0]}']")
    await expect(group.locator(".reason-words")).to_have_text(vi("reason.national_portal.04"))
    why = await why_page(page, world, refused[0], "04-before-why")
    error = why.locator("[data-testid=why-error]")
    await expect(error).to_contain_text(vi("stuck.outcome.parked"))
    await expect(error.locator(".reason-words")).to_have_text(vi("reason.national_portal.04"))
    # The journal keeps DVCQG's own words too, folded under "Chi tiết kỹ thuật".
    await expect(error.locator("details.raw code")).to_contain_text(": 04 ")

    # -- 2. outage: DVCQG answers 503 while the one-stop keeps sending ------------------------
    sim.faults.mode = "http_503"
    await park_old_refusals(world, portal)
    during = asyncio.create_task(send(world, 30, seed=12, rate=40))
    await page.goto(world.url("/dashboard/"))
    card = page.locator(f"[data-testid=connector-card][data-connector={PORTAL}]")
    await expect(card.locator("[data-field=state]")).to_have_text(vi("state.down"), timeout=LIVE_MS)
    await expect(card.locator("[data-field=reason]")).to_have_text(vi("cause.http_5xx"))
    await expect(page).to_have_title(re.compile(r"^⚠ 1 kết nối có sự cố"))
    await shot(page, "05-outage-overview-while-sending")
    outage_report = await during
    assert not set(outage_report.expected_state().records) & set(before.expected_state().records)
    await overview(page, world, truth, "06-outage-overview")
    waiting, _ = await truth.rabbitmqctl()
    assert waiting > 0, "the outage's dossiers wait in DVCQG's queue"
    await page.set_viewport_size(PHONE)
    await page.reload()
    await shot(page, "07-outage-overview-phone")
    await page.set_viewport_size(DESKTOP)

    line = await connector_page(page, world, "08-outage-connector")
    await expect(line).to_contain_text(vi("cause.http_5xx"))
    ongoing = page.locator("tr[data-testid=outage][data-ended=no]")
    await expect(ongoing).to_have_count(1)
    behind = await stuck_page(page, world, truth, "09-outage-stuck")
    assert behind >= 30 + REFUSED_BY_DVCQG
    newcomer = next(iter(outage_report.expected_state().records))
    waiting_row = page.locator(f"tr[data-testid=stuck-row][data-code='{newcomer}']")
    await expect(waiting_row).to_contain_text(vi("stuck.outcome.waiting"))
    await expect(waiting_row.locator(".reason-words")).to_have_text(vi("cause.http_5xx"))
    parked = await dead_letter_page(page, world, truth, "10-outage-dead-letters")
    assert parked == OLD_PARKED + real
    await why_page(page, world, newcomer, "11-outage-why")
    await expect(page.locator("[data-testid=why-verdict]")).to_have_text(vi("why.not_all"))

    # -- 3. recovery: DVCQG answers again; replay the fixed refusals, discard the old ones ---
    sim.faults.mode = "ok"
    await page.goto(world.url("/dashboard/"))
    # Back: up, or degraded while the morning's refusals weigh on its error rate.
    await expect(card.locator("[data-field=state]")).not_to_have_attribute(
        "data-state", "down", timeout=LIVE_MS
    )
    expected = {**before.expected_state().records, **outage_report.expected_state().records}
    arrived = [c for c in expected if c not in refused]
    await eventually(lambda: all(c in sim.dossiers for c in arrived), 120, "the backlog at DVCQG")
    await overview(page, world, truth, "12-recovered-overview")
    await stuck_page(page, world, truth, "13-recovered-stuck")

    # Yesterday's refusals were settled with DVCQG by hand: discard them, counted first.
    await world.parked_in_place(OLD_PARKED + real)
    await bulk(page, world, "discard", "reason=07", OLD_PARKED)
    await eventually(lambda: truth.parked_is(real), 60, "only today's refusals left")

    # Today's refusals: the one-stop corrected the dossiers; replay them all, with a preview.
    for code in refused:
        del sim.faults.reject[code]
    await world.parked_in_place(real)
    await bulk(page, world, "replay", "", real)
    await eventually(lambda: all(c in sim.dossiers for c in refused), 60, "replayed at DVCQG")
    await eventually(lambda: truth.parked_is(0), 60, "nothing parked")

    await overview(page, world, truth, "14-after-overview")
    assert await stuck_page(page, world, truth, "15-after-stuck") == 0
    assert await dead_letter_page(page, world, truth, "16-after-dead-letters") == 0
    why = await why_page(page, world, refused[0], "17-after-why")
    await expect(why.locator("[data-testid=why-verdict]")).to_have_text(
        vi("why.all_confirmed"), timeout=LIVE_MS
    )
    statuses = {c: str(r["TrangThaiHoSo"]) for c, r in expected.items()}
    held = {c: str(sim.dossiers[c]["TrangThaiHoSo"]) for c in expected if c in sim.dossiers}
    assert held == statuses
