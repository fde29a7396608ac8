"""Configuration of the document axis connector (section `connectors.vdxp`).

The hub is one system on the axis: it signs its calls with `system_id` and `secret`, sends
documents from `organ_id`, and takes the documents addressed to `organ_id` or to one of
`accept_for`. Documents and status messages are polled (`poll`); transfers are sent from their
own queue, with its own concurrency, circuit breaker, retries and delay tiers, like every
destination. Attachments live on disk under `spool_dir`, never whole in memory.
This module must never read the environment or open a connection.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.vdxp.edxml import (
    KNOWN_NAMESPACES,
    NS_QCVN_102_2016,
    DateFormat,
    EdxmlCodec,
    Packaging,
)
from connectors.vdxp.protocol import DEFAULT_COMPONENTS, Component, SigningScheme
from hub.config_blocks import (
    DEFAULT_DELAY_TIERS_S,
    BreakerConfig,
    ClientTls,
    DelayTiers,
    RetryConfig,
    Section,
    is_agency_code,
)

MiB = 1024 * 1024


class SigningConfig(Section):
    """How calls are signed (`connectors.vdxp.protocol`): header names and canonical string."""

    system_header: str = "X-Vdxp-System"
    timestamp_header: str = "X-Vdxp-Timestamp"
    signature_header: str = "X-Vdxp-Signature"
    components: list[Component] = Field(
        default_factory=lambda: list(DEFAULT_COMPONENTS),
        description="joined in this order: method, path, timestamp, system, body_sha256",
        min_length=1,
    )
    separator: str = Field("\n", description="between the components")

    def scheme(self) -> SigningScheme:
        return SigningScheme(
            system_header=self.system_header,
            timestamp_header=self.timestamp_header,
            signature_header=self.signature_header,
            components=tuple(self.components),
            separator=self.separator,
        )


class AxisPollConfig(Section):
    interval_s: float = Field(15.0, gt=0, description="between rounds while the axis answers")
    limit: int = Field(50, ge=1, le=1000, description="items asked for per list call")
    max_items: int = Field(500, ge=1, description="items taken per message type per round")
    backoff_initial_s: float = Field(5.0, gt=0, description="first wait after a failed round")
    backoff_max_s: float = Field(600.0, gt=0, description="the wait doubles up to this")


class DossierLink(Section):
    """How a received document names its dossier, when it is not an answer to one the hub
    sent (an answer is linked through the document it answers)."""

    pattern: str = Field(
        r"(?P<dossier>[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]+)",
        description="regex with a group named dossier",
    )
    fields: list[str] = Field(
        default_factory=lambda: ["subject", "code_notation", "content"],
        description="searched in this order: subject, code_number, code_notation, content",
    )

    @field_validator("pattern")
    @classmethod
    def _has_group(cls, value: str) -> str:
        import re

        if "dossier" not in re.compile(value).groupindex:
            raise ValueError("the pattern needs a group named dossier: (?P<dossier>...)")
        return value


class VdxpConfig(Section):
    enabled: bool = False
    base_url: str = Field("http://127.0.0.1:8097", description="the axis endpoint")
    system_id: str = Field("", description="this hub's system id on the axis (signing header)")
    secret: SecretStr = Field(SecretStr(""), description="the HMAC secret the axis issued")
    organ_id: str = Field("", description="the agency code documents are sent from")
    organ_name: str = Field("", description="its name, written in From/OrganName")
    accept_for: list[str] = Field(
        default_factory=list, description="further agency codes whose documents the hub takes"
    )
    namespace: str = Field(
        NS_QCVN_102_2016,
        description="edXML namespace written (and read): QCVN 102:2016's, or http://www.go.vn/eDoc",
        min_length=1,
    )
    accept_namespaces: list[str] = Field(
        default_factory=lambda: list(KNOWN_NAMESPACES),
        description="further edXML namespaces read (one province may receive several); "
        "anything else is refused as wrong_namespace",
    )
    date_format: DateFormat = Field(
        "qcvn102",
        description="how dates are written: qcvn102 (yyyy/MM/dd and yyyy/MM/dd HH:mm:ss, "
        "Vietnam time) or iso (ISO 8601); both are read",
    )
    attachment_packaging: Packaging = Field(
        "inline",
        description="how attachments are written: inline (base64 in AttachmentEncoded) or "
        "mime (parts of a multipart/related package, named by cid:); both are read",
    )
    signing: SigningConfig = SigningConfig()
    timeout_s: float = Field(60.0, gt=0, description="per call; large documents need time")
    max_document_bytes: int = Field(64 * MiB, gt=0, description="a larger edXML is refused")
    max_attachment_bytes: int = Field(32 * MiB, gt=0, description="per attachment")
    spool_dir: Path = Field(Path("var/vdxp"), description="attachments and edXML files")
    poll: AxisPollConfig = AxisPollConfig()
    agencies_refresh_s: float = Field(3600.0, gt=0, description="re-read the agency list")
    mapping: str = Field("vdxp", description="status table file in mappings_dir (no .yaml)")
    dossier_link: DossierLink = DossierLink()
    deliver_to: str = Field(
        "one_stop", description="the subscriber that receives vdxp.document and vdxp.status"
    )
    concurrency: int = Field(2, ge=1, le=32, description="documents being sent at once")
    batch_size: int = Field(4, ge=1, le=100)
    linger_ms: int = Field(0, ge=0)
    rate_limit_per_s: float = Field(
        50.0, gt=0, description="calls to the axis per second (a received item costs two)"
    )
    tls: ClientTls | None = Field(None, description="CA bundle and client certificate")
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    delay_tiers_s: DelayTiers = Field(default_factory=lambda: list(DEFAULT_DELAY_TIERS_S))

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _complete(self) -> VdxpConfig:
        if not self.enabled:
            return self
        missing = [
            name for name in ("system_id", "organ_id") if not getattr(self, name).strip()
        ] + (["secret"] if not self.secret.get_secret_value() else [])
        if missing:
            raise ValueError(f"the axis connector is enabled but {', '.join(missing)} not set")
        for code in (self.organ_id, *self.accept_for):
            if not is_agency_code(code):
                raise ValueError(f"{code!r} is not an agency code like 000.00.00.H41")
        if self.max_attachment_bytes > self.max_document_bytes:
            raise ValueError("max_attachment_bytes cannot exceed max_document_bytes")
        return self

    @field_validator("accept_namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        if not all(namespace.strip() for namespace in value):
            raise ValueError("a namespace must not be empty")
        return value

    @property
    def own_organs(self) -> frozenset[str]:
        return frozenset((self.organ_id, *self.accept_for))

    def codec(self) -> EdxmlCodec:
        """The edXML codec this section describes: what the hub writes and what it reads."""
        return EdxmlCodec(
            self.namespace,
            self.max_document_bytes,
            self.max_attachment_bytes,
            accept=self.accept_namespaces,
            date_format=self.date_format,
            packaging=self.attachment_packaging,
        )
