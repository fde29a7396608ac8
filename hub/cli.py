"""The `hub` command: run, demo, status, check-config, hash-secret, connectors (pause,
resume), users (list, unlock, revoke-sessions), the dead-letter tools, procedures, payments.

Every command takes `-c/--config` (a YAML file; `HUB_...` environment variables override it).
Errors are printed as sentences an operator can act on, with exit status 1 for a problem in
what was asked and 2 for usage errors. This module must never print a secret.
"""

from __future__ import annotations

import asyncio
import getpass
import importlib
import json
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from hub.cli_status import connectors, status
from hub.cli_users import users
from hub.config import HubConfig, load_config
from hub.errors import ConfigError, HubError
from hub.plugins import built_in
from hub.tls import unverified

T = TypeVar("T")
DEMO_MODULE = "sims.demo"  # in the checkout (`make setup` puts it on the venv's path)

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML configuration file (see config/hub.example.yaml).",
)


def _load(config_path: Path | None, overrides: dict[str, Any] | None = None) -> HubConfig:
    from hub.logs import configure_logging
    from hub.runtime import load_everything

    try:
        config = load_config(config_path, overrides)
        load_everything(config)
    except ConfigError as exc:
        click.echo(f"error: {exc.message}", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1) from None
    configure_logging(config.logging.level, config.logging.format)
    return config


def _run(coro: Awaitable[T], event_loop: str = "asyncio") -> T:
    """Run `coro` to its end on a new loop: asyncio's, or uvloop's for the long-running
    commands (`event_loop` in the configuration)."""
    try:
        if event_loop == "uvloop":
            import uvloop

            return uvloop.run(coro)  # type: ignore[arg-type]
        return asyncio.run(coro)  # type: ignore[arg-type]
    except HubError as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from None


@click.group()
def main() -> None:
    """Integration hub for Vietnamese public services."""


@main.command()
@CONFIG_OPTION
def run(config_path: Path | None) -> None:
    """Run the hub in production mode until SIGTERM or Ctrl-C."""
    from hub.runtime import run_until_signalled

    config = _load(config_path)
    if not config.broker.addresses():
        click.echo("error: broker.url (or broker.urls) is not set (or HUB_BROKER__URL)", err=True)
        raise SystemExit(1)
    _run(run_until_signalled(config), config.event_loop)


@main.command("check-config")
@CONFIG_OPTION
def check_config(config_path: Path | None) -> None:
    """Validate the configuration and every mapping file it names; explain each error."""
    config = _load(config_path)
    click.echo(f"configuration is valid: {len(config.sources)} source system(s)")
    _describe_sources(config)
    for c in config.all_connectors():
        for line in c.describe(config.section(c)):
            click.echo(f"  {line}")
        for warning in c.warnings(config.section(c)):
            click.echo(f"  warning: {warning}", err=True)
    _describe_dashboard(config)
    for where in unverified(config):
        click.echo(f"  warning: {where}.verify is off: anyone can pose as that system", err=True)
    if not config.broker.addresses():
        click.echo("  note: broker.url is empty: `hub run` needs it, `hub demo` starts a node")
    elif len(config.broker.addresses()) > 1:
        click.echo(f"  broker: a cluster of {len(config.broker.addresses())} node addresses")


def _describe_dashboard(config: HubConfig) -> None:
    board = config.dashboard
    if not board.enabled:
        return
    roles = Counter(u.role for u in board.users.values())
    who = ", ".join(f"{n} {r}(s)" for r, n in sorted(roles.items())) or "no users"
    click.echo(f"  dashboard: /dashboard/ and /api/v1/admin/; {who}")
    if not board.users:
        click.echo("  warning: dashboard.users is empty: nobody can log in", err=True)
    if not board.cookie_secure:
        click.echo("  warning: dashboard.cookie_secure is off: serve it over HTTPS", err=True)


def _describe_sources(config: HubConfig) -> None:
    from hub.tokens import LEGACY_WARNING, is_legacy

    for name, source in sorted(config.sources.items()):
        perms = ", ".join(source.permissions) or "none"
        click.echo(f"  source {name}: status table {source.status_mapping}; may {perms}")
        if source.password_hash is None and source.api_token_sha256 is None:
            click.echo(f"  warning: source {name} has no credentials and cannot call", err=True)
        if source.api_token_sha256 and is_legacy(source.api_token_sha256.get_secret_value()):
            click.echo(f"  warning: sources.{name}.api_token_sha256: {LEGACY_WARNING}", err=True)


@main.command("hash-secret")
@click.option("--token", is_flag=True, help="Hash a bearer token (salted HMAC-SHA256) instead.")
@click.option(
    "--allow-weak",
    is_flag=True,
    help="Hash a secret shorter or plainer than the rules allow (one another system imposes).",
)
def hash_secret(token: bool, allow_weak: bool) -> None:
    """Print the hash to put in the configuration for a password or an API token.

    At a terminal it asks twice, hidden; otherwise it reads the secret from the first line of
    standard input (`printf '%s' "$SECRET" | hub hash-secret`). A token needs at least 24
    characters, a password 12, neither may repeat a few characters over and over; a weaker
    one is refused (exit 1) unless --allow-weak is given."""
    from hub.auth import hash_password
    from hub.tokens import hash_token, password_weakness, token_weakness

    if sys.stdin.isatty():
        secret = click.prompt("secret", hide_input=True, confirmation_prompt=True)
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            click.echo("error: no secret on standard input (its first line is empty)", err=True)
            raise SystemExit(1)
    weakness = token_weakness(secret) if token else password_weakness(secret)
    if weakness is not None:
        if not allow_weak:
            click.echo(
                f'error: {weakness}; make one with `python3 -c "import secrets; '
                'print(secrets.token_urlsafe(32))"`, or pass --allow-weak',
                err=True,
            )
            raise SystemExit(1)
        click.echo(f"warning: {weakness}; hashed anyway (--allow-weak)", err=True)
    click.echo(hash_token(secret) if token else hash_password(secret))


