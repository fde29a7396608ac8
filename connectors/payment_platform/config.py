"""Configuration of the `payment_platform` connector, section `connectors.payment_platform`.

Endpoints, the partner code and the secret key differ per province and platform version: they
live in the configuration file, never in code. The order of the fields signed by `MaXacThuc`
is configuration too, per message type (`signatures`). This module must never read the
environment itself.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from hub.config_blocks import BreakerConfig, ClientTls, HttpUrl, RetryConfig, Section

CALLBACK_FIELDS = [
    "LoaiBanTin",
    "MaLoi",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "MaTienTe",
    "MaGiaoDich",
    "MaNganHang",
    "ThoiGianGD",
    "ThongTinGiaoDich",
]
STATUS_REQUEST_FIELDS = ["LoaiBanTin", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "ThoiGianGD"]
STATUS_REPLY_FIELDS = [
    "MaLoi",
    "MaDoiTac",
    "MaThamChieu",
    "MaGiaoDich",
    "SoTien",
    "MaTienTe",
    "MaNganHang",
    "ThoiGianGD",
    "TrangThaiGD",
]
LISTING_REQUEST_FIELDS = ["LoaiBanTin", "MaDoiTac", "NgayGD"]
LISTING_REPLY_FIELDS = ["MaLoi", "MaDoiTac", "NgayGD", "SoGD", "TongTien"]
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,40}$")


class Signatures(Section):
    """Which fields `MaXacThuc` covers, in order, per message (the secret is always last)."""

    callbacks: dict[str, list[str]] = Field(
        default_factory=lambda: {"KetQuaThanhToan": list(CALLBACK_FIELDS)},
        description="callback LoaiBanTin → signed fields; other message types are refused",
    )
    status_request: list[str] = Field(default_factory=lambda: list(STATUS_REQUEST_FIELDS))
    status_reply: list[str] = Field(default_factory=lambda: list(STATUS_REPLY_FIELDS))
    listing_request: list[str] = Field(default_factory=lambda: list(LISTING_REQUEST_FIELDS))
    listing_reply: list[str] = Field(default_factory=lambda: list(LISTING_REPLY_FIELDS))

    @model_validator(mode="after")
    def _field_names(self) -> Signatures:
        lists = [*self.callbacks.values(), self.status_request, self.status_reply]
        lists += [self.listing_request, self.listing_reply]
        if not self.callbacks:
            raise ValueError("name at least one callback message type")
        for fields in lists:
            if not fields:
                raise ValueError("a signature must cover at least one field")
            for name in fields:
                if not _FIELD.fullmatch(name) or name == "MaXacThuc":
                    raise ValueError(f"{name!r} cannot be a signed field")
        return self


class StatusCheckConfig(Section):
    """Re-checking transactions left pending (section `…payment_platform.status_check`)."""

    enabled: bool = True
    interval_s: float = Field(300.0, gt=0, description="look for pending transactions this often")
    min_age_s: float = Field(1800.0, ge=0, description="check a pending transaction this old…")
    max_age_s: float = Field(3 * 86400.0, gt=0, description="…up to this old, then leave it")
    batch: int = Field(200, ge=1, le=10_000, description="transactions checked per round")

    @model_validator(mode="after")
    def _window(self) -> StatusCheckConfig:
        if self.min_age_s >= self.max_age_s:
            raise ValueError("min_age_s must be below max_age_s")
        return self


class ReconciliationConfig(Section):
    """The daily reconciliation report (section `…payment_platform.reconciliation`)."""

    enabled: bool = True
    run_at: str = Field("01:30", description="local time (HH:MM) to reconcile the previous day")
    output_dir: Path = Field(Path("var/reconciliation"), description="CSV and JSON reports go here")
    pending_too_long_s: float = Field(
        3 * 86400.0, gt=0, description="a transaction pending longer is listed"
    )
    time_tolerance_s: float = Field(
        300.0,
        ge=0,
        description="hub and platform times of one transaction further apart are listed",
    )

    @field_validator("run_at")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
            raise ValueError(f"{value!r} is not a 24-hour time like 01:30")
        return value


class CallbackLimits(Section):
    """How many callbacks one client address may send (`hub.ratelimit`), checked before the
    body is read or a signature checked; over it the address is answered 429 with
    Retry-After. Of one address's refused callbacks, the callback log keeps at most
    `refusals_per_address_per_min` a minute (twice that in a first burst); the others are
    answered all the same and counted in `hub_payment_refusals_unlogged_total`."""

    per_address_per_s: float = Field(
        100.0, ge=0, description="callbacks a second from one address (0: no limit)"
    )
    burst: int = Field(200, ge=1, description="callbacks at once above that rate")
    refusals_per_address_per_min: int = Field(
        10, ge=1, description="refused callbacks kept in the callback log per address a minute"
    )


class PaymentPlatformConfig(Section):
    enabled: bool = False
    partner_code: str = Field("", description="MaDoiTac: the province's partner code")
    secret_key: SecretStr = Field(SecretStr(""), description="the partner's signing secret")
    callback_path: str = Field("/payment-platform/callback", pattern=r"^/[A-Za-z0-9/_.-]*$")
    callback_limits: CallbackLimits = CallbackLimits()
    base_url: HttpUrl = Field("http://127.0.0.1:8083", description="status checks and listings")
    status_path: str = "/api/tra-cuu-giao-dich"
    reconciliation_path: str = "/api/doi-soat"
    deliver_to: str = Field(
        "one_stop", description="the subscriber (section subscribers) that receives results"
    )
    max_past_s: float = Field(
        3 * 86400.0, gt=0, description="refuse a callback whose ThoiGianGD is older than this"
    )
    max_future_s: float = Field(
        300.0, ge=0, description="refuse a callback whose ThoiGianGD is this far ahead"
    )
    require_known_dossier: bool = Field(
        True, description="refuse a reference whose dossier the hub has never received"
    )
    reference_suffix: str = Field(
        r"-[0-9]{1,3}", description="regex of what may follow the dossier code in MaThamChieu"
    )
    signatures: Signatures = Signatures()
    timeout_s: float = Field(10.0, gt=0)
    max_reply_bytes: int = Field(
        16 * 1024 * 1024, gt=0, description="a larger reply (a day's listing) is refused unread"
    )
    rate_limit_per_s: float = Field(20.0, gt=0, description="status checks per second")
    tls: ClientTls | None = Field(None, description="CA bundle and client certificate")
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    mapping: str = "payment_platform"
    status_check: StatusCheckConfig = StatusCheckConfig()
    reconciliation: ReconciliationConfig = ReconciliationConfig()

    @field_validator("reference_suffix")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _credentials(self) -> PaymentPlatformConfig:
        if self.enabled and (not self.partner_code or not self.secret_key.get_secret_value()):
            raise ValueError("set partner_code and secret_key to enable the payment platform")
        return self
