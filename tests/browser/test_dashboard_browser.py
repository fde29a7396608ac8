"""The operators' dashboard in headless Chromium, against a running hub with traffic.

Logging in (and being refused with a wrong password), the overview's numbers moving while
events flow without the page reloading, a dossier found by its code with its journey from the
one-stop system to DVCQG, a dead letter replayed by an operator and delivered, the same action
refused to a viewer, and the language switch. Connector states: DVCQG's outage on its card
and page without a reload, an operator pausing and resuming it, the dead-letter count the
broker's own, and the overview saying its figures are stale when the hub is gone.
Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from playwright.async_api import Locator, Page, expect

from hub.broker import CONNECTOR_HEADER, REASON_HEADER, message
from hub.dashboard import i18n
from sims.rabbitmq_node import RabbitNode
from tests.browser.browser_world import (
    OPERATOR,
    OPERATOR_PASSWORD,
    PORTAL,
    VIEWER,
    VIEWER_PASSWORD,
    DashboardWorld,
    OwnHub,
    TcpProxy,
    log_in,
    record_event,
    shoot,
)
from tests.support import eventually

LIVE_TIMEOUT_MS = 15_000


def count_of(text: str) -> int:
    """A number as the dashboard writes it (thousands separated): "1,204" → 1204."""
    return int(re.sub(r"[^0-9]", "", text))


def has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){name}(\s|$)")


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

    await eventually(parked, 30, lambda: f"the refused dossier {code} parked")
    await world.parked_in_place(1)
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
    world: DashboardWorld, page: Page
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
    world: DashboardWorld, page: Page
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
    world: DashboardWorld, page: Page
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
    world: DashboardWorld, page: Page
) -> None:
    code = world.new_code()
    await world.post_events(record_event(code))
    await eventually(lambda: code in world.sim.dossiers, 30, "the dossier at DVCQG")

    viewer = await world.admin_login(VIEWER, VIEWER_PASSWORD)

    async def delivered() -> bool:
        async with world.http.get(world.url(f"/api/v1/admin/dossiers/{code}"), headers=viewer) as r:
            body = await r.json()
        return r.status == 200 and any(h["kind"] == "delivered" for h in body["timeline"])

    await eventually(delivered, 30, "its delivery on the dossier's timeline")

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
    assert kinds.index("delivered") < kinds.index("received"), kinds  # newest first
    received = timeline.locator("[data-testid=hop][data-kind=received]").first
    await expect(received).to_contain_text("onestop")
    delivered_hop = timeline.locator("[data-testid=hop][data-kind=delivered]").first
    await expect(delivered_hop).to_contain_text("Cổng DVCQG")  # the connector by its name
    await shoot(page, "timeline")

    unknown = world.new_code()
    response = await page.goto(world.url(f"/dashboard/dossiers/{unknown}"))
    assert response is not None
    assert response.status == 404
    await expect(page.locator("[data-testid=not-found]")).to_be_visible()


# -- dead letters -------------------------------------------------------------------------------


async def test_an_operator_replays_a_dead_letter_and_dvcqg_receives_it(
    world: DashboardWorld, page: Page
) -> None:
    code, message_id = await park(world)
    assert code not in world.sim.dossiers

    await log_in(page, world, OPERATOR, OPERATOR_PASSWORD)
    await page.goto(world.url(f"/dashboard/dead-letters?connector={PORTAL}"))
    row = page.locator(f"tr[data-testid=dead-group][data-message-id='{message_id}']")
    await expect(row).to_be_visible()
    await expect(row).to_contain_text(code)
    await expect(row).to_contain_text("07")
    await shoot(page, "parked")

    del world.sim.faults.reject[code]  # DVCQG takes the dossier now
    await world.parked_in_place(1)  # back in place after the page read it
    await row.get_by_role("link", name=vi("dead.inspect")).click()
    await expect(page.locator("[data-testid=payload]")).to_contain_text(code)
    replay = page.locator("button[data-testid=replay]")
    await expect(replay).to_be_enabled()
    await world.parked_in_place(1)
    await replay.click()
    flash = page.locator("[data-testid=flash]")
    await expect(flash).to_be_visible()
    await expect(flash).to_have_class(has_class("ok"))
    await shoot(page, "replayed")

    await eventually(lambda: code in world.sim.dossiers, 30, "the replayed dossier at DVCQG")
    assert not await still_parked(world, message_id)
    await page.reload()
    await expect(
        page.locator(f"tr[data-testid=dead-group][data-message-id='{message_id}']")
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


async def test_a_viewer_may_not_replay_a_dead_letter(world: DashboardWorld, page: Page) -> None:
    code, message_id = await park(world)
    # DVCQG would take it now: if the refusal leaked, the dossier would arrive there.
    del world.sim.faults.reject[code]

    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    await page.goto(world.url(f"/dashboard/dead-letters?connector={PORTAL}"))
    row = page.locator(f"tr[data-testid=dead-group][data-message-id='{message_id}']")
    await expect(row).to_be_visible()
    await expect(page.locator("[data-testid=viewer-note]")).to_be_visible()
    await expect(page.locator("[data-testid=bulk-actions]")).to_have_count(0)
    await expect(row.locator("[data-testid=group-replay]")).to_have_count(0)
    await shoot(page, "no-actions")
    response = await page.goto(
        world.url(f"/dashboard/bulk-actions/new?action=replay&connector={PORTAL}")
    )
    assert response is not None
    assert response.status == 403

    # Force it: a replay posted by hand, with the viewer's own session and CSRF token.
    await page.goto(world.url(f"/dashboard/dead-letters/{PORTAL}/{message_id}"))
    await expect(page.locator("button[data-testid=replay]")).to_have_count(0)
    await page.evaluate(
        """([action, id]) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            const csrf = document.querySelector('input[name=csrf_token]').cloneNode();
            const message = document.createElement('input');
            message.name = 'message_id';
            message.value = id;
            form.append(csrf, message);
            const go = document.createElement('button');
            go.id = 'forced';
            form.append(go);
            document.body.append(form);
        }""",
        [f"/dashboard/dead-letters/{PORTAL}/replay", message_id],
    )
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.click("#forced")
    assert (await answer.value).status == 403
    flash = page.locator("[data-testid=flash]")
    await expect(flash).to_be_visible()
    await expect(flash).to_have_class(has_class("error"))
    await shoot(page, "refused")

    await asyncio.sleep(1.0)  # a replay that slipped through would reach DVCQG by now
    assert code not in world.sim.dossiers
    await world.parked_in_place(1)
    assert await still_parked(world, message_id)

    # Nor may a viewer read the audit log.
    response = await page.goto(world.url("/dashboard/audit"))
    assert response is not None
    assert response.status == 403


# -- connector states ---------------------------------------------------------------------------

RED = "rgb(209, 36, 47)"  # --bad: down, credentials refused
PAUSED = "rgb(74, 106, 147)"  # --paused


def vi(key: str, **values: object) -> str:
    return i18n.translate("vi", key, **values)


async def left_border(node: Locator) -> str:
    return str(await node.evaluate("(n) => getComputedStyle(n).borderLeftColor"))


async def test_a_dvcqg_outage_shows_on_its_card_and_page_without_a_reload(
    world: DashboardWorld, page: Page
) -> None:
    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    card = page.locator(f"[data-testid=connector-card][data-connector={PORTAL}]")
    state = card.locator("[data-field=state]")
    await expect(state).not_to_have_attribute("data-state", "down")
    await page.evaluate("window.__sameDocument = 'yes'")

    code = world.new_code()
    world.sim.faults.mode = "http_503"
    try:
        await world.post_events(record_event(code))
        await expect(state).to_have_text(vi("state.down"), timeout=LIVE_TIMEOUT_MS)
        # The cause in words, the hub's own text kept for whoever needs the exact reply.
        reason = card.locator("[data-field=reason]")
        await expect(reason).to_have_text(vi("cause.http_5xx"))
        await expect(reason).to_have_attribute("title", re.compile("HTTP 503"))
        await expect(card.locator("[data-field=since]")).to_contain_text(vi("state.since", time=""))
        await expect(card).to_have_class(has_class("state-down"))
        assert await left_border(card) == RED
        assert await page.evaluate("window.__sameDocument") == "yes"
        await shoot(page, "down")

        # Its page, in a second tab: the badge is red, the reason beside it, the outage open.
        detail = await page.context.new_page()
        await detail.goto(world.url(f"/dashboard/connectors/{PORTAL}"))
        badge = detail.locator("h1 .badge[data-field=state]")
        await expect(badge).to_have_text(vi("state.down"))
        assert await left_border(badge) == RED
        line = detail.locator("[data-testid=state-line]")
        await expect(line).to_contain_text(vi("cause.http_5xx"))
        await expect(line.locator("details.raw code")).to_have_text(re.compile("HTTP 503"))
        ongoing = detail.locator("tr[data-testid=outage][data-ended=no]")
        await expect(ongoing).to_have_count(1)
        await expect(ongoing).to_contain_text(vi("outage.ongoing"))
        await shoot(detail, "connector-down")
        await detail.close()
    finally:
        world.sim.faults.mode = "ok"

    await expect(state).not_to_have_attribute("data-state", "down", timeout=LIVE_TIMEOUT_MS)
    await eventually(lambda: code in world.sim.dossiers, 30, "the dossier at DVCQG once it is back")
    assert await page.evaluate("window.__sameDocument") == "yes"
    await shoot(page, "back")


async def test_an_operator_pauses_and_resumes_dvcqg_from_its_page(
    world: DashboardWorld, page: Page
) -> None:
    await log_in(page, world, OPERATOR, OPERATOR_PASSWORD)
    await page.goto(world.url(f"/dashboard/connectors/{PORTAL}"))
    badge = page.locator("h1 .badge[data-field=state]")
    try:
        await page.fill("form.pause input[name=reason]", "bảo trì theo kế hoạch")
        await page.click("button[data-testid=pause]")
        await expect(page.locator("[data-testid=flash]")).to_have_text(vi("flash.paused"))
        await expect(badge).to_have_text(vi("state.paused"))
        assert await left_border(badge) == PAUSED
        line = page.locator("[data-testid=state-line]")
        await expect(line).to_contain_text(f"paused by {OPERATOR}: bảo trì theo kế hoạch")
        await expect(page.locator("button[data-testid=resume]")).to_be_visible()
        await shoot(page, "paused")

        await page.goto(world.url("/dashboard/"))
        card = page.locator(f"[data-testid=connector-card][data-connector={PORTAL}]")
        await expect(card.locator("[data-field=state]")).to_have_text(vi("state.paused"))
        assert await left_border(card) == PAUSED
        await shoot(page, "overview")

        await page.goto(world.url(f"/dashboard/connectors/{PORTAL}"))
        await page.click("button[data-testid=resume]")
        await expect(page.locator("[data-testid=flash]")).to_have_text(vi("flash.resumed"))
        await expect(badge).not_to_have_text(vi("state.paused"))
        await expect(page.locator("button[data-testid=pause]")).to_be_visible()
    finally:
        await world.hub.set_paused(PORTAL, "browser-test", "", False)  # whatever happened


def queue_messages(node: RabbitNode) -> dict[str, int]:
    """Every queue's messages (ready and unacknowledged) as `rabbitmqctl list_queues` says, in
    one call (each call starts an Erlang VM: seconds on a busy machine)."""
    counts: dict[str, int] = {}
    for line in node.ctl("list_queues", "name", "messages").splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit():
            counts[fields[0]] = int(fields[1])
    return counts


def parked_in_broker(node: RabbitNode, queue: str) -> int:
    found = queue_messages(node).get(queue)
    assert found is not None, f"rabbitmqctl does not list {queue}"
    return found


async def test_the_dead_letter_count_on_the_card_is_the_brokers(
    node_world: DashboardWorld, rabbit_node: RabbitNode, page: Page
) -> None:
    world, node = node_world, rabbit_node
    watched = world.hub.connector(PORTAL)
    assert watched is not None
    assert watched.queues is not None
    queue = watched.queues.parking
    before = await asyncio.to_thread(parked_in_broker, node, queue)

    codes = [world.new_code() for _ in range(4)]
    world.sim.faults.reject.update(dict.fromkeys(codes, "07"))
    await world.post_events(*(record_event(c) for c in codes))
    operator = await world.admin_login(OPERATOR, OPERATOR_PASSWORD)

    async def all_parked() -> bool:
        items = await world.dead_letters(operator, PORTAL)
        return set(codes) <= {i["dossier_code"] for i in items}

    await eventually(all_parked, 30, "the four refused dossiers parked")

    await log_in(page, world, VIEWER, VIEWER_PASSWORD)
    shown = page.locator(f"[data-connector={PORTAL}] [data-field=dead_letters]")
    seen: dict[str, int] = {}

    async def the_same() -> bool:
        seen["card"] = count_of(await shown.inner_text())
        seen["broker"] = await asyncio.to_thread(parked_in_broker, node, queue)
        return seen["card"] == seen["broker"] == before + len(codes)

    await eventually(the_same, 30, lambda: f"the card's dead letters the broker's: {seen}")
    await shoot(page, "counts")

    # Thousands parked (put straight into the parking queue, as the hub parks), and messages
    # waiting behind a paused connector while events keep coming: the card says what the
    # broker says (rabbitmqctl counts ready and unacknowledged alike).
    broker = world.hub.broker
    assert broker is not None
    many = 2_000
    for i in range(many):
        body = {"dossier_code": f"bulk-{i}"}
        headers = {REASON_HEADER: "refused", CONNECTOR_HEADER: PORTAL}
        await broker.publish(
            broker.channel.default_exchange, queue, message(body, f"b{i}", headers)
        )
    queues = [watched.queues.work, *(q for q, _ in watched.queues.retry)]
    depth = page.locator(f"[data-connector={PORTAL}] [data-field=queue_depth]")
    await world.hub.set_paused(PORTAL, "browser-test", "counting", True)
    try:
        await world.post_events(*(record_event(world.new_code()) for _ in range(30)))

        def broker_counts() -> tuple[int, int]:
            counts = queue_messages(node)
            return sum(counts[q] for q in queues), counts[queue]

        async def the_same_under_load() -> bool:
            seen["card_waiting"] = count_of(await depth.inner_text())
            seen["card_parked"] = count_of(await shown.inner_text())
            seen["broker_waiting"], seen["broker_parked"] = await asyncio.to_thread(broker_counts)
            return (
                seen["card_parked"] == seen["broker_parked"] == before + len(codes) + many
                and seen["card_waiting"] == seen["broker_waiting"] >= 30
            )

        await eventually(
            the_same_under_load, 120, lambda: f"the card's counts the broker's under load: {seen}"
        )
        await shoot(page, "counts-thousands")
    finally:
        await world.hub.set_paused(PORTAL, "browser-test", "", False)


STALE_WITHIN_S = 10.0  # the page must say its figures are stale this soon after the hub goes


async def stale_notice_within(page: Page, seconds: float) -> float:
    """Wait for the stale notice (checked every 100 ms); returns how long it took."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=stale-notice]').hidden",
        polling=100,
        timeout=seconds * 1000,
    )
    return loop.time() - began


