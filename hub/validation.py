"""Plausibility checks shared by every inbound door: codes, dates, sizes.

Each check raises `ValidationFailed` naming the field and saying what was expected, so the
sender can fix the item. Limits come from `ValidationConfig`; nothing here is vendor-specific.
This module must never touch the store or the broker.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from hub.config import ValidationConfig
from hub.config_blocks import is_agency_code
from hub.errors import ValidationFailed

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WIRE_DATE_FORMAT = "%Y%m%d%H%M%S"
_WIRE_DATE_RE = re.compile(r"[0-9]{14}")
MAX_DUE_AHEAD = timedelta(days=5 * 366)


def item_error(exc: Exception) -> ValidationFailed:
    """Any failure to read one item, as that item's own error (the batch goes on).

    Doors call this for whatever escapes the mapping, so a case the checks did not foresee
    still refuses one item instead of failing the whole call. The message never repeats the
    value, which may be personal data.
    """
    if isinstance(exc, ValidationFailed):
        return exc
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        return ValidationFailed(f"{field}: {err['msg']}", field=field, code="invalid")
    return ValidationFailed(f"the item could not be read ({type(exc).__name__})", code="unreadable")


class Validator:
    def __init__(self, config: ValidationConfig) -> None:
        self.config = config
        lo, hi = config.dossier_sequence_digits_min, config.dossier_sequence_digits_max
        # ASCII digits only, matched whole: "$" would accept a trailing newline.
        self._dossier_re = re.compile(
            r"(?P<agency>[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2})-(?P<day>[0-9]{6})-[0-9]{"
            + f"{lo},{hi}"
            + "}"
        )

    def dossier_code(self, value: object, field: str = "dossier_code") -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed("dossier code is missing", field=field, code="missing")
        match = self._dossier_re.fullmatch(value)
        if match is None:
            raise ValidationFailed(
                f"dossier code {value!r} does not look like <agency code>-<yyMMdd>-<sequence>, "
                f"e.g. 000.00.53.H48-220921-0099",
                field=field,
                code="bad_dossier_code",
            )
        try:
            datetime.strptime(match["day"], "%y%m%d")
        except ValueError:
            raise ValidationFailed(
                f"dossier code {value!r} holds an impossible date {match['day']!r}",
                field=field,
                code="bad_dossier_code",
            ) from None
        return value

    def agency_code(self, value: object, field: str) -> str:
        if not isinstance(value, str) or not is_agency_code(value):
            raise ValidationFailed(
                f"{value!r} is not an agency code like 000.00.00.H41",
                field=field,
                code="bad_agency_code",
            )
        return value

    def wire_date(self, value: object, field: str) -> datetime:
        """Parse `yyyyMMddHHmmss` in Asia/Ho_Chi_Minh (the protocol's only date format)."""
        if not isinstance(value, str) or not _WIRE_DATE_RE.fullmatch(value):
            raise ValidationFailed(
                f"{field} must be yyyyMMddHHmmss (24-hour clock), got {value!r}",
                field=field,
                code="bad_date",
            )
        try:
            return datetime.strptime(value, WIRE_DATE_FORMAT).replace(tzinfo=VN_TZ)
        except ValueError:
            raise ValidationFailed(
                f"{field} is not a real date: {value!r}", field=field, code="bad_date"
            ) from None

    def happened(self, value: datetime, field: str, now: datetime) -> datetime:
        """A moment something happened: not in the future, not before the configured year."""
        if value.tzinfo is None:
            raise ValidationFailed(f"{field} needs a time zone", field=field, code="bad_date")
        if value > now + timedelta(seconds=self.config.max_future_skew_s):
            raise ValidationFailed(
                f"{field} {value.isoformat()} is in the future", field=field, code="future_date"
            )
        self._not_too_old(value, field)
        return value

    def due(self, value: datetime, field: str, now: datetime) -> datetime:
        """A deadline: may lie ahead, but not absurdly far."""
        if value > now + MAX_DUE_AHEAD:
            raise ValidationFailed(
                f"{field} {value.isoformat()} is more than five years ahead",
                field=field,
                code="future_date",
            )
        self._not_too_old(value, field)
        return value

    def batch_size(self, count: int) -> None:
        if count == 0:
            raise ValidationFailed("the batch holds no item", field="data", code="empty_batch")
        if count > self.config.max_items_per_batch:
            raise ValidationFailed(
                f"the batch holds {count} items; at most {self.config.max_items_per_batch} "
                "are accepted per call",
                field="data",
                code="batch_too_large",
            )

    def _not_too_old(self, value: datetime, field: str) -> None:
        if value.year < self.config.earliest_year:
            raise ValidationFailed(
                f"{field} {value.isoformat()} is before {self.config.earliest_year}",
                field=field,
                code="implausible_date",
            )


_PLAIN = re.compile(r"[0-9]+")
# Thousands groups: the first group has no leading zero ("0.001" is no grouped number).
_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:([.,])[0-9]{3})(?:\1[0-9]{3})*")
_DECIMAL = re.compile(r"([0-9]+)[.,]([0-9]{1,2})")


def parse_vnd(raw: str, field: str) -> int:
    """An amount in VND, or `ValidationFailed`: never guess a fraction or a sign."""
    text = raw.strip()
    if _PLAIN.fullmatch(text):
        return int(text)
    if _GROUPED.fullmatch(text):
        return int(text.replace(".", "").replace(",", ""))
    decimal = _DECIMAL.fullmatch(text)
    if decimal and set(decimal.group(2)) == {"0"}:
        return int(decimal.group(1))
    raise ValidationFailed(
        f"{field} must be a non-negative whole amount in VND, got {raw!r}",
        field=field,
        code="bad_amount",
    )
