"""Configuration of one sectoral ministry system (section `ministries.<system>`).

A ministry system is described here (where it is, how to reach it, which procedures it
decides) and in its mapping file (what its messages look like, `connectors.ministry.mapping`).
Connecting one more system means one more section and one more mapping file (and, for SOAP,
its WSDL): no code. Each system has its own queue, concurrency, circuit breaker and rate limit.
This module must never read the environment or open a connection.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from hub.config_blocks import (
    DEFAULT_DELAY_TIERS_S,
    BreakerConfig,
    ClientTls,
    DelayTiers,
    DoorLimits,
    RetryConfig,
    Section,
)
from hub.tokens import check_form
from schemas.canonical import DossierStatus

Kind = Literal["soap", "rest"]


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


class UsernameToken(Section):
    """WS-Security UsernameToken (PasswordText) sent in every SOAP request's header."""

    username: str = Field(min_length=1)
    password: SecretStr


class SoapConfig(Section):
    wsdl: str = Field(
        description="the WSDL: an http(s) URL, or a file path (relative paths are read from "
        "mappings_dir, then from the working directory)"
    )
    address: str | None = Field(
        None, description="the service's URL; overrides the WSDL's soap:address"
    )
    service: str | None = Field(None, description="service name, when the WSDL has several")
    port: str | None = Field(None, description="port name, when the service has several")
    wsse: UsernameToken | None = None
    wsdl_timeout_s: float = Field(30.0, gt=0, description="for fetching a WSDL by URL")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)


class OAuth2Auth(Section):
    """OAuth2 client credentials; the token is cached and fetched again before it expires."""

    kind: Literal["oauth2"]
    token_url: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    client_auth: Literal["basic", "form"] = Field(
        "basic", description="HTTP Basic, or client_id/client_secret posted in the form"
    )
    scope: str | None = None
    refresh_margin_s: float = Field(30.0, ge=0, description="renew this long before expiry")

    @field_validator("token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class BearerAuth(Section):
    """A static bearer token (optional) plus extra headers sent with every request."""

    kind: Literal["bearer"]
    token: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="extra headers, e.g. X-Ma-Don-Vi (values are secret)"
    )


class HmacAuth(Section):
    """HMAC-SHA256 signed requests (canonical string in `connectors.ministry.auth`)."""

    kind: Literal["hmac"]
    key_id: str = Field(min_length=1)
    secret: SecretStr
    key_header: str = "X-Api-Key"
    timestamp_header: str = "X-Timestamp"
    signature_header: str = "X-Signature"
    max_skew_s: float = Field(300.0, gt=0, description="inbound: oldest accepted timestamp")


RestAuth = Annotated[OAuth2Auth | BearerAuth | HmacAuth, Field(discriminator="kind")]


class RestConfig(Section):
    base_url: str = Field(description="e.g. https://hotich.example.gov.vn")
    auth: RestAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every request")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class SubmitConfig(Section):
    """Where a dossier is handed off: a SOAP operation, or `METHOD /path` for REST."""

    operation: str = Field(min_length=1, description="e.g. NopHoSo, or POST /api/v1/ho-so")
    statuses: list[DossierStatus] = Field(
        default_factory=lambda: [DossierStatus.accepted, DossierStatus.processing],
        description="hand a dossier off once it first reaches one of these statuses",
    )


PLACEHOLDERS = ("$cursor", "$limit")
_PLACEHOLDER = re.compile(r"\$[A-Za-z_]*")


def _placeholders(value: str) -> str:
    """A poll parameter: text in which only the known placeholders appear."""
    for found in _PLACEHOLDER.findall(value):
        if found not in PLACEHOLDERS:
            raise ValueError(
                f"{found or '$'} is not a placeholder: use $cursor (the saved cursor) or $limit "
                "(poll.page_size)"
            )
    return value


