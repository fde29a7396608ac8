"""The hub's own alerts over real HTTP: DVCQG's simulator goes down past the threshold and
comes back; loopback receivers (one over HTTPS with its CA and the hub's client certificate,
one over plain HTTP) get exactly one "firing" and one "resolved"; `/readyz` and the dashboard's
overview show the alert while it fires; a receiver that fails or hangs holds up nothing and
gets its messages, in order, once it answers again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.alerts import Alerting
from hub.config import HubConfig, deep_merge, load_config
from hub.health import describe
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.dashboard_world import PASSWORDS, USERS, dashboard_overrides
from tests.support import (
    ONESTOP_TOKEN,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    eventually,
    hub_overrides,
)
from tests.support.tls import Authority, server_context

PORTAL = "national_portal"
SHORT_LEASES = {"lease_s": 2.0, "renew_every_s": 0.3}
ALERT_TOKEN = "alert-receiver-token"
DOWN_FOR_S = 1.0
FAST_ALERTS = {
    "check_interval_s": 0.2,
    "connector_down_for_s": DOWN_FOR_S,
    "retry_initial_s": 0.1,
    "retry_max_s": 0.4,
}


@dataclass
class Pki:
    ca: Path
    server: tuple[Path, Path]
    hub_client: tuple[Path, Path]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("alerts-pki")
    ca = Authority("Alert receiver CA")
    return Pki(
        ca=ca.write(folder / "ca.pem"),
        server=ca.issue("receiver", server=True).write(folder, "receiver"),
        hub_client=ca.issue("hub", client=True).write(folder, "hub"),
    )


@dataclass
class World:
    hub: Hub
    portal: DvcqgSimulator
    http: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hub.port}"

    @property
    def alerting(self) -> Alerting:
        assert self.hub.alerting is not None
        return self.hub.alerting

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        async with self.http.get(f"{self.base}/readyz") as r:
            return r.status, await r.json()

    async def dossier(self, code: str) -> None:
        at = datetime.now(VN_TZ) - timedelta(minutes=5)
        event = {
            "event_id": f"ev-{code}",
            "dossier_code": code,
            "kind": "record",
            "status": "accepted",
            "occurred_at": at.isoformat(),
            "record": {"procedure_code": "1.000894", "received_at": at.isoformat()},
        }
        async with self.http.post(
            f"{self.base}/api/v1/dossier-events",
            json={"events": [event]},
            headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
        ) as r:
            assert r.status == 200, await r.text()

    async def next_checks(self, n: int) -> None:
        """Wait until the rules were evaluated `n` more times."""
        target = self.alerting.checks + n
        await eventually(lambda: self.alerting.checks >= target, 30, f"{n} more checks")

    def portal_state(self) -> str:
        w = self.hub.connector(PORTAL)
        assert w is not None
        return str(describe(w)["state"])


Start = Callable[[dict[str, Any]], Any]


@pytest.fixture
async def start(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[Start]:
    """Start DVCQG's simulator and the hub with these `alerts` settings."""
    async with AsyncExitStack() as stack:

        async def _start(alerts: dict[str, Any]) -> World:
            portal = await stack.enter_async_context(
                DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
            )
            overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, portal.url)
            overrides["dashboard"] = dashboard_overrides()
            overrides = deep_merge(overrides, {"alerts": deep_merge(FAST_ALERTS, alerts)})
            hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
            http = await stack.enter_async_context(aiohttp.ClientSession())
            return World(hub, portal, http)

        yield _start


def received(receiver: WebhookReceiver, status: str) -> list[dict[str, Any]]:
    return receiver.by_type(f"alert.{status}")


def one_episode(receiver: WebhookReceiver) -> tuple[dict[str, Any], dict[str, Any]]:
    """The receiver's one firing and one resolved message, each accepted exactly once."""
    firing, resolved = received(receiver, "firing"), received(receiver, "resolved")
    assert len(firing) == 1, receiver.state()
    assert len(resolved) == 1, receiver.state()
    assert receiver.duplicates() == {}
    assert [e["type"] for e in receiver.events] == ["alert.firing", "alert.resolved"]
    return firing[0], resolved[0]


