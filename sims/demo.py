"""`hub demo`: the whole flow on one machine, with nothing to set up.

Starts, in order: a private RabbitMQ node under `./var/rabbitmq` (unless a broker URL is
configured), the DVCQG simulator (with a national catalogue of 500 procedures), a one-stop
receiver of the hub's events, the payment platform simulator, the two worked-example ministry
systems (business registration over SOAP, polled; civil status over REST, pushing), the hub
(SQLite store under `./var/`; it syncs the catalogue at start), a one-stop traffic generator
driving the facade with realistic dossiers, round after round, each round also bringing
accepted dossiers of the ministries' procedures through the canonical API (the hub hands them
off and their results come back), and the platform paying the fees of those dossiers (good,
repeated, pending then resolved by status checks, and badly signed callbacks). The document
axis (VDXP) simulator carries, each round, one inter-agency transfer of a dossier from the hub
to a ministry (which answers with its statuses) and one document from a provincial department
naming a dossier the hub holds.
Prints every URL and the demo users, then a status line; the logs go to `var/demo/hub.log`
(the block is printed again every minute, on Enter and on SIGUSR1: `sims.demo_console`).
Ctrl-C (or SIGTERM) stops the traffic, the hub, the simulators and the node, in that order,
and leaves no process behind. Demo credentials are generated here and printed: they are for
this loopback demo only. This module must never be used by `hub run`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import aiohttp
import click
import structlog
from yarl import URL

from hub.auth import hash_password
from hub.config import ALL_PERMISSIONS, HubConfig, load_config
from hub.logs import configure_logging
from hub.runtime import Hub
from hub.tokens import hash_token
from hub.validation import VN_TZ
from sims.demo_console import DemoConsole, Status, status_line
from sims.ministry import examples
from sims.ministry.rest_simulator import CivilStatusSimulator
from sims.ministry.soap_simulator import BusinessRegistrationSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.one_stop.simulator import OneStopTraffic
from sims.payment_platform.simulator import PaymentPlatformSimulator, Variant
from sims.rabbitmq_node import RabbitNode
from sims.vdxp.simulator import AxisSimulator
from sims.webhook.simulator import WebhookReceiver

log = structlog.get_logger(__name__)

DEMO_UNIT = "000.00.41.H41"
DEMO_USER, DEMO_PASSWORD, DEMO_TOKEN = "onestop-demo", "demo-password", "demo-token"
# The dashboard's demo operators, one per role: (user, password).
DEMO_OPERATORS = {
    "viewer": ("xem", "demo-xem"),
    "operator": ("vanhanh", "demo-vanhanh"),
    "admin": ("quantri", "demo-quantri"),
}
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
# The two worked-example ministry systems (config/hub.example.yaml) and the procedures they
# decide. Their credentials keep to letters and dashes: OAuth2 client credentials are
# form-encoded before HTTP Basic (RFC 6749 §2.3.1).
BUSINESS_PROCEDURE, CIVIL_PROCEDURE = examples.BUSINESS_PROCEDURE, examples.CIVIL_PROCEDURE
WSSE_USER, WSSE_PASSWORD = "hub-tinh-demo", "wsse-demo-password"
CIVIL_CLIENT_ID, CIVIL_CLIENT_SECRET = "hub-hotich-demo", "civil-demo-client-secret"
CIVIL_PUSH_TOKEN = "civil-demo-push-token"  # noqa: S105 - loopback demo only
# Each traffic round also brings one accepted dossier of each ministry procedure per this
# many dossiers (at least one, at most the cap), through the canonical API.
DOSSIERS_PER_MINISTRY_DOSSIER, MAX_PER_MINISTRY_PROCEDURE = 10, 50
MINISTRY_DOSSIERS: dict[str, tuple[str, str]] = {  # procedure → its name, a summary
    BUSINESS_PROCEDURE: ("Đăng ký thành lập doanh nghiệp", "Công ty TNHH Thương mại Ánh Dương"),
    CIVIL_PROCEDURE: ("Đăng ký kết hôn", "Đăng ký kết hôn tại UBND phường Bến Nghé"),
}
# The document axis (VDXP): the hub is one system on it, as the demo's unit. The ministry
# answers every document it receives with its statuses (01, 03, 05, 06, one a second); the
# department sends the hub a document about a dossier each round.
AXIS_SECRET = "demo-axis-secret"  # noqa: S105 - loopback demo only
AXIS_MINISTRY, AXIS_DEPARTMENT = "000.00.00.G12", "000.00.12.H41"
AXIS_AGENCIES = {
    DEMO_UNIT: "Trung tâm Phục vụ hành chính công tỉnh Nghệ An",
    AXIS_MINISTRY: "Bộ Tư pháp",
    AXIS_DEPARTMENT: "Sở Tài nguyên và Môi trường tỉnh Nghệ An",
}
AXIS_STATUS_DELAY_S = 1.0
AXIS_ATTACHMENT_BYTES = 2048
APPLICANTS = ("Nguyễn Văn An", "Trần Thị Bình", "Lê Minh Cường", "Phạm Ngọc Hà", "Võ Thanh Sơn")
VAR = Path("var")
LOG_PATH = VAR / "demo" / "hub.log"
# The demo runs from a checkout: use its mapping files wherever the command is started.
CHECKOUT_MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
DELAY_TIERS_S = [2.0, 10.0, 60.0]


@dataclass(frozen=True)
class Simulators:
    """The systems around the hub, each started on loopback."""

    portal: DvcqgSimulator
    receiver: WebhookReceiver
    platform: PaymentPlatformSimulator
    business: BusinessRegistrationSimulator
    civil: CivilStatusSimulator
    axis: AxisSimulator


async def start_simulators(stack: AsyncExitStack) -> Simulators:
    """Every simulator, started; `stack` stops them. Civil status pushes once given its
    `push_url`, which the hub has only once it is up."""
    sims = Simulators(
        portal=DvcqgSimulator(
            username=PORTAL_USER, password=PORTAL_PASSWORD, procedures=DEMO_PROCEDURES
        ),
        receiver=WebhookReceiver(token=SUBSCRIBER_TOKEN),
        platform=PaymentPlatformSimulator(partner_code=PAYMENT_PARTNER, secret=PAYMENT_SECRET),
        business=BusinessRegistrationSimulator(username=WSSE_USER, password=WSSE_PASSWORD),
        civil=CivilStatusSimulator(
            auth="oauth2",
            client_id=CIVIL_CLIENT_ID,
            client_secret=CIVIL_CLIENT_SECRET,
            client_auth="basic",
            push_token=CIVIL_PUSH_TOKEN,
        ),
        axis=AxisSimulator(
            systems={DEMO_UNIT: AXIS_SECRET},
            agencies=[{"organId": k, "organName": v} for k, v in AXIS_AGENCIES.items()],
            responders=[AXIS_MINISTRY],
            faults={"status_delay_s": AXIS_STATUS_DELAY_S},
        ),
    )
    for sim in (sims.portal, sims.receiver, sims.platform, sims.business, sims.civil, sims.axis):
        await stack.enter_async_context(sim)
    return sims


def demo_overrides(broker_urls: list[str], port: int, sims: Simulators) -> dict[str, object]:
    return {
        "mappings_dir": str(CHECKOUT_MAPPINGS if CHECKOUT_MAPPINGS.is_dir() else Path("mappings")),
        "broker": {"urls": broker_urls},
        "store": {"path": str(VAR / "demo" / "hub.db")},
        "http": {"port": port},
        "dashboard": {
            "users": {
                user: {"password_hash": hash_password(password), "role": role}
                for role, (user, password) in DEMO_OPERATORS.items()
            },
            "sample_interval_s": 10,
        },
        "sources": {
            "onestop_demo": {
                "username": DEMO_USER,
                "password_hash": hash_password(DEMO_PASSWORD),
                "api_token_sha256": hash_token(DEMO_TOKEN),
                "status_mapping": "one_stop_generic",
                "permissions": list(ALL_PERMISSIONS),
            }
        },
        "connectors": {
            "national_portal": {
                "base_url": sims.portal.url,
                "username": PORTAL_USER,
                "password": PORTAL_PASSWORD,
                "delay_tiers_s": DELAY_TIERS_S,
                # A full catalogue sync at start, then hourly.
                "catalogue": {"interval_s": 3600, "concurrency": 4, "rate_limit_per_s": 50},
            },
            "payment_platform": {
                "enabled": True,
                "partner_code": PAYMENT_PARTNER,
                "secret_key": PAYMENT_SECRET,
                "base_url": sims.platform.base_url,
                # Pending payments are asked about after 5 seconds, not 30 minutes.
                "status_check": {"interval_s": 5, "min_age_s": 5},
                "reconciliation": {"output_dir": str(VAR / "demo" / "reconciliation")},
            },
            "vdxp": {
                "enabled": True,
                "base_url": sims.axis.base_url,
                "system_id": DEMO_UNIT,
                "secret": AXIS_SECRET,
                "organ_id": DEMO_UNIT,
                "organ_name": AXIS_AGENCIES[DEMO_UNIT],
                "spool_dir": str(VAR / "demo" / "vdxp"),
                # Asked every 2 seconds, not every 15.
                "poll": {"interval_s": 2, "backoff_initial_s": 2, "backoff_max_s": 30},
                "delay_tiers_s": DELAY_TIERS_S,
            },
        },
        "ministries": ministry_sections(sims),
        "subscribers": {
            "one_stop": {
                "url": sims.receiver.url,
                "token": SUBSCRIBER_TOKEN,
                "events": ["procedure.#", "payment.#", "ministry.#", "vdxp.#"],
                "delay_tiers_s": DELAY_TIERS_S,
            }
        },
    }


def ministry_sections(sims: Simulators) -> dict[str, object]:
    """The two worked examples of config/hub.example.yaml, pointed at the simulators."""
    civil_url = sims.civil.base_url
    return {
        # Asked every few seconds, not every 30.
        "business_registration": examples.business_registration(
            sims.business.url,
            WSSE_USER,
            WSSE_PASSWORD,
            poll_interval_s=3,
            delay_tiers_s=DELAY_TIERS_S,
        ),
        # It pushes its results to the hub with its bearer token.
        "civil_status": examples.civil_status(
            civil_url,
            examples.oauth2(civil_url, CIVIL_CLIENT_ID, CIVIL_CLIENT_SECRET),
            push={"token_sha256": hash_token(CIVIL_PUSH_TOKEN)},
            delay_tiers_s=DELAY_TIERS_S,
        ),
    }


async def run_demo(
    config: HubConfig | None, *, dossiers: int, rate_per_s: float, port: int
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    LOG_PATH.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        # The logs to a file, line by line (`tail -f var/demo/hub.log`): the terminal keeps the
        # block of URLs and users, and a status line.
        log_file = stack.enter_context(LOG_PATH.open("a", encoding="utf-8", buffering=1))
        configure_logging(config.logging.level if config else "INFO", "json", stream=log_file)
        click.echo(f"logs: {LOG_PATH} (follow them with: tail -f {LOG_PATH})")
        broker_urls = config.broker.addresses() if config else []
        if not broker_urls:
            click.echo("starting a private RabbitMQ node under var/rabbitmq …")
            node = RabbitNode(VAR / "rabbitmq")
            await asyncio.to_thread(node.start)
            stack.callback(node.stop)
            broker_urls = [node.url]
        sims = await start_simulators(stack)
        hub_config = load_config(None, demo_overrides(broker_urls, port, sims))
        hub = await stack.enter_async_context(Hub(hub_config))
        base = f"http://127.0.0.1:{hub.port}"
        sims.platform.callback_url = base + hub_config.connectors.payment_platform.callback_path
        sims.civil.push_url = f"{base}/api/v1/ministries/civil_status/results"
        console = DemoConsole(_url_block(base, broker_urls, hub_config, sims), _status_of(hub))
        traffic = asyncio.create_task(
            _traffic(base, hub_config.facade.path, dossiers, rate_per_s, stop, sims)
        )
        payments = asyncio.create_task(_payments(sims.platform, sims.portal, stop))
        await console.run(stop)
        click.echo("\nstopping: traffic, hub, simulators, RabbitMQ …")
        await traffic
        await payments
    click.echo("demo stopped; nothing left running")


async def _traffic(
    base: str,
    facade_path: str,
    dossiers: int,
    rate_per_s: float,
    stop: asyncio.Event,
    sims: Simulators,
) -> None:
    round_no = 0
    per_procedure = max(1, dossiers // DOSSIERS_PER_MINISTRY_DOSSIER)
    per_procedure = min(per_procedure, MAX_PER_MINISTRY_PROCEDURE)
    # Codes carry the start time: a demo started again on the same store sends new dossiers,
    # not ones it handed off before.
    started = datetime.now(VN_TZ)
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            events = ministry_dossier_events(started, round_no, per_procedure)
            await _send_events(http, f"{base}/api/v1/dossier-events", events)
            await _axis_round(http, base, sims.axis, events, round_no)
            generator = OneStopTraffic(
                base + facade_path, DEMO_USER, DEMO_PASSWORD, DEMO_UNIT, seed=round_no
            )
            report = await generator.run(generator.plan(dossiers), rate_per_s=rate_per_s, stop=stop)
            round_no += 1
            log.info(
                "demo_traffic_round",
                round=round_no,
                acknowledged=len(report.acknowledged_steps),
                ministry_dossiers=len(events),
                dossiers_at_portal=len(sims.portal.dossiers),
                axis_documents_sent=len(sims.axis.sent),
            )


def ministry_dossier_events(
    started: datetime, round_no: int, per_procedure: int
) -> list[dict[str, object]]:
    """Accepted dossiers of the ministries' procedures, as the one-stop's canonical events:
    the hub hands each off to the system that decides its procedure. Stamped to the whole
    second, as the ministry simulators stamp their results: a result in the same second must
    not count as older than the acceptance it answers."""
    at = datetime.now(VN_TZ).replace(microsecond=0)
    first = round_no * per_procedure * len(MINISTRY_DOSSIERS)
    events: list[dict[str, object]] = []
    for k in range(per_procedure):
        for j, (procedure, (name, summary)) in enumerate(MINISTRY_DOSSIERS.items()):
            number = (first + k * len(MINISTRY_DOSSIERS) + j) % 9999 + 1
            code = f"{DEMO_UNIT}-{started:%y%m%d}-{started:%H%M}{number:04d}"
            record = {
                "procedure_code": procedure,
                "procedure_name": name,
                "owner_name": APPLICANTS[number % len(APPLICANTS)],
                "applicant_id": f"0790{number:08d}",
                "summary": summary,
                "received_at": at.isoformat(),
            }
            events.append(
                {
                    "event_id": f"demo-{code}-accepted",
                    "dossier_code": code,
                    "kind": "record",
                    "status": "accepted",
                    "occurred_at": at.isoformat(),
                    "record": record,
                }
            )
    return events


async def _send_events(
    http: aiohttp.ClientSession, url: str, events: list[dict[str, object]]
) -> None:
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    try:
        async with http.post(url, json={"events": events}, headers=headers) as response:
            reply = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("demo_ministry_dossiers_not_sent", error=repr(exc))
        return
    results = reply.get("results", []) if isinstance(reply, dict) else []
    refused = [r for r in results if r.get("outcome") != "accepted"]
    if response.status != 200 or refused:
        log.warning("demo_ministry_dossiers_refused", status=response.status, refused=refused)


async def _axis_round(
    http: aiohttp.ClientSession,
    base: str,
    axis: AxisSimulator,
    events: list[dict[str, object]],
    round_no: int,
) -> None:
    """The round's document axis traffic, about dossiers the hub now holds: the one-stop
    hands the first to the ministry (a transfer through the hub; its statuses come back), and
    the department sends the hub a document naming the last (the hub links it)."""
    first, last = str(events[0]["dossier_code"]), str(events[-1]["dossier_code"])
    note = f"Hồ sơ {first}: tờ khai và giấy tờ kèm theo (bản điện tử, demo)"
    attachment = b"%PDF-1.4\n% " + note.encode() + b"\n%%EOF\n"  # small, PDF-looking
    transfer = {
        "transfer_id": f"lt-{first}",
        "dossier_code": first,
        "to": [AXIS_MINISTRY],
        "subject": f"V/v chuyển hồ sơ {first} để xác minh, cho ý kiến",
        "code_number": str(round_no + 1),
        "code_notation": "TTPVHCC-LT",
        "promulgation_place": "Nghệ An",
        "attachments": [
            {
                "name": "to-khai.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(attachment).decode("ascii"),
            }
        ],
    }
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    try:
        async with http.post(
            f"{base}/api/v1/vdxp/transfers", json=transfer, headers=headers
        ) as response:
            reply = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("demo_axis_transfer_not_sent", dossier_code=first, error=repr(exc))
    else:
        if response.status in (200, 202) and isinstance(reply, dict):
            log.info(
                "demo_axis_transfer",
                dossier_code=first,
                document_id=reply.get("document_id"),
                to=AXIS_MINISTRY,
            )
        else:
            log.warning(
                "demo_axis_transfer_refused",
                dossier_code=first,
                status=response.status,
                reply=reply,
            )
    try:
        (item,) = axis.generate_documents(
            DEMO_UNIT,
            AXIS_DEPARTMENT,
            attachment_bytes=AXIS_ATTACHMENT_BYTES,
            subject=f"V/v bổ sung giấy tờ cho hồ sơ {last}",
        )
    except ValueError as exc:
        log.warning("demo_axis_document_not_generated", dossier_code=last, error=repr(exc))
        return
    log.info(
        "demo_axis_document",
        dossier_code=last,
        document_id=item.document_id,
        from_organ=AXIS_DEPARTMENT,
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


def _status_of(hub: Hub) -> Status:
    async def status() -> str:
        if hub.board is None:
            return "the dashboard is off: no status"
        return status_line(await hub.board.overview(), str(LOG_PATH))

    return status


def _url_block(base: str, broker_urls: list[str], config: HubConfig, sims: Simulators) -> str:
    portal, business, civil = sims.portal.url, sims.business, sims.civil.base_url
    axis = sims.axis.base_url
    business_state, civil_state = f"{business.base_url}/_sim/state", f"{civil}/_sim/state"
    lines = [
        "",
        "The hub is running. Press Ctrl-C to stop everything.",
        f"  dashboard                {base}/dashboard/  ("
        + ", ".join(f"{role} {u} / {p}" for role, (u, p) in DEMO_OPERATORS.items())
        + ")",
        f"  admin API                POST {base}/api/v1/admin/session  (then /api/v1/admin/…)",
        f"  DVCQG-compatible facade  POST {base}{config.facade.path}"
        f"  (user {DEMO_USER}, password {DEMO_PASSWORD})",
        f"  canonical API            POST {base}/api/v1/dossier-events  (Bearer {DEMO_TOKEN})",
        f"  portal change feed       GET  {base}/api/v1/portal/dossier-changes?after=0",
        f"  OpenAPI                  GET  {base}/api/v1/openapi.json",
        f"  health / readiness       GET  {base}/healthz  {base}/readyz?counts=1",
        f"  connector states         .venv/bin/hub status --url {base}",
        f"  try a DVCQG outage       POST {portal}/_sim/faults"
        + """  {"mode": "http_503"} (then {"mode": "ok"})""",
        f"  metrics                  GET  {base}/metrics",
        f"  procedures (pull API)    GET  {base}/api/v1/procedures?limit=10  (Bearer {DEMO_TOKEN})",
        f"  catalogue sync runs      GET  {base}/api/v1/procedure-sync-runs",
        f"  DVCQG simulator          POST {portal}  (state: GET {portal}/_sim/state)",
        f"  DVCQG catalogue          GET  {portal}/_sim/catalogue",
        f"  one-stop event receiver  GET  {sims.receiver.base_url}/_sim/state",
        f"  payment callbacks        POST {base}{config.connectors.payment_platform.callback_path}",
        f"  payments of a dossier    GET  {base}/api/v1/payments?dossier_code=…",
        f"  refused callbacks        GET  {base}/api/v1/payments/callbacks?verdict=refused",
        f"  payment platform         GET  {sims.platform.base_url}/_sim/state",
        f"  ministry systems         GET  {base}/api/v1/ministries  (Bearer {DEMO_TOKEN})",
        f"  ministry hand-offs       GET  {base}/api/v1/ministries/<system>/handoffs",
        f"  ministry results (push)  POST {sims.civil.push_url}",
        f"  business registration    POST {business.url}  (state: GET {business_state})",
        f"  its WSDL (SOAP)          GET  {business.wsdl_url}",
        f"  civil status (REST)      POST {civil}/api/hotich/v1/ho-so  (state: GET {civil_state})",
        f"  document axis (VDXP)     GET  {base}/api/v1/vdxp  (Bearer {DEMO_TOKEN})",
        f"  inter-agency transfers   POST {base}/api/v1/vdxp/transfers  (Bearer {DEMO_TOKEN})",
        f"  axis documents           GET  {base}/api/v1/vdxp/documents?direction=in",
        f"  axis intake              GET  {base}/api/v1/vdxp/intake?verdict=refused",
        f"  document axis simulator  POST {axis}  (state: GET {axis}/_sim/state)",
        f"  documents on the axis    GET  {axis}/_sim/sent",
        f"  RabbitMQ                 {'  '.join(str(URL(u).with_user(None)) for u in broker_urls)}",
        f"  store                    {config.store.path}",
        f"  logs                     {LOG_PATH}  (this block again: Enter, or kill -USR1 "
        f"{os.getpid()})",
        "",
    ]
    return "\n".join(lines)
