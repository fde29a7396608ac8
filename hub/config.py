"""The hub's one configuration tree.

Built once at start from a YAML file plus `HUB_`-prefixed environment variables (nested with
`__`, e.g. `HUB_BROKER__URL`; the environment wins over the file), validated, and passed down.
Nothing else in the hub reads the environment. Secrets are `SecretStr` and never logged.
`config/hub.example.yaml` documents every key; keep the two in step.

This module must never open connections or start anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from connectors.ministry.config import MinistryConfig
from connectors.national_portal.config import NationalPortalConfig
from connectors.payment_platform.config import PaymentPlatformConfig
from connectors.vdxp.config import VdxpConfig
from connectors.webhook.config import SubscriberConfig
from hub.config_blocks import Section, is_agency_code
from hub.errors import ConfigError
from schemas.interagency import DOCUMENT_EVENT as VDXP_DOCUMENT_EVENT
from schemas.interagency import STATUS_EVENT as VDXP_STATUS_EVENT

Permission = Literal[
    "facade.DongBoHoSoMC",
    "facade.CapNhatTienDoHoSoMC",
    "facade.TraCuuHoSo",
    "events.write",
    "portal.feed",
    "procedures.read",
    "procedures.sync",
    "payments.read",
    "payments.reconcile",
    "ministries.read",
    "ministries.poll",
    "vdxp.read",
    "vdxp.send",
    "vdxp.poll",
]
ALL_PERMISSIONS: tuple[Permission, ...] = get_args(Permission)


class HttpConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(2_000_000, gt=0)
    shutdown_timeout_s: float = Field(15.0, gt=0)


class BrokerConfig(Section):
    url: SecretStr | None = None
    prefix: str = Field("hub", pattern=r"^[a-z][a-z0-9_-]{0,30}$")
    publish_timeout_s: float = Field(10.0, gt=0)
    delivery_limit: int = Field(20, gt=0)
    max_queue_length: int = Field(1_000_000, gt=0)
    # While a destination is down, a consumer holds what it took (unacknowledged) for at most
    # this long, then puts it back at the end of its queue (no retry spent) and takes the next:
    # keep it below the broker's consumer_timeout (30 minutes by default in RabbitMQ).
    hold_max_s: float = Field(900.0, gt=0)
    # How often each consumer checks that it is still subscribed (after a broker restart or a
    # cut connection it subscribes again, declaring its queues first).
    watch_interval_s: float = Field(1.0, gt=0)


class StoreConfig(Section):
    backend: Literal["sqlite"] = "sqlite"
    path: Path = Path("var/hub.db")
    outbox_sweep_interval_s: float = Field(5.0, gt=0)
    outbox_sweep_age_s: float = Field(10.0, ge=0)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "json"


class ValidationConfig(Section):
    """Plausibility limits applied to every inbound item."""

    dossier_sequence_digits_min: int = Field(3, ge=1, le=12)
    dossier_sequence_digits_max: int = Field(8, ge=1, le=12)
    max_items_per_batch: int = Field(500, gt=0, le=5000)
    max_future_skew_s: float = Field(300.0, ge=0)
    earliest_year: int = Field(2000, ge=1990)

    @model_validator(mode="after")
    def _sequence_limits_ordered(self) -> ValidationConfig:
        if self.dossier_sequence_digits_min > self.dossier_sequence_digits_max:
            raise ValueError(
                "dossier_sequence_digits_min must not exceed dossier_sequence_digits_max"
            )
        return self


class FacadeConfig(Section):
    path: str = "/dvcqg"
    session_ttl_s: float = Field(8 * 3600.0, gt=0)


class SourceConfig(Section):
    """One system allowed to send to the hub (a one-stop system, the portal's puller, ...)."""

    username: str | None = None
    password_hash: SecretStr | None = Field(
        None, description="argon2 hash of the facade password (`hub hash-secret`)"
    )
    api_token_sha256: SecretStr | None = Field(
        None, description="hex SHA-256 of the bearer token for the REST APIs"
    )
    status_mapping: str = "one_stop_generic"
    permissions: list[Permission] = Field(default_factory=list)
    units: list[str] = Field(default_factory=list, description="allowed madonvi; empty = any")

    @field_validator("units")
    @classmethod
    def _units_are_agency_codes(cls, value: list[str]) -> list[str]:
        for unit in value:
            if not is_agency_code(unit):
                raise ValueError(f"{unit!r} is not an agency code like 000.00.00.H41")
        return value


Role = Literal["viewer", "operator", "admin"]


class OperatorUser(Section):
    """A person who uses the dashboard and the admin API (not a source system)."""

    password_hash: SecretStr = Field(description="argon2 hash of the password (`hub hash-secret`)")
    role: Role = "viewer"


class DashboardConfig(Section):
    """The operators' dashboard (`/dashboard/`) and admin API (`/api/v1/admin/`)."""

    enabled: bool = True
    users: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,40}$")], OperatorUser
    ] = Field(default_factory=dict)
    session_ttl_s: float = Field(8 * 3600.0, gt=0)
    cookie_secure: bool = True
    max_failed_logins: int = Field(5, ge=1)
    lockout_s: float = Field(900.0, ge=0)
    failed_login_delay_s: float = Field(1.0, ge=0, le=30)
    refresh_s: float = Field(5.0, ge=1)
    sample_interval_s: float = Field(60.0, gt=0)
    samples_keep_days: float = Field(14.0, gt=0)
    lag_window_h: float = Field(24.0, gt=0)
    overview_cache_s: float = Field(2.0, ge=0)


