"""`MaXacThuc`: the payment platform's SHA-256 signature over `|`-joined fields.

The fields are taken in the order configured for the message type, an absent field counts as
the empty string, and the partner's secret key is the last element. `verify` compares in
constant time. This module is pure: no I/O, no logging (never log the secret or the input).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

SIGNATURE_FIELD = "MaXacThuc"


def _text(value: object) -> str:
    return "" if value is None else str(value)


def sign(fields: Mapping[str, object], order: Sequence[str], secret: str) -> str:
    """The lower-case hex signature of `fields` taken in `order`, with `secret` last."""
    parts = [_text(fields.get(name)) for name in order]
    parts.append(secret)
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def verify(fields: Mapping[str, object], order: Sequence[str], secret: str) -> bool:
    """True when `fields[MaXacThuc]` is the signature of the others (case-insensitive hex)."""
    given = fields.get(SIGNATURE_FIELD)
    if not isinstance(given, str) or not given:
        return False
    expected = sign(fields, order, secret)
    # compare_digest on bytes of equal type; a non-ASCII signature simply fails.
    try:
        return hmac.compare_digest(given.strip().lower().encode("ascii"), expected.encode("ascii"))
    except UnicodeEncodeError:
        return False


def signed(fields: Mapping[str, object], order: Sequence[str], secret: str) -> dict[str, object]:
    """A copy of `fields` with its `MaXacThuc` set."""
    return {**fields, SIGNATURE_FIELD: sign(fields, order, secret)}
