"""Operators' input, checked before anything reads or acts on it: search text, codes, message
ids, times, limits. Each check returns the clean value or raises `BadInput` with a message an
operator can act on. Nothing here touches SQL: values travel as parameters anyway; these checks
keep nonsense (control characters, megabytes of text) out of the store, the broker and the logs.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

MAX_QUERY = 64
MAX_ID = 200
MAX_IDS = 1000


class BadInput(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _printable(value: str) -> bool:
    return not any(unicodedata.category(c)[0] == "C" for c in value)


def search_text(value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        raise BadInput("q", "type the start of a dossier code")
    if len(text) > MAX_QUERY or not _printable(text):
        raise BadInput("q", f"a dossier code has at most {MAX_QUERY} printable characters")
    return text


def code(value: str) -> str | None:
    """A dossier code from a path: None when it cannot be one (the page says 'not found')."""
    return value if 0 < len(value) <= 100 and _printable(value) else None


def message_ids(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise BadInput("message_ids", "give message_ids: a non-empty list of message ids")
    if len(value) > MAX_IDS:
        raise BadInput("message_ids", f"at most {MAX_IDS} message ids at once")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not 0 < len(item) <= MAX_ID or not _printable(item):
            raise BadInput("message_ids", "each message id is a short printable string")
        if item not in out:
            out.append(item)
    return out


def moment(field: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(field, f"{field} must be a date and time like 2026-11-23T08:00") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def number(field: str, value: str | None, default: float, low: float, high: float) -> float:
    if value is None or value == "":
        return default
    try:
        n = float(value)
    except ValueError:
        raise BadInput(field, f"{field} must be a number") from None
    if not low <= n <= high:
        raise BadInput(field, f"{field} must be between {low:g} and {high:g}")
    return n


def reason(value: str | None) -> str | None:
    text = (value or "").strip()
    if len(text) > MAX_ID or not _printable(text):
        raise BadInput("reason", f"a reason filter has at most {MAX_ID} printable characters")
    return text or None


def pause_reason(value: object) -> str:
    """Why an operator pauses a connector: optional, one short printable line."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInput("reason", "reason must be a string")
    text = value.strip()
    if len(text) > MAX_ID or not _printable(text):
        raise BadInput("reason", f"a reason has at most {MAX_ID} printable characters")
    return text
