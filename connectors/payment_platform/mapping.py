"""Reading the payment platform's messages into canonical `PaymentResult`s.

Pure functions over the code table (`mappings/payment_platform.yaml`) and the configuration:
each raises `ValidationFailed` with a stable `code` and a message that never repeats personal
data. Checking the signature is done here too, so nothing unsigned is ever read further. The
store check (is the dossier known?) is the door's job, not this module's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.payment_platform.config import PaymentPlatformConfig
from connectors.payment_platform.signing import SIGNATURE_FIELD, verify
from hub.errors import ValidationFailed
from hub.status_mapping import load_code_table
from hub.validation import VN_TZ, Validator, parse_vnd
from schemas.payment import PaymentOutcome, PaymentResult, PaymentSource
from schemas.text import printable

_AMOUNT = re.compile(r"[0-9]{1,15}(?:\.0{1,2})?")
_TEXT_LIMITS = {"MaGiaoDich": 100, "MaThamChieu": 100, "MaNganHang": 50, "ThongTinGiaoDich": 2000}


class _Outcomes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    paid: list[str] = Field(min_length=1)
    pending: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)

    def outcome(self, code: str) -> PaymentOutcome | None:
        for outcome in PaymentOutcome:
            if code in getattr(self, outcome.value):
                return outcome
        return None


class PaymentCodes(BaseModel):
    """The code table: result codes, status codes and currencies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "payment_platform"
    description: str = ""
    callback_codes: _Outcomes
    status_codes: _Outcomes
    currencies: dict[str, str] = Field(min_length=1)

    @classmethod
    def load(cls, path: Path) -> PaymentCodes:
        return load_code_table(cls, path)

    def currency(self, raw: str, field: str = "MaTienTe") -> str:
        currency = self.currencies.get(raw.strip().upper())
        if currency != "VND":
            raise ValidationFailed(
                f"{field} must be VND (fees are collected in đồng), got {raw!r}",
                field=field,
                code="bad_currency",
            )
        return currency


def _text(fields: Mapping[str, Any], name: str, required: bool = True) -> str:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"{name} is required", field=name, code="missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationFailed(f"{name} must be a string", field=name, code="wrong_type")
    text = str(value).strip()
    limit = _TEXT_LIMITS.get(name, 100)
    if len(text) > limit:
        raise ValidationFailed(f"{name} is longer than {limit}", field=name, code="too_long")
    try:
        return printable(text)
    except ValueError as exc:  # a NUL, a bidi override, a lone surrogate: never passed on
        raise ValidationFailed(f"{name} {exc}", field=name, code="unprintable") from None


def check_signature(fields: Mapping[str, Any], order: Sequence[str], secret: str) -> None:
    if not isinstance(fields.get(SIGNATURE_FIELD), str) or not fields.get(SIGNATURE_FIELD):
        raise ValidationFailed("MaXacThuc is required", field=SIGNATURE_FIELD, code="missing")
    if not verify(fields, order, secret):
        raise ValidationFailed(
            "MaXacThuc does not match the message (wrong key, or a field was changed)",
            field=SIGNATURE_FIELD,
            code="bad_signature",
        )


def parse_amount(raw: object, field: str = "SoTien") -> int:
    text = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    if not _AMOUNT.fullmatch(text):
        raise ValidationFailed(
            f"{field} must be a whole amount in đồng, like 150000", field=field, code="bad_amount"
        )
    return parse_vnd(text, field)


def parse_time(raw: object, validator: Validator, field: str = "ThoiGianGD") -> datetime:
    """`yyyyMMddHHmmss` on a 24-hour clock; "02:15 PM" shapes are refused by the format."""
    return validator.wire_date(raw, field)


def wire_time(value: datetime) -> str:
    return value.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")


@dataclass(frozen=True)
class CallbackContext:
    config: PaymentPlatformConfig
    codes: PaymentCodes
    validator: Validator
    now: datetime


