"""Stored forms of the bearer tokens other systems send, and how strong a new secret must be.

A token is kept as `hmac-sha256$<salt>$<digest>`: 16 random bytes of salt (hex) and the
HMAC-SHA256 of the token keyed with that salt (hex), made by `hub hash-secret --token`. Tokens
are long and random, so a fast salted hash is enough (an argon2 check per request would cost
tens of milliseconds of a core); the salt makes equal tokens look different in two
configuration files and leaves nothing to precompute. The older form, a bare SHA-256 hex
digest, is still accepted so that an upgrade changes nothing at once; `hub check-config` warns
about each one left (decision 0054). Comparisons are constant-time. A caller found by its
token is checked against each configured hash in turn (one HMAC each: nothing for tens of
sources).

This module must never log or return a token, and never decide who may do what.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

SCHEME = "hmac-sha256"
SALT_BYTES = 16
MIN_TOKEN_CHARS = 24
MIN_TOKEN_DISTINCT = 8
MIN_PASSWORD_CHARS = 12
MIN_PASSWORD_DISTINCT = 5

_LEGACY = re.compile(r"[0-9a-fA-F]{64}")
_SALTED = re.compile(rf"{SCHEME}\$([0-9a-f]{{{SALT_BYTES * 2}}})\$([0-9a-f]{{64}})")
LEGACY_WARNING = (
    "an unsalted SHA-256 of an older version; still accepted, but hash the token again with "
    "`hub hash-secret --token` (the token itself stays the same)"
)
FORM_HELP = (
    f"give `{SCHEME}$<salt>$<digest>` as `hub hash-secret --token` prints it "
    "(or, from older versions, 64 hex digits of SHA-256)"
)


def _digest(salt: bytes, token: str) -> str:
    # A lone surrogate (a header that was not UTF-8, a JSON escape) is hashed as its code
    # point's bytes rather than failing: such a token matches nothing and is refused.
    return hmac.new(salt, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def hash_token(token: str, salt: bytes | None = None) -> str:
    """The stored form of `token`, with a fresh random salt unless one is given."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return f"{SCHEME}${salt.hex()}${_digest(salt, token)}"


def is_legacy(stored: str) -> bool:
    """Whether `stored` is the older, unsalted form (a bare SHA-256)."""
    return _LEGACY.fullmatch(stored) is not None


def check_form(stored: str) -> str:
    """`stored` if it is a form `token_matches` reads (empty: no token matches); ValueError."""
    if stored and not is_legacy(stored) and _SALTED.fullmatch(stored) is None:
        raise ValueError(f"not a token hash: {FORM_HELP}")
    return stored


def token_matches(stored: str, token: str) -> bool:
    """Whether `token` is the one `stored` was made from; constant-time for a given form."""
    if is_legacy(stored):
        given = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        return hmac.compare_digest(given, stored.lower())
    found = _SALTED.fullmatch(stored)
    if found is None:
        return False
    expected = found.group(2)
    return hmac.compare_digest(_digest(bytes.fromhex(found.group(1)), token), expected)


def token_weakness(token: str) -> str | None:
    """Why `token` is too weak to be a bearer token, or None."""
    return _weakness(token, "token", MIN_TOKEN_CHARS, MIN_TOKEN_DISTINCT)


def password_weakness(password: str) -> str | None:
    """Why `password` is too weak for a log-in, or None."""
    return _weakness(password, "password", MIN_PASSWORD_CHARS, MIN_PASSWORD_DISTINCT)


def _weakness(secret: str, what: str, min_chars: int, min_distinct: int) -> str | None:
    if len(secret) < min_chars:
        return f"the {what} has {len(secret)} characters; at least {min_chars} are needed"
    distinct = len(set(secret))
    if distinct < min_distinct:
        return (
            f"the {what} uses only {distinct} different characters; at least {min_distinct} "
            "are needed (it repeats too much to be random)"
        )
    return None
