"""Talks to DVCQG: login, re-login when the session expires, push dossiers and steps.

Each call passes, outermost first: tenacity (a few quick retries of `DestinationUnavailable`
only), the circuit breaker (purgatory; an open circuit raises `CircuitOpen` at once, which the
consumer wrapper turns into a delayed retry), the rate limiter (aiolimiter), then one HTTP
exchange. Every aiohttp or protocol failure is translated into the hub's error tree in
`translate_http_error` and `_check_reply`, and nowhere else.

This module must never ack, store or decide what to send: `sink.py` does.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiolimiter import AsyncLimiter
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from connectors.national_portal.config import NationalPortalConfig
from connectors.national_portal.mapping import PortalCodes
from hub import metrics
from hub.errors import (
    CircuitOpen,
    DestinationRejected,
    DestinationUnavailable,
    HubError,
    PermanentError,
)

log = structlog.get_logger(__name__)

CONNECTOR = "national_portal"


class SessionExpired(DestinationUnavailable):
    """The portal no longer accepts our session; log in again."""


@dataclass(frozen=True)
class ItemReply:
    dossier_code: str | None
    code: str
    message: str


def translate_http_error(exc: BaseException) -> HubError:
    """Every library exception of an HTTP exchange with DVCQG, most specific first."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return DestinationUnavailable(
            f"HTTP {exc.status} from DVCQG", connector=CONNECTOR, http_status=exc.status
        )
    if isinstance(exc, aiohttp.ContentTypeError | json.JSONDecodeError | UnicodeDecodeError):
        return DestinationUnavailable(f"DVCQG replied with no JSON: {exc}", connector=CONNECTOR)
    if isinstance(exc, TimeoutError):
        return DestinationUnavailable("DVCQG did not answer in time", connector=CONNECTOR)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return DestinationUnavailable(f"cannot reach DVCQG: {exc!r}", connector=CONNECTOR)
    return DestinationUnavailable(
        f"unexpected failure talking to DVCQG: {exc!r}", connector=CONNECTOR
    )


