"""Assembles and runs the hub: store, broker, topology, consumers, HTTP; stops it gracefully.

`Hub` is one async context manager built from the configuration tree. Resources are entered
on an `AsyncExitStack` in dependency order and leave in reverse: on shutdown the HTTP server
stops taking requests and finishes those in flight, the consumers stop taking messages and
finish their batches, the outbox is swept once more, then connections close.
This module must never hold business rules: it only wires parts together.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import structlog
from aio_pika.abc import AbstractChannel
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connectors.ministry.client import open_client
from connectors.ministry.config import MinistryConfig
from connectors.ministry.mapping import MinistryMapping, load_for
from connectors.ministry.routes import PushEntry, ResultsDoor
from connectors.ministry.sink import HandoffSink
from connectors.ministry.soap import wsdl_problems
from connectors.national_portal.catalogue import CatalogueClient
from connectors.national_portal.catalogue_mapping import CatalogueCodes
from connectors.national_portal.client import CONNECTOR as PORTAL
from connectors.national_portal.client import PortalClient
from connectors.national_portal.mapping import PortalCodes
from connectors.national_portal.routes import Facade
from connectors.national_portal.sink import PortalSink
from connectors.payment_platform.client import PlatformClient
from connectors.payment_platform.mapping import PaymentCodes
from connectors.payment_platform.routes import CallbackDoor
from connectors.vdxp.client import CONNECTOR as CONNECTOR_VDXP
from connectors.vdxp.client import AxisClient
from connectors.vdxp.config import VdxpConfig
from connectors.vdxp.edxml import EdxmlCodec
from connectors.vdxp.mapping import StatusPolicy
from connectors.webhook.client import WebhookClient
from connectors.webhook.config import SubscriberConfig
from connectors.webhook.sink import WebhookSink, subject_of
from hub import health, metrics
from hub.api import EventsApi
from hub.auth import Authenticator
from hub.broker import Broker
from hub.config import HubConfig
from hub.consumer import BatchConsumer, BatchHandler, Envelope, dossier_code_of
from hub.dashboard import flows as dashboard_flows
from hub.dashboard.access import OperatorAccess
from hub.dashboard.api import AdminApi, unavailable
from hub.dashboard.board import Board, Sampler
from hub.dashboard.pages import Pages
from hub.dlq import ParkingQueue
from hub.errors import ConfigError
from hub.health import QueueProbe, Watched
from hub.httputil import json_response
from hub.intake import Intake, OutboxRelay
from hub.ministries.api import MinistriesApi, System
from hub.ministries.intake import ResultIntake
from hub.ministries.poller import ResultPoller
from hub.openapi import openapi_document
from hub.outage import Pause, State
from hub.payments.api import PaymentsApi
from hub.payments.checks import StatusChecker
from hub.payments.reconcile import Reconciler, run_daily
from hub.plugins import ConnectorContext, load_plugin
from hub.procedures.api import ProceduresApi
from hub.procedures.sync import CatalogueSync
from hub.resilience import Guard
from hub.status_mapping import StatusTable, load_tables
from hub.store.sqlite import DOSSIER_CHANGED, SqliteStore
from hub.store.vdxp import SEND_ROUTING_KEY
from hub.validation import Validator
from hub.vdxp.agencies import AgencyDirectory
from hub.vdxp.api import VdxpApi
from hub.vdxp.intake import AxisIntake
from hub.vdxp.outbound import SendSink, TransferDesk, lane_of

log = structlog.get_logger(__name__)

DOSSIER_ROUTING_KEYS = ["dossier.#"]
PAUSE_POLL_S = 1.0


class QueueSection(Protocol):
    """What a connector's configuration says about its queue and consumer."""

    @property
    def delay_tiers_s(self) -> list[float]: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def linger_ms(self) -> int: ...

    @property
    def concurrency(self) -> int: ...


@dataclass(frozen=True)
class Mappings:
    tables: dict[str, StatusTable]
    portal: PortalCodes
    catalogue: CatalogueCodes
    payments: PaymentCodes | None
    ministries: dict[str, MinistryMapping]
    vdxp: StatusPolicy | None