async def test_a_dvcqg_outage_past_the_threshold_fires_once_and_resolves_once(
    start: Start, pki: Pki
) -> None:
    async with AsyncExitStack() as stack:
        secure = WebhookReceiver(token=ALERT_TOKEN, path="/hooks/hub")
        secure.ssl_context = server_context(pki.server, pki.ca, require=True)
        await stack.enter_async_context(secure)
        plain = await stack.enter_async_context(WebhookReceiver(token="other-token"))
        tls = {
            "ca_file": str(pki.ca),
            "cert_file": str(pki.hub_client[0]),
            "key_file": str(pki.hub_client[1]),
        }
        world: World = await start(
            {
                "webhooks": {
                    "ops_chat": {"url": secure.url, "token": ALERT_TOKEN, "tls": tls},
                    "sms_gateway": {"url": plain.url, "token": "other-token"},
                }
            }
        )
        assert secure.url.startswith("https://")
        status, body = await world.readyz()
        assert (status, body["alerts"]) == (200, [])

        # DVCQG goes down: after the threshold, one "firing" to each receiver.
        world.portal.faults.mode = "http_503"
        await world.dossier(f"{UNIT}-261206-0001")
        await eventually(lambda: world.portal_state() == "down", 30, "DVCQG down")
        await eventually(lambda: received(secure, "firing"), 30, "the firing notification")
        await eventually(lambda: received(plain, "firing"), 30, "the firing at the second")
        firing = received(secure, "firing")[0]
        assert firing["rule"] == "HubConnectorDown"
        assert firing["connector"] == PORTAL
        assert firing["status"] == "firing"
        assert firing["threshold"] == DOWN_FOR_S
        assert firing["value"] >= DOWN_FOR_S
        assert datetime.fromisoformat(firing["since"]) <= datetime.fromisoformat(firing["fired_at"])
        assert "HTTP 503" in firing["detail"]
        assert "Cổng DVCQG" in firing["summary"]["vi"]
        assert "gián đoạn" in firing["summary"]["vi"]
        assert "down since" in firing["summary"]["en"]
        assert "(UTC+7)" in firing["summary"]["en"]
        assert received(plain, "firing")[0]["event_id"] == firing["event_id"]
        # The hub presented its client certificate to the receiver that asks for one.
        assert len(secure.peer_certificates) == 1

        # While it fires: in /readyz (still ready: waiting for DVCQG is what the hub should do)
        # and on the dashboard's overview, its API and its page.
        status, body = await world.readyz()
        assert status == 200
        assert [(a["rule"], a["connector"]) for a in body["alerts"]] == [
            ("HubConnectorDown", PORTAL)
        ]
        assert body["alerts"][0]["episode"] == firing["episode"]
        overview, page = await dashboard_views(world)
        assert [a["rule"] for a in overview["alerts"]] == ["HubConnectorDown"]
        assert 'data-testid="alerts"' in page
        assert overview["alerts"][0]["summary"]["vi"].split(",")[0] in page

        # More checks while it fires send nothing more.
        await world.next_checks(5)
        assert len(received(secure, "firing")) == 1
        assert received(secure, "resolved") == []

        # DVCQG comes back: one "resolved", of the same episode.
        world.portal.faults.mode = "ok"
        await eventually(lambda: received(secure, "resolved"), 30, "the resolved notification")
        await eventually(lambda: received(plain, "resolved"), 30, "the resolved at the second")
        await world.next_checks(5)
        for receiver in (secure, plain):
            fired, resolved = one_episode(receiver)
            assert resolved["episode"] == fired["episode"] == firing["episode"]
            assert resolved["status"] == "resolved"
            assert resolved["resolved_at"] is not None
            assert "hoạt động trở lại" in resolved["summary"]["vi"]
            assert "is back" in resolved["summary"]["en"]
        status, body = await world.readyz()
        assert (status, body["alerts"]) == (200, [])


