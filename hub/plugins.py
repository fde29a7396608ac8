"""The seam a connector plugs into: what it provides, and what the core gives it to start.

A connector subclasses `Connector`: a `name`, a `config_model` (validated where `config_key`
says, `connectors.<name>` by default, with file, line and key in every error), optionally its
migrations (a `migrations/` folder in its package), its mapping files, its store slices, its
checks across sections, its CLI commands and its OpenAPI fragment, and an async
`start(context)`. At start it declares its queues and consumers through
`context.consume` (the core's consumer: holds through outages, parks refusals, subscribes again
after broker faults, appears in `/readyz`, `/metrics`, `hub status` and the dashboard), its
schedules with `context.duty` (once across replicas) or `context.background` (in every
process), its HTTP routes with `context.add_routes`, its dashboard
page with `context.add_flow`.

The core finds connectors by dotted name, never by importing them: the built-in ones are the
`BUILT_IN` list below, others come from `plugins:` in the configuration
(`package.module:attribute`). Decision: a list of names rather than packaging entry points, so
that a connector in a checkout works without reinstalling, and the order (which is the order
of the dashboard's cards) is written down. This module must never import a connector.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

import aiohttp
import click
from aiohttp import web

from hub.errors import ConfigError

if TYPE_CHECKING:
    from hub.auth import Authenticator
    from hub.broker import Broker
    from hub.config import HubConfig
    from hub.consumer import BatchHandler, Envelope
    from hub.intake import Intake
    from hub.resilience import Guard
    from hub.runtime import QueueSection
    from hub.status_mapping import StatusTable
    from hub.store.sqlite import SqliteStore
    from hub.validation import Validator

# The connectors that ship with the hub, in the order their cards appear.
BUILT_IN: tuple[str, ...] = (
    "connectors.national_portal.plugin:connector",
    "connectors.webhook.plugin:connector",
    "connectors.ministry.plugin:connector",
    "connectors.vdxp.plugin:connector",
    "connectors.payment_platform.plugin:connector",
)

# A dashboard flow page's data, read through the store's read-only connection.
Flow = Callable[[], Awaitable[dict[str, Any]]]


class Connector:
    """What a connector provides to the core. Override what applies; the defaults do nothing.

    `config_key` is `None` for a section at `connectors.<name>`, or a top-level key (the
    ministry systems keep theirs at `ministries:`, one entry per system). `migrations` names the
    package whose `migrations/` folder holds its numbered `NNNN_name.sql` files (numbers are
    unique across the hub, the store refuses a clash: a plug-in takes numbers from 5000 up,
    `PLUGIN_MIGRATIONS_FROM`).
    """

    name: str = ""
    config_model: Any = None
    config_key: str | None = None
    migrations: str | None = None
    locale: str | None = None  # a package with `locale/<lang>.yaml`: its dashboard words
    page: str | None = None  # the key of its dashboard page (`add_flow`), for the API's paths

    def default_section(self) -> Any:
        return self.config_model()

    def check(self, section: Any, config: HubConfig) -> list[tuple[tuple[str, ...], str]]:
        """Problems across sections (for example a destination that is no subscriber), each
        with the key it is about, once every section is valid."""
        return []

    def load(self, section: Any, config: HubConfig, deep: bool) -> Any:
        """Read the mapping files the section names (raise `ConfigError` listing every problem);
        `deep` also reads files the connector would otherwise read as it starts (WSDLs)."""
        return None

    def store_slices(self, store: SqliteStore) -> dict[str, Any]:
        """Its store slices, by name, attached to every store connection the hub opens (the
        writer, the dashboard's reader, a CLI command's): `store.slice(name, kind)`. Other
        connectors reach a slice through a Protocol of their own, never its class."""
        return {}

    def watched_names(self, section: Any) -> list[str]:
        """The names it runs under, as `/readyz`, `hub status` and the dashboard show them."""
        return [self.name] if getattr(section, "enabled", True) else []

    def describe(self, section: Any) -> list[str]:
        """Lines for `hub check-config`."""
        return []

    def warnings(self, section: Any) -> list[str]:
        """What `hub check-config` should warn about (valid, but probably a mistake: an
        enabled connector with an empty secret)."""
        return []

    def queues(self, section: Any) -> dict[str, list[float]]:
        """Each queue-owning connector name it runs, with its delay tiers (for `hub dlq`)."""
        return {}

    def commands(self) -> list[click.Command]:
        """Sub-commands of `hub` (built-in connectors only: a plug-in's are not loaded before
        the configuration is read)."""
        return []

    def openapi(self) -> dict[str, Any]:
        """Its paths in the HTTP API's OpenAPI document, each operation written with
        `hub.openapi.operation` naming the pydantic models its handlers read and reply
        through: the document collects them into its components (plain OpenAPI
        dictionaries work too)."""
        return {}

    async def start(self, context: ConnectorContext) -> None:
        raise NotImplementedError


Consume = Callable[..., Coroutine[Any, Any, None]]


@dataclass
class ConnectorContext:
    """What the core gives a connector as it starts (resources live as long as the hub)."""

    name: str
    config: Any  # the connector's own section, an instance of its `config_model`
    assets: Any  # what its `load` returned (its mapping files, read once)
    hub_config: HubConfig
    store: SqliteStore
    broker: Broker
    intake: Intake
    http: aiohttp.ClientSession
    auth: Authenticator
    validator: Validator
    tables: dict[str, StatusTable]
    _consume: Consume
    _background: Callable[[Coroutine[Any, Any, None], str], None]
    _duty: Callable[[Callable[[], Coroutine[Any, Any, None]], str], None]
    _on_stop: Callable[[Callable[[], Awaitable[Any]]], None]
    _watch: Callable[[str, Guard], None]
    routes: list[web.AbstractRouteDef] = field(default_factory=list)
    flows: dict[str, Callable[[SqliteStore], Flow] | None] = field(default_factory=dict)
    handles: dict[str, Any] = field(default_factory=dict)

    async def consume(
        self,
        section: QueueSection,
        routing_keys: list[str],
        handler: BatchHandler,
        lane_key: Callable[[Envelope], str],
        guard: Guard | None = None,
        connector: str | None = None,
    ) -> None:
        """Queues declared and bound, and the core's consumer on them (`connector` names the
        queues when one connector runs several, like one per subscriber)."""
        await self._consume(connector or self.name, section, routing_keys, handler, lane_key, guard)

    def background(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        """A task that runs until the hub stops (then it is cancelled), in every replica (work
        that must run once across replicas is a `duty`). It starts once every connector has
        declared its queues, so whatever it publishes has somewhere to go."""
        self._background(coro, f"{self.name}-{what}")

    def duty(self, factory: Callable[[], Coroutine[Any, Any, None]], what: str) -> None:
        """Work that must run on one replica at a time (a schedule that polls, checks, syncs
        or reconciles): it runs while this replica holds the lease `<connector>-<what>`
        (`hub.duties`), started with the background tasks. `factory` makes its coroutine,
        afresh each time this replica takes the duty (back); it runs until cancelled, which
        happens at once when the lease is lost. A hub alone takes it at once."""
        self._duty(factory, f"{self.name}-{what}")

    def on_stop(self, callback: Callable[[], Awaitable[Any]]) -> None:
        """Awaited as the hub stops, in reverse order of registration."""
        self._on_stop(callback)

    def watch(self, name: str, guard: Guard) -> None:
        """A destination without a queue of its own (polled, or called on demand) shown with
        its state wherever connectors are."""
        self._watch(name, guard)

    def add_routes(self, routes: Sequence[web.AbstractRouteDef]) -> None:
        self.routes.extend(routes)

    def add_flow(self, key: str, flow: Callable[[SqliteStore], Flow] | None) -> None:
        """Its dashboard page (`/dashboard/<key>`, `/api/v1/admin/<key>`), built over the
        read-only store; `None` for a page that says the flow is off. Its words (`nav.<key>`,
        `flow.<key>`, `fact.*`, `table.*`) come from the connector's `locale` files."""
        self.flows[key] = flow

    def expose(self, key: str, value: Any) -> None:
        """A running part the tests or the CLI may reach (`Hub.handle(key)`)."""
        self.handles[key] = value


