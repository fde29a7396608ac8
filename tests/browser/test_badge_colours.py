"""Every connector state in its own colour, on the connector page's badge and the overview's
card: DVCQG brought up, degraded (a refused dossier parked), down with its circuit opened and
half-opened (a probe on its way), refusing the hub's credentials, and paused, each for real
through its simulator or the pause. The colours are read from the page as Chromium computes
them, and compared with the stylesheet's own custom properties (--ok, --warn, --bad,
--paused): the badge's four borders and its text, the card's left border and its state word.
Once, the badge's own border colour won over the state's and a "down" badge stayed green."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Locator, Page, expect

from hub.dashboard import i18n
from hub.health import describe
from tests.browser.browser_world import (
    PORTAL,
    VIEWER,
    VIEWER_PASSWORD,
    DashboardWorld,
    log_in,
    record_event,
    shoot,
)
from tests.support import eventually

# The colour of each state, as the stylesheet names it.
PROPERTY = {
    "up": "--ok",
    "degraded": "--warn",
    "down": "--bad",
    "credentials_refused": "--bad",
    "paused": "--paused",
}
BORDERS = ("borderTopColor", "borderRightColor", "borderBottomColor", "borderLeftColor")


def state_of(world: DashboardWorld) -> str:
    w = world.hub.connector(PORTAL)
    assert w is not None
    return str(describe(w)["state"])


def circuit_of(world: DashboardWorld) -> str:
    w = world.hub.connector(PORTAL)
    assert w is not None
    assert w.guard is not None
    return w.guard.gate.breaker_state()


async def up(world: DashboardWorld) -> None:
    await world.post_events(record_event(world.new_code()))
    await eventually(lambda: len(world.sim.dossiers) == 1, 30, "a dossier delivered")


async def degraded(world: DashboardWorld) -> None:
    code = world.new_code()
    world.sim.faults.reject[code] = "07"  # DVCQG refuses this dossier for good: it parks
    await world.post_events(record_event(code))
    await eventually(lambda: state_of(world) == "degraded", 30, "DVCQG degraded")


async def down(world: DashboardWorld) -> None:
    world.sim.faults.mode = "http_503"
    await world.post_events(record_event(world.new_code()))
    await eventually(lambda: state_of(world) == "down", 30, "DVCQG down")


async def half_opened(world: DashboardWorld) -> None:
    """Down, and each probe hangs until the hub's time-out: the circuit is half-opened for
    most of the time (the page is read while it is)."""
    world.sim.faults.timeout_sleep_s = 60
    world.sim.faults.mode = "timeout"
    await world.post_events(record_event(world.new_code()))
    await eventually(lambda: state_of(world) == "down", 30, "DVCQG down")


async def credentials_refused(world: DashboardWorld) -> None:
    world.sim.password = "a-new-password"  # changed at DVCQG, not in the hub's configuration
    world.sim.expire_sessions()
    await world.post_events(record_event(world.new_code()))
    await eventually(lambda: state_of(world) == "credentials_refused", 30, "credentials refused")


async def paused(world: DashboardWorld) -> None:
    await world.hub.set_paused(PORTAL, "browser-test", "bảo trì", True)


CASES: dict[str, tuple[Callable[[DashboardWorld], Awaitable[None]], str, str]] = {
    # case: (how it comes about, the state, the circuit as the page names it)
    "up": (up, "up", "closed"),
    "degraded": (degraded, "degraded", "closed"),
    "down-circuit-opened": (down, "down", "opened"),
    "down-circuit-half-opened": (half_opened, "down", "half-opened"),
    "credentials_refused": (credentials_refused, "credentials_refused", "opened"),
    "paused": (paused, "paused", "closed"),
}


async def custom_colour(page: Page, name: str) -> str:
    """The colour a custom property of the stylesheet names, as Chromium computes colours."""
    return str(
        await page.evaluate(
            """(name) => {
                const value = getComputedStyle(document.documentElement).getPropertyValue(name);
                const probe = document.createElement("span");
                probe.style.color = value.trim();
                document.body.append(probe);
                const colour = getComputedStyle(probe).color;
                probe.remove();
                return value.trim() ? colour : "";
            }""",
            name,
        )
    )


async def colours(node: Locator, properties: tuple[str, ...]) -> dict[str, str]:
    found = await node.evaluate(
        "(n, names) => Object.fromEntries(names.map((p) => [p, getComputedStyle(n)[p]]))",
        list(properties),
    )
    return {str(k): str(v) for k, v in found.items()}


@pytest.mark.parametrize("case", list(CASES))
async def test_each_state_wears_its_own_colour_on_the_badge_and_the_card(
    world: DashboardWorld, page: Page, case: str
) -> None:
    bring_about, state, circuit = CASES[case]
    try:
        await bring_about(world)
        await log_in(page, world, VIEWER, VIEWER_PASSWORD)
        expected = await custom_colour(page, PROPERTY[state])
        assert expected, f"{PROPERTY[state]} is not defined by the stylesheet"
        others = {await custom_colour(page, p) for s, p in PROPERTY.items() if p != PROPERTY[state]}
        assert expected not in others  # the colours tell the states apart
        word = i18n.translate("vi", f"state.{state}")
        circuit_word = i18n.translate("vi", f"value.circuit.{circuit}")

        async def connector_page() -> bool:
            await page.goto(world.url(f"/dashboard/connectors/{PORTAL}"))
            shown = await page.locator("[data-field=circuit]").inner_text()
            return state_of(world) == state and shown.strip() == circuit_word

        await eventually(connector_page, 30, f"the page with state {state}, circuit {circuit}")
        badge = page.locator("h1 .badge[data-field=state]")
        await expect(badge).to_have_attribute("data-state", state)
        await expect(badge).to_have_text(word)
        found = await colours(badge, (*BORDERS, "color"))
        assert found == dict.fromkeys((*BORDERS, "color"), expected), (case, found)
        line = page.locator("[data-testid=state-line] strong")
        if await line.count():
            assert (await colours(line, ("color",)))["color"] == expected
        await shoot(page, "connector")

        await page.goto(world.url("/dashboard/"))
        card = page.locator(f"[data-testid=connector-card][data-connector={PORTAL}]")
        shown = card.locator("[data-field=state]")
        await expect(shown).to_have_attribute("data-state", state)
        await expect(shown).to_have_text(word)
        assert (await colours(card, ("borderLeftColor",)))["borderLeftColor"] == expected
        assert (await colours(shown, ("color",)))["color"] == expected
        await shoot(page, "overview")
    finally:
        world.sim.faults.mode = "ok"
        await world.hub.set_paused(PORTAL, "browser-test", "", False)
