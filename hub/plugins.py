"""The seam a connector plugs into: what it provides, and what the core gives it to start.

A connector is an object with a `name`, a `config_model` (a pydantic model, validated under
`connectors.<name>` in the configuration file, with file, line and key in every error) and an
async `start(context)`. The core finds connectors by dotted name (`plugins:` in the
configuration, `package.module:attribute`), never by importing them. `start` declares its
queue and consumer through `context.consume` (the core's consumer: holds through outages,
parks refusals, subscribes again after broker faults, appears in `/readyz`, `/metrics`,
`hub status` and the dashboard), runs schedules with `context.background`, and serves HTTP
routes with `context.add_routes`.

The built-in connectors are still wired by `hub.runtime` itself; moving each of them behind
this seam is the next step. This module must never import a connector.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from hub.errors import ConfigError

if TYPE_CHECKING:
    from hub.broker import Broker
    from hub.consumer import BatchHandler, Envelope
    from hub.intake import Intake
    from hub.resilience import Guard
    from hub.runtime import QueueSection
    from hub.store.sqlite import SqliteStore


@runtime_checkable
class ConnectorPlugin(Protocol):
    """What a connector provides to the core."""

    name: str
    config_model: type[BaseModel]

    async def start(self, context: ConnectorContext) -> None: ...


Consume = Callable[..., Coroutine[Any, Any, None]]


@dataclass
class ConnectorContext:
    """What the core gives a connector as it starts (resources live as long as the hub)."""

    name: str
    config: Any  # the connector's own section, an instance of its `config_model`
    store: SqliteStore
    broker: Broker
    intake: Intake
    http: aiohttp.ClientSession
    _consume: Consume
    _background: Callable[[Coroutine[Any, Any, None], str], None]
    routes: list[web.AbstractRouteDef] = field(default_factory=list)

    async def consume(
        self,
        section: QueueSection,
        routing_keys: list[str],
        handler: BatchHandler,
        lane_key: Callable[[Envelope], str],
        guard: Guard | None = None,
    ) -> None:
        """The connector's queues declared and bound, and the core's consumer on them."""
        await self._consume(self.name, section, routing_keys, handler, lane_key, guard)

    def background(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        """A task that runs until the hub stops (then it is cancelled)."""
        self._background(coro, f"{self.name}-{what}")

    def add_routes(self, routes: list[web.AbstractRouteDef]) -> None:
        self.routes.extend(routes)


def load_plugin(dotted: str) -> ConnectorPlugin:
    """`package.module:attribute` → the connector it names; `ConfigError` if it is not one."""
    module_name, _, attribute = dotted.partition(":")
    where = f"plugins: {dotted!r}"
    if not module_name or not attribute:
        raise ConfigError(f"{where} is not package.module:attribute", [where])
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where} cannot be loaded: {exc}", [f"{where}: {exc}"]) from None
    if not isinstance(found, ConnectorPlugin) or not isinstance(found.name, str):
        raise ConfigError(
            f"{where} is not a connector (name, config_model, start)",
            [f"{where}: it lacks name, config_model or start"],
        )
    return found
