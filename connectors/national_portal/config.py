"""Configuration of the `national_portal` connector (DVCQG), section `connectors.national_portal`.

Endpoints and credentials differ per province: they live in the configuration file, never in
code. This module must never read the environment itself.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from hub.config_blocks import BreakerConfig, RetryConfig, Section, is_agency_code


class NationalPortalConfig(Section):
    enabled: bool = True
    base_url: str = "http://127.0.0.1:8081/api"
    username: str = "hub"
    password: SecretStr = SecretStr("")
    madonvi: str = "000.00.00.H41"
    timeout_s: float = Field(10.0, gt=0)
    batch_size: int = Field(50, ge=1, le=1000)
    linger_ms: int = Field(200, ge=0)
    concurrency: int = Field(4, ge=1, le=64)
    rate_limit_per_s: float = Field(50.0, ge=1, description="calls per second to DVCQG")
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    delay_tiers_s: list[float] = Field(default_factory=lambda: [5.0, 30.0, 300.0, 1800.0])
    mapping: str = "national_portal"

    @field_validator("madonvi")
    @classmethod
    def _unit_is_agency_code(cls, value: str) -> str:
        if not is_agency_code(value):
            raise ValueError(f"{value!r} is not an agency code like 000.00.00.H41")
        return value

    @field_validator("delay_tiers_s")
    @classmethod
    def _tiers_grow(cls, value: list[float]) -> list[float]:
        if not value or any(t <= 0 for t in value) or value != sorted(value):
            raise ValueError("delay tiers must be positive and increasing, e.g. [5, 30, 300]")
        return value
