"""Who is using the dashboard: operators' log-in, sessions, CSRF tokens and roles.

Operators are configured under `dashboard.users` with an argon2 hash and a role:

* viewer: reads every page but the audit log;
* operator: also replays and discards dead letters, pauses and resumes connectors, and reads
  the audit log;
* admin: also unlocks users and ends their sessions (`unlock`, `end_sessions`; the CLI's
  `hub users unlock|revoke-sessions` do the same on the store while the hub runs).

A log-in sets the cookie `hub_session` (HttpOnly, SameSite=Strict, Secure unless
`dashboard.cookie_secure` is off) holding a random token; the store keeps only its SHA-256, so
sessions survive a restart. Every state-changing request must carry the session's CSRF token,
an HMAC of the session token (header `X-CSRF-Token`, or the form field `csrf_token`): a forged
page cannot read it. Each failed log-in answers after `failed_login_delay_s`, and
`max_failed_logins` failures of one name from one client address within `lockout_s` lock
that name for that client for `lockout_s` (another address is not locked out, so nobody can
keep an administrator out from elsewhere); unknown names cost the same time as known ones and
are locked alike, so a refusal tells nothing about which names exist. The rules shared with
the facade (bounded argon2 checks, one check per name and client at a time) are in
`hub.auth`. This module must never log a password, a token or a hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from hub.auth import CHECKS, Turns, sha256_hex, unknown_name_hash
from hub.config import DashboardConfig, Role
from hub.httputil import writable
from hub.store.sqlite import SqliteStore

COOKIE = "hub_session"
LOGIN_COOKIE = "hub_login"  # double-submit token of the log-in form
CSRF_HEADER = "X-CSRF-Token"
SESSION_PREFIX = "operator:"

Ability = Literal["read", "audit.read", "dlq.act", "connectors.pause", "users.manage"]
ROLES_ABLE: dict[Ability, frozenset[str]] = {
    "read": frozenset({"viewer", "operator", "admin"}),
    "audit.read": frozenset({"operator", "admin"}),
    "dlq.act": frozenset({"operator", "admin"}),
    "connectors.pause": frozenset({"operator", "admin"}),
    "users.manage": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Operator:
    name: str
    role: Role
    token: str  # the session token, to derive the CSRF token; never shown

    def may(self, ability: Ability) -> bool:
        return self.role in ROLES_ABLE[ability]

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


@dataclass(frozen=True)
class LoginResult:
    operator: Operator | None
    expires_at: float = 0.0
    locked_until: float = 0.0  # > now: refused because the name is locked


def throttle_key(name: str, client: str) -> str:
    """The store's key of failed log-ins of `name` from `client`."""
    return f"{name}|{client}"


async def unlock(store: SqliteStore, actor: str, name: str) -> int:
    """Unlock `name` for every client address, audited first (as `actor`); how many
    addresses it was locked or failing from."""
    await store.audit(actor, "user.unlock", name, {})
    return await store.dashboard.unlock(name)


async def end_sessions(store: SqliteStore, actor: str, name: str) -> int:
    """End every session of operator `name` at once (their cookies stop working on the next
    request: sessions are read from the store each time), audited first; how many."""
    await store.audit(actor, "user.sessions_revoked", name, {})
    return await store.end_sessions(SESSION_PREFIX + name)


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"hub-csrf", hashlib.sha256).hexdigest()


class OperatorAccess:
    def __init__(self, config: DashboardConfig, store: SqliteStore, reader: SqliteStore) -> None:
        self.config = config
        self.store = store  # the writing store: sessions, log-in failures, audit
        self.reader = reader  # session look-ups, so a page never waits for the hub's writes
        self._turns = Turns()  # the counts themselves are in the store

    async def login(self, username: object, password: object, client: str) -> LoginResult:
        """The operator on success; otherwise `operator` is None, after the configured delay.
        `hub.auth.LoginsBusy` when too many log-ins wait for their check."""
        # The name as the store keeps it (the throttle's key, the audit log): a lone surrogate
        # written as its escape; such a name is no configured user anyway.
        name = writable(username[:64]) if isinstance(username, str) else ""
        async with self._turns.turn((name, client)):
            result = await self._check(name, password, client)
        if result.operator is None:
            await asyncio.sleep(self.config.failed_login_delay_s)
        return result

    async def _check(self, name: str, password: object, client: str) -> LoginResult:
        now = time.time()
        key = throttle_key(name, client)
        user = self.config.users.get(name)
        state = await self.store.dashboard.login_state(key)
        if state is not None and state.locked_until > now:
            await self.store.audit(
                name or "?", "login.refused", "dashboard", {"reason": "locked", "client": client}
            )
            return LoginResult(None, locked_until=state.locked_until)
        stored = user.password_hash.get_secret_value() if user else await unknown_name_hash()
        ok = isinstance(password, str) and await CHECKS.verify(stored, password)
        if user is None or not ok:
            return await self._failed(name, user is not None, client, now)
        await self.store.dashboard.login_succeeded(key)
        token = secrets.token_urlsafe(32)
        expires_at = now + self.config.session_ttl_s
        await self.store.create_session(sha256_hex(token), SESSION_PREFIX + name, expires_at)
        await self.store.audit(name, "login", "dashboard", {"role": user.role, "client": client})
        return LoginResult(Operator(name, user.role, token), expires_at)

    async def _failed(self, name: str, known: bool, client: str, now: float) -> LoginResult:
        state = await self.store.dashboard.login_failed(
            throttle_key(name, client),
            now,
            self.config.lockout_s,
            self.config.max_failed_logins,
            self.config.lockout_s,
        )
        locked_until = state.locked_until if state.locked_until > now else 0.0
        detail: dict[str, object] = {
            "reason": "bad_credentials",
            "client": client,
            "known_user": known,
        }
        if locked_until:
            detail["locked_until"] = locked_until
        await self.store.audit(name or "?", "login.failed", "dashboard", detail)
        return LoginResult(None, locked_until=locked_until)

    async def operator(self, request: web.Request) -> Operator | None:
        """The operator whose session cookie the request carries, if it is valid."""
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 200:
            return None
        found = await self.reader.session_source(sha256_hex(token), time.time())
        if found is None or not found[0].startswith(SESSION_PREFIX):
            return None
        name = found[0][len(SESSION_PREFIX) :]
        user = self.config.users.get(name)
        return Operator(name, user.role, token) if user else None

    async def logout(self, operator: Operator) -> None:
        await self.store.end_session(sha256_hex(operator.token))
        await self.store.audit(operator.name, "logout", "dashboard", {})

    def csrf_ok(self, operator: Operator, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), operator.csrf)

    async def refusal(
        self, operator: Operator, csrf: object, ability: Ability, path: str
    ) -> Literal["csrf", "role"] | None:
        """Why `operator` may not act here (a missing or forged CSRF token first, then the
        role), written to the audit log; None when the act may go on."""
        reason: Literal["csrf", "role"] | None = None
        if not self.csrf_ok(operator, csrf if isinstance(csrf, str) else None):
            reason = "csrf"
        elif not operator.may(ability):
            reason = "role"
        if reason is not None:
            await self.store.audit(
                operator.name, "denied", path[:200], {"reason": reason, "role": operator.role}
            )
        return reason

    def set_cookie(self, response: web.StreamResponse, operator: Operator) -> None:
        response.set_cookie(
            COOKIE,
            operator.token,
            max_age=int(self.config.session_ttl_s),
            path="/",
            httponly=True,
            secure=self.config.cookie_secure,
            samesite="Strict",
        )

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/")
