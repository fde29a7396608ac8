"""`hub demo`: the whole flow on one machine, with nothing to set up.

Starts, in order: a private RabbitMQ node under `./var/rabbitmq` (unless a broker URL is
configured), the DVCQG simulator (with a national catalogue of 500 procedures), a one-stop
receiver of the hub's events, the payment platform simulator, the hub (SQLite store under
`./var/`; it syncs the catalogue at start), a one-stop traffic generator driving the facade
with realistic dossiers, round after round, and the platform paying the fees of those
dossiers (good, repeated, pending then resolved by status checks, and badly signed callbacks).
Prints every URL.
Ctrl-C (or SIGTERM) stops the traffic, the hub, the simulator and the node, in that order,
and leaves no process behind. Demo credentials are generated here and printed: they are for
this loopback demo only. This module must never be used by `hub run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Literal

import click
import structlog

from connectors.national_portal.simulator import DvcqgSimulator
from connectors.one_stop.simulator import OneStopTraffic
from connectors.payment_platform.simulator import PaymentPlatformSimulator, Variant
from connectors.webhook.simulator import WebhookReceiver
from hub.auth import hash_password, sha256_hex
from hub.config import ALL_PERMISSIONS, HubConfig, load_config
from hub.rabbitmq_node import RabbitNode
from hub.runtime import Hub

log = structlog.get_logger(__name__)

DEMO_UNIT = "000.00.41.H41"
DEMO_USER, DEMO_PASSWORD, DEMO_TOKEN = "onestop-demo", "demo-password", "demo-token"
PORTAL_USER, PORTAL_PASSWORD = "hub-demo", "portal-demo-password"
SUBSCRIBER_TOKEN = "one-stop-demo-token"  # noqa: S105 - loopback demo only
PAYMENT_PARTNER, PAYMENT_SECRET = "000.00.00.H41", "demo-payment-secret"
DEMO_FEE = 150_000
# What the demo platform sends, in turn: most callbacks are honest, some repeated, one in
# six pending (a status check resolves it), one in six badly signed (refused, 99).
PAYMENT_VARIANTS: tuple[Variant | Literal["pending"], ...] = (
    "good",
    "duplicate",
    "pending",
    "good",
    "bad_signature",
    "triple",
)
DEMO_PROCEDURES = 500
VAR = Path("var")
# The demo runs from a checkout: use its mapping files wherever the command is started.
CHECKOUT_MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


def demo_overrides(
    broker_url: str, portal_url: str, port: int, subscriber_url: str, platform_url: str
) -> dict[str, object]:
    return {
        "mappings_dir": str(CHECKOUT_MAPPINGS if CHECKOUT_MAPPINGS.is_dir() else Path("mappings")),
        "broker": {"url": broker_url},
        "store": {"path": str(VAR / "demo" / "hub.db")},
        "http": {"port": port},
        "sources": {
            "onestop_demo": {
                "username": DEMO_USER,
                "password_hash": hash_password(DEMO_PASSWORD),
                "api_token_sha256": sha256_hex(DEMO_TOKEN),
                "status_mapping": "one_stop_generic",
                "permissions": list(ALL_PERMISSIONS),
            }
        },
        "connectors": {
            "national_portal": {
                "base_url": portal_url,
                "username": PORTAL_USER,
                "password": PORTAL_PASSWORD,
                "delay_tiers_s": [2.0, 10.0, 60.0],
                # A full catalogue sync at start, then hourly.
                "catalogue": {"interval_s": 3600, "concurrency": 4, "rate_limit_per_s": 50},
            },
            "payment_platform": {
                "enabled": True,
                "partner_code": PAYMENT_PARTNER,
                "secret_key": PAYMENT_SECRET,
                "base_url": platform_url,
                # Pending payments are asked about after 5 seconds, not 30 minutes.
                "status_check": {"interval_s": 5, "min_age_s": 5},
                "reconciliation": {"output_dir": str(VAR / "demo" / "reconciliation")},
            },
        },
        "subscribers": {
            "one_stop": {
                "url": subscriber_url,
                "token": SUBSCRIBER_TOKEN,
                "events": ["procedure.#", "payment.#"],
                "delay_tiers_s": [2.0, 10.0, 60.0],
            }
        },
    }


async def run_demo(
    config: HubConfig | None, *, dossiers: int, rate_per_s: float, port: int
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        broker_url = config.broker.url.get_secret_value() if config and config.broker.url else None
        if broker_url is None:
            click.echo("starting a private RabbitMQ node under var/rabbitmq …")
            node = RabbitNode(VAR / "rabbitmq")
            await asyncio.to_thread(node.start)
            stack.callback(node.stop)
            broker_url = node.url
        sim = DvcqgSimulator(
            username=PORTAL_USER, password=PORTAL_PASSWORD, procedures=DEMO_PROCEDURES
        )
        await stack.enter_async_context(sim)
        receiver = WebhookReceiver(token=SUBSCRIBER_TOKEN)
        await stack.enter_async_context(receiver)
        platform = PaymentPlatformSimulator(partner_code=PAYMENT_PARTNER, secret=PAYMENT_SECRET)
        await stack.enter_async_context(platform)
        overrides = demo_overrides(broker_url, sim.url, port, receiver.url, platform.base_url)
        hub_config = load_config(None, overrides)
        hub = await stack.enter_async_context(Hub(hub_config))
        base = f"http://127.0.0.1:{hub.port}"
        platform.callback_url = base + hub_config.connectors.payment_platform.callback_path
        _print_urls(base, sim.url, broker_url, hub_config, receiver.base_url, platform.base_url)
        traffic = asyncio.create_task(
            _traffic(f"{base}{hub_config.facade.path}", dossiers, rate_per_s, stop, sim)
        )
        payments = asyncio.create_task(_payments(platform, sim, stop))
        await stop.wait()
        click.echo("\nstopping: traffic, hub, simulator, RabbitMQ …")
        await traffic
        await payments
    click.echo("demo stopped; nothing left running")


async def _traffic(
    url: str, dossiers: int, rate_per_s: float, stop: asyncio.Event, sim: DvcqgSimulator
) -> None:
    round_no = 0
    while not stop.is_set():
        generator = OneStopTraffic(url, DEMO_USER, DEMO_PASSWORD, DEMO_UNIT, seed=round_no)
        report = await generator.run(generator.plan(dossiers), rate_per_s=rate_per_s, stop=stop)
        round_no += 1
        log.info(
            "demo_traffic_round",
            round=round_no,
            acknowledged=len(report.acknowledged_steps),
            dossiers_at_portal=len(sim.dossiers),
        )


async def _payments(
    platform: PaymentPlatformSimulator, sim: DvcqgSimulator, stop: asyncio.Event
) -> None:
    """The platform pays the fees of dossiers the portal has received, a few per second."""
    paid: set[str] = set()
    sent = 0
    while not stop.is_set():
        for code in [c for c in list(sim.dossiers) if c not in paid][:5]:
            paid.add(code)
            variant = PAYMENT_VARIANTS[sent % len(PAYMENT_VARIANTS)]
            sent += 1
            pending = variant == "pending"
            tx = platform.new_transaction(f"{code}-01", DEMO_FEE, state="3" if pending else "1")
            try:
                await platform.send_callback(tx, "good" if variant == "pending" else variant)
            except Exception as exc:  # the hub is stopping: the demo's own traffic ends too
                log.warning("demo_payment_not_sent", error=repr(exc))
            if pending:
                platform.set_state(tx.transaction_id, "1")  # a status check will learn this
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    log.info("demo_payments_stopped", sent=sent)


def _print_urls(
    base: str,
    sim_url: str,
    broker_url: str,
    config: HubConfig,
    receiver_url: str,
    platform_url: str,
) -> None:
    lines = [
        "",
        "The hub is running. Press Ctrl-C to stop everything.",
        f"  DVCQG-compatible facade  POST {base}{config.facade.path}"
        f"  (user {DEMO_USER}, password {DEMO_PASSWORD})",
        f"  canonical API            POST {base}/api/v1/dossier-events  (Bearer {DEMO_TOKEN})",
        f"  portal change feed       GET  {base}/api/v1/portal/dossier-changes?after=0",
        f"  OpenAPI                  GET  {base}/api/v1/openapi.json",
        f"  health / readiness       GET  {base}/healthz  {base}/readyz",
        f"  metrics                  GET  {base}/metrics",
        f"  procedures (pull API)    GET  {base}/api/v1/procedures?limit=10  (Bearer {DEMO_TOKEN})",
        f"  catalogue sync runs      GET  {base}/api/v1/procedure-sync-runs",
        f"  DVCQG simulator          POST {sim_url}  (state: GET {sim_url}/_sim/state)",
        f"  DVCQG catalogue          GET  {sim_url}/_sim/catalogue",
        f"  one-stop event receiver  GET  {receiver_url}/_sim/state",
        f"  payment callbacks        POST {base}{config.connectors.payment_platform.callback_path}",
        f"  payments of a dossier    GET  {base}/api/v1/payments?dossier_code=…",
        f"  refused callbacks        GET  {base}/api/v1/payments/callbacks?verdict=refused",
        f"  payment platform         GET  {platform_url}/_sim/state",
        f"  RabbitMQ                 {broker_url.replace('guest:guest@', '')}",
        f"  store                    {config.store.path}",
        "",
    ]
    click.echo("\n".join(lines))
