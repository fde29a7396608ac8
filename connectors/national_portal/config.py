"""Configuration of the `national_portal` connector (DVCQG), section `connectors.national_portal`.

Endpoints and credentials differ per province: they live in the configuration file, never in
code. This module must never read the environment itself.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from hub.config_blocks import (
    DEFAULT_DELAY_TIERS_S,
    BreakerConfig,
    ClientTls,
    DelayTiers,
    HttpUrl,
    RetryConfig,
    Section,
    is_agency_code,
)


class CatalogueConfig(Section):
    """Sync of the national procedure catalogue (`connectors.national_portal.catalogue`)."""

    enabled: bool = True
    interval_s: float = Field(
        6 * 3600.0, ge=0, description="a full sync this often; 0 = only on demand"
    )
    retry_failed_after_s: float = Field(
        600.0, gt=0, description="after a sync that could not read the list, try again this soon"
    )
    concurrency: int = Field(4, ge=1, le=64, description="LayThuTuc calls in flight")
    rate_limit_per_s: float = Field(20.0, gt=0, description="catalogue calls per second")
    agency_code: str | None = Field(
        None, description="agency code of the localized procedure codes; default madonvi"
    )
    heartbeat_s: float = Field(2.0, gt=0)
    stale_after_s: float = Field(
        30.0, gt=0, description="a run silent this long is taken over (its owner died)"
    )
    max_removal_share: float = Field(
        0.2, ge=0, le=1, description="refuse to lock more than this share in one sync"
    )
    progress_every: int = Field(500, ge=1, description="log progress every N procedures")
    mapping: str = "national_portal_catalogue"

    @field_validator("agency_code")
    @classmethod
    def _is_agency(cls, value: str | None) -> str | None:
        if value is not None and not is_agency_code(value):
            raise ValueError(f"{value!r} is not an agency code like 000.00.00.H41")
        return value


class NationalPortalConfig(Section):
    enabled: bool = True
    base_url: HttpUrl = "http://127.0.0.1:8081/api"
    username: str = "hub"
    password: SecretStr = SecretStr("")
    madonvi: str = "000.00.00.H41"
    timeout_s: float = Field(10.0, gt=0)
    max_reply_bytes: int = Field(
        32 * 1024 * 1024, gt=0, description="a larger reply is refused unread (an outage)"
    )
    batch_size: int = Field(50, ge=1, le=1000)
    linger_ms: int = Field(200, ge=0)
    concurrency: int = Field(4, ge=1, le=64)
    rate_limit_per_s: float = Field(50.0, ge=1, description="calls per second to DVCQG")
    tls: ClientTls | None = Field(None, description="CA bundle and client certificate")
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    delay_tiers_s: DelayTiers = Field(default_factory=lambda: list(DEFAULT_DELAY_TIERS_S))
    mapping: str = "national_portal"
    catalogue: CatalogueConfig = CatalogueConfig()

    @field_validator("madonvi")
    @classmethod
    def _unit_is_agency_code(cls, value: str) -> str:
        if not is_agency_code(value):
            raise ValueError(f"{value!r} is not an agency code like 000.00.00.H41")
        return value
