"""How the hub authenticates to a ministry's REST API, and checks a ministry's pushes.

One `RequestAuth` per system, chosen by `rest.auth.kind`:

* `oauth2`: client credentials. The token is fetched from `token_url` (client authenticated by
  HTTP Basic, or by `client_id`/`client_secret` in the form), cached, and fetched again
  `refresh_margin_s` before it expires, or at once after the API answers 401.
* `bearer`: a static token (optional) and extra headers.
* `hmac`: each request signed. Headers `X-Api-Key: <key_id>`, `X-Timestamp: <unix seconds>`,
  `X-Signature: hex(HMAC-SHA256(secret, canonical))` (header names configurable), where
  `canonical = METHOD "\\n" PATH_AND_QUERY "\\n" TIMESTAMP "\\n" hex(SHA-256(body))`.

`verify_hmac` checks the same scheme on a push (constant-time compare, `max_skew_s` window).
This module must never log a secret or a token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from ssl import SSLContext
from typing import Protocol
from urllib.parse import quote_plus

import aiohttp

from connectors.ministry.config import BearerAuth, HmacAuth, OAuth2Auth, RestAuth
from hub.errors import CredentialsRefused, DestinationUnavailable, HubError
from hub.httputil import read_capped
from hub.resilience import translate_http_error

# An OAuth2 token reply is a few hundred bytes (a JWT a few kilobytes): more is not one.
MAX_TOKEN_REPLY_BYTES = 64 * 1024
MAX_STAMP_DIGITS = 12  # unix seconds until the year 33658


class RequestAuth(Protocol):
    async def headers(self, method: str, path_qs: str, body: bytes) -> dict[str, str]: ...

    def invalidate(self) -> None:
        """Forget a cached credential (the API answered 401)."""


class NoAuth:
    async def headers(self, method: str, path_qs: str, body: bytes) -> dict[str, str]:
        return {}

    def invalidate(self) -> None:
        return None


class StaticBearer:
    def __init__(self, config: BearerAuth) -> None:
        self.config = config

    async def headers(self, method: str, path_qs: str, body: bytes) -> dict[str, str]:
        out = {k: v.get_secret_value() for k, v in self.config.headers.items()}
        if self.config.token is not None:
            out["Authorization"] = f"Bearer {self.config.token.get_secret_value()}"
        return out

    def invalidate(self) -> None:
        return None


def canonical_string(method: str, path_qs: str, timestamp: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path_qs}\n{timestamp}\n{digest}".encode()


def hmac_signature(secret: str, method: str, path_qs: str, timestamp: str, body: bytes) -> str:
    message = canonical_string(method, path_qs, timestamp, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class HmacSigner:
    def __init__(self, config: HmacAuth) -> None:
        self.config = config

    async def headers(self, method: str, path_qs: str, body: bytes) -> dict[str, str]:
        cfg = self.config
        timestamp = str(int(time.time()))
        signature = hmac_signature(cfg.secret.get_secret_value(), method, path_qs, timestamp, body)
        return {
            cfg.key_header: cfg.key_id,
            cfg.timestamp_header: timestamp,
            cfg.signature_header: signature,
        }

    def invalidate(self) -> None:
        return None


def verify_hmac(
    config: HmacAuth,
    method: str,
    path_qs: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> str | None:
    """None when the request is signed right; otherwise why not (never the expected value)."""
    key, stamp, given = (
        headers.get(config.key_header),
        headers.get(config.timestamp_header),
        headers.get(config.signature_header),
    )
    if not key or not stamp or not given:
        return "missing signature headers"
    # Headers that were not UTF-8 arrive holding lone surrogates: encoded so, they match nothing.
    if not hmac.compare_digest(key.encode("utf-8", "surrogatepass"), config.key_id.encode()):
        return "unknown key id"
    # ASCII digits only, a plausible count of them: int() would also read "١٧٠٠", "+1_700"
    # or four thousand nines (too large to subtract from a float).
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_STAMP_DIGITS):
        return "timestamp is not unix seconds"
    skew = abs((time.time() if now is None else now) - int(stamp))
    if skew > config.max_skew_s:
        return "timestamp outside the allowed window"
    expected = hmac_signature(config.secret.get_secret_value(), method, path_qs, stamp, body)
    if not hmac.compare_digest(
        expected.encode(), given.strip().lower().encode("utf-8", "surrogatepass")
    ):
        return "signature does not match"
    return None


class OAuth2ClientCredentials:
    def __init__(
        self,
        config: OAuth2Auth,
        http: aiohttp.ClientSession,
        connector: str,
        timeout_s: float,
        ssl: SSLContext | bool = True,
    ) -> None:
        self.config = config
        self.http = http
        self.ssl = ssl  # the system's `tls`: its token endpoint is reached like the system
        self.connector = connector
        self.timeout_s = timeout_s
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def headers(self, method: str, path_qs: str, body: bytes) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self._current()}"}

    def invalidate(self) -> None:
        self._token = None

    async def _current(self) -> str:
        async with self._lock:  # one token request at a time, shared by every call
            if self._token is None or time.monotonic() >= self._expires_at:
                self._token, lifetime_s = await self._fetch()
                margin = min(self.config.refresh_margin_s, lifetime_s / 2)
                self._expires_at = time.monotonic() + lifetime_s - margin
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        cfg = self.config
        form = {"grant_type": "client_credentials"}
        if cfg.scope:
            form["scope"] = cfg.scope
        headers = {}
        if cfg.client_auth == "basic":
            headers["Authorization"] = _basic(cfg.client_id, cfg.client_secret.get_secret_value())
        else:
            form |= {
                "client_id": cfg.client_id,
                "client_secret": cfg.client_secret.get_secret_value(),
            }
        try:
            async with self.http.post(
                cfg.token_url,
                data=form,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                ssl=self.ssl,
            ) as response:
                if response.status != 200:
                    self._refused(response.status)
                raw = await read_capped(response.content, MAX_TOKEN_REPLY_BYTES)
            if raw is None:  # the endpoint is broken, not the dossier: an outage
                raise DestinationUnavailable(
                    f"the token endpoint replied with more than {MAX_TOKEN_REPLY_BYTES} bytes; "
                    "refused unread",
                    connector=self.connector,
                )
            reply = json.loads(raw)
        except HubError:
            raise
        except Exception as exc:
            raise translate_http_error(exc, self.connector, "the token endpoint") from exc
        token = reply.get("access_token") if isinstance(reply, dict) else None
        if not isinstance(token, str) or not token:
            raise DestinationUnavailable(
                "the token endpoint answered without an access_token", connector=self.connector
            )
        lifetime = reply.get("expires_in", 300)
        return token, float(lifetime) if isinstance(lifetime, int | float) else 300.0

    def _refused(self, status: int) -> None:
        message = f"the token endpoint answered HTTP {status}"
        if status in (400, 401, 403):
            raise CredentialsRefused(
                f"{message}: check client_id and client_secret", connector=self.connector
            )
        raise DestinationUnavailable(message, connector=self.connector, http_status=status)


def _basic(client_id: str, secret: str) -> str:
    """HTTP Basic client authentication; RFC 6749 §2.3.1 form-encodes both parts first."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def request_auth(
    config: RestAuth | None,
    http: aiohttp.ClientSession,
    connector: str,
    timeout_s: float,
    ssl: SSLContext | bool = True,
) -> RequestAuth:
    if isinstance(config, OAuth2Auth):
        return OAuth2ClientCredentials(config, http, connector, timeout_s, ssl)
    if isinstance(config, BearerAuth):
        return StaticBearer(config)
    if isinstance(config, HmacAuth):
        return HmacSigner(config)
    return NoAuth()