class ConnectorsConfig(Section):
    # Other keys are the sections of plug-in connectors (`plugins`), each validated by its own
    # model in `load_config`; a key no plug-in claims is refused there, with its line.
    model_config = ConfigDict(extra="allow", frozen=True)

    national_portal: NationalPortalConfig = NationalPortalConfig()
    payment_platform: PaymentPlatformConfig = PaymentPlatformConfig()
    vdxp: VdxpConfig = VdxpConfig()


SubscriberName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,30}$")]


class HubConfig(BaseSettings):
    """The whole tree. Build it with `load_config`, not directly."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    instance: str = "hub"
    mappings_dir: Path = Path("mappings")
    http: HttpConfig = HttpConfig()
    broker: BrokerConfig = BrokerConfig()
    store: StoreConfig = StoreConfig()
    logging: LoggingConfig = LoggingConfig()
    validation: ValidationConfig = ValidationConfig()
    facade: FacadeConfig = FacadeConfig()
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    connectors: ConnectorsConfig = ConnectorsConfig()
    subscribers: dict[SubscriberName, SubscriberConfig] = Field(default_factory=dict)
    ministries: dict[SubscriberName, MinistryConfig] = Field(default_factory=dict)
    dashboard: DashboardConfig = DashboardConfig()
    # Connectors outside the product, by dotted name (`package.module:attribute`, see
    # `hub.plugins`); each takes its settings from `connectors.<its name>`.
    plugins: list[str] = Field(default_factory=list)
    _plugin_sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    def plugin_section(self, name: str) -> BaseModel:
        """A plug-in connector's validated section (`load_config` validated every one)."""
        return self._plugin_sections[name]

    def plugin_names(self) -> list[str]:
        return sorted(self._plugin_sections)

    @model_validator(mode="after")
    def _payments_have_a_destination(self) -> HubConfig:
        pay = self.connectors.payment_platform
        if not pay.enabled:
            return self
        sub = self.subscribers.get(pay.deliver_to)
        if sub is None or not sub.enabled:
            raise ValueError(
                f"connectors.payment_platform.deliver_to names {pay.deliver_to!r}, which is not "
                "an enabled subscriber (section subscribers)"
            )
        if not all(sub.receives(key) for key in ("payment.paid", "payment.failed")):
            raise ValueError(
                f"subscriber {pay.deliver_to!r} must receive payment.paid and payment.failed: "
                "add payment.# to its events"
            )
        return self

    @model_validator(mode="after")
    def _ministry_results_have_a_destination(self) -> HubConfig:
        for name, ministry in self.ministries.items():
            if not ministry.enabled or (ministry.poll is None and ministry.push is None):
                continue
            key = f"ministry.result.{name}"
            if not any(s.enabled and s.receives(key) for s in self.subscribers.values()):
                raise ValueError(
                    f"ministries.{name} takes results, but no enabled subscriber receives {key}: "
                    "add ministry.# to the one-stop system's events (section subscribers)"
                )
        return self

    @model_validator(mode="after")
    def _axis_has_a_destination(self) -> HubConfig:
        axis = self.connectors.vdxp
        if not axis.enabled:
            return self
        sub = self.subscribers.get(axis.deliver_to)
        if sub is None or not sub.enabled:
            raise ValueError(
                f"connectors.vdxp.deliver_to names {axis.deliver_to!r}, which is not an enabled "
                "subscriber (section subscribers)"
            )
        if not all(sub.receives(key) for key in (VDXP_DOCUMENT_EVENT, VDXP_STATUS_EVENT)):
            raise ValueError(
                f"subscriber {axis.deliver_to!r} must receive {VDXP_DOCUMENT_EVENT} and "
                f"{VDXP_STATUS_EVENT}: add vdxp.# to its events"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, which arrives as init arguments.
        return (env_settings, init_settings)


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> HubConfig:
    """Read, merge and validate; raise `ConfigError` listing every problem with its place."""
    raw: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if path is not None:
        raw, lines = _read_yaml(path)
    if overrides:
        raw = deep_merge(raw, overrides)
    where = str(path) if path else "configuration"
    try:
        config = HubConfig(**raw)
    except ValidationError as exc:
        problems = [_describe(err, where, lines) for err in exc.errors()]
        raise ConfigError(f"{len(problems)} problem(s) in {where}", problems) from None
    config._plugin_sections = _plugin_sections(config, where, lines)
    return config


def _plugin_sections(
    config: HubConfig, where: str, lines: dict[tuple[str, ...], int]
) -> dict[str, BaseModel]:
    """Each plug-in connector's section, validated by its own model; every problem located."""
    from hub.plugins import load_plugin  # the seam, loaded only when plug-ins are named

    extras: dict[str, Any] = dict(config.connectors.model_extra or {})
    plugins = {p.name: p for p in (load_plugin(d) for d in config.plugins)}
    problems: list[str] = []
    sections: dict[str, BaseModel] = {}
    for name in sorted(set(extras) | set(plugins)):
        loc = ("connectors", name)
        plugin = plugins.get(name)
        if plugin is None:
            problems.append(
                _describe({"loc": loc, "msg": "", "type": "extra_forbidden"}, where, lines)
            )
            continue
        if name in ConnectorsConfig.model_fields:
            problems.append(f"{where}: plugins: {name!r} is the name of a built-in connector")
            continue
        try:
            sections[name] = plugin.config_model.model_validate(extras.get(name, {}))
        except ValidationError as exc:
            problems += [
                _describe({**err, "loc": (*loc, *err["loc"])}, where, lines) for err in exc.errors()
            ]
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in {where}", problems)
    return sections


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", [f"{path}: {exc}"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML", [f"{path}: {exc}"]) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping", [f"{path}:1: the top level is not a map"])
    lines: dict[tuple[str, ...], int] = {}
    _index_lines(node, (), lines)
    return data, lines


def _index_lines(
    node: yaml.Node | None, at: tuple[str, ...], out: dict[tuple[str, ...], int]
) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = (*at, str(key.value))
            out[here] = key.start_mark.line + 1
            _index_lines(value, here, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            here = (*at, str(i))
            out[here] = item.start_mark.line + 1
            _index_lines(item, here, out)


def _describe(err: Any, where: str, lines: dict[tuple[str, ...], int]) -> str:
    loc = tuple(str(p) for p in err["loc"])
    dotted = ".".join(loc) or "(top level)"
    line = None
    for cut in range(len(loc), 0, -1):
        line = lines.get(loc[:cut])
        if line:
            break
    place = f"{where}:{line}" if line else where
    env_name = "HUB_" + "__".join(p.upper() for p in loc)
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key (check its spelling against config/hub.example.yaml)"
    return f"{place}: {dotted}: {message} (environment: {env_name})"


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` laid over `base`, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
