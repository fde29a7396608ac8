"""Building blocks shared by the hub's configuration and each connector's `config.py`.

This module must never import a connector (connectors import it).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# ASCII digits only, matched whole (`fullmatch`): "$" would let a trailing newline through.
AGENCY_CODE_RE = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")


def is_agency_code(value: object) -> bool:
    """True for an agency code like 000.00.00.H41 (QCVN 102:2016)."""
    return isinstance(value, str) and AGENCY_CODE_RE.fullmatch(value) is not None


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(
            f"{value!r} is not an http(s) URL: write it with its scheme, e.g. https://{value}"
        )
    return value


# An absolute http(s) URL, scheme included (a bare host name is refused, not guessed).
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryConfig(Section):
    attempts: int = Field(3, ge=1, le=10)
    initial_backoff_s: float = Field(0.2, gt=0)
    max_backoff_s: float = Field(2.0, gt=0)


class BreakerConfig(Section):
    """When a destination counts as down, and how it is probed (`hub.outage.Gate`)."""

    # Calls in a row that must fail before a poller's destination counts as down (a queue
    # consumer's batch that failed after its in-process retries counts at once).
    failure_threshold: int = Field(5, ge=1)
    # The first probe this long after the outage began; then at doubling intervals...
    first_probe_s: float = Field(1.0, gt=0)
    # ...never further apart than this: the longest delivery waits after the destination is back.
    recovery_s: float = Field(5.0, gt=0)


def _increasing(value: list[float]) -> list[float]:
    if not value or any(t <= 0 for t in value) or value != sorted(value):
        raise ValueError("delay tiers must be positive and increasing, e.g. [5, 30, 300]")
    return value


# Delays of a connector's retry queues, shortest first (`hub.broker.Topology`).
DelayTiers = Annotated[list[float], AfterValidator(_increasing)]
DEFAULT_DELAY_TIERS_S = (5.0, 30.0, 300.0, 1800.0)


class DoorLimits(Section):
    """Requests one door takes (`hub.ratelimit`): per client address, checked before anything
    is read, and per authenticated source, checked once it is known. Each limit lets `burst`
    requests through at once, then its rate a second; 0 turns it off. Over a limit: 429 with
    Retry-After."""

    per_address_per_s: float = Field(200.0, ge=0)
    per_source_per_s: float = Field(200.0, ge=0)
    burst: int = Field(400, ge=1)
