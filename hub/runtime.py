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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import aiohttp
import structlog
from aio_pika.abc import AbstractChannel
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub import health, metrics, stopping, tls
from hub.alerts import Alerting
from hub.api import EventsApi
from hub.auth import Authenticator
from hub.broker import Broker
from hub.config import HubConfig
from hub.consumer import BatchConsumer, BatchHandler, Envelope
from hub.dashboard import i18n
from hub.dashboard.access import OperatorAccess
from hub.dashboard.api import AdminApi, unavailable
from hub.dashboard.board import SYNC_DESTINATION, Board, Sampler
from hub.dashboard.bulk import BulkActions
from hub.dashboard.pages import Pages
from hub.dlq import ParkingQueue
from hub.duties import Duties, DutyFactory, is_presence, replica_id
from hub.errors import ConfigError
from hub.health import QueueProbe, Watched
from hub.httputil import json_response, model_response, reply
from hub.intake import Intake, OutboxRelay
from hub.notify import Notifier
from hub.openapi import openapi_document
from hub.outage import Pause, State
from hub.plugins import ConnectorContext
from hub.proxies import forwarded_for
from hub.ratelimit import DoorLimiter
from hub.resilience import Guard
from hub.slowclients import ConnectionLimits, LimitedRunner, body_deadline
from hub.status_mapping import StatusTable, load_tables
from hub.store.base import PausedConnector
from hub.store.opening import open_reader, open_store
from hub.store.sqlite import SqliteStore
from hub.validation import Validator
from schemas.api import Health, Readiness

log = structlog.get_logger(__name__)

DOSSIER_ROUTING_KEYS = ["dossier.#"]
PAUSE_POLL_S = 1.0


class Pauses(Protocol):
    """Connectors an operator paused: kept in the store, so a pause outlives a restart and
    `hub connectors pause` (another process) reaches every running hub."""

    async def set_paused(self, connector: str, actor: str, reason: str, paused: bool) -> bool:
        """Pause (or resume) a connector with an audit entry; False if nothing changed."""
        ...

    async def paused_connectors(self) -> dict[str, PausedConnector]: ...


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


def load_source_tables(config: HubConfig) -> dict[str, StatusTable]:
    """The status tables the sources name (and the generic one), `ConfigError` if one is bad."""
    names = {s.status_mapping for s in config.sources.values()} | {"one_stop_generic"}
    return load_tables(config.mappings_dir, names)


def load_everything(config: HubConfig, deep: bool = True) -> dict[str, StatusTable]:
    """Every mapping file the configuration names, the sources' and the connectors': one
    `ConfigError` listing the problems of all. `hub check-config` goes `deep` (WSDLs too);
    the hub does not, its SOAP clients check each WSDL as they start."""
    folder = config.mappings_dir
    if not folder.is_dir():
        problem = (
            f"mappings_dir: the folder {folder.resolve()} does not exist (a relative path "
            "written in the configuration file is read from the file's folder; one from "
            f"HUB_MAPPINGS_DIR or the default, from the working directory {Path.cwd()})"
        )
        raise ConfigError("the mapping files cannot be read", [problem])
    problems: list[str] = []
    tables: dict[str, StatusTable] = {}
    try:
        tables = load_source_tables(config)
    except ConfigError as exc:
        problems += exc.problems
    try:
        config.load_assets(deep)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) with the mapping files", problems)
    return tables


