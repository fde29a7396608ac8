"""Who is calling: source systems authenticated from configuration.

Facade logins are username + password checked against an argon2 hash from the configuration;
a successful login gets a random session token, stored only as its SHA-256. REST callers send
`Authorization: Bearer <token>`, compared in constant time with the configured SHA-256.
Permissions are per source (`sources.<name>.permissions`). This module must never log a
password, a token or a hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.config import SourceConfig

_hasher = PasswordHasher()
MAX_CACHED_SESSIONS = 10_000
SESSION_RECHECK_S = 60.0  # re-read a cached session from the store after this long


class Sessions(Protocol):
    """Facade sessions, kept by the SHA-256 of their token so they outlive a restart."""

    async def create_session(self, token_sha256: str, source: str, expires_at: float) -> None: ...

    async def session_source(self, token_sha256: str, now: float) -> tuple[str, float] | None:
        """The source and expiry of a live session, or None."""
        ...


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    name: str
    config: SourceConfig

    def may(self, permission: str) -> bool:
        return permission in self.config.permissions

    def may_use_unit(self, unit: str) -> bool:
        return not self.config.units or unit in self.config.units


class Authenticator:
    def __init__(self, sources: dict[str, SourceConfig], store: Sessions, session_ttl_s: float):
        self.sources = sources
        self.store = store
        self.session_ttl_s = session_ttl_s
        self._by_username = {s.username: n for n, s in sources.items() if s.username}
        self._sessions: dict[str, tuple[str, float]] = {}  # token SHA-256 → (source, until)

    async def login(self, username: object, password: object) -> str | None:
        """A new session token, or None for unknown users and wrong passwords alike."""
        name = self._by_username.get(username) if isinstance(username, str) else None
        source = self.sources.get(name) if name else None
        if source is None or source.password_hash is None or not isinstance(password, str):
            return None
        stored = source.password_hash.get_secret_value()
        if not await asyncio.to_thread(verify_password, stored, password):
            return None
        token = secrets.token_urlsafe(32)
        expires_at = time.time() + self.session_ttl_s
        await self.store.create_session(sha256_hex(token), name or "", expires_at)
        self._remember(sha256_hex(token), name or "", expires_at)
        return token

    async def session(self, token: object) -> Principal | None:
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        digest, now = sha256_hex(token), time.time()
        cached = self._sessions.get(digest)
        if cached is not None and cached[1] > now:
            name: str | None = cached[0]
        else:
            # Sessions survive restarts in the store; the cache spares it on every call.
            found = await self.store.session_source(digest, now)
            name = found[0] if found else None
            if found:
                self._remember(digest, found[0], min(found[1], now + SESSION_RECHECK_S))
        source = self.sources.get(name) if name else None
        return Principal(name, source) if name and source else None

    def _remember(self, digest: str, name: str, until: float) -> None:
        if len(self._sessions) >= MAX_CACHED_SESSIONS:
            self._sessions.clear()
        self._sessions[digest] = (name, until)

    def bearer(self, header: str | None) -> Principal | None:
        if not header or not header.startswith("Bearer "):
            return None
        digest = sha256_hex(header[len("Bearer ") :].strip())
        for name, source in self.sources.items():
            expected = source.api_token_sha256
            if expected and hmac.compare_digest(digest, expected.get_secret_value().lower()):
                return Principal(name, source)
        return None


def verify_password(stored: str, password: str) -> bool:
    """Whether `password` matches the argon2 hash `stored` (False for a malformed hash)."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