class PortalClient:
    def __init__(
        self, config: NationalPortalConfig, codes: PortalCodes, http: aiohttp.ClientSession
    ) -> None:
        self.config = config
        self.codes = codes
        self.http = http
        self._session: str | None = None
        self._login_lock = asyncio.Lock()
        self._limiter = AsyncLimiter(config.rate_limit_per_s, 1.0)
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=config.breaker.failure_threshold,
            default_ttl=config.breaker.recovery_s,
            exclude=[PermanentError],
        )

    async def breaker_state(self) -> str:
        breaker = await self.breakers.get_breaker(CONNECTOR)
        return str(breaker.context.state)

    # -- operations ---------------------------------------------------------------------------

    async def push_dossiers(self, items: list[dict[str, Any]], updating: bool) -> list[ItemReply]:
        body = {"isUpdating": "True" if updating else "False", "data": items}
        return self._items(await self.call("DongBoHoSoMC", body), items)

    async def push_steps(self, items: list[dict[str, Any]]) -> list[ItemReply]:
        return self._items(await self.call("CapNhatTienDoHoSoMC", {"data": items}), items)

    async def lookup(self, dossier_code: str) -> dict[str, Any] | None:
        reply = await self.call("TraCuuHoSo", {"mahoso": dossier_code}, allow={self.codes.not_held})
        data = reply.get("data")
        return data if isinstance(data, dict) else None

    async def call(
        self, service: str, body: dict[str, Any], allow: set[str] | None = None
    ) -> dict[str, Any]:
        """One protocol call with retries, breaker, rate limit and re-login."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(DestinationUnavailable),
            stop=stop_after_attempt(self.config.retry.attempts),
            wait=wait_exponential(
                multiplier=self.config.retry.initial_backoff_s, max=self.config.retry.max_backoff_s
            ),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    reply = await self._guarded(service, body, allow or set())
        except HubError as exc:
            metrics.PORTAL_CALLS.labels(service, type(exc).__name__).inc()
            raise
        metrics.PORTAL_CALLS.labels(service, "ok").inc()
        return reply

    # -- one attempt --------------------------------------------------------------------------

    async def _guarded(self, service: str, body: dict[str, Any], allow: set[str]) -> dict[str, Any]:
        try:
            breaker = await self.breakers.get_breaker(CONNECTOR)
            async with breaker:
                metrics.CIRCUIT_OPEN.labels(CONNECTOR).set(0)
                return await self._with_session(service, body, allow)
        except OpenedState:
            metrics.CIRCUIT_OPEN.labels(CONNECTOR).set(1)
            raise CircuitOpen("DVCQG circuit is open", connector=CONNECTOR) from None

    async def _with_session(
        self, service: str, body: dict[str, Any], allow: set[str]
    ) -> dict[str, Any]:
        session = await self._ensure_session()
        try:
            return await self._exchange(service, body, session, allow)
        except SessionExpired:
            log.info("portal_session_expired", connector=CONNECTOR)
            session = await self._ensure_session(stale=session)
            return await self._exchange(service, body, session, allow)

    async def _ensure_session(self, stale: str | None = None) -> str:
        async with self._login_lock:
            if self._session is None or self._session == stale:
                self._session = await self._login()
            return self._session

    async def _login(self) -> str:
        payload = {
            "username": self.config.username,
            "password": self.config.password.get_secret_value(),
        }
        reply = await self._post(payload, expect_json_on_error=True)
        session = reply.get("session")
        if str(reply.get("error_code")) != "0" or not isinstance(session, str):
            # Wrong credentials will not fix themselves, but an operator may fix the config
            # and replay: park rather than retry forever.
            raise DestinationRejected("DVCQG refused the hub's login", connector=CONNECTOR)
        log.info("portal_logged_in", connector=CONNECTOR)
        return session

    async def _exchange(
        self, service: str, body: dict[str, Any], session: str, allow: set[str]
    ) -> dict[str, Any]:
        payload = {"service": service, "session": session, "madonvi": self.config.madonvi, **body}
        reply = await self._post(payload)
        return self._check_reply(service, reply, allow)

    async def _post(self, payload: dict[str, Any], expect_json_on_error: bool = False) -> Any:
        async with self._limiter:
            try:
                timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
                async with self.http.post(
                    self.config.base_url, json=payload, timeout=timeout
                ) as response:
                    if response.status == 401 and not expect_json_on_error:
                        raise SessionExpired("DVCQG: session expired", connector=CONNECTOR)
                    if response.status >= 500 or response.status == 429:
                        raise DestinationUnavailable(
                            f"HTTP {response.status} from DVCQG",
                            connector=CONNECTOR,
                            http_status=response.status,
                        )
                    return await response.json(content_type=None)
            except HubError:
                raise
            except Exception as exc:
                raise translate_http_error(exc) from exc

    def _check_reply(self, service: str, reply: Any, allow: set[str]) -> dict[str, Any]:
        if not isinstance(reply, dict):
            raise DestinationUnavailable("DVCQG replied with no JSON object", connector=CONNECTOR)
        code = str(reply.get("error_code", ""))
        message = str(reply.get("message", ""))
        if code in self.codes.session_expired:
            raise SessionExpired("DVCQG: session expired", connector=CONNECTOR)
        if code in self.codes.transient:
            raise DestinationUnavailable(f"DVCQG {service}: {code} {message}", connector=CONNECTOR)
        if code in (self.codes.success, self.codes.partial) or code in allow:
            return reply
        raise DestinationRejected(
            f"DVCQG refused {service}: error_code {code} {message}".strip(),
            connector=CONNECTOR,
            code=code,
        )

    def _items(self, reply: dict[str, Any], items: list[dict[str, Any]]) -> list[ItemReply]:
        results = reply.get("result")
        if str(reply.get("error_code")) == self.codes.success and not isinstance(results, list):
            return [ItemReply(i.get("MaHoSo"), self.codes.success, "") for i in items]
        if not isinstance(results, list) or len(results) != len(items):
            raise DestinationUnavailable(
                "DVCQG reply has no per-item result matching the request", connector=CONNECTOR
            )
        return [
            ItemReply(
                r.get("MaHoSo") if isinstance(r, dict) else None,
                str(r.get("error_code", "")) if isinstance(r, dict) else "",
                str(r.get("message", "")) if isinstance(r, dict) else "",
            )
            for r in results
        ]
