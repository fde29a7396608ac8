"""The hub's one configuration tree.

Built once at start from a YAML file plus `HUB_`-prefixed environment variables (nested with
`__`, e.g. `HUB_BROKER__URL`; the environment wins over the file), validated, and passed down.
Nothing else in the hub reads the environment. Secrets are `SecretStr` and never logged.
`config/hub.example.yaml` documents every key; keep the two in step.

This module must never open connections or start anything.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from yarl import URL

from hub import tls, yamlfile
from hub.config_blocks import (
    ClientTls,
    DoorLimits,
    HttpUrl,
    Section,
    ServerTls,
    is_agency_code,
)
from hub.errors import ConfigError
from hub.subscribers import SubscriberConfig
from hub.tokens import check_form

if TYPE_CHECKING:
    from hub.plugins import Connector

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
    # HTTPS instead of HTTP on the same host and port (`hub.tls`); absent: plain HTTP.
    tls: ServerTls | None = None
    # Slow clients (`hub.slowclients`): a request head must arrive whole within
    # header_timeout_s of the connection opening (or of its first byte after a keep-alive
    # wait); a body within body_timeout_s plus one second per body_min_bytes_per_s bytes
    # received (0: no allowance for size); an idle kept-alive connection is closed after
    # keepalive_timeout_s.
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(60.0, gt=0)
    body_min_bytes_per_s: int = Field(8192, ge=0)
    keepalive_timeout_s: float = Field(75.0, gt=0)
    # The canonical API's doors (/api/v1/dossier-events, /api/v1/portal/dossier-changes).
    api_limits: DoorLimits = DoorLimits()
    # Reverse proxies (addresses or networks) whose X-Forwarded-For the hub believes
    # (`hub.proxies`): a request from one of them counts as from the client the header names,
    # for rate limits, lock-outs and logs. Empty: the TCP peer is the client, header ignored.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)


class BrokerConfig(Section):
    url: SecretStr | None = None
    # The nodes of one RabbitMQ cluster, instead of `url` (`hub.failover`): the hub connects to
    # the first that answers and, when it loses that node, to the next in turn. They share the
    # scheme, user, password, virtual host and options; only the host and port differ.
    urls: list[SecretStr] = Field(default_factory=list)
    prefix: str = Field("hub", pattern=r"^[a-z][a-z0-9_-]{0,30}$")
    publish_timeout_s: float = Field(10.0, gt=0)
    # How long one node may take to accept a connection before the next one is tried.
    connect_timeout_s: float = Field(5.0, gt=0)
    # The pause between two rounds of attempts while no node accepts a connection; a lost
    # connection is opened again (on the next node) at once, unless it was lost within this
    # time of opening, then once this time has passed.
    reconnect_interval_s: float = Field(2.0, gt=0)
    delivery_limit: int = Field(20, gt=0)
    max_queue_length: int = Field(1_000_000, gt=0)
    # Replicas of each quorum queue the hub declares (`x-quorum-initial-group-size`); none:
    # the broker's default (every node of the cluster on RabbitMQ 3.10). Fixed when a queue
    # is created: the broker refuses to declare an existing queue with another value.
    quorum_replicas: int | None = Field(None, ge=1)
    # Competing replicas (several `hub run` on one PostgreSQL store): each work queue is
    # declared with `x-single-active-consumer`, so one replica at a time takes from it and the
    # next takes over when it goes away; a dossier's changes then reach each destination in
    # order whatever replica received them (decision 0093). Fixed when a queue is created,
    # like `quorum_replicas`: set it before the first start of a deployment that will scale.
    single_active_consumer: bool = False
    # While a destination is down, a consumer holds what it took (unacknowledged) for at most
    # this long, then puts it back at the end of its queue (no retry spent) and takes the next:
    # keep it below the broker's consumer_timeout (30 minutes by default in RabbitMQ).
    hold_max_s: float = Field(900.0, gt=0)
    # How often each consumer checks that it is still subscribed (after a broker restart or a
    # cut connection it subscribes again, declaring its queues first).
    watch_interval_s: float = Field(1.0, gt=0)
    # TLS towards the broker (an amqps:// URL): its CA and the hub's client certificate.
    tls: ClientTls | None = None

    @model_validator(mode="after")
    def _one_cluster(self) -> BrokerConfig:
        if self.url is not None and self.urls:
            raise ValueError("set broker.url (one node) or broker.urls (a cluster), not both")
        urls = self.addresses()
        if self.tls is not None and any(not u.startswith("amqps://") for u in urls):
            raise ValueError("broker.tls is used only with an amqps:// URL: change the scheme")
        for problem in _cluster_mismatches(urls, "broker.urls" if self.urls else "broker.url"):
            raise ValueError(problem)
        return self

    def addresses(self) -> list[str]:
        """The broker's URLs, secrets revealed (`urls`, or `url` alone); empty if none."""
        urls = self.urls or ([self.url] if self.url is not None else [])
        return [u.get_secret_value() for u in urls]