@main.command()
@CONFIG_OPTION
@click.option("--dossiers", default=200, show_default=True, help="Dossiers per traffic round.")
@click.option("--rate", default=20.0, show_default=True, help="Calls per second of traffic.")
@click.option("--port", default=8080, show_default=True, help="Hub HTTP port (0: any free).")
def demo(config_path: Path | None, dossiers: int, rate: float, port: int) -> None:
    """Run everything on this machine: RabbitMQ, simulators, traffic and the hub (from a
    checkout: the simulators are not part of the product)."""
    try:
        # By name: the product never imports the simulators (an import contract checks it).
        run_demo = importlib.import_module(DEMO_MODULE).run_demo
    except ModuleNotFoundError:
        click.echo(
            f"error: the demo ({DEMO_MODULE}) is not installed here: it ships with the source "
            "checkout, not the product; run `make demo` there",
            err=True,
        )
        raise SystemExit(1) from None
    config = _load(config_path) if config_path else None
    loop = config.event_loop if config else "uvloop"
    _run(run_demo(config, dossiers=dossiers, rate_per_s=rate, port=port), loop)


# -- dead letters ---------------------------------------------------------------------------


@main.group()
def dlq() -> None:
    """Inspect, replay or discard a connector's parked (dead-letter) messages."""


@asynccontextmanager
async def _parking(config: HubConfig, connector: str) -> Any:
    from hub.broker import Broker
    from hub.dlq import ParkingQueue
    from hub.store.opening import open_store

    # Connectors with queues of their own (the payment platform has none: its results travel
    # on the subscriber's queues).
    tiers_by_connector = {
        name: tiers
        for c in config.all_connectors()
        for name, tiers in c.queues(config.section(c)).items()
    }
    if connector not in tiers_by_connector:
        known = ", ".join(tiers_by_connector)
        raise HubError(f"unknown connector {connector!r}; known: {known}")
    tiers = tiers_by_connector[connector]
    async with (
        open_store(config.store) as store,
        Broker.connect(config.broker, "hub-dlq") as broker,
    ):
        yield ParkingQueue(broker, broker.topology.queues(connector, tiers), store)


def _selector(
    ids: tuple[str, ...], all_: bool, reason: str | None, code: str | None
) -> Callable[[Any], bool]:
    if not ids and not all_ and not reason and not code:
        raise click.UsageError("name messages with --id, or use --code, --reason or --all")
    return lambda m: (
        all_
        or m.message_id in ids
        or bool(code and m.code == code)
        or bool(reason and reason in m.reason)
    )


@dlq.command("list")
@CONFIG_OPTION
@click.argument("connector")
def dlq_list(config_path: Path | None, connector: str) -> None:
    """List parked messages: id, dossier, when and why."""
    from hub.masking import mask_text

    async def go() -> None:
        async with _parking(_load(config_path), connector) as parking:
            messages = await parking.browse()
        for m in messages:
            dossier = m.body.get("dossier_code", "")
            code = m.code or "-"
            click.echo(f"{m.message_id}\t{dossier}\t{m.parked_at}\t{code}\t{mask_text(m.reason)}")
        click.echo(f"{len(messages)} parked message(s) in {connector}", err=True)

    _run(go())


@dlq.command("show")
@CONFIG_OPTION
@click.argument("connector")
@click.argument("message_id")
def dlq_show(config_path: Path | None, connector: str, message_id: str) -> None:
    """Show one parked message in full (personal data masked)."""
    from hub.masking import mask

    async def go() -> None:
        async with _parking(_load(config_path), connector) as parking:
            found = [m for m in await parking.browse() if m.message_id == message_id]
        if not found:
            raise HubError(f"no parked message {message_id!r} in {connector}")
        click.echo(json.dumps(mask(found[0].__dict__), ensure_ascii=False, indent=2))

    _run(go())


def _act(action: str) -> Callable[..., None]:
    @CONFIG_OPTION
    @click.argument("connector")
    @click.option("--id", "ids", multiple=True, help="A message id (repeatable).")
    @click.option("--code", default=None, help="Every message refused with exactly this code.")
    @click.option("--reason", default=None, help="Every message whose reason contains this.")
    @click.option("--all", "all_", is_flag=True, help="Every parked message.")
    @click.option("--actor", default=None, help="Who acts, for the audit log (default: you).")
    def command(
        config_path: Path | None,
        connector: str,
        ids: tuple[str, ...],
        code: str | None,
        reason: str | None,
        all_: bool,
        actor: str | None,
    ) -> None:
        select = _selector(ids, all_, reason, code)
        who = actor or getpass.getuser()

        async def go() -> int:
            async with _parking(_load(config_path), connector) as parking:
                fn = parking.replay if action == "replay" else parking.discard
                return int(await fn(select, who))

        count = _run(go())
        click.echo(f"{action}ed {count} message(s) from {connector} (audited as {who})")
        if ids and count < len(ids):
            click.echo("warning: some ids were not found (already replayed?)", err=True)
            sys.exit(1)

    command.__doc__ = f"{action.capitalize()} parked messages (audited)."
    return command


dlq.command("replay")(_act("replay"))
dlq.command("discard")(_act("discard"))


main.add_command(status)
main.add_command(connectors)
main.add_command(users)
for _connector in built_in():  # each built-in connector's own commands (`hub procedures`, ...)
    for _command in _connector.commands():
        main.add_command(_command)

if __name__ == "__main__":
    main()
