"""One ministry system's client, SOAP or REST, behind one small interface.

`open_client` builds the system's `Guard` (its own retries, circuit breaker and rate limit,
so one system down never slows another) and the client its `kind` names. The hand-off sink
and the poller only see `MinistryClient`. This module must never decide what to send.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import aiohttp

from connectors.ministry.config import MinistryConfig
from connectors.ministry.mapping import MinistryMapping
from connectors.ministry.rest import RestClient
from connectors.ministry.soap import SoapClient
from connectors.ministry.wsdl import Locate
from hub.resilience import Guard


def connector_name(system: str) -> str:
    return f"ministry.{system}"


class MinistryClient(Protocol):
    system: str
    connector: str
    guard: Guard

    async def submit(self, request: dict[str, Any]) -> Any: ...

    async def poll(self, params: dict[str, Any]) -> Any: ...

    async def close(self) -> None: ...


async def open_client(
    system: str,
    config: MinistryConfig,
    http: aiohttp.ClientSession,
    mappings_dir: Path,
    mapping: MinistryMapping | None = None,
    locate: Locate = ".".join,
) -> MinistryClient:
    """The system's client; a SOAP one reads its WSDL now and checks it against the
    configuration and `mapping` (`ConfigError` listing where they do not fit)."""
    guard = Guard(connector_name(system), config.retry, config.breaker, config.rate_limit_per_s)
    if config.kind == "soap":
        client = SoapClient(system, config, guard, mappings_dir, mapping, locate)
        await client.load()
        return client
    return RestClient(system, config, guard, http)
