"""Fixtures of the browser tests: headless Chromium driven by Playwright, and one running hub.

The browser is Debian's `chromium` (/usr/bin/chromium, installed by scripts/bootstrap.sh),
started once per session; Playwright's own browser downloads are never used. Each test gets a
fresh browser context (no cookies shared between tests) and a page; when the test ends the page
is saved as `test-artifacts/screenshots/<test name>.png` (`<test name>-failed.png` when the
test failed), and `shoot(page, step)` saves intermediate steps beside it.

The hub runs in process, as in the integration tests: the session's RabbitMQ node, the DVCQG
simulator on loopback, and the dashboard with one viewer and one operator; each test gets one
of its own (queues, store, simulator), built from `browser_world.py`. A test that stops the
hub takes `own_hub` instead: a hub of its own that it may stop and start again on the same
address; `hub_behind_proxy` puts a TCP proxy in front of it that can stop relaying (a hub
that hangs).
"""

from __future__ import annotations

import errno
import inspect
import secrets
import warnings
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from sims.national_portal.simulator import DvcqgSimulator
from sims.rabbitmq_node import RabbitNode, find_free_port
from tests.browser.browser_world import (
    ACTION_TIMEOUT_MS,
    CHROMIUM,
    DashboardWorld,
    OwnHub,
    TcpProxy,
    dashboard_section,
    open_world,
    shoot,
)
from tests.support import PORTAL_PASSWORD, PORTAL_USER, hub_overrides

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so a fixture's teardown knows how the test went."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


# -- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap.sh (as root) to install it")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    """Headless system Chromium for the whole session (no sandbox: the tests may run as root)."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            await chromium.close()


HUB_FIXTURES = ("world", "node_world", "own_hub", "hub_behind_proxy")


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A page in a fresh context; saved as a screenshot when the test ends, failed or not.

    A test asks for it after its hub's fixture: fixtures are torn down in reverse order, and
    the page, which keeps polling the dashboard, must be closed before its hub stops (a hub
    stopping under a page's requests waited minutes on a loaded machine)."""
    asked = list(inspect.signature(request.function).parameters)
    after = asked[asked.index("page") :] if "page" in asked else []
    late = [name for name in HUB_FIXTURES if name in after]
    assert not late, f"{request.function.__name__}: ask for {late} before `page`"
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    tab = await context.new_page()
    try:
        yield tab
    finally:
        try:
            await shoot(tab, "failed" if _failed(request) else "")
        except PlaywrightError as exc:
            # The last picture is a record, not a check: a page that could not be drawn in
            # time on a busy machine is said, and the test's own verdict stands.
            warnings.warn(f"no final screenshot: {exc.message.splitlines()[0]}", stacklevel=1)
        finally:
            await context.close()


# -- the hub ------------------------------------------------------------------------------------


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str) -> AsyncIterator[DashboardWorld]:
    """A hub with the dashboard on, for one test: its own queues, store and DVCQG."""
    async with open_world(tmp_path, rabbit_url) as opened:
        yield opened


@pytest.fixture
async def node_world(tmp_path: Path, rabbit_node: RabbitNode) -> AsyncIterator[DashboardWorld]:
    """The same world on the session's private node, always (also when HUB_TEST_BROKER_URL
    names another broker): a test that compares with `rabbitmqctl` needs a node it can reach."""
    async with open_world(tmp_path, rabbit_node.url) as opened:
        yield opened


@pytest.fixture
async def own_hub(tmp_path: Path, rabbit_url: str) -> AsyncIterator[OwnHub]:
    """A running hub of the test's own, its dashboard at the default refresh interval."""
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        overrides = hub_overrides(tmp_path, rabbit_url, f"t{secrets.token_hex(4)}", sim.url)
        dashboard = dashboard_section()
        del dashboard["refresh_s"]  # the configuration's default, as an operator gets it
        overrides["dashboard"] = dashboard
        own = await _started_on_a_free_port(overrides)
        try:
            yield own
        finally:
            await own.stop()


async def _started_on_a_free_port(overrides: dict[str, Any], attempts: int = 5) -> OwnHub:
    """An `OwnHub` on a port of its own, which it keeps across restarts. A free port is only
    free until someone binds it: another process may take it between the look and the bind
    (a busy machine runs other suites' servers and nodes), so a port taken is tried anew."""
    for attempt in range(attempts):
        port = find_free_port()
        overrides["http"]["port"] = port
        own = OwnHub(overrides, port)
        try:
            await own.start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise
            continue
        return own
    raise AssertionError("unreachable")


@pytest.fixture
async def hub_behind_proxy(own_hub: OwnHub) -> AsyncIterator[TcpProxy]:
    """`own_hub`, reached through a `TcpProxy` that the test may make hang."""
    async with TcpProxy(own_hub.port) as proxy:
        yield proxy
