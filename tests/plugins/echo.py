"""A connector defined only in the test tree, plugged in by configuration: it posts the codes
of changed dossiers to one HTTP endpoint. It shows that a new system needs one package and a
configuration section, and no edit under `hub/` (`tests/integration/test_plugin_connector.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.config_blocks import BreakerConfig, RetryConfig
from hub.consumer import Envelope, Outcome, dossier_code_of
from hub.errors import DestinationRejected, DestinationUnavailable, HubError
from hub.plugins import ConnectorContext
from hub.resilience import Guard, translate_http_error


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


class EchoConnector:
    name = "echo"
    config_model = EchoConfig

    async def start(self, context: ConnectorContext) -> None:
        config: EchoConfig = context.config
        guard = Guard(self.name, config.retry, config.breaker, config.rate_limit_per_s)
        sent: list[str] = []

        async def handler(batch: Sequence[Envelope]) -> Sequence[Outcome]:
            codes = [dossier_code_of(e) for e in batch]
            await guard.call(partial(_post, context.http, config.url, codes))
            sent.extend(codes)
            return [None] * len(batch)

        async def status(_: web.Request) -> web.Response:
            return web.json_response({"sent": len(sent), "state": guard.gate.state()})

        await context.consume(config, ["dossier.#"], handler, dossier_code_of, guard)
        context.add_routes([web.get("/api/v1/echo", status)])


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
