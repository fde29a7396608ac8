"""Talks to DVCQG: login, re-login when the session expires, push dossiers and steps.

Each call passes through the connector's `hub.resilience.Guard` (retries of
`DestinationUnavailable`, the circuit breaker, the rate limiter around each request), then one
HTTP exchange. Every aiohttp or protocol failure is translated into the hub's error tree in
`hub.resilience.translate_http_error` and `_check_reply`, and nowhere else.

This module must never ack, store or decide what to send: `sink.py` does.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import structlog

from connectors.national_portal.config import NationalPortalConfig
from connectors.national_portal.mapping import PortalCodes
from hub import metrics
from hub.errors import (
    CredentialsRefused,
    DestinationRejected,
    DestinationUnavailable,
    HubError,
)
from hub.httputil import read_capped
from hub.resilience import Guard, translate_http_error
from hub.tls import client_context

log = structlog.get_logger(__name__)

CONNECTOR = "national_portal"


class SessionExpired(DestinationUnavailable):
    """The portal no longer accepts our session; log in again."""


class ReplyNotJson(DestinationUnavailable):
    """The portal answered 2xx with a body that is not JSON; `excerpt` is its start."""

    def __init__(self, message: str, *, excerpt: str) -> None:
        super().__init__(message, connector=CONNECTOR)
        self.excerpt = excerpt


@dataclass(frozen=True)
class ItemReply:
    dossier_code: str | None
    code: str
    message: str


def _json_of(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        excerpt = raw[:300].decode("utf-8", errors="replace")
        raise ReplyNotJson(f"DVCQG replied with no JSON: {exc}", excerpt=excerpt) from None


class PortalSession:
    """The session of one DVCQG account, shared by every client that logs in as it (the
    dossier flow and the catalogue sync): one log-in serves both, and a renewal by one is
    seen by the other, so they never log each other out."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.lock = asyncio.Lock()
        self.logins = 0