def load_mappings(config: HubConfig, check_wsdls: bool = True) -> Mappings:
    """Every mapping file the configuration names (raises `ConfigError` listing problems).

    The hub itself passes `check_wsdls=False`: its SOAP clients read and check each WSDL as
    they start, so it is not parsed twice.
    """
    names = {s.status_mapping for s in config.sources.values()} | {"one_stop_generic"}
    pcfg = config.connectors.national_portal
    pay = config.connectors.payment_platform
    axis = config.connectors.vdxp
    return Mappings(
        tables=load_tables(config.mappings_dir, names),
        portal=PortalCodes.load(config.mappings_dir / f"{pcfg.mapping}.yaml"),
        catalogue=CatalogueCodes.load(config.mappings_dir / f"{pcfg.catalogue.mapping}.yaml"),
        payments=PaymentCodes.load(config.mappings_dir / f"{pay.mapping}.yaml")
        if pay.enabled
        else None,
        ministries=load_ministry_mappings(config, check_wsdls),
        vdxp=StatusPolicy.load(config.mappings_dir / f"{axis.mapping}.yaml")
        if axis.enabled
        else None,
    )


def load_ministry_mappings(
    config: HubConfig, check_wsdls: bool = True
) -> dict[str, MinistryMapping]:
    """Each enabled ministry system's mapping (and WSDL file), every problem of all at once."""
    out: dict[str, MinistryMapping] = {}
    problems: list[str] = []
    for name, ministry in config.ministries.items():
        if not ministry.enabled:
            continue
        try:
            out[name] = load_for(name, ministry, config.mappings_dir)
        except ConfigError as exc:
            problems += exc.problems
        if check_wsdls and ministry.kind == "soap":
            problems += wsdl_problems(name, ministry, config.mappings_dir)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) with the ministry systems", problems)
    return out


