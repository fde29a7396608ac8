"""POSTs one event to a subscriber's REST endpoint.

Each call passes through the subscriber's own `hub.resilience.Guard` (retries, breaker, rate
limit). A 2xx reply is success; 408, 429 and 5xx, timeouts and connection failures are
transient; any other status is the subscriber refusing the event (`DestinationRejected`,
parked with the status and the start of the reply). Subscribers de-duplicate on the
`X-Hub-Event-Id` header (also the body's `event_id`): the hub may repeat an event after a
lost reply, never change it.

This module must never ack, store or decide what to send: `sink.py` does.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import aiohttp

from hub.errors import (
    CredentialsRefused,
    DestinationRejected,
    DestinationUnavailable,
    HubError,
)
from hub.httputil import dumps, read_capped
from hub.resilience import Guard, translate_http_error
from hub.subscribers import SubscriberConfig
from hub.tls import client_context

EVENT_ID_HEADER = "X-Hub-Event-Id"
EVENT_TYPE_HEADER = "X-Hub-Event-Type"
_RETRYABLE = frozenset({408, 425, 429})
MAX_DETAIL_BYTES = 64 * 1024
_UNSENDABLE = re.compile("[\r\n\x00]")  # of a refusal's body, read for its first 300 characters


def connector_name(subscriber: str) -> str:
    return f"subscriber.{subscriber}"


class WebhookClient:
    def __init__(self, name: str, config: SubscriberConfig, http: aiohttp.ClientSession) -> None:
        self.name = name
        self.connector = connector_name(name)
        self.config = config
        self.http = http
        self.ssl = client_context(config.tls)  # its CA, our client certificate
        self.guard = Guard(self.connector, config.retry, config.breaker, config.rate_limit_per_s)

    async def post(self, event: dict[str, Any]) -> None:
        await self.guard.call(partial(self._post, event))

    def _headers(self, event: dict[str, Any]) -> dict[str, str]:
        for name in ("event_id", "type"):
            if _UNSENDABLE.search(str(event.get(name, ""))):
                # The event's own fault, whatever the subscriber: refused (parked), never an
                # outage that would hold every other event back.
                raise DestinationRejected(
                    f"the event's {name} holds a line break or a NUL, which no HTTP header carries",
                    connector=self.connector,
                    code="unsendable",
                )
        headers = {
            **self.config.headers,
            "Content-Type": "application/json",
            EVENT_ID_HEADER: str(event.get("event_id", "")),
            EVENT_TYPE_HEADER: str(event.get("type", "")),
        }
        if self.config.token is not None:
            headers["Authorization"] = f"Bearer {self.config.token.get_secret_value()}"
        return headers

    async def _post(self, event: dict[str, Any]) -> None:
        async with self.guard.limiter:
            try:
                timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
                async with self.http.post(
                    self.config.url,
                    data=dumps(event),
                    headers=self._headers(event),
                    timeout=timeout,
                    ssl=self.ssl,
                ) as response:
                    if 200 <= response.status < 300:
                        return
                    raw = await read_capped(response.content, MAX_DETAIL_BYTES)
                    detail = (raw or b"(a larger body, unread)")[:300].decode("utf-8", "replace")
                    self._refuse(response.status, detail)
            except HubError:
                raise
            except Exception as exc:
                raise translate_http_error(exc, self.connector, self.name) from exc

    def _refuse(self, status: int, detail: str) -> None:
        message = f"{self.name} answered HTTP {status}: {detail}".strip()
        if status >= 500 or status in _RETRYABLE:
            raise DestinationUnavailable(message, connector=self.connector, http_status=status)
        if status in (401, 403):  # our token, not the event: every event would meet the same
            raise CredentialsRefused(message, connector=self.connector)
        raise DestinationRejected(message, connector=self.connector, code=str(status))
