"""`hub users list|unlock|revoke-sessions`: the dashboard's users, from the command line.

They act on the store file the configuration names (`store.path`), the one the running hub
uses, so an administrator locked out of the dashboard (or with no administrator left who can
log in) still has a way in, and an operator can end a stolen session at once. Both acts are
written to the audit log before they are carried out, as the dashboard's own are; the hub reads
log-in failures and sessions from the store on every request, so it sees the change at once.
A name not under `dashboard.users` is refused. This module must never print a password, a
token or a hash.
"""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import click

from hub.config import HubConfig
from hub.errors import HubError

CONFIG = click.option("-c", "--config", "config_path", type=click.Path(path_type=Path))
ACTOR = click.option("--actor", default=None, help="Who acts, for the audit log (default: you).")


@click.group("users")
def users() -> None:
    """The dashboard's users: list them, unlock one, end one's sessions."""


def _known(config: HubConfig, name: str) -> None:
    if name not in config.dashboard.users:
        known = ", ".join(sorted(config.dashboard.users)) or "none is configured"
        raise HubError(f"no dashboard user {name[:64]!r} under dashboard.users (users: {known})")


@users.command("list")
@CONFIG
def list_users(config_path: Path | None) -> None:
    """Each user: role, locked or not, failed log-ins, open sessions."""
    from hub.cli import _load, _run
    from hub.dashboard.access import SESSION_PREFIX
    from hub.store.opening import open_store

    config = _load(config_path)

    async def go() -> list[str]:
        lines = ["USER\tROLE\tLOCKED\tFAILURES\tSESSIONS"]
        async with open_store(config.store) as store:
            now = time.time()
            for name, user in sorted(config.dashboard.users.items()):
                state = await store.dashboard.login_summary(name)
                locked = state is not None and state.locked_until > now
                sessions = await store.live_sessions(SESSION_PREFIX + name, now)
                failures = state.failures if state else 0
                lines.append(
                    f"{name}\t{user.role}\t{'yes' if locked else 'no'}\t{failures}\t{sessions}"
                )
        return lines

    for line in _run(go()):
        click.echo(line)


@users.command("unlock")
@CONFIG
@ACTOR
@click.argument("name")
def unlock_user(config_path: Path | None, name: str, actor: str | None) -> None:
    """Unlock NAME for every client address (its failed log-ins are forgotten); audited."""
    from hub.cli import _load, _run
    from hub.dashboard.access import unlock
    from hub.store.opening import open_store

    config = _load(config_path)
    who = actor or getpass.getuser()

    async def go() -> int:
        _known(config, name)
        async with open_store(config.store) as store:
            return await unlock(store, who, name)

    cleared = _run(go())
    if cleared:
        click.echo(
            f"unlocked {name}: failed log-ins from {cleared} client address(es) forgotten "
            f"(audited as {who})"
        )
    else:
        click.echo(f"{name} had no failed log-ins: nothing to unlock (audited as {who})")


@users.command("revoke-sessions")
@CONFIG
@ACTOR
@click.argument("name")
def revoke_sessions(config_path: Path | None, name: str, actor: str | None) -> None:
    """End every session of NAME at once: each of their browsers must log in again; audited."""
    from hub.cli import _load, _run
    from hub.dashboard.access import end_sessions
    from hub.store.opening import open_store

    config = _load(config_path)
    who = actor or getpass.getuser()

    async def go() -> int:
        _known(config, name)
        async with open_store(config.store) as store:
            return await end_sessions(store, who, name)

    ended = _run(go())
    click.echo(f"ended {ended} session(s) of {name} (audited as {who})")