class Hub:
    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self._stack = AsyncExitStack()
        self.port: int = 0
        self.store: SqliteStore | None = None
        self.broker: Broker | None = None
        self.consumers: dict[str, BatchConsumer] = {}
        self.catalogue: CatalogueSync | None = None
        self.payments: Payments | None = None
        self.ministries: dict[str, System] = {}
        self._pushes: dict[str, PushEntry] = {}
        self.axis: Axis | None = None
        self.watched: list[Watched] = []
        self.board: Board | None = None
        self.probe: QueueProbe | None = None
        self._plugin_routes: list[web.AbstractRouteDef] = []

    async def __aenter__(self) -> Hub:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        log.info("hub_stopping")
        await self._stack.aclose()
        log.info("hub_stopped")

    async def _start(self) -> None:
        cfg = self.config
        mappings = load_mappings(cfg, check_wsdls=False)
        stack = self._stack
        self.store = store = await stack.enter_async_context(SqliteStore.open(cfg.store.path))
        self.broker = broker = await stack.enter_async_context(Broker.connect(cfg.broker))
        self.probe = QueueProbe(broker)
        intake = Intake(store, broker)
        relay = OutboxRelay(intake, cfg.store.outbox_sweep_interval_s, cfg.store.outbox_sweep_age_s)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        if cfg.connectors.national_portal.enabled:
            await self._start_portal(broker, store, mappings.portal, http)
        for name, sub in cfg.subscribers.items():
            if sub.enabled:
                await self._start_subscriber(name, sub, broker, store, http)
        for name, mapping in mappings.ministries.items():
            await self._start_ministry(name, mapping, broker, store, intake, http)
        if mappings.vdxp is not None:
            self.axis = await self._start_axis(mappings.vdxp, broker, store, intake, http)
        await self._start_plugins(broker, store, intake, http)
        # Every queue is declared now: publish whatever a previous run committed but never
        # published (earlier, its messages would have had nowhere to go).
        await relay.sweep(age_s=0)
        relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
        # Exit runs in reverse: the periodic relay stops first, then one last sweep.
        stack.push_async_callback(relay.final_sweep)
        stack.push_async_callback(_cancel, relay_task)
        for name, system in self.ministries.items():
            if system.poller is not None:
                self._background(system.poller.run_schedule(), f"ministry-poll-{name}")
        pcfg = cfg.connectors.national_portal
        if pcfg.enabled and pcfg.catalogue.enabled:
            # Started last, stopped first: its outbox rows are swept at the next start.
            self.catalogue = self._start_catalogue(intake, store, mappings, http)
        validator = Validator(cfg.validation)
        if mappings.payments is not None:
            self.payments = self._start_payments(mappings.payments, store, intake, validator, http)
        await self._start_states()
        auth = Authenticator(cfg.sources, store, cfg.facade.session_ttl_s)
        await self._start_http(auth, intake, store, validator, mappings.tables)
        log.info("hub_started", port=self.port, instance=cfg.instance)

    async def _start_portal(
        self, broker: Broker, store: SqliteStore, codes: PortalCodes, http: aiohttp.ClientSession
    ) -> None:
        pcfg = self.config.connectors.national_portal
        client = PortalClient(pcfg, codes, http)
        sink = PortalSink(client, store)
        await self._consume(
            broker, PORTAL, pcfg, DOSSIER_ROUTING_KEYS, sink, dossier_code_of, client.guard
        )

    async def _start_ministry(
        self,
        name: str,
        mapping: MinistryMapping,
        broker: Broker,
        store: SqliteStore,
        intake: Intake,
        http: aiohttp.ClientSession,
    ) -> None:
        """One ministry system: its client, hand-off queue, result intake, poller, push door."""
        cfg: MinistryConfig = self.config.ministries[name]
        client = await open_client(name, cfg, http, self.config.mappings_dir)
        self._stack.push_async_callback(client.close)
        if cfg.submit is not None:
            sink = HandoffSink(client, cfg, mapping, store, store.ministries)
            await self._consume(
                broker,
                client.connector,
                cfg,
                [DOSSIER_CHANGED],
                sink,
                dossier_code_of,
                client.guard,
            )
        results = ResultIntake(name, mapping, store, intake.relay)
        poller = None
        if cfg.poll is not None:
            poller = ResultPoller(client, mapping, results, store.ministries, cfg.poll)
        if cfg.push is not None:
            self._pushes[name] = PushEntry(cfg.push, mapping, results)
        self.ministries[name] = System(cfg, client, poller)

    async def _start_axis(
        self,
        policy: StatusPolicy,
        broker: Broker,
        store: SqliteStore,
        intake: Intake,
        http: aiohttp.ClientSession,
    ) -> Axis:
        """The document axis: its client, send queue, intake and transfer desk."""
        axis = axis_parts(self.config.connectors.vdxp, policy, store, intake, http)
        sink = SendSink(axis.client, store, axis.config.spool_dir)
        await self._consume(
            broker,
            CONNECTOR_VDXP,
            axis.config,
            [SEND_ROUTING_KEY],
            sink,
            lane_of,
            axis.client.guard,
        )
        # Every queue its items lead to is declared by now (subscribers, DVCQG).
        self._background(axis.intake.run_schedule(), "vdxp-poll")
        return axis

    async def _consume(
        self,
        broker: Broker,
        connector: str,
        section: QueueSection,
        routing_keys: list[str],
        sink: BatchHandler,
        lane_key: Callable[[Envelope], str],
        guard: Guard | None = None,
    ) -> None:
        """The connector's queues declared and bound, and its consumer running until exit."""
        queues = broker.topology.queues(connector, section.delay_tiers_s)
        await broker.topology.declare(broker.channel, queues, routing_keys)

        async def declare(channel: AbstractChannel) -> None:
            await broker.topology.declare(channel, queues, routing_keys)

        consumer = BatchConsumer(
            broker,
            queues,
            sink,
            lane_key=lane_key,
            batch_size=section.batch_size,
            linger_s=section.linger_ms / 1000,
            lanes=section.concurrency,
            journal=self.store.record_delivery if self.store else None,
            gate=guard.gate if guard else None,
            declare=declare,
            hold_max_s=self.config.broker.hold_max_s,
            watch_interval_s=self.config.broker.watch_interval_s,
        )
        await consumer.start()
        self.consumers[connector] = consumer
        parking = ParkingQueue(broker, queues, self.store) if self.store else None
        self.watched.append(Watched(connector, guard, consumer, queues, parking))
        self._stack.push_async_callback(consumer.stop, self.config.http.shutdown_timeout_s)

    async def _start_plugins(
        self, broker: Broker, store: SqliteStore, intake: Intake, http: aiohttp.ClientSession
    ) -> None:
        """Connectors from outside the product (`plugins`), through the seam of `hub.plugins`."""
        for dotted in self.config.plugins:
            plugin = load_plugin(dotted)
            context = ConnectorContext(
                name=plugin.name,
                config=self.config.plugin_section(plugin.name),
                store=store,
                broker=broker,
                intake=intake,
                http=http,
                _consume=partial(self._consume, broker),
                _background=self._background,
            )
            await plugin.start(context)
            self._plugin_routes += context.routes
            log.info("connector_plugged_in", connector=plugin.name, plugin=dotted)

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A task that runs until exit, when it is cancelled (in reverse order of start)."""
        task = asyncio.create_task(coro, name=name)
        self._stack.push_async_callback(_cancel, task)

    def _start_catalogue(
        self, intake: Intake, store: SqliteStore, mappings: Mappings, http: aiohttp.ClientSession
    ) -> CatalogueSync:
        sync = catalogue_sync(self.config, mappings, store, intake, http)
        assert isinstance(sync.source, CatalogueClient)
        guard = sync.source.client.guard
        self.watched.append(Watched(guard.name, guard))
        self._background(sync.run_schedule(), "catalogue-schedule")
        return sync

    # -- connector states and pauses --------------------------------------------------------------

    async def _start_states(self) -> None:
        """Poll-only ministry systems are watched through their guard; pauses applied now and
        followed from then on."""
        for system in self.ministries.values():
            if system.client.connector not in self.consumers:
                self.watched.append(Watched(system.client.connector, system.client.guard))
        await self.apply_pauses()
        self._background(self._watch_pauses(), "connector-pauses")

    def connector(self, name: str) -> Watched | None:
        return next((w for w in self.watched if w.name == name), None)

    async def apply_pauses(self) -> None:
        """Bring every gate in line with the store's paused connectors."""
        assert self.store is not None
        paused = await self.store.paused_connectors()
        for w in self.watched:
            if w.guard is None:
                continue
            row = paused.get(w.name)
            w.guard.gate.set_pause(Pause(row.by, row.at, row.reason) if row else None)

    async def _watch_pauses(self) -> None:
        """Pauses set by `hub connectors pause` (another process) take effect within a second."""
        while True:
            await asyncio.sleep(PAUSE_POLL_S)
            try:
                await self.apply_pauses()
            except Exception as exc:  # the store is away: keep the gates as they are
                log.warning("connector_pauses_unread", error=repr(exc))

    async def set_paused(self, name: str, actor: str, reason: str, paused: bool) -> bool:
        """Pause or resume a connector now (the dashboard, the admin API), audited."""
        assert self.store is not None
        if self.connector(name) is None:
            raise KeyError(name)
        changed = await self.store.set_paused(name, actor, reason, paused)
        await self.apply_pauses()
        return changed

    def _start_payments(
        self,
        codes: PaymentCodes,
        store: SqliteStore,
        intake: Intake,
        validator: Validator,
        http: aiohttp.ClientSession,
    ) -> Payments:
        payments = payment_parts(self.config, codes, store, intake, validator, http)
        self.watched.append(Watched("payment_platform", payments.checker.client.guard))
        self._stack.push_async_callback(payments.door.close)
        cfg = self.config.connectors.payment_platform
        if cfg.status_check.enabled:
            self._background(payments.checker.run_schedule(), "payment-checks")
        if cfg.reconciliation.enabled:
            self._background(run_daily(payments.reconciler), "reconciliation")
        return payments

    async def _start_subscriber(
        self,
        name: str,
        sub: SubscriberConfig,
        broker: Broker,
        store: SqliteStore,
        http: aiohttp.ClientSession,
    ) -> None:
        client = WebhookClient(name, sub, http)
        sink = WebhookSink(client, store)
        await self._consume(
            broker, client.connector, sub, sub.events, sink, subject_of, client.guard
        )

    async def _start_http(
        self,
        auth: Authenticator,
        intake: Intake,
        store: SqliteStore,
        validator: Validator,
        tables: dict[str, StatusTable],
    ) -> None:
        cfg = self.config
        limit = cfg.http.max_body_bytes
        app = web.Application(client_max_size=limit, middlewares=[unavailable])
        facade = Facade(auth, intake, store, validator, tables, limit)
        api = EventsApi(auth, intake, store, validator, tables, limit)
        procedures = ProceduresApi(auth, store.procedures, self.catalogue, limit)
        self._stack.push_async_callback(procedures.close)
        ministries = MinistriesApi(auth, store.ministries, self.ministries)
        door = ResultsDoor(self._pushes, limit)
        axis_api = (
            VdxpApi(
                auth,
                self.axis.config,
                store.vdxp,
                self.axis.client,
                self.axis.desk,
                self.axis.intake,
                limit,
            )
            if self.axis
            else None
        )
        dashboard = await self._start_dashboard(store) if cfg.dashboard.enabled else []
        pay = self.payments
        payments_api = PaymentsApi(
            auth, store.payments, pay.checker if pay else None, pay.reconciler if pay else None
        )
        app.add_routes(
            [
                *facade.routes(cfg.facade.path),
                *api.routes(),
                *procedures.routes(),
                *payments_api.routes(),
                *ministries.routes(),
                *door.routes(),
                *(axis_api.routes() if axis_api else []),
                *(pay.door.routes() if pay else []),
                *dashboard,
                *self._plugin_routes,
                web.get("/healthz", _healthz),
                web.get("/readyz", self._readyz),
                web.get("/metrics", self._metrics),
                web.get("/api/v1/openapi.json", _openapi),
            ]
        )
        runner = web.AppRunner(
            app, shutdown_timeout=cfg.http.shutdown_timeout_s, access_log=None, handle_signals=False
        )
        await runner.setup()
        site = web.TCPSite(runner, cfg.http.host, cfg.http.port)
        await site.start()
        self._stack.push_async_callback(runner.cleanup)
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else cfg.http.port

    async def _start_dashboard(self, store: SqliteStore) -> list[web.AbstractRouteDef]:
        """The board over a read-only connection, its sampler, and the pages' and admin API's
        routes."""
        cfg = self.config.dashboard
        reader = await self._stack.enter_async_context(
            SqliteStore.open_reader(self.config.store.path)
        )
        assert self.broker is not None
        flows = {"procedures": dashboard_flows.procedures(reader)}
        if self.payments is not None:
            flows["payments"] = dashboard_flows.payments(reader)
        if self.ministries:
            flows["ministries"] = dashboard_flows.ministries(reader, self.ministries)
        if self.axis is not None:
            flows["vdxp"] = dashboard_flows.vdxp(reader, self.axis.intake, self.axis.client.guard)
        self.board = board = Board(cfg, reader, self.probe, self.watched, flows, self.set_paused)
        await board.start()
        self._background(Sampler(board, store).run(), "dashboard-sampler")
        access = OperatorAccess(cfg, store, reader)
        return [
            *Pages(access, board, store, cfg.refresh_s).routes(),
            *AdminApi(access, board, store).routes(),
        ]

    async def _readyz(self, request: web.Request) -> web.Response:
        """Ready exactly while the store answers, the broker is connected and every consumer
        is subscribed. A destination that is down does not make the hub unready (it waits for
        it); its state is in the body. `?counts=1` adds the broker's counts per connector."""
        checks = {"store": "ok", "broker": "ok"}
        try:
            assert self.store is not None
            await asyncio.wait_for(self.store.ping(), 2.0)
        except Exception as exc:
            checks["store"] = f"failing: {type(exc).__name__}"
        if self.broker is None or not self.broker.is_ready():
            checks["broker"] = "failing: not connected"
        for name, consumer in self.consumers.items():
            checks[f"consumer.{name}"] = (
                "ok" if consumer.is_ready() else "failing: not subscribed to its queue"
            )
        ready = all(v == "ok" for v in checks.values())
        connectors = {w.name: health.describe(w) for w in self.watched}
        if request.query.get("counts") and self.probe is not None:
            for w in self.watched:
                counts = await health.counts_of(w, self.probe)
                connectors[w.name].update(waiting=counts.waiting, parked=counts.parked)
        body = {"ready": ready, "checks": checks, "connectors": connectors}
        return json_response(body, 200 if ready else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        """Prometheus text; each connector's state and queue counts read at this moment."""
        for w in self.watched:
            state = health.condition_of(w).state
            for s in State:
                metrics.CONNECTOR_STATE.labels(w.name, str(s)).set(1 if s is state else 0)
            if w.consumer is None or self.probe is None:
                continue
            metrics.CONSUMERS_READY.labels(w.name).set(1 if w.consumer.is_ready() else 0)
            counts = await health.counts_of(w, self.probe)
            for kind, value in (("waiting", counts.waiting), ("parked", counts.parked)):
                if value is not None:
                    metrics.QUEUE_MESSAGES.labels(w.name, kind).set(value)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(_: web.Request) -> web.Response:
    return json_response({"status": "alive"})


async def _openapi(_: web.Request) -> web.Response:
    return json_response(openapi_document())


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def catalogue_sync(
    config: HubConfig,
    mappings: Mappings,
    store: SqliteStore,
    intake: Intake,
    http: aiohttp.ClientSession,
) -> CatalogueSync:
    """The catalogue sync with its own DVCQG client (own rate limit and session)."""
    pcfg = config.connectors.national_portal
    ccfg = pcfg.catalogue
    client = PortalClient(
        pcfg.model_copy(update={"rate_limit_per_s": ccfg.rate_limit_per_s}),
        mappings.portal,
        http,
        guard_name=f"{PORTAL}.catalogue",
    )
    source = CatalogueClient(client, mappings.catalogue, ccfg.agency_code or pcfg.madonvi)
    return CatalogueSync(source, store.procedures, intake.relay, ccfg)


@dataclass(frozen=True)
class Payments:
    door: CallbackDoor
    checker: StatusChecker
    reconciler: Reconciler


def payment_parts(
    config: HubConfig,
    codes: PaymentCodes,
    store: SqliteStore,
    intake: Intake,
    validator: Validator,
    http: aiohttp.ClientSession,
) -> Payments:
    """The payment platform's door, status checker and reconciler, sharing one client."""
    cfg = config.connectors.payment_platform
    store.payments.subscriber = cfg.deliver_to
    client = PlatformClient(cfg, http)
    return Payments(
        door=CallbackDoor(cfg, codes, validator, store.payments, intake),
        checker=StatusChecker(
            client, store.payments, codes, validator, intake.relay, cfg.status_check
        ),
        reconciler=Reconciler(cfg, client, store, codes, validator, intake.relay),
    )


@dataclass(frozen=True)
class Axis:
    config: VdxpConfig
    client: AxisClient
    intake: AxisIntake
    desk: TransferDesk


def axis_parts(
    config: VdxpConfig,
    policy: StatusPolicy,
    store: SqliteStore,
    intake: Intake,
    http: aiohttp.ClientSession,
) -> Axis:
    """The axis's client, intake and transfer desk, sharing one agency directory. Files a
    stopped run left half-written in the spool (downloads, staged uploads) are removed."""
    for leftover in ("incoming", "staging"):
        shutil.rmtree(config.spool_dir / leftover, ignore_errors=True)
    client = AxisClient(config, http)
    codec = EdxmlCodec(config.namespace, config.max_document_bytes, config.max_attachment_bytes)
    agencies = AgencyDirectory(client, config.agencies_refresh_s)
    return Axis(
        config=config,
        client=client,
        intake=AxisIntake(client, config, codec, store, intake.relay, agencies, policy),
        desk=TransferDesk(config, codec, store, intake.relay, agencies),
    )


@dataclass(frozen=True)
class Standalone:
    store: SqliteStore
    intake: Intake
    http: aiohttp.ClientSession


@contextlib.asynccontextmanager
async def standalone(config: HubConfig, client_name: str) -> AsyncIterator[Standalone]:
    """The store, the broker (if it answers) and an HTTP session, for a CLI command.

    Events the command commits go through the store's outbox: published at the end if the
    broker answered, otherwise left for the running hub's relay.
    """
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(SqliteStore.open(config.store.path))
        broker = None
        try:
            broker = await stack.enter_async_context(Broker.connect(config.broker, client_name))
        except Exception as exc:  # any failure to connect: the outbox keeps the events
            log.warning("cli_without_broker", error=str(exc))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        intake = Intake(store, broker)
        yield Standalone(store, intake, http)
        if broker is not None:
            await OutboxRelay(intake, 1.0, 0.0).final_sweep()


async def run_until_signalled(config: HubConfig) -> None:
    """`hub run`: start, then wait for SIGTERM or SIGINT, then stop gracefully."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Hub(config):
        await stop.wait()