def _cluster_mismatches(urls: list[str], key: str) -> list[str]:
    """Why `urls` are not the addresses of one cluster (the hub logs in to each node with the
    first one's user, password, virtual host and options); the values are never named."""
    parsed = [URL(u) for u in urls]
    problems = [
        f"{key}{f'[{i}]' if len(urls) > 1 else ''} is not an amqp:// or amqps:// URL with a host"
        for i, u in enumerate(parsed)
        if u.scheme not in ("amqp", "amqps") or not u.host
    ]
    if problems or not parsed:
        return problems
    first = _shared_parts(parsed[0])
    return [
        f"broker.urls[{i}] differs from broker.urls[0] in its {part}: the nodes of one "
        "cluster share them (only the host and port differ)"
        for i, u in enumerate(parsed[1:], start=1)
        for part, value in _shared_parts(u).items()
        if value != first[part]
    ]


def _shared_parts(url: URL) -> dict[str, object]:
    return {
        "scheme": url.scheme,
        "user": url.user,
        "password": url.password,
        "virtual host": url.path,
        "options": url.query_string,
    }


class StoreConfig(Section):
    # sqlite: the embedded store, a file at `path`. postgresql: the server at `url`
    # (decision 0083); `path` is not used then.
    backend: Literal["sqlite", "postgresql"] = "sqlite"
    path: Path = Path("var/hub.db")
    # postgresql://user:password@host:port/database[?sslmode=verify-full&...]: a secret, best
    # given as HUB_STORE__URL.
    url: SecretStr | None = None
    outbox_sweep_interval_s: float = Field(5.0, gt=0)
    outbox_sweep_age_s: float = Field(10.0, ge=0)

    @model_validator(mode="after")
    def _url_for_postgresql(self) -> StoreConfig:
        url = self.url.get_secret_value() if self.url is not None else ""
        if self.backend == "postgresql" and not url:
            raise ValueError("store.backend postgresql needs store.url (HUB_STORE__URL)")
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("store.url must be a postgresql:// URL")
        if url and self.backend != "postgresql":
            raise ValueError("store.url is used only with store.backend: postgresql")
        return self


class DutiesConfig(Section):
    """The leases of the once-only duties (`hub.duties`, decision 0091): the outbox sweep, the
    alert checks and the connectors' schedules run on the one replica holding each lease."""

    # How long a lease lasts unless renewed: how long a duty waits for another replica after
    # its holder died without handing it over (a holder that stops hands it over at once).
    lease_s: float = Field(30.0, gt=0)
    # How often the holder renews it, and how often a replica without it tries to take it;
    # unset: a third of lease_s.
    renew_every_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _renewed_within_the_lease(self) -> DutiesConfig:
        if self.renew_every_s is not None and self.renew_every_s >= self.lease_s:
            raise ValueError(
                "duties.renew_every_s must be shorter than duties.lease_s (a third of it, "
                "by default): a lease renewed later than it lasts is lost every time"
            )
        return self

    @property
    def renew_s(self) -> float:
        """The renewal interval in force."""
        return self.renew_every_s if self.renew_every_s is not None else self.lease_s / 3


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
    limits: DoorLimits = DoorLimits()


