"""Operators' input, checked before anything reads or acts on it: search text, codes, message
ids, times, limits. Each check returns the clean value or raises `BadInput` with a message an
operator can act on. Nothing here touches SQL: values travel as parameters anyway; these checks
keep nonsense (control characters, megabytes of text) out of the store, the broker and the logs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo

from hub.dashboard.bulk import DeadLetterFilter
from hub.store.dashboard import StuckFilter
from schemas.canonical import DossierStatus

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
        raise BadInput("q", "type part of a dossier code, a procedure code or an owner's name")
    if len(text) > MAX_QUERY or not _printable(text):
        raise BadInput("q", f"a search has at most {MAX_QUERY} printable characters")
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


def moment(field: str, value: str | None, naive: tzinfo = UTC) -> datetime | None:
    """A date and time; one without an offset is in `naive` (UTC in the admin API, the
    province's time in the pages' forms)."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(field, f"{field} must be a date and time like 2026-11-23T08:00") from None
    return at if at.tzinfo else at.replace(tzinfo=naive)


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


def page(value: str | None) -> int:
    return int(number("page", value, 0, 0, 100_000))


def short(field: str, value: str | None, longest: int = MAX_QUERY) -> str | None:
    """An optional short printable value (a code, a prefix, a name); None when empty."""
    text = (value or "").strip()
    if len(text) > longest or not _printable(text):
        raise BadInput(field, f"{field} has at most {longest} printable characters")
    return text or None


def status(value: str | None) -> int | None:
    """A canonical status name (accepted, processing, ...) or its number."""
    text = (value or "").strip()
    if not text:
        return None
    for s in DossierStatus:
        if text in (s.name, str(int(s))):
            return int(s)
    names = ", ".join(s.name for s in DossierStatus)
    raise BadInput("status", f"status is one of {names}")


def agency(value: str | None) -> str | None:
    """An agency code, the part of a dossier code before its first '-'."""
    text = short("agency", value, 40)
    if text and "-" in text:
        raise BadInput("agency", "an agency code has no '-' (000.00.41.H41, say)")
    return text


def stuck_filter(query: Mapping[str, str]) -> StuckFilter:
    """The stuck list's filter from a query: destination, agency, procedure, status and
    `older_than_min` (minutes)."""
    older = number("older_than_min", query.get("older_than_min"), 0, 0, 60 * 24 * 366)
    return StuckFilter(
        destination=short("destination", query.get("destination"), 100),
        agency=agency(query.get("agency")),
        procedure=short("procedure", query.get("procedure"), 60),
        status=status(query.get("status")),
        older_than_s=older * 60 or None,
    )


def dead_letter_filter(query: Mapping[str, object], naive: tzinfo = UTC) -> DeadLetterFilter:
    """A dead-letter filter from a query or a JSON body: connector, reason, since, until,
    dossier_prefix, dossier."""

    def text(key: str) -> str | None:
        value = query.get(key)
        if value is not None and not isinstance(value, str):
            raise BadInput(key, f"{key} must be a string")
        return value

    since, until = moment("since", text("since"), naive), moment("until", text("until"), naive)
    if since and until and since > until:
        raise BadInput("until", "until comes before since")
    return DeadLetterFilter(
        connector=short("connector", text("connector"), 100),
        reason=reason(text("reason")),
        since=since,
        until=until,
        dossier_prefix=short("dossier_prefix", text("dossier_prefix"), 100),
        dossier=short("dossier", text("dossier"), 100),
    )
