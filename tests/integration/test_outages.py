"""An outage is not a refusal: DVCQG down for longer than every delay tier together parks
nothing, and every dossier reaches it by itself once it is back.

Real RabbitMQ node, the real hub, and DVCQG's loopback simulator made to fail in each way a
province meets: HTTP 503, HTTP 429, time-outs, connection refused (the server gone), and a
password it refuses (corrected by an operator and a restart). Each test also reads the
connector's state, cause and counts where an operator would: `/readyz`, `/metrics`, the hub's
own records of the outage.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml

from hub import metrics
from hub.config import load_config
from hub.health import Watched
from hub.outage import State
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator, step_key
from sims.one_stop.simulator import OneStopTraffic
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    eventually,
    hub_cli,
    hub_config,
    hub_overrides,
)

TIERS_S = [0.3, 0.6, 1.0]  # tests/support's delay tiers: 1.9 s in all
PORTAL = "national_portal"


@pytest.fixture
async def sim() -> AsyncIterator[DvcqgSimulator]:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as s:
        yield s


async def send_dossiers(hub: Hub, n: int, seed: int) -> tuple[dict[str, str], set[Any]]:
    """n dossiers through the facade, as a one-stop adapter sends them: (newest status by
    code, every step)."""
    traffic = OneStopTraffic(
        f"http://127.0.0.1:{hub.port}/dvcqg", ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=seed
    )
    report = await traffic.run(traffic.plan(n))
    expected = report.expected_state()
    statuses = {c: str(r["TrangThaiHoSo"]) for c, r in expected.records.items()}
    return statuses, expected.steps


def portal_holds(sim: DvcqgSimulator, statuses: dict[str, str], steps: set[Any]) -> bool:
    held = {c: str(d["TrangThaiHoSo"]) for c, d in sim.dossiers.items()}
    got = {step_key(s) for ss in sim.steps.values() for s in ss}
    return held == statuses and got == steps


async def readyz(hub: Hub, query: str = "") -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{hub.port}/readyz{query}") as r,
    ):
        return r.status, await r.json()


async def parked(hub: Hub) -> int | None:
    w = portal(hub)
    assert hub.probe is not None
    assert w.queues is not None
    return await hub.probe.count(w.queues.parking)


def portal(hub: Hub) -> Watched:
    w = hub.connector(PORTAL)
    assert w is not None
    assert w.guard is not None
    assert w.consumer is not None
    return w


def outlasted_the_tiers(hub: Hub) -> Callable[[], bool]:
    """The outage has gone on longer than every delay tier together, with probes made."""

    def check() -> bool:
        w = portal(hub)
        assert w.guard is not None
        outage = w.guard.gate.outage
        return (
            outage is not None
            and time.time() - outage.started_at > 1.5 * sum(TIERS_S)
            and outage.probes >= 2
        )

    return check


def calls(outcome: str) -> float:
    return float(metrics.OUTBOUND_CALLS.labels(PORTAL, outcome)._value.get())


Fault = Callable[[DvcqgSimulator], Awaitable[None]]


async def fail_503(sim: DvcqgSimulator) -> None:
    sim.faults.mode = "http_503"


async def fail_429(sim: DvcqgSimulator) -> None:
    sim.faults.mode = "http_429"


async def fail_timeout(sim: DvcqgSimulator) -> None:
    sim.faults.timeout_sleep_s = 5  # the hub gives up after its timeout_s (2 s here)
    sim.faults.mode = "timeout"


async def fail_refused(sim: DvcqgSimulator) -> None:
    sim.port = urlsplit(sim.base_url).port or 0  # come back on the same port
    await sim.stop()


async def heal(sim: DvcqgSimulator) -> None:
    if sim.faults.mode != "ok":
        sim.faults.mode = "ok"
    else:
        await sim.start()


@pytest.mark.parametrize(
    ("fault", "cause", "outcome"),
    [
        (fail_503, "HTTP 503 from DVCQG", "http_5xx"),
        (fail_429, "HTTP 429 from DVCQG", "http_4xx"),
        (fail_timeout, "DVCQG did not answer in time", "timeout"),
        (fail_refused, "cannot reach DVCQG", "connect_error"),
    ],
    ids=["http_503", "http_429", "timeout", "connection_refused"],
)
async def test_an_outage_longer_than_every_delay_tier_parks_nothing_and_heals_by_itself(
    tmp_path: Path,
    rabbit_url: str,
    broker_prefix: str,
    sim: DvcqgSimulator,
    fault: Fault,
    cause: str,
    outcome: str,
) -> None:
    failed_before = calls(outcome)
    async with Hub(hub_config(tmp_path, rabbit_url, broker_prefix, sim.url)) as hub:
        w = portal(hub)
        assert w.guard is not None
        assert w.consumer is not None
        await fault(sim)
        statuses, steps = await send_dossiers(hub, 8, seed=11)
        await eventually(
            lambda: w.guard is not None and w.guard.gate.state() is State.down,
            30,
            "DVCQG seen down",
        )

        # Every view tells the same story: down, why and since when; the hub itself is ready.
        status, body = await readyz(hub, "?counts=1")
        view = body["connectors"][PORTAL]
        assert status == 200, body
        assert (view["state"], view["consuming"]) == ("down", True)
        assert cause in view["reason"]
        assert cause in view["outage"]["cause"]
        assert view["since"] == view["outage"]["started_at"]
        assert view["parked"] == 0
        assert view["waiting"] > 0

        await eventually(outlasted_the_tiers(hub), 60, "the outage outlasting every delay tier")
        assert sim.dossiers == {}
        assert await parked(hub) == 0
        assert (w.consumer.stats.retried, w.consumer.stats.parked) == (0, 0)
        assert calls(outcome) > failed_before

        await heal(sim)
        await eventually(
            lambda: portal_holds(sim, statuses, steps), 60, "every dossier and step at DVCQG"
        )
        assert await parked(hub) == 0
        assert all(n == 1 for n in sim.step_receipts.values()), "a step was sent twice"
        assert w.guard.gate.state() is State.up
        (outage,) = w.guard.gate.outages
        assert outage.ended_at is not None
        assert cause in outage.cause
        status, body = await readyz(hub)
        assert (status, body["connectors"][PORTAL]["state"]) == (200, "up")


async def test_a_refused_password_waits_as_credentials_refused_until_an_operator_fixes_it(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, sim: DvcqgSimulator
) -> None:
    wrong = hub_config(tmp_path, rabbit_url, broker_prefix, sim.url, password="not-the-password")
    async with Hub(wrong) as hub:
        statuses, steps = await send_dossiers(hub, 6, seed=12)
        w = portal(hub)
        await eventually(
            lambda: w.guard is not None and w.guard.gate.state() is State.credentials_refused,
            30,
            "DVCQG seen as refusing the hub's credentials",
        )
        status, body = await readyz(hub)
        view = body["connectors"][PORTAL]
        assert status == 200
        assert view["state"] == "credentials_refused"
        assert "refused the hub's login" in view["reason"]
        assert "not-the-password" not in str(body)
        await eventually(outlasted_the_tiers(hub), 60, "the refusal outlasting every delay tier")
        assert await parked(hub) == 0
        assert sim.dossiers == {}
        consumer = portal(hub).consumer
        assert consumer is not None
    # Stopped while down: what it held went back to the queue (not returned by the broker,
    # which would have counted a delivery against the delivery limit).
    assert consumer.shelved > 0
    # The operator corrects the password and restarts: what waited goes out, nothing parked.
    right = hub_config(tmp_path, rabbit_url, broker_prefix, sim.url)
    async with Hub(right) as hub:
        await eventually(
            lambda: portal_holds(sim, statuses, steps), 60, "every dossier and step at DVCQG"
        )
        assert await parked(hub) == 0


async def test_a_paused_connector_sends_nothing_until_resumed_and_both_are_audited(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, sim: DvcqgSimulator
) -> None:
    async with Hub(hub_config(tmp_path, rabbit_url, broker_prefix, sim.url)) as hub:
        assert await hub.set_paused(PORTAL, "operator1", "DVCQG maintenance 22:00-23:00", True)
        assert not await hub.set_paused(PORTAL, "operator1", "again", True)  # already paused
        statuses, steps = await send_dossiers(hub, 5, seed=13)
        status, body = await readyz(hub, "?counts=1")
        view = body["connectors"][PORTAL]
        assert status == 200
        assert view["state"] == "paused"
        assert "operator1" in view["reason"]
        consumer = portal(hub).consumer
        assert consumer is not None
        await eventually(lambda: consumer.in_flight() > 0, 30, "a batch taken and held")
        assert sim.dossiers == {}
        assert sim.calls == {}
        assert await hub.set_paused(PORTAL, "operator2", "", False)
        await eventually(
            lambda: portal_holds(sim, statuses, steps), 60, "every dossier and step at DVCQG"
        )
        assert await parked(hub) == 0
        assert hub.store is not None
        audit = await hub.store.audit_entries(5)
        assert [(a.action, a.actor, a.target) for a in audit[:2]] == [
            ("connector.resume", "operator2", PORTAL),
            ("connector.pause", "operator1", PORTAL),
        ]
        with pytest.raises(KeyError):
            await hub.set_paused("no_such_connector", "operator1", "", True)


async def test_hub_status_and_a_pause_from_the_cli_reach_the_running_hub(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, sim: DvcqgSimulator
) -> None:
    overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
    config_file = tmp_path / "hub.yaml"
    config_file.write_text(yaml.safe_dump(overrides), encoding="utf-8")
    sim.faults.mode = "http_503"
    async with Hub(load_config(config_file)) as hub:
        url = f"http://127.0.0.1:{hub.port}"
        await send_dossiers(hub, 3, seed=14)
        gate = portal(hub).guard
        assert gate is not None
        await eventually(lambda: gate.gate.state() is State.down, 30, "DVCQG seen down")

        code, out, err = await hub_cli("status", "--url", url)
        assert code == 0, err
        assert f"hub at {url}: READY" in out
        (line,) = [x for x in out.splitlines() if x.startswith("national_portal ")]
        assert line.split()[1] == "down"
        assert "HTTP 503 from DVCQG" in line
        assert line.split()[4] == "0"  # parked: none

        code, out, err = await hub_cli(
            "connectors", "pause", PORTAL, "-c", str(config_file), "--reason", "bảo trì",
            "--actor", "op1",
        )  # fmt: skip
        assert code == 0, err
        assert f"paused {PORTAL} (audited as op1)" in out
        await eventually(lambda: gate.gate.state() is State.paused, 30, "DVCQG paused")
        code, out, _ = await hub_cli("status", "--url", url, "--json")
        body = json.loads(out)
        assert body["connectors"][PORTAL]["state"] == "paused"
        assert "op1" in body["connectors"][PORTAL]["reason"]

        code, _, err = await hub_cli("connectors", "pause", "nope", "-c", str(config_file))
        assert code == 2
        assert "unknown connector 'nope'" in err

        sim.faults.mode = "ok"
        code, out, err = await hub_cli("connectors", "resume", PORTAL, "-c", str(config_file))
        assert code == 0, err
        await eventually(lambda: gate.gate.state() is State.up, 30, "DVCQG up again")

    code, _, err = await hub_cli("status", "--url", url)
    assert code == 1
    assert "does not answer" in err


async def test_a_batch_held_past_hold_max_s_goes_back_to_its_queue_and_nothing_is_lost(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, sim: DvcqgSimulator
) -> None:
    overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
    overrides["broker"]["hold_max_s"] = 0.5  # RabbitMQ's consumer_timeout stands far off
    sim.faults.mode = "http_503"
    async with Hub(load_config(None, overrides)) as hub:
        consumer = portal(hub).consumer
        assert consumer is not None
        statuses, steps = await send_dossiers(hub, 8, seed=15)
        store = hub.store
        assert store is not None

        async def published() -> bool:
            return await store.outbox_pending(0, 1) == []

        await eventually(published, 30, "the outbox published")
        waiting = (await readyz(hub, "?counts=1"))[1]["connectors"][PORTAL]["waiting"]
        # Held, put back, taken again, held again ...: never retried, never parked.
        await eventually(lambda: consumer.shelved >= 2 * waiting, 60, "each batch shelved twice")
        assert await parked(hub) == 0
        assert (consumer.stats.retried, consumer.stats.parked) == (0, 0)

        async def same_count() -> bool:  # none lost, none doubled (between two shelvings)
            _, body = await readyz(hub, "?counts=1")
            return bool(body["connectors"][PORTAL]["waiting"] == waiting)

        await eventually(same_count, 30, f"{waiting} waiting again between two shelvings")
        sim.faults.mode = "ok"
        await eventually(
            lambda: portal_holds(sim, statuses, steps), 60, "every dossier and step at DVCQG"
        )
        assert await parked(hub) == 0