class SourceConfig(Section):
    """One system allowed to send to the hub (a one-stop system, the portal's puller, ...)."""

    username: str | None = None
    password_hash: SecretStr | None = Field(
        None, description="argon2 hash of the facade password (`hub hash-secret`)"
    )
    api_token_sha256: SecretStr | None = Field(
        None,
        description="the bearer token for the REST APIs, hashed by `hub hash-secret --token` "
        "(hmac-sha256$<salt>$<digest>; a bare hex SHA-256 of older versions is still read)",
    )
    status_mapping: str = "one_stop_generic"
    permissions: list[Permission] = Field(default_factory=list)
    units: list[str] = Field(
        default_factory=list,
        description="agencies it may act for, with those under them (zeros: any unit at that "
        "level); empty = any",
    )

    @field_validator("api_token_sha256")
    @classmethod
    def _token_hash(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_form(value.get_secret_value())
        return value

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
    # The province's own names of its connectors (a ministry system, a subscriber), by the
    # name the hub runs them under: `ministry.tax: Hệ thống quản lý thuế`.
    names: dict[str, Annotated[str, StringConstraints(min_length=1, max_length=80)]] = Field(
        default_factory=dict
    )


class AlertWebhook(Section):
    """One receiver of the hub's own notifications (`alerts.webhooks.<name>`): a JSON POST when
    a rule fires and when it resolves (`hub.notify`)."""

    url: HttpUrl = Field(description="where notifications are POSTed")
    token: SecretStr | None = Field(None, description="sent as Authorization: Bearer <token>")
    timeout_s: float = Field(10.0, gt=0)
    tls: ClientTls | None = Field(None, description="CA bundle and client certificate")


class AlertEmail(Section):
    """Notifications by e-mail (`alerts.email`), through the province's SMTP relay."""

    host: str = Field(min_length=1, description="the SMTP server")
    port: int = Field(587, ge=1, le=65535)
    # starttls: plain connection upgraded with STARTTLS (port 587); tls: TLS from the first
    # byte (port 465); none: no encryption (a relay on the same machine or network only).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(min_length=3, description="the From address")
    to: list[Annotated[str, StringConstraints(min_length=3)]] = Field(min_length=1)
    timeout_s: float = Field(30.0, gt=0)
    tls: ClientTls | None = Field(None, description="CA bundle and client certificate")

    @model_validator(mode="after")
    def _login_pair(self) -> AlertEmail:
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together (or neither)")
        return self


AlertName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,40}$")]


class AlertsConfig(Section):
    """Thresholds of the alerts, the rules the hub evaluates itself (`hub.alerts`) and where it
    sends their notifications (`hub.notify`). The dashboard marks a figure past a threshold,
    and the Prometheus rules under `deploy/prometheus/` use the same defaults."""

    lag_p95_max_s: float = Field(3600.0, gt=0)
    completeness_min_ratio: float = Field(0.95, ge=0, le=1)
    # The rules are evaluated every check_interval_s; each fires once its condition has held
    # for its `*_for_s` (checked at that interval, so up to one interval later).
    check_interval_s: float = Field(30.0, gt=0)
    connector_down_for_s: float = Field(300.0, ge=0)
    dead_letters_new_max: int = Field(0, ge=0)
    dead_letters_window_s: float = Field(900.0, gt=0)
    completeness_low_for_s: float = Field(1800.0, ge=0)
    lag_window_s: float = Field(3600.0, gt=0)
    lag_high_for_s: float = Field(900.0, ge=0)
    consumer_missing_for_s: float = Field(120.0, ge=0)
    # A notification that cannot be delivered is tried again after retry_initial_s, doubling
    # up to retry_max_s, for at most give_up_after_s; then it is dropped (logged).
    retry_initial_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(60.0, gt=0)
    give_up_after_s: float = Field(3600.0, gt=0)
    webhooks: dict[AlertName, AlertWebhook] = Field(default_factory=dict)
    email: AlertEmail | None = None