def load_plugin(dotted: str) -> Connector:
    """`package.module:attribute` → the connector it names; `ConfigError` if it is not one."""
    module_name, _, attribute = dotted.partition(":")
    where = f"plugins: {dotted!r}"
    if not module_name or not attribute:
        raise ConfigError(f"{where} is not package.module:attribute", [where])
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where} cannot be loaded: {exc}", [f"{where}: {exc}"]) from None
    if (
        not isinstance(found, Connector)
        or not found.name
        or (found.config_model is None and found.config_key is None)
    ):
        raise ConfigError(
            f"{where} is not a connector (a hub.plugins.Connector with a name and config_model)",
            [f"{where}: it is not a hub.plugins.Connector with a name and config_model"],
        )
    return found


@functools.cache
def built_in() -> tuple[Connector, ...]:
    return tuple(load_plugin(d) for d in BUILT_IN)


def connectors_of(extra: list[str] | tuple[str, ...]) -> tuple[Connector, ...]:
    """The built-in connectors and the plug-ins named, names unique (`ConfigError` if not)."""
    found = [*built_in(), *(load_plugin(d) for d in extra)]
    seen: set[str] = set()
    for c in found:
        if c.name in seen:
            where = f"plugins: {c.name!r}"
            raise ConfigError(f"{where} is the name of another connector", [where])
        seen.add(c.name)
    return tuple(found)


# Migration numbers are one sequence for the whole hub: 0001-0999 are the core's, 1000-4999 the
# built-in connectors', and a plug-in's start at 5000, so that a plug-in shipped apart from the
# hub never clashes with a migration a later release adds.
PLUGIN_MIGRATIONS_FROM = 5000
_BUILT_IN_PACKAGES = frozenset(path.split(":")[0].rsplit(".", 1)[0] for path in BUILT_IN)


def migration_folders(connectors: tuple[Connector, ...]) -> list[Traversable]:
    """The `migrations/` folders of the connectors that have one."""
    return [resources.files(c.migrations) / "migrations" for c in connectors if c.migrations]


def migration_floor(folder: Traversable, connectors: tuple[Connector, ...]) -> int:
    """The lowest number a migration in `folder` may take: 1 for the core and the built-in
    connectors, `PLUGIN_MIGRATIONS_FROM` for a plug-in's."""
    for c in connectors:
        if c.migrations and resources.files(c.migrations) / "migrations" == folder:
            return 1 if c.migrations in _BUILT_IN_PACKAGES else PLUGIN_MIGRATIONS_FROM
    return 1