async def the_stale_notice_tells_the_last_update(page: Page) -> str:
    updated = await page.locator("[data-testid=updated-at]").inner_text()
    notice = page.locator("[data-testid=stale-notice]")
    await expect(notice).to_be_visible()
    await expect(notice).to_have_text(vi("stale.notice", time=updated))
    await expect(page.locator("body")).to_have_class(has_class("stale"))
    card = page.locator(f"[data-testid=connector-card][data-connector={PORTAL}]")
    assert float(await card.evaluate("(n) => getComputedStyle(n).opacity")) < 1  # greyed
    return updated


async def test_the_overview_says_its_figures_are_stale_when_the_hub_is_gone(
    own_hub: OwnHub, page: Page
) -> None:
    await log_in(page, own_hub, VIEWER, VIEWER_PASSWORD)
    notice = page.locator("[data-testid=stale-notice]")
    await expect(notice).to_be_hidden()
    assert await page.locator("body").get_attribute("data-refresh") == "5.0"  # the default

    stopping = asyncio.create_task(own_hub.stop())  # the notice is timed from the first step
    try:
        waited_s = await stale_notice_within(page, STALE_WITHIN_S)
    finally:
        await stopping
    assert waited_s <= STALE_WITHIN_S
    updated = await the_stale_notice_tells_the_last_update(page)
    await shoot(page, "stale")

    # The hub back on the same address: the next refresh succeeds and the notice goes.
    await own_hub.start()
    await expect(notice).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
    await expect(page.locator("body")).not_to_have_class(has_class("stale"))
    await expect(page.locator("[data-testid=updated-at]")).not_to_have_text(updated)
    await shoot(page, "back")


async def test_the_overview_says_its_figures_are_stale_when_the_hub_hangs(
    hub_behind_proxy: TcpProxy, page: Page
) -> None:
    """A hub that takes the request and never answers: the page gives up on it in time."""
    proxy = hub_behind_proxy
    await log_in(page, proxy, VIEWER, VIEWER_PASSWORD)
    notice = page.locator("[data-testid=stale-notice]")
    await expect(notice).to_be_hidden()

    proxy.hang()
    waited_s = await stale_notice_within(page, STALE_WITHIN_S)
    assert waited_s <= STALE_WITHIN_S
    await the_stale_notice_tells_the_last_update(page)
    await shoot(page, "hung")

    proxy.relay()
    await expect(notice).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