class ConnectorsConfig(Section):
    """`connectors.<name>`: one section per connector, each its connector's own model (the
    class is assembled from the connectors found, see `config_class`)."""

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


@dataclass(frozen=True, eq=False)
class Origin:
    """Where a configuration was read (the file, and the line of each key), for messages. Not
    part of its value: the same settings read from two files are equal configurations."""

    source: str = "configuration"
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Origin)

    def __hash__(self) -> int:
        return 0


SubscriberName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,30}$")]


class HubConfig(BaseSettings):
    """The whole tree. Build it with `load_config`, not directly: the connectors' sections are
    added to it by `config_class`."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    instance: str = "hub"
    # The event loop `hub run` and `hub demo` run on: uvloop (libuv) spends less CPU per
    # socket write, thread wake-up and callback than asyncio's own loop (the bench's A/B:
    # about 10-15 % fewer CPU milliseconds per event); `asyncio` is the fallback.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    mappings_dir: Path = Path("mappings")
    http: HttpConfig = HttpConfig()
    broker: BrokerConfig = BrokerConfig()
    store: StoreConfig = StoreConfig()
    duties: DutiesConfig = DutiesConfig()
    logging: LoggingConfig = LoggingConfig()
    validation: ValidationConfig = ValidationConfig()
    facade: FacadeConfig = FacadeConfig()
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    connectors: ConnectorsConfig = ConnectorsConfig()
    subscribers: dict[SubscriberName, SubscriberConfig] = Field(default_factory=dict)
    dashboard: DashboardConfig = DashboardConfig()
    alerts: AlertsConfig = AlertsConfig()
    # Connectors outside the product, by dotted name (`package.module:attribute`, see
    # `hub.plugins`); each takes its settings from `connectors.<its name>`.
    plugins: list[str] = Field(default_factory=list)
    _connectors: tuple[Connector, ...] = PrivateAttr(default=())
    _assets: dict[str, Any] = PrivateAttr(default_factory=dict)
    _origin: Origin = PrivateAttr(default_factory=lambda: Origin())

    if TYPE_CHECKING:
        # A connector's top-level section (`ministries`).
        def __getattr__(self, name: str) -> Any: ...

    def all_connectors(self) -> tuple[Connector, ...]:
        """The built-in connectors and the plug-ins, in order."""
        return self._connectors

    def section(self, connector: Connector) -> Any:
        """A connector's validated section."""
        if connector.config_key is None:
            return getattr(self.connectors, connector.name)
        return getattr(self, connector.config_key)

    def locate(self, loc: tuple[str, ...]) -> str:
        """`file:line: key.path` for a key of this configuration, for a problem found after
        the tree was built (a mapping file's or a WSDL's disagreement with it)."""
        place = _place(self._origin.source, self._origin.lines, loc)
        return f"{place}: {'.'.join(loc) or '(top level)'}"

    def assets(self, connector: Connector) -> Any:
        """What the connector's `load` read (its mapping files), once `load_assets` ran."""
        return self._assets.get(connector.name)

    def load_assets(self, deep: bool = True) -> None:
        """Read every connector's mapping files; `ConfigError` listing every problem of all."""
        problems: list[str] = []
        for c in self._connectors:
            try:
                self._assets[c.name] = c.load(self.section(c), self, deep)
            except ConfigError as exc:
                problems += exc.problems
        if problems:
            raise ConfigError(f"{len(problems)} problem(s) with the mapping files", problems)

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
    from hub.plugins import connectors_of  # the seam: finds the connectors by name

    raw: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if path is not None:
        raw, lines = _read_yaml(path)
    if overrides:
        raw = deep_merge(raw, overrides)
    where = str(path) if path else "configuration"
    found = connectors_of(_plugins_named(raw, where))
    try:
        config = config_class(found)(**raw)
    except ValidationError as exc:
        problems = [_describe(err, where, lines) for err in exc.errors()]
        raise ConfigError(f"{len(problems)} problem(s) in {where}", problems) from None
    if path is not None:
        config = _resolve_paths(config, (), path.resolve().parent, lines)
    config._connectors = found
    config._origin = Origin(where, lines)
    checks = [*tls.problems(config)]  # files a TLS block names: there, and usable
    checks += [check for c in found for check in c.check(config.section(c), config)]
    problems = [
        _describe({"loc": loc, "msg": msg, "type": "value_error"}, where, lines)
        for loc, msg in checks
    ]
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in {where}", problems)
    return config