class PortalClient:
    def __init__(
        self,
        config: NationalPortalConfig,
        codes: PortalCodes,
        http: aiohttp.ClientSession,
        guard_name: str = CONNECTOR,
        session: PortalSession | None = None,
    ) -> None:
        self.config = config
        self.codes = codes
        self.http = http
        self.ssl = client_context(config.tls)  # its CA, our client certificate
        self.session = session or PortalSession()
        # The catalogue sync has a client (and so a breaker, metrics and outage log) of its own.
        self.guard = Guard(guard_name, config.retry, config.breaker, config.rate_limit_per_s)

    async def breaker_state(self) -> str:
        return await self.guard.breaker_state()

    # -- operations ---------------------------------------------------------------------------

    async def push_dossiers(self, items: list[dict[str, Any]], updating: bool) -> list[ItemReply]:
        body = {"isUpdating": "True" if updating else "False", "data": items}
        return self._items(await self.call("DongBoHoSoMC", body), items)

    async def push_steps(self, items: list[dict[str, Any]]) -> list[ItemReply]:
        """One call, never repeated here: DVCQG may have applied steps whose reply was lost,
        and the sink settles that with `lookup` before sending them again."""
        reply = await self.call("CapNhatTienDoHoSoMC", {"data": items}, retry=False)
        return self._items(reply, items)

    async def lookup(self, dossier_code: str) -> dict[str, Any] | None:
        reply = await self.call("TraCuuHoSo", {"mahoso": dossier_code}, allow={self.codes.not_held})
        data = reply.get("data")
        return data if isinstance(data, dict) else None

    async def call(
        self,
        service: str,
        body: dict[str, Any],
        allow: set[str] | None = None,
        retry: bool = True,
    ) -> dict[str, Any]:
        """One protocol call with retries (unless `retry` is off), breaker, rate limit and
        re-login."""
        try:
            reply = await self.guard.call(
                partial(self._with_session, service, body, allow or set()), retry=retry
            )
        except HubError as exc:
            metrics.PORTAL_CALLS.labels(service, type(exc).__name__).inc()
            raise
        metrics.PORTAL_CALLS.labels(service, "ok").inc()
        return reply

    async def _with_session(
        self, service: str, body: dict[str, Any], allow: set[str]
    ) -> dict[str, Any]:
        session = await self._ensure_session()
        try:
            return await self._exchange(service, body, session, allow)
        except SessionExpired:
            log.info("portal_session_expired", connector=CONNECTOR)
            session = await self._ensure_session(stale=session)
        try:
            return await self._exchange(service, body, session, allow)
        except SessionExpired:
            # A session refused right after the log-in that made it: logging in again would
            # only loop. The account is at fault, not a dossier: wait for an operator.
            raise CredentialsRefused(
                f"DVCQG refused {service} with a session it had just issued to "
                f"{self.config.username!r}: check the account's rights",
                connector=CONNECTOR,
            ) from None

    async def _ensure_session(self, stale: str | None = None) -> str:
        keeper = self.session
        async with keeper.lock:
            if keeper.token is None or keeper.token == stale:
                keeper.token = await self._login()
                keeper.logins += 1
            return keeper.token

    async def _login(self) -> str:
        payload = {
            "username": self.config.username,
            "password": self.config.password.get_secret_value(),
        }
        reply = await self._post(payload, expect_json_on_error=True)
        session = reply.get("session")
        if str(reply.get("error_code")) != "0" or not isinstance(session, str):
            # No dossier is at fault: they wait (the connector is "credentials refused") until
            # an operator corrects the password, and go on by themselves after.
            raise CredentialsRefused(
                f"DVCQG refused the hub's login as {self.config.username!r}: "
                f"error_code {reply.get('error_code')}",
                connector=CONNECTOR,
            )
        log.info("portal_logged_in", connector=CONNECTOR)
        return session

    async def _exchange(
        self, service: str, body: dict[str, Any], session: str, allow: set[str]
    ) -> dict[str, Any]:
        payload = {"service": service, "session": session, "madonvi": self.config.madonvi, **body}
        reply = await self._post(payload)
        return self._check_reply(service, reply, allow)

    async def _post(self, payload: dict[str, Any], expect_json_on_error: bool = False) -> Any:
        async with self.guard.limiter:
            try:
                timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
                async with self.http.post(
                    self.config.base_url, json=payload, timeout=timeout, ssl=self.ssl
                ) as response:
                    if response.status == 401 and not expect_json_on_error:
                        raise SessionExpired("DVCQG: session expired", connector=CONNECTOR)
                    if response.status >= 500 or response.status == 429:
                        raise DestinationUnavailable(
                            f"HTTP {response.status} from DVCQG",
                            connector=CONNECTOR,
                            http_status=response.status,
                        )
                    raw = await read_capped(response.content, self.config.max_reply_bytes)
                    if raw is None:  # read as any unreadable reply of DVCQG: an outage
                        raise DestinationUnavailable(
                            f"DVCQG replied with more than {self.config.max_reply_bytes} bytes "
                            "(max_reply_bytes); refused unread",
                            connector=CONNECTOR,
                        )
                    return _json_of(raw)
            except HubError:
                raise
            except Exception as exc:
                raise translate_http_error(exc, CONNECTOR, "DVCQG") from exc

    def _check_reply(self, service: str, reply: Any, allow: set[str]) -> dict[str, Any]:
        if not isinstance(reply, dict):
            raise DestinationUnavailable("DVCQG replied with no JSON object", connector=CONNECTOR)
        code = str(reply.get("error_code", ""))
        message = str(reply.get("message", ""))
        if code in self.codes.credentials_refused:
            raise CredentialsRefused(
                f"DVCQG refused the hub's credentials on {service}: {code} {message}".strip(),
                connector=CONNECTOR,
            )
        if code in self.codes.session_expired:
            raise SessionExpired("DVCQG: session expired", connector=CONNECTOR)
        if code in self.codes.transient:
            raise DestinationUnavailable(
                f"DVCQG {service}: {code} {message}", connector=CONNECTOR, cause="busy"
            )
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