class Hub:
    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self._stack = AsyncExitStack()
        self.port: int = 0
        self.store: SqliteStore | None = None
        # A read-only connection (`open_reader`) for the alerts, the dashboard and /metrics:
        # their queries never wait for the hub's writes, nor the writes for them.
        self.reader: SqliteStore | None = None
        self.pauses: Pauses | None = None
        self.broker: Broker | None = None
        self.consumers: dict[str, BatchConsumer] = {}
        self.watched: list[Watched] = []
        self.board: Board | None = None
        self.probe: QueueProbe | None = None
        self.alerting: Alerting | None = None  # the hub's own alert rules (`alerts`)
        self.app: web.Application | None = None  # the HTTP application, once it serves
        self.tls: tls.Serving | None = None  # the HTTPS listener's context (`http.tls`)
        self._openapi_doc: dict[str, Any] | None = None
        self.handles: dict[str, Any] = {}  # running parts connectors expose (`expose`)
        self._routes: list[web.AbstractRouteDef] = []
        self._flows: dict[str, Callable[[SqliteStore], Any] | None] = {}
        self._deferred: list[tuple[Coroutine[Any, Any, None], str]] = []
        self._deferred_duties: list[tuple[DutyFactory, str]] = []
        # The once-only duties this replica keeps (`hub.duties`), under its holder id.
        self.duties: Duties | None = None

    def handle(self, key: str) -> Any:
        """A running part a connector exposed (`ConnectorContext.expose`), or None."""
        return self.handles.get(key)

    async def __aenter__(self) -> Hub:
        try:
            await self._start()
        except BaseException:
            for coro, _ in self._deferred:
                coro.close()
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
        async with stopping.watch_stop():
            await self._stack.aclose()
        log.info("hub_stopped")

    async def _start(self) -> None:
        cfg = self.config
        tables = load_everything(cfg, deep=False)
        stack = self._stack
        connectors = cfg.all_connectors()
        self.store = store = await stack.enter_async_context(open_store(cfg.store, connectors))
        self.pauses = store
        self.duties = duties = Duties(
            store.leases, replica_id(cfg.instance), cfg.duties.lease_s, cfg.duties.renew_s
        )
        if cfg.store.backend == "sqlite":
            # One hub process per SQLite store (decision 0004): leases found now were left by
            # an earlier process that was killed; the duties start at once, as they always did.
            await store.leases.clear()
        # This replica's presence lease: every replica's dashboard lists it, standing by or not.
        stack.push_async_callback((await duties.announce()).stop)
        self.broker = broker = await stack.enter_async_context(Broker.connect(cfg.broker))
        self.probe = QueueProbe(broker)
        intake = Intake(store, broker)
        relay = OutboxRelay(intake, cfg.store.outbox_sweep_interval_s, cfg.store.outbox_sweep_age_s)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        auth = Authenticator(cfg.sources, store, cfg.facade.session_ttl_s)
        validator = Validator(cfg.validation)
        for connector in connectors:
            if connector.locale:
                i18n.add_words(connector.locale)
            context = ConnectorContext(
                name=connector.name,
                config=cfg.section(connector),
                assets=cfg.assets(connector),
                hub_config=cfg,
                store=store,
                broker=broker,
                intake=intake,
                http=http,
                auth=auth,
                validator=validator,
                tables=tables,
                _consume=partial(self._consume, broker),
                _background=self._defer,
                _duty=self._defer_duty,
                _on_stop=self._on_stop,
                _watch=self._watch,
                handles=self.handles,
            )
            await connector.start(context)
            self._routes += context.routes
            self._flows.update(context.flows)
        # Every queue is declared now: publish whatever a previous run committed but never
        # published (earlier, its messages would have had nowhere to go).
        # (Beside a running replica this may publish its newest rows a second time: harmless,
        # delivery is idempotent.)
        await relay.sweep(age_s=0)
        # Exit runs in reverse: the periodic sweep stops first, then one last sweep.
        stack.push_async_callback(relay.final_sweep)
        self._background(relay.forget(), "outbox-forget")
        await self._keep(relay.sweeps, "outbox-sweep")
        # The connectors' schedules start now that every queue they publish to exists, and
        # stop before the relay's last sweep (what they commit then is swept at next start).
        deferred, self._deferred = self._deferred, []
        for coro, name in deferred:
            self._background(coro, name)
        kept, self._deferred_duties = self._deferred_duties, []
        for factory, name in kept:
            await self._keep(factory, name)
        await self.apply_pauses()
        self._background(self._watch_pauses(), "connector-pauses")
        await self._start_alerts()
        await self._start_http(auth, intake, store, validator, tables)
        log.info("hub_started", port=self.port, instance=cfg.instance, replica=duties.holder)

    async def _start_alerts(self) -> None:
        """The alert rules, checked on a task of their own over a read-only store connection,
        and the couriers of their notifications."""
        cfg = self.config
        notifier = await self._stack.enter_async_context(Notifier.open(cfg.alerts))
        reader = await self._stack.enter_async_context(open_reader(cfg.store, cfg.all_connectors()))
        self.reader = reader
        self.alerting = Alerting(
            cfg.alerts,
            cfg.instance,
            self.watched,
            self.probe,
            reader.dashboard,
            notifier,
            cfg.dashboard.names,
            self.store,
        )
        await self._keep(self.alerting.duty, "alerts")

    def _on_stop(self, callback: Callable[[], Awaitable[Any]]) -> None:
        self._stack.push_async_callback(callback)

    def _defer(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._deferred.append((coro, name))

    def _defer_duty(self, factory: DutyFactory, name: str) -> None:
        self._deferred_duties.append((factory, name))

    def _watch(self, name: str, guard: Guard) -> None:
        self.watched.append(Watched(name, guard))

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

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A task that runs until exit, when it is cancelled (in reverse order of start)."""
        task = asyncio.create_task(coro, name=name)
        self._stack.push_async_callback(_cancel, task)

    async def _keep(self, factory: DutyFactory, name: str) -> None:
        """A once-only duty, run while this replica holds its lease (`hub.duties`); at exit
        it stops and its lease is handed over, in reverse order of start like a task."""
        assert self.duties is not None
        keeper = await self.duties.keep(name, factory)
        self._stack.push_async_callback(keeper.stop)

    # -- connector states and pauses --------------------------------------------------------------

    def reload_tls(self) -> None:
        """SIGHUP: certificates read again, in place; the listener stays open."""
        tls.reload(self.tls)

    def connector(self, name: str) -> Watched | None:
        return next((w for w in self.watched if w.name == name), None)

    async def apply_pauses(self) -> None:
        """Bring every gate in line with the store's paused connectors."""
        assert self.pauses is not None
        paused = await self.pauses.paused_connectors()
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
        assert self.pauses is not None
        if self.connector(name) is None:
            raise KeyError(name)
        changed = await self.pauses.set_paused(name, actor, reason, paused)
        await self.apply_pauses()
        return changed

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
        self.tls = tls.Serving(cfg.http.tls) if cfg.http.tls else None
        guard = tls.door_guard(cfg.http.tls)  # doors that want a client certificate
        limits = ConnectionLimits(
            cfg.http.header_timeout_s,
            cfg.http.body_timeout_s,
            cfg.http.body_min_bytes_per_s,
            cfg.http.keepalive_timeout_s,
        )
        self.app = app = web.Application(
            client_max_size=limit,
            middlewares=[
                body_deadline(limits),
                # Only with proxies to trust: without, every request's address is its peer's
                # and the middleware would only cost each request a header lookup.
                *([forwarded_for(cfg.http.trusted_proxies)] if cfg.http.trusted_proxies else []),
                *guard,
                unavailable,
            ],
        )
        api = EventsApi(
            auth, intake, store, validator, tables, limit, DoorLimiter("api", cfg.http.api_limits)
        )
        dashboard = await self._start_dashboard(store) if cfg.dashboard.enabled else []
        app.add_routes(
            [
                *api.routes(),
                *self._routes,
                *dashboard,
                web.get("/healthz", _healthz),
                web.get("/readyz", self._readyz),
                web.get("/metrics", self._metrics),
                web.get("/api/v1/openapi.json", self._openapi),
            ]
        )
        runner = LimitedRunner(
            app,
            limits,
            shutdown_timeout=cfg.http.shutdown_timeout_s,
            access_log=None,
            handle_signals=False,
        )
        await runner.setup()
        ssl_context = self.tls.context if self.tls else None
        site = web.TCPSite(runner, cfg.http.host, cfg.http.port, ssl_context=ssl_context)
        await site.start()
        self._stack.push_async_callback(self._stop_http, runner)
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else cfg.http.port

    async def _stop_http(self, runner: web.AppRunner) -> None:
        """Close the doors: requests in flight get `http.shutdown_timeout_s` to finish, and the
        close itself is bounded a little beyond that (a connection that never lets go must not
        keep the hub from stopping)."""
        bound = self.config.http.shutdown_timeout_s + 5
        try:
            await asyncio.wait_for(runner.cleanup(), bound)
        except TimeoutError:
            log.error("http_stop_timed_out", after_s=bound)

    async def _start_dashboard(self, store: SqliteStore) -> list[web.AbstractRouteDef]:
        """The board over a read-only connection, its sampler, and the pages' and admin API's
        routes."""
        cfg = self.config.dashboard
        reader = self.reader
        assert reader is not None, "the alerts open the reader first"
        assert self.broker is not None
        flows = {key: make(reader) if make else None for key, make in self._flows.items()}
        self.board = board = Board(
            cfg, reader, self.probe, self.watched, flows, self.set_paused, self.config.alerts
        )
        board.firing = self.alerting.active if self.alerting else None
        board.duties = self.duties
        await board.start()
        self._background(Sampler(board, store).run(), "dashboard-sampler")
        access = OperatorAccess(cfg, store, reader)
        bulk = BulkActions(board, store)
        self._stack.push_async_callback(bulk.stop)
        return [
            *Pages(access, board, store, cfg.refresh_s, bulk).routes(),
            *AdminApi(access, board, store, bulk).routes(),
        ]

    async def _readyz(self, request: web.Request) -> web.Response:
        """Ready exactly while the store answers, the broker is connected and every consumer
        is subscribed. A destination that is down does not make the hub unready (it waits for
        it); its state is in the body, with the broker node the hub is on (`broker_node`, null
        while it moves to another). `?counts=1` adds the broker's counts per connector."""
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
        alerts = self.alerting.active() if self.alerting else []
        node = self.broker.node if self.broker is not None else None
        assert self.duties is not None
        body = {
            "ready": ready,
            "checks": checks,
            "broker_node": node,
            "connectors": connectors,
            "alerts": alerts,
            "replica": self.duties.holder,
            "duties": self.duties.held(),
            **await self._leases_seen(),
        }
        return reply(Readiness, body, 200 if ready else 503)

    async def _leases_seen(self) -> dict[str, Any]:
        """Who holds each once-only duty (`duty_holders`) and which replicas are alive
        (`replicas`: their presence leases), as the store says through the read-only
        connection the dashboard reads through; both None if the store does not answer."""
        store = self.reader or self.store
        unread: dict[str, Any] = {"duty_holders": None, "replicas": None}
        if store is None:
            return unread
        try:
            leases = await asyncio.wait_for(store.leases.leases(), 2.0)
        except Exception as exc:
            log.warning("duty_leases_unread", error=repr(exc))
            return unread
        live = [lease for lease in leases if lease.live]
        return {
            "duty_holders": {x.name: x.holder for x in live if not is_presence(x.name)},
            "replicas": sorted(x.holder for x in live if is_presence(x.name)),
        }

    async def _openapi(self, _: web.Request) -> web.Response:
        """Built once, on the first request (a hundred models' schemas take a tenth of a
        second), then served as it is: the connectors do not change while the hub runs."""
        if self._openapi_doc is None:
            self._openapi_doc = openapi_document(self.config.all_connectors())
        return json_response(self._openapi_doc)

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
        await _export_sync_figures(self.reader)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _export_sync_figures(store: SqliteStore | None) -> None:
    """Completeness of the sync to DVCQG, as the dashboard shows it (a store away: the gauges
    keep their last values)."""
    if store is None:
        return
    try:
        found = await store.dashboard.completeness(SYNC_DESTINATION)
    except Exception as exc:
        log.warning("sync_figures_unread", error=repr(exc))
        return
    metrics.SYNC_UNCONFIRMED.set(found.unconfirmed)
    # No dossier yet: nothing is unconfirmed (the gauge would otherwise read 0 and alert).
    metrics.SYNC_COMPLETENESS.set(1.0 if found.ratio is None else found.ratio)


async def _healthz(_: web.Request) -> web.Response:
    return model_response(Health(status="alive"))


async def _cancel(task: asyncio.Task[None]) -> None:
    await stopping.cancel(task)


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
        store = await stack.enter_async_context(open_store(config.store, config.all_connectors()))
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
    """`hub run`: start, then wait for SIGTERM or SIGINT, then stop gracefully; SIGHUP
    reloads the TLS certificates."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Hub(config) as hub:
        loop.add_signal_handler(signal.SIGHUP, hub.reload_tls)
        await stop.wait()