def read_callback(fields: Mapping[str, Any], ctx: CallbackContext) -> PaymentResult:
    """A signed result callback → `PaymentResult` (its dossier code still to be confirmed)."""
    cfg = ctx.config
    kind = _text(fields, "LoaiBanTin")
    order = cfg.signatures.callbacks.get(kind)
    if order is None:
        raise ValidationFailed(
            f"LoaiBanTin {kind!r} is not a message type this hub accepts",
            field="LoaiBanTin",
            code="unknown_message_type",
        )
    if _text(fields, "MaDoiTac") != cfg.partner_code:
        raise ValidationFailed(
            "MaDoiTac is not this province's partner code", field="MaDoiTac", code="wrong_partner"
        )
    check_signature(fields, order, cfg.secret_key.get_secret_value())
    paid_at = parse_time(fields.get("ThoiGianGD"), ctx.validator)
    if paid_at > ctx.now + timedelta(seconds=cfg.max_future_s):
        ahead = (paid_at - ctx.now).total_seconds()
        raise ValidationFailed(
            f"ThoiGianGD is {ahead:.0f} s in the future (at most {cfg.max_future_s:.0f} s is "
            "accepted): the platform's clock or its time zone is wrong",
            field="ThoiGianGD",
            code="future_time",
        )
    if paid_at < ctx.now - timedelta(seconds=cfg.max_past_s):
        raise ValidationFailed(
            f"ThoiGianGD is older than the accepted window ({cfg.max_past_s:.0f} s)",
            field="ThoiGianGD",
            code="stale_time",
        )
    code = _text(fields, "MaLoi")
    outcome = ctx.codes.callback_codes.outcome(code)
    if outcome is None:
        raise ValidationFailed(
            f"MaLoi {code!r} is not in the code table", field="MaLoi", code="unknown_result_code"
        )
    reference = _text(fields, "MaThamChieu")
    return PaymentResult(
        reference=reference,
        dossier_code=dossier_code_of(reference, cfg.reference_suffix, ctx.validator),
        transaction_id=_text(fields, "MaGiaoDich"),
        amount_vnd=parse_amount(fields.get("SoTien")),
        currency=ctx.codes.currency(_text(fields, "MaTienTe")),
        bank=_text(fields, "MaNganHang", required=False),
        paid_at=paid_at,
        outcome=outcome,
        platform_code=code,
        source=PaymentSource.CALLBACK,
        payer_info=_text(fields, "ThongTinGiaoDich", required=False),
    )


def dossier_code_of(reference: str, suffix: str, validator: Validator) -> str:
    """The dossier a payment reference names: the whole reference, or it without its suffix."""
    try:
        return validator.dossier_code(reference, "MaThamChieu")
    except ValidationFailed:
        stripped = re.sub(f"(?:{suffix})$", "", reference, count=1)
        if stripped != reference:
            try:
                return validator.dossier_code(stripped, "MaThamChieu")
            except ValidationFailed:
                pass
    raise ValidationFailed(
        "MaThamChieu does not name a dossier (expected a dossier code, optionally with a "
        "suffix such as -01)",
        field="MaThamChieu",
        code="unknown_reference",
    )


def read_status(
    fields: Mapping[str, Any], expected: PaymentResult, codes: PaymentCodes, validator: Validator
) -> PaymentResult:
    """A verified status-check reply (`TrangThaiGD`) → the transaction's current result."""
    if _text(fields, "MaThamChieu") != expected.reference or (
        _text(fields, "MaGiaoDich") != expected.transaction_id
    ):
        raise ValidationFailed(
            "the status reply names another transaction", field="MaGiaoDich", code="mismatch"
        )
    return _listed(fields, codes, validator, PaymentSource.STATUS_CHECK, expected.dossier_code)


def read_listed(
    fields: Mapping[str, Any],
    codes: PaymentCodes,
    validator: Validator,
    suffix: str,
    strict_currency: bool = True,
) -> PaymentResult:
    """One transaction of a day's listing (`DanhSachGD`).

    With `strict_currency` off, a currency other than VND is kept as sent (upper-cased) so
    the reconciliation can list it instead of failing the item.
    """
    reference = _text(fields, "MaThamChieu")
    dossier = dossier_code_of(reference, suffix, validator)
    return _listed(fields, codes, validator, PaymentSource.RECONCILIATION, dossier, strict_currency)


def _listed(
    fields: Mapping[str, Any],
    codes: PaymentCodes,
    validator: Validator,
    source: PaymentSource,
    dossier_code: str,
    strict_currency: bool = True,
) -> PaymentResult:
    state = _text(fields, "TrangThaiGD")
    raw_currency = _text(fields, "MaTienTe")
    currency = (
        codes.currency(raw_currency)
        if strict_currency
        else codes.currencies.get(raw_currency.upper(), raw_currency.upper())
    )
    outcome = codes.status_codes.outcome(state)
    if outcome is None:
        raise ValidationFailed(
            f"TrangThaiGD {state!r} is not in the code table",
            field="TrangThaiGD",
            code="unknown_result_code",
        )
    return PaymentResult(
        reference=_text(fields, "MaThamChieu"),
        dossier_code=dossier_code,
        transaction_id=_text(fields, "MaGiaoDich"),
        amount_vnd=parse_amount(fields.get("SoTien")),
        currency=currency,
        bank=_text(fields, "MaNganHang", required=False),
        paid_at=parse_time(fields.get("ThoiGianGD"), validator),
        outcome=outcome,
        platform_code=state,
        source=source,
    )
