"""`hub status` and `hub connectors pause|resume`: what each connector is doing, and a planned
stop of one (a DVCQG maintenance window, say).

`hub status` asks the running hub (`/readyz?counts=1`), so it shows the same states, reasons and
broker counts as `/metrics` and the dashboard. Pausing writes to the store (with an audit
entry); the running hub reads it within a second, and a pause outlives a restart. This module
must never print a secret: reasons come masked from the hub.
"""

from __future__ import annotations

import getpass
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import click

from hub.config import HubConfig
from hub.errors import HubError
from hub.httputil import read_capped
from hub.tls import pinned_context

STATUS_TIMEOUT_S = 10.0
MAX_STATUS_BYTES = 16 * 1024 * 1024  # /readyz?counts=1 of hundreds of connectors is far less


def connector_names(config: HubConfig) -> list[str]:
    """Every connector the configuration turns on, by the name the hub gives it."""
    return [n for c in config.all_connectors() for n in c.watched_names(config.section(c))]


def hub_url(config: HubConfig) -> str:
    host = config.http.host
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - a client here
    scheme = "https" if config.http.tls else "http"
    return f"{scheme}://{host}:{config.http.port}"


def hub_trust(config: HubConfig) -> ssl.SSLContext | bool:
    """Over HTTPS, the hub's own certificate (read from `http.tls.cert_file`) is trusted."""
    return pinned_context(config.http.tls.cert_file) if config.http.tls else True


async def fetch_status(url: str, trust: ssl.SSLContext | bool = True) -> tuple[int, dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=STATUS_TIMEOUT_S)
    query = {"counts": "1"}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"{url.rstrip('/')}/readyz", params=query, ssl=trust) as response,
        ):
            raw = await read_capped(response.content, MAX_STATUS_BYTES)
            if raw is None:
                raise HubError(f"the hub at {url} answered more than {MAX_STATUS_BYTES} bytes")
            body = json.loads(raw)
            return response.status, body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError) as exc:
        raise HubError(f"the hub does not answer at {url}: {exc!r}") from None


def render(url: str, body: dict[str, Any]) -> list[str]:
    """The status as lines of a table an operator reads at a glance."""
    checks: dict[str, str] = body.get("checks", {})
    failing = {k: v for k, v in checks.items() if v != "ok"}
    verdict = "READY" if body.get("ready") else "NOT READY"
    lines = [f"hub at {url}: {verdict}"]
    if body.get("broker_node"):
        lines.append(f"  broker node: {body['broker_node']}")
    if body.get("replica"):
        duties = ", ".join(body.get("duties") or []) or "none"
        lines.append(f"  replica: {body['replica']}, running the duties: {duties}")
    lines += [f"  {name}: {why}" for name, why in sorted(failing.items())]
    rows = [("CONNECTOR", "STATE", "SINCE", "WAITING", "PARKED", "REASON")]
    for name, c in sorted(body.get("connectors", {}).items()):
        rows.append(
            (
                name,
                str(c.get("state", "?")),
                str(c.get("since") or "-"),
                _count(c.get("waiting")),
                _count(c.get("parked")),
                str(c.get("reason") or ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return lines


def _count(value: object) -> str:
    return "?" if value is None else str(value)


@click.command("status")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.option("--url", default=None, help="The hub's base URL (default: from http.host/port).")
@click.option("--json", "as_json", is_flag=True, help="Print the hub's answer as JSON.")
def status(config_path: Path | None, url: str | None, as_json: bool) -> None:
    """Each connector's state, since when and why, with the broker's counts; exit status 1
    when the hub is not ready or does not answer."""
    from hub.cli import _load, _run

    trust: ssl.SSLContext | bool = True
    if url is None:
        config = _load(config_path)
        url, trust = hub_url(config), hub_trust(config)
    target = url
    code, body = _run(fetch_status(target, trust))
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        for line in render(target, body):
            click.echo(line)
    if code != 200:
        raise SystemExit(1)


@click.group("connectors")
def connectors() -> None:
    """Pause or resume a connector (audited); `hub status` shows their states."""


def _set_paused(paused: bool) -> click.Command:
    verb = "pause" if paused else "resume"

    @click.command(verb)
    @click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None)
    @click.argument("name")
    @click.option("--reason", default="", help="Why, for the audit log and the dashboard.")
    @click.option("--actor", default=None, help="Who acts, for the audit log (default: you).")
    def command(config_path: Path | None, name: str, reason: str, actor: str | None) -> None:
        from hub.cli import _load, _run
        from hub.store.opening import open_store

        config = _load(config_path)
        known = connector_names(config)
        if name not in known:
            raise click.BadParameter(f"unknown connector {name!r}; known: {', '.join(known)}")
        who = actor or getpass.getuser()

        async def go() -> bool:
            async with open_store(config.store) as store:
                return await store.set_paused(name, who, reason, paused)

        changed = _run(go())
        if not changed:
            click.echo(f"{name} was already {'paused' if paused else 'running'}: nothing changed")
            return
        click.echo(f"{verb}d {name} (audited as {who}); a running hub applies it within a second")

    command.__doc__ = (
        "Stop sending to a connector: messages wait in its queue, none is parked."
        if paused
        else "Let a paused connector send again; what waited goes out first."
    )
    return command


connectors.add_command(_set_paused(True))
connectors.add_command(_set_paused(False))