def _resolve_paths(
    model: Any, at: tuple[str, ...], base: Path, lines: dict[tuple[str, ...], int]
) -> Any:
    """Relative paths written in the configuration file, read from the file's folder (as a
    compose file's are): `mappings_dir: ../mappings` means the same wherever the hub starts.
    A default or an environment variable stays relative to the working directory."""
    updates: dict[str, Any] = {}
    for name, value in model:
        here = (*at, name)
        if isinstance(value, Path):
            written = here in lines and env_name(here) not in os.environ
            if written and not value.is_absolute():
                updates[name] = base / value
        elif isinstance(value, BaseModel):
            new = _resolve_paths(value, here, base, lines)
            if new is not value:
                updates[name] = new
        elif isinstance(value, dict):
            items = {
                k: _resolve_paths(v, (*here, str(k)), base, lines)
                if isinstance(v, BaseModel)
                else v
                for k, v in value.items()
            }
            if any(items[k] is not value[k] for k in value):
                updates[name] = items
    return model.model_copy(update=updates) if updates else model


def env_name(loc: tuple[str, ...]) -> str:
    """The environment variable that sets the key at `loc`."""
    return "HUB_" + "__".join(p.upper() for p in loc)


def _plugins_named(raw: dict[str, Any], where: str) -> list[str]:
    """`plugins` as the file and `HUB_PLUGINS` say (needed before the tree can be built)."""
    named = raw.get("plugins", [])
    env = os.environ.get("HUB_PLUGINS")
    if env is not None:
        try:
            named = json.loads(env)
        except ValueError:
            named = None
    if not isinstance(named, list) or not all(isinstance(n, str) for n in named):
        problem = f"{where}: plugins: must be a list of package.module:attribute names"
        raise ConfigError(problem, [problem])
    return named


@functools.cache
def config_class(connectors: tuple[Connector, ...]) -> type[HubConfig]:
    """`HubConfig` with each connector's section: under `connectors.<name>`, or at its own
    top-level key."""
    nested: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for c in connectors:
        if c.config_model is None:  # it reads a section of the core (the subscribers)
            continue
        spec = (c.config_model, Field(default_factory=c.default_section))
        (nested if c.config_key is None else top)[c.config_key or c.name] = spec
    sections = create_model("ConnectorsConfig", __base__=ConnectorsConfig, **nested)
    return create_model(
        "HubConfig",
        __base__=HubConfig,
        connectors=(sections, Field(default_factory=sections)),
        **top,
    )


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", [f"{path}: {exc}"]) from None
    document = yamlfile.load(text, str(path))  # not YAML, or a key written twice: refused
    if document.data is None:
        return {}, {}
    if not isinstance(document.data, dict):
        raise ConfigError(f"{path} must hold a mapping", [f"{path}:1: the top level is not a map"])
    return document.data, document.lines


def _place(where: str, lines: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> str:
    """`file:line` of the key at `loc`, or of the nearest key above it written in the file."""
    for cut in range(len(loc), 0, -1):
        line = lines.get(loc[:cut])
        if line:
            return f"{where}:{line}"
    return where


def _describe(err: Any, where: str, lines: dict[tuple[str, ...], int]) -> str:
    loc = tuple(str(p) for p in err["loc"])
    dotted = ".".join(loc) or "(top level)"
    place = _place(where, lines, loc)
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key (check its spelling against config/hub.example.yaml)"
    return f"{place}: {dotted}: {message} (environment: {env_name(loc)})"


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` laid over `base`, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
