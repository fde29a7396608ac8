"""Who is calling: source systems authenticated from configuration.

Facade logins are username + password checked against an argon2 hash from the configuration;
a successful login gets a random session token, stored only as its SHA-256. REST callers send
`Authorization: Bearer <token>`, compared in constant time with the configured salted hash
(`hub.tokens`; the bare SHA-256 of older versions is still read).
Permissions are per source (`sources.<name>.permissions`). This module must never log a
password, a token or a hash.

Log-ins resist guessing and floods the same way at every door (the facade here, the
dashboard in `hub.dashboard.access`):

* every argon2 check goes through `CHECKS`: one at a time (a check costs tens of
  milliseconds of a core; the other core stays with the flows), and when 16 are already
  waiting a new log-in is turned away at once with `LoginsBusy` (HTTP 503, Retry-After), so a
  flood of log-ins cannot starve the dossier flow of CPU;
* an unknown name is checked against a dummy hash, so it costs what a known one does;
* failures are counted per name *and* client address (`Throttle`): five within the window
  lock that name for that client only, so nobody can keep an administrator (or a source
  system) locked out from elsewhere, and an unknown name is locked like a known one, so the
  refusal tells nothing about which names exist. The check, the verification and the count
  of one name from one client run one at a time, so concurrent guesses cannot slip past the
  lock. The facade's counts live in memory (a restart clears them); the dashboard's in the
  store, where an administrator can clear them.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.config import SourceConfig
from hub.errors import ValidationFailed
from hub.tokens import token_matches

_hasher = PasswordHasher()
MAX_CACHED_SESSIONS = 10_000
SESSION_RECHECK_S = 60.0  # re-read a cached session from the store after this long
FACADE_MAX_FAILURES = 5
FACADE_LOCK_S = 900.0
MAX_TOKEN_CHARS = 1000  # a longer bearer token is nobody's: not hashed


class LoginsBusy(Exception):
    """Too many log-ins are waiting for their password check: refused at once, not hashed."""


class Checks:
    """Argon2 verifications, bounded: `parallel` at once, at most `max_waiting` queued."""

    def __init__(self, parallel: int = 1, max_waiting: int = 16) -> None:
        self._running = asyncio.Semaphore(parallel)
        self.max_waiting = max_waiting
        self.waiting = 0

    async def verify(self, stored: str, password: str) -> bool:
        if self.waiting >= self.max_waiting:
            raise LoginsBusy(f"{self.waiting} log-ins are already waiting")
        self.waiting += 1
        try:
            async with self._running:
                return await asyncio.to_thread(verify_password, stored, password)
        finally:
            self.waiting -= 1


CHECKS = Checks()


@cache
def dummy_hash() -> str:
    """A hash to verify unknown names against, so they cost what known ones do (made on the
    first log-in of an unknown name, not at every start). Call `unknown_name_hash`."""
    return hash_password(secrets.token_urlsafe(16))


async def unknown_name_hash() -> str:
    """`dummy_hash`, made off the event loop the first time: an argon2 hash takes tens of
    milliseconds of CPU and, with argon2-cffi's defaults (RFC 9106's second profile), 64 MiB
    of memory while it runs. A log-in of a known name never makes it. The first unknown name
    after a start costs one hash more than a known one; every later one costs the same."""
    if dummy_hash.cache_info().currsize:
        return dummy_hash()
    return await asyncio.to_thread(dummy_hash)


class Turns:
    """One log-in of a (name, client) at a time: its lock check, password check and count of
    the outcome run whole, so concurrent guesses cannot slip past a lock being set."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def turn(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) >= self.max_keys:  # forget the idle ones
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[key] = asyncio.Lock()
        return lock


class Throttle(Turns):
    """Failed log-ins per (name, client) in memory: `max_failures` within `lock_s` lock that
    pair for `lock_s`. Bounded: past `max_keys` the oldest entries are forgotten."""

    def __init__(self, max_failures: int, lock_s: float, max_keys: int = 10_000) -> None:
        super().__init__(max_keys)
        self.max_failures = max_failures
        self.lock_s = lock_s
        self._failures: dict[tuple[str, str], tuple[int, float, float]] = {}

    def locked_until(self, key: tuple[str, str], now: float) -> float:
        found = self._failures.get(key)
        return found[2] if found and found[2] > now else 0.0

    def failed(self, key: tuple[str, str], now: float) -> float:
        """Count a failure; the time the pair is locked until (0 when it is not)."""
        failures, last, _ = self._failures.get(key, (0, 0.0, 0.0))
        failures = failures + 1 if now - last <= self.lock_s else 1
        locked = now + self.lock_s if failures >= self.max_failures else 0.0
        if len(self._failures) >= self.max_keys:
            oldest = sorted(self._failures, key=lambda k: self._failures[k][1])
            for k in oldest[: self.max_keys // 10]:
                del self._failures[k]
        self._failures[key] = (0 if locked else failures, now, locked)
        return locked

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)