async def dashboard_views(world: World) -> tuple[dict[str, Any], str]:
    """The overview from the admin API and the overview page, as an operator sees them."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[world.base])
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        login = {"username": USERS["viewer"], "password": PASSWORDS["viewer"]}
        async with http.post(f"{world.base}/api/v1/admin/session", json=login) as r:
            assert r.status == 200, await r.text()
        async with http.get(f"{world.base}/api/v1/admin/overview") as r:
            assert r.status == 200, await r.text()
            overview: dict[str, Any] = await r.json()
        async with http.get(f"{world.base}/dashboard/") as r:
            assert r.status == 200
            page = await r.text()
    return overview, page


@pytest.mark.parametrize("fault", ["http_503", "timeout"])
async def test_a_receiver_that_fails_holds_up_nothing_and_gets_its_messages_on_retry(
    start: Start, fault: str
) -> None:
    async with WebhookReceiver(token=ALERT_TOKEN) as receiver:
        receiver.faults.mode = fault  # type: ignore[assignment]
        receiver.faults.timeout_sleep_s = 60  # a receiver that hangs: longer than any test
        world: World = await start(
            {"webhooks": {"ops": {"url": receiver.url, "token": ALERT_TOKEN, "timeout_s": 0.5}}}
        )
        first, second = f"{UNIT}-261206-0101", f"{UNIT}-261206-0102"
        world.portal.faults.mode = "http_503"
        await world.dossier(first)
        await eventually(lambda: world.alerting.active(), 30, "the alert firing")
        # The firing message is tried again and again, and refused or left unanswered.
        await eventually(lambda: receiver.requests >= 3, 30, "three tries")
        assert receiver.events == []

        # Meanwhile the hub answers at once and goes on with its work.
        status, body = await world.readyz()
        assert status == 200
        assert body["alerts"][0]["rule"] == "HubConnectorDown"
        world.portal.faults.mode = "ok"
        await world.dossier(second)
        await eventually(
            lambda: first in world.portal.dossiers and second in world.portal.dossiers,
            30,
            "both dossiers at DVCQG while the receiver fails",
        )
        await eventually(lambda: not world.alerting.active(), 30, "the alert resolved")
        assert receiver.events == []

        # The receiver answers again: both messages arrive, firing first, once each.
        receiver.faults.mode = "ok"
        await eventually(lambda: len(receiver.events) == 2, 30, "both notifications")
        await world.next_checks(5)
        fired, resolved = one_episode(receiver)
        assert fired["episode"] == resolved["episode"]
        assert receiver.requests >= 5


async def test_new_dead_letters_fire_at_once_and_resolve_after_a_quiet_window(
    start: Start,
) -> None:
    async with WebhookReceiver(token=ALERT_TOKEN) as receiver:
        world: World = await start(
            {
                "dead_letters_window_s": 2,
                "webhooks": {"ops": {"url": receiver.url, "token": ALERT_TOKEN}},
            }
        )
        refused = f"{UNIT}-261206-0301"
        world.portal.faults.reject[refused] = "07"  # DVCQG refuses it for good: it parks
        await world.dossier(refused)
        await eventually(lambda: received(receiver, "firing"), 30, "the firing notification")
        firing = received(receiver, "firing")[0]
        assert (firing["rule"], firing["connector"]) == ("HubDeadLettersGrowing", PORTAL)
        assert (firing["value"], firing["threshold"]) == (1, 0)
        assert "1 new dead letters in the last 2.0 s" in firing["summary"]["en"]
        assert "tin lỗi mới" in firing["summary"]["vi"]
        status, body = await world.readyz()
        assert status == 200
        assert [a["rule"] for a in body["alerts"]] == ["HubDeadLettersGrowing"]

        # Still parked, but nothing new for the window: resolved, once.
        await eventually(lambda: received(receiver, "resolved"), 30, "the resolved notification")
        await world.next_checks(5)
        fired, resolved = one_episode(receiver)
        assert resolved["episode"] == fired["episode"]
        assert resolved["value"] == 0
        assert "1 parked" in resolved["detail"]


@dataclass
class Restarts:
    """One receiver, DVCQG's simulator and a configuration to start the hub with, again and
    again on the same store."""

    receiver: WebhookReceiver
    portal: DvcqgSimulator
    http: aiohttp.ClientSession
    config: HubConfig

    async def fired_then_stopped(self, code: str) -> dict[str, Any]:
        """A hub that finds DVCQG down for `code` fires, and stops: the firing received."""
        self.portal.faults.mode = "http_503"
        async with Hub(self.config) as hub:
            await World(hub, self.portal, self.http).dossier(code)
            await eventually(lambda: received(self.receiver, "firing"), 30, "the firing one")
        return received(self.receiver, "firing")[0]

    async def resolved_of(self, world: World, firing: dict[str, Any]) -> None:
        """DVCQG comes back: one "resolved", of the episode of `firing`, and nothing else."""
        self.portal.faults.mode = "ok"
        await eventually(lambda: received(self.receiver, "resolved"), 30, "the resolved one")
        await world.next_checks(3)
        _, body = await world.readyz()
        assert body["alerts"] == []
        fired, resolved = one_episode(self.receiver)
        assert resolved["episode"] == fired["episode"] == firing["episode"]


@pytest.fixture
async def restarts(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[Restarts]:
    async with (
        WebhookReceiver(token=ALERT_TOKEN) as receiver,
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        aiohttp.ClientSession() as http,
    ):
        overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, portal.url)
        webhooks = {"webhooks": {"ops_chat": {"url": receiver.url, "token": ALERT_TOKEN}}}
        overrides = deep_merge(overrides, {"alerts": deep_merge(FAST_ALERTS, webhooks)})
        overrides["duties"] = SHORT_LEASES  # on PostgreSQL, a lease a stop left lapses soon
        yield Restarts(receiver, portal, http, load_config(None, overrides))


async def test_a_restart_during_an_outage_goes_on_with_the_same_episode(
    restarts: Restarts,
) -> None:
    """The hub fires for a DVCQG outage and is restarted while DVCQG is still down: the new
    process reads the firing alert back from the store, sends no second "firing" when it
    finds DVCQG down again, and one "resolved" of the same episode when DVCQG is back."""
    firing = await restarts.fired_then_stopped(f"{UNIT}-261207-0001")
    async with Hub(restarts.config) as hub:  # the same store; the dossier's message waits again
        world = World(hub, restarts.portal, restarts.http)
        await eventually(lambda: world.portal_state() == "down", 30, "DVCQG down again")
        await world.next_checks(5)
        assert len(received(restarts.receiver, "firing")) == 1, restarts.receiver.state()
        _, body = await world.readyz()
        assert [a["episode"] for a in body["alerts"]] == [firing["episode"]]
        await restarts.resolved_of(world, firing)


async def test_a_restart_after_the_outage_ended_resolves_once_a_call_is_answered(
    restarts: Restarts,
) -> None:
    """Restarted after the outage, before its "resolved" was sent: the restored alert is not
    resolved by the start-up "up" alone (DVCQG answers slowly: no call answered yet), but
    once a call to DVCQG was answered."""
    firing = await restarts.fired_then_stopped(f"{UNIT}-261207-0002")
    restarts.portal.faults.delay_s = 5.0
    restarts.portal.faults.mode = "slow"
    async with Hub(restarts.config) as hub:
        world = World(hub, restarts.portal, restarts.http)
        await world.next_checks(5)
        assert received(restarts.receiver, "resolved") == []  # "up" at start is no news
        _, body = await world.readyz()
        assert [a["episode"] for a in body["alerts"]] == [firing["episode"]]
        await restarts.resolved_of(world, firing)