class PollConfig(Section):
    """Asking the system for results since a saved cursor."""

    operation: str = Field(min_length=1, description="e.g. LayDanhSachKetQua, or GET /api/kq")
    params: dict[str, Annotated[str, AfterValidator(_placeholders)]] = Field(
        description="request parameters; the values $cursor and $limit are filled in"
    )
    interval_s: float = Field(30.0, gt=0)
    page_size: int = Field(100, ge=1, le=1000)
    max_pages: int = Field(20, ge=1, description="pages read per round, at most")
    first_cursor: str = Field("", description="the cursor before any result")


class PushConfig(Section):
    """Who may push results to POST /api/v1/ministries/<system>/results."""

    token_sha256: SecretStr | None = Field(
        None,
        description="the bearer token the system sends, hashed by `hub hash-secret --token` "
        "(hmac-sha256$<salt>$<digest>; a bare hex SHA-256 of older versions is still read)",
    )
    hmac: HmacAuth | None = Field(None, description="or: HMAC-signed pushes")
    limits: DoorLimits = Field(
        DoorLimits(), description="pushes per client address, and per system once authenticated"
    )

    @field_validator("token_sha256")
    @classmethod
    def _token_hash(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_form(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_way_in(self) -> PushConfig:
        if self.token_sha256 is None and self.hmac is None:
            raise ValueError("give token_sha256 or hmac, or leave push out")
        return self


class MinistryConfig(Section):
    enabled: bool = True
    name: str = Field("", description="shown to operators, e.g. Đăng ký kinh doanh")
    kind: Kind
    mapping: str = Field(
        description="mapping file: a name in mappings_dir (without .yaml), or a path"
    )
    procedures: list[str] = Field(
        default_factory=list, description="procedure codes whose dossiers are handed off here"
    )
    result_procedures: list[str] = Field(
        default_factory=list,
        description="procedure codes whose dossiers this system may also report results for "
        "though the hub did not hand them to it; a result for any dossier neither handed to it "
        "nor of these or `procedures` is refused (not_handed_to_system)",
    )
    soap: SoapConfig | None = None
    rest: RestConfig | None = None
    submit: SubmitConfig | None = None
    poll: PollConfig | None = None
    push: PushConfig | None = None
    timeout_s: float = Field(15.0, gt=0, description="per call")
    max_reply_bytes: int = Field(4 * 1024 * 1024, gt=0, description="larger replies are refused")
    concurrency: int = Field(4, ge=1, le=64, description="hand-offs in flight")
    batch_size: int = Field(20, ge=1, le=500)
    linger_ms: int = Field(50, ge=0)
    rate_limit_per_s: float = Field(20.0, gt=0)
    tls: ClientTls | None = Field(None, description="CA bundle and client certificate")
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    delay_tiers_s: DelayTiers = Field(default_factory=lambda: list(DEFAULT_DELAY_TIERS_S))

    @model_validator(mode="after")
    def _complete(self) -> MinistryConfig:
        if self.kind == "soap" and self.soap is None:
            raise ValueError("kind soap needs a soap section (wsdl, ...)")
        if self.kind == "rest" and self.rest is None:
            raise ValueError("kind rest needs a rest section (base_url, auth, ...)")
        if self.procedures and self.submit is None:
            raise ValueError("procedures are listed but there is no submit section")
        if self.submit is not None and not self.procedures:
            raise ValueError("submit is set but no procedures are listed to hand off")
        if self.kind == "rest":
            for section in (self.submit, self.poll):
                if section is not None:
                    rest_operation(section.operation)
        return self


def rest_operation(operation: str) -> tuple[str, str]:
    """`POST /api/x` → ("POST", "/api/x"); `ValueError` for anything else."""
    method, _, path = operation.partition(" ")
    if method not in ("GET", "POST", "PUT") or not path.startswith("/"):
        raise ValueError(f"{operation!r} is not a REST operation like 'POST /api/v1/dossiers'")
    return method, path
