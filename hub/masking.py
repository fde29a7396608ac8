"""Masking of personal data and secrets, for logs, errors and anything shown to operators.

One place decides what is personal: keys that name people, ID numbers, phones, e-mails or
secrets are masked whole; free text is scanned for ID numbers, phone numbers and e-mail
addresses. Callers never mask by hand: the logging processor and the API serialisers call
`mask`. This module must never log or raise on odd input.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

# Lower-cased keys whose values are personal data or secrets, in every vocabulary the hub
# speaks (DVCQG wire names, canonical names, HTTP headers).
SENSITIVE_KEYS = frozenset(
    {
        "chuhoso",
        "madoituong",
        "sodienthoai",
        "email",
        "fax",
        "owner_name",
        "applicant_id",
        "phone",
        "nguoixuly",
        "handler_name",
        "password",
        "session",
        "token",
        "authorization",
        "cookie",
        "secret",
        "api_token",
        "password_hash",
        "api_token_sha256",
        "thongtingiaodich",
        "payer_info",
        # ministry systems' own names for the applicant (hộ tịch, đăng ký kinh doanh, đất đai)
        "nguoiyeucau",
        "hoten",
        "sodinhdanh",
        "nguoinop",
        "sogiayto",
        "chusudung",
    }
)

# Each pattern starts only where a run of its characters starts (a look-behind), so a long
# run is scanned once, not once from each of its characters: masking 200,000 characters of
# one letter took minutes of a core without it, and held the whole hub up.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Citizen ID (12 digits), old ID card (9 digits) and Vietnamese phone numbers.
# Not inside a word or a dotted number ("1.000494"), nor the last group of a UUID
# ("…-a75c-064773528962", an id, not a person); a sentence's full stop may follow.
_ID_OR_PHONE = re.compile(r"(?<![\w.])(?<![0-9a-fA-F]{4}-)(?:\+?84|0)?[0-9]{9,11}(?!\w|\.[0-9])")


def mask_text(text: str) -> str:
    """Mask e-mail addresses, ID and phone numbers inside free text."""
    text = _EMAIL.sub(_mask_email, text)
    return _ID_OR_PHONE.sub(lambda m: _keep_tail(m.group(0), 3), text)


def mask_scalar(value: Any) -> str:
    """Mask a whole value of a sensitive key, keeping a hint an operator can match on."""
    if value is None or value == "":
        return ""
    text = str(value)
    if "@" in text:
        return _mask_email_str(text)
    if len(text) <= 4:
        return "***"
    return _keep_tail(text, 2) if not text.isdigit() else _keep_tail(text, 3)


def mask(value: Any, _depth: int = 0) -> Any:
    """Return a copy of `value` with personal data and secrets masked, recursively."""
    if _depth > 20:
        return "…"
    if isinstance(value, Mapping):
        return {
            k: (
                mask_scalar(v) if _is_sensitive(k) and not _is_container(v) else mask(v, _depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple)


def _is_sensitive(key: Any) -> bool:
    k = str(key).lower()
    return k in SENSITIVE_KEYS or k.endswith(("_password", "_secret", "_token"))


def _keep_tail(text: str, keep: int) -> str:
    return "*" * max(len(text) - keep, 3) + text[-keep:]


def _mask_email(match: re.Match[str]) -> str:
    return _mask_email_str(match.group(0))


def _mask_email_str(text: str) -> str:
    local, _, domain = text.partition("@")
    return (local[:1] or "*") + "***@" + domain


def fold_name(text: str) -> str:
    """A person's name as a search compares it: accents, case and spacing aside
    ("Nguyễn  Văn AN" and "nguyen van an" fold alike; đ folds to d)."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def name_key(name: str | None) -> str:
    """The key a dossier's owner is found by: a hash of the folded name, so the store keeps no
    second readable copy of it and a search matches a whole name, never a fragment (a
    fragment would let anyone spell a name out letter by letter). '' for no name."""
    folded = fold_name(name or "")
    if not folded:
        return ""
    return hashlib.sha256(f"hub-owner-name:{folded}".encode()).hexdigest()[:32]
