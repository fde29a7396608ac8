"""A connector defined only in the test tree, plugged in by configuration: it posts the codes
of changed dossiers to one HTTP endpoint and remembers them in a table of its own. It shows
that a new system needs one package and a configuration section, and no edit under `hub/`
(`tests/integration/test_plugin_connector.py`): its section, migration (`migrations/`), store
slice, consumer, route, OpenAPI fragment and dashboard page (`locale/` for its words).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.config_blocks import BreakerConfig, RetryConfig
from hub.consumer import Envelope, Outcome, dossier_code_of
from hub.dashboard.flows import table
from hub.errors import DestinationRejected, DestinationUnavailable, HubError
from hub.plugins import Connector, ConnectorContext
from hub.resilience import Guard, translate_http_error
from hub.store.sqlite import SqliteStore


class EchoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://")
    batch_size: int = Field(10, ge=1)
    linger_ms: int = 20
    concurrency: int = 2
    delay_tiers_s: list[float] = Field(default_factory=lambda: [0.3])
    retry: RetryConfig = RetryConfig(attempts=1)
    breaker: BreakerConfig = BreakerConfig(first_probe_s=0.2, recovery_s=0.5)
    rate_limit_per_s: float = 100.0


class EchoStore:
    """The connector's store slice: the codes it delivered."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def record(self, codes: list[str]) -> None:
        at = datetime.now(UTC).isoformat()
        async with self._store.transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO echo_sent (code, at) VALUES (?, ?)", [(c, at) for c in codes]
            )

    async def sent(self) -> list[dict[str, Any]]:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall("SELECT code, at FROM echo_sent")
        return [{"code": r[0], "at": r[1]} for r in rows]


class EchoConnector(Connector):
    name = "echo"
    config_model = EchoConfig
    migrations = "tests.plugins"
    locale = "tests.plugins"
    page = "echo"

    def store_slices(self, store: SqliteStore) -> dict[str, Any]:
        return {"echo": EchoStore(store)}

    def openapi(self) -> dict[str, Any]:
        answer = {"200": {"description": "sent, state", "content": {"application/json": {}}}}
        return {"/api/v1/echo": {"get": {"summary": "The echo connector", "responses": answer}}}

    async def start(self, context: ConnectorContext) -> None:
        config: EchoConfig = context.config
        guard = Guard(self.name, config.retry, config.breaker, config.rate_limit_per_s)
        log = context.store.slice("echo", EchoStore)
        sent: list[str] = []

        async def handler(batch: Sequence[Envelope]) -> Sequence[Outcome]:
            codes = [dossier_code_of(e) for e in batch]
            await guard.call(partial(_post, context.http, config.url, codes))
            await log.record(codes)
            sent.extend(codes)
            return [None] * len(batch)

        def page_of(reader: SqliteStore) -> Any:
            async def read() -> dict[str, Any]:
                rows = await reader.slice("echo", EchoStore).sent()
                return {"facts": {}, "tables": [table("sent", ["code", "at"], rows)]}

            return read

        async def status(_: web.Request) -> web.Response:
            return web.json_response({"sent": len(sent), "state": guard.gate.state()})

        await context.consume(config, ["dossier.#"], handler, dossier_code_of, guard)
        context.add_routes([web.get("/api/v1/echo", status)])
        context.add_flow("echo", page_of)


async def _post(http: aiohttp.ClientSession, url: str, codes: list[str]) -> None:
    try:
        async with http.post(url, json={"codes": codes}) as response:
            if response.status >= 500:
                raise DestinationUnavailable(
                    f"HTTP {response.status} from echo", http_status=response.status
                )
            if response.status >= 400:
                raise DestinationRejected(f"echo refused: HTTP {response.status}")
    except HubError:
        raise
    except Exception as exc:
        raise translate_http_error(exc, "echo", "echo") from exc


connector = EchoConnector()
