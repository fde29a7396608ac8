"""Building blocks shared by the hub's configuration and each connector's `config.py`.

This module must never import a connector (connectors import it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

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


class ClientTls(Section):
    """How the hub speaks TLS to one destination (`tls` of a connector's section, of a
    ministry system, of a subscriber): whom it trusts and which certificate it presents.

    `ca_file` *replaces* the system's trusted authorities for this destination (LGSP/NGSP
    certificates are issued by a government CA; trusting only it is what the operator means,
    decision 0040). `cert_file` and `key_file` go together: the client certificate (its chain
    after it) and its private key, encrypted with `key_password` if it is. The files are read
    at start (a bad one is refused by `hub check-config`, naming its key) and again on SIGHUP.
    `hub.tls.client_context` builds the `ssl.SSLContext`; this block never opens a file.
    """

    ca_file: Path | None = Field(None, description="PEM bundle of the CAs to trust (only these)")
    cert_file: Path | None = Field(None, description="PEM client certificate (chain after it)")
    key_file: Path | None = Field(None, description="PEM private key of cert_file")
    key_password: SecretStr | None = Field(None, description="if key_file is encrypted")
    verify: bool = Field(
        True, description="check the destination's certificate and name; off only for a test"
    )

    @model_validator(mode="after")
    def _pair(self) -> ClientTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give cert_file and key_file together (the client certificate)")
        if self.key_password is not None and self.key_file is None:
            raise ValueError("key_password without key_file")
        if not self.verify and self.ca_file is not None:
            raise ValueError("ca_file is not used with verify: false; remove one of them")
        return self


def _door(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in "?#%\\ "):
        raise ValueError(f"{value!r} is not a path prefix like /dvcqg or /api/v1/payments")
    return value.rstrip("/") or "/"


# A path prefix of the hub's HTTP server: `/dvcqg` covers /dvcqg and /dvcqg/..., not /dvcqgx.
Door = Annotated[str, AfterValidator(_door)]


class ServerTls(Section):
    """HTTPS for the hub's one listener (`http.tls`): its certificate and key, and the doors
    that admit only clients presenting a certificate signed by `client_ca` (`hub.tls`)."""

    cert_file: Path = Field(description="PEM certificate of the hub (intermediates after it)")
    key_file: Path = Field(description="PEM private key of cert_file")
    key_password: SecretStr | None = Field(None, description="if key_file is encrypted")
    client_ca: Path | None = Field(
        None, description="PEM bundle of the CAs whose client certificates the hub accepts"
    )
    require_client_cert_for: list[Door] = Field(
        default_factory=list,
        description="path prefixes (doors) refused with 403 without a verified client certificate",
    )
    min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"

    @model_validator(mode="after")
    def _doors_need_a_ca(self) -> ServerTls:
        if self.require_client_cert_for and self.client_ca is None:
            raise ValueError("require_client_cert_for needs client_ca (who signs the clients)")
        return self


class DoorLimits(Section):
    """Requests one door takes (`hub.ratelimit`): per client address, checked before anything
    is read, and per authenticated source, checked once it is known. Each limit lets `burst`
    requests through at once, then its rate a second; 0 turns it off. Over a limit: 429 with
    Retry-After."""

    per_address_per_s: float = Field(200.0, ge=0)
    per_source_per_s: float = Field(200.0, ge=0)
    burst: int = Field(400, ge=1)