class Sessions(Protocol):
    """Facade sessions, kept by the SHA-256 of their token so they outlive a restart."""

    async def create_session(self, token_sha256: str, source: str, expires_at: float) -> None: ...

    async def session_source(self, token_sha256: str, now: float) -> tuple[str, float] | None:
        """The source and expiry of a live session, or None."""
        ...


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def sha256_hex(text: str) -> str:
    """The hex SHA-256 of `text` in UTF-8. A lone surrogate (from a header that was not UTF-8,
    or a JSON escape) is hashed as its code point's bytes instead of failing: such a token
    matches nothing configured, and is refused like any wrong one."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class LoginOutcome:
    token: str | None
    locked_until: float = 0.0  # > 0: refused because this name is locked for this client


@dataclass(frozen=True)
class Principal:
    name: str
    config: SourceConfig

    def may(self, permission: str) -> bool:
        return permission in self.config.permissions

    def may_use_unit(self, unit: str) -> bool:
        """Whether the source may act for `unit`: one of its `units` or a unit under one."""
        return not self.config.units or any(covers(u, unit) for u in self.config.units)

    def may_see(self, dossier_code: str) -> bool:
        """Whether the dossier belongs to a unit this source may act for: the agency code
        that begins its code (`000.20.41.H41-261201-0001` → `000.20.41.H41`)."""
        return self.may_use_unit(dossier_code.split("-", 1)[0])

    def check_dossier(self, dossier_code: str, field: str) -> None:
        """`ValidationFailed` (that item's own refusal) for a dossier of another unit."""
        if not self.may_see(dossier_code):
            raise ValidationFailed(
                f"dossier {dossier_code} belongs to unit {dossier_code.split('-', 1)[0]}, which "
                f"system {self.name!r} may not act for (sources.{self.name}.units)",
                field=field,
                code="forbidden_unit",
            )


def covers(unit: str, other: str) -> bool:
    """Whether agency `other` is `unit` or under it. An agency code names levels from the
    lowest to the province (`000.20.41.H41`: unit 20 of department or district 41 of
    province H41); a level of zeros in `unit` stands for any unit at that level under it, so
    `000.00.41.H41` covers `000.20.41.H41` and `123.20.41.H41`, not `000.00.42.H41`."""
    mine, theirs = unit.split("."), other.split(".")
    if len(mine) != len(theirs):
        return False
    return all(m == t or set(m) == {"0"} for m, t in zip(mine, theirs, strict=True))


class Authenticator:
    def __init__(self, sources: dict[str, SourceConfig], store: Sessions, session_ttl_s: float):
        self.sources = sources
        self.store = store
        self.session_ttl_s = session_ttl_s
        self._by_username = {s.username: n for n, s in sources.items() if s.username}
        self._sessions: dict[str, tuple[str, float]] = {}  # token SHA-256 → (source, until)
        self.throttle = Throttle(FACADE_MAX_FAILURES, FACADE_LOCK_S)

    async def login(self, username: object, password: object, client: str = "?") -> LoginOutcome:
        """A new session token; or why not: wrong (unknown users and wrong passwords alike),
        locked (too many failures of this name from this client), busy (`LoginsBusy`)."""
        typed = username[:64] if isinstance(username, str) else ""
        key, now = (typed, client), time.time()
        async with self.throttle.turn(key):
            locked = self.throttle.locked_until(key, now)
            if locked:
                return LoginOutcome(None, locked_until=locked)
            name = self._by_username.get(typed)
            source = self.sources.get(name) if name else None
            if source is not None and source.password_hash is not None:
                stored, known = source.password_hash.get_secret_value(), True
            else:
                stored, known = await unknown_name_hash(), False
            ok = isinstance(password, str) and await CHECKS.verify(stored, password)
            if not (ok and known):
                return LoginOutcome(None, locked_until=self.throttle.failed(key, now))
            self.throttle.succeeded(key)
        token = secrets.token_urlsafe(32)
        expires_at = time.time() + self.session_ttl_s
        await self.store.create_session(sha256_hex(token), name or "", expires_at)
        self._remember(sha256_hex(token), name or "", expires_at)
        return LoginOutcome(token)

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
        token = header[len("Bearer ") :].strip()
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        # Each source's hash is salted differently: one HMAC per source with a token.
        for name, source in self.sources.items():
            expected = source.api_token_sha256
            if expected and token_matches(expected.get_secret_value(), token):
                return Principal(name, source)
        return None


def verify_password(stored: str, password: str) -> bool:
    """Whether `password` matches the argon2 hash `stored` (False for a malformed hash). A
    password holding a lone surrogate (a JSON escape) is checked as its code points' bytes,
    at the same cost: it matches no hash of a real password."""
    try:
        return _hasher.verify(stored, password.encode("utf-8", "surrogatepass"))
    except (VerificationError, InvalidHashError):
        return False
