"""Talks to a ministry system's REST API (aiohttp): submit a dossier, read results.

Every call passes through the system's own `Guard` (retries, breaker, rate limit) and its
`RequestAuth`; a 401 drops the cached credential and the call is tried once more with a fresh
one. Times in a request are written as ISO 8601 (with a T). A 2xx reply must be JSON no
larger than `max_reply_bytes`; 408, 425, 429 and 5xx, timeouts and connection failures are
transient; 401 (after the retry) and 403 are the system refusing the hub's credentials
(`CredentialsRefused`: nothing parked, the connector waits for an operator); any other status
is the system refusing the request (`DestinationRejected` with the start of its reply). This
module must never decide what to send or read a reply's meaning: the mapping does.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from functools import partial
from typing import Any
from urllib.parse import urlencode

import aiohttp

from connectors.ministry.auth import RequestAuth, request_auth
from connectors.ministry.config import MinistryConfig, RestConfig, rest_operation
from hub.errors import (
    CredentialsRefused,
    DestinationRejected,
    DestinationUnavailable,
    HubError,
    UnreadableReply,
)
from hub.httputil import dumps, read_reply
from hub.resilience import Guard, translate_http_error
from hub.tls import client_context

_RETRYABLE = frozenset({408, 425, 429})


class RestClient:
    def __init__(
        self, system: str, config: MinistryConfig, guard: Guard, http: aiohttp.ClientSession
    ) -> None:
        assert config.rest is not None
        self.system = system
        self.connector = guard.name
        self.config = config
        self.rest: RestConfig = config.rest
        self.guard = guard
        self.http = http
        self.ssl = client_context(config.tls)  # its CA, our client certificate
        self.auth: RequestAuth = request_auth(
            self.rest.auth, http, guard.name, config.timeout_s, self.ssl
        )

    async def submit(self, request: dict[str, Any]) -> Any:
        assert self.config.submit is not None
        method, path = rest_operation(self.config.submit.operation)
        return await self.guard.call(partial(self._call, method, path, request))

    async def poll(self, params: dict[str, Any]) -> Any:
        assert self.config.poll is not None
        method, path = rest_operation(self.config.poll.operation)
        return await self.guard.call(partial(self._call, method, path, params))

    async def close(self) -> None:
        return None

    async def _call(self, method: str, path: str, payload: dict[str, Any]) -> Any:
        payload = _wire(payload)
        body = b"" if method == "GET" else dumps(payload).encode()
        path_qs = f"{path}?{urlencode(payload)}" if method == "GET" and payload else path
        for attempt in (1, 2):
            status, raw = await self._exchange(method, path_qs, body)
            if status == 401 and attempt == 1:
                self.auth.invalidate()  # an expired or revoked token: fetch a new one, once
                continue
            return self._read(status, raw)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, method: str, path_qs: str, body: bytes) -> tuple[int, bytes]:
        async with self.guard.limiter:
            try:
                headers = {
                    **self.rest.headers,
                    **await self.auth.headers(method, path_qs, body),
                    "Accept": "application/json",
                }
                if body:
                    headers["Content-Type"] = "application/json"
                async with self.http.request(
                    method,
                    self.rest.base_url.rstrip("/") + path_qs,
                    data=body or None,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
                    ssl=self.ssl,
                ) as response:
                    return response.status, await self._body(response)
            except HubError:
                raise
            except Exception as exc:
                raise translate_http_error(exc, self.connector, self.system) from exc

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        return await read_reply(
            response, self.config.max_reply_bytes, connector=self.connector, system=self.system
        )

    def _read(self, status: int, raw: bytes) -> Any:
        detail = raw[:300].decode("utf-8", "replace").strip()
        if status >= 500 or status in _RETRYABLE:
            raise DestinationUnavailable(
                f"{self.system} answered HTTP {status}: {detail}",
                connector=self.connector,
                http_status=status,
            )
        if status in (401, 403):
            # The account, not the item: nothing is parked; the connector waits, "credentials
            # refused", until an operator corrects them (a 401 was already retried once with
            # a fresh credential).
            raise CredentialsRefused(
                f"{self.system} refused the hub's credentials: HTTP {status}: {detail}",
                connector=self.connector,
            )
        if not 200 <= status < 300:
            raise DestinationRejected(
                f"{self.system} refused with HTTP {status}: {detail}",
                connector=self.connector,
                code=str(status),
            )
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise UnreadableReply(
                f"{self.system} replied with something that is not JSON: {detail[:100]!r}",
                connector=self.connector,
                code="invalid_json",
            ) from None


def _wire(value: Any) -> Any:
    """Times as ISO 8601 text with a T (`2026-12-06T12:18:47+07:00`), as JSON APIs read them,
    not Python's text with a space; decimals stay text (`"50000"`), exact."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value
