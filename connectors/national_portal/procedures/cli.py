"""`hub procedures …`: sync the national catalogue on demand and look at what the hub holds.

`hub procedures sync [--code CODE …]` runs in this process against the configured store,
broker and DVCQG: it first finishes a sync a crashed process left behind, then the one asked
for, with a progress bar on a terminal (log lines otherwise). Its events go through the
store's outbox: published now if the broker answers, otherwise by the running hub's relay.
It refuses to start while another live process is syncing (exit status 1).
This module must never print a secret.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from connectors.national_portal.procedures.records import RunState, SyncRun
from connectors.national_portal.procedures.store import SqliteProcedures
from connectors.national_portal.procedures.sync import Progress
from hub.errors import HubError


@click.group("procedures")
def procedures() -> None:
    """The national procedure catalogue: sync it, read what the hub holds."""


class _Bar:
    """A click progress bar, opened when the run's size is known (terminals only)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._shown = 0

    def __call__(self, progress: Progress) -> None:
        if not sys.stderr.isatty():
            return  # the sync logs its progress every `progress_every` procedures
        if self._bar is None:
            self._bar = click.progressbar(
                length=progress.total, label=f"run {progress.run_id}", file=sys.stderr
            )
            self._bar.__enter__()
            self._bar.update(progress.done - 1)
            self._shown = progress.done - 1
        self._bar.update(progress.done - self._shown)
        self._shown = progress.done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@procedures.command("sync")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.option("--code", "codes", multiple=True, help="Only this procedure (repeatable).")
def sync(config_path: Path | None, codes: tuple[str, ...]) -> None:
    """Sync the catalogue from DVCQG now (all of it, or the procedures named)."""
    from hub.cli import _load, _run

    config = _load(config_path)
    runs = _run(_sync(config, list(codes) or None))
    for run in runs:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
        resumed = " (resumed)" if run.resumed else ""
        # A failed run says why on its own line; a finished one what it did.
        said = run.detail if run.state is RunState.failed and run.detail else counts
        click.echo(f"run {run.id}{resumed}: {run.state.value}: {said or 'nothing changed'}")
        if run.detail and said != run.detail:
            click.echo(f"  {run.detail}", err=True)
    if runs and runs[-1].state is RunState.failed:
        raise SystemExit(1)


async def _sync(config: Any, codes: list[str] | None) -> list[SyncRun]:
    from connectors.national_portal.plugin import catalogue_sync, connector
    from hub.runtime import standalone

    async with standalone(config, "hub-cli") as parts:
        bar = _Bar()
        try:
            section, assets = config.section(connector), config.assets(connector)
            sync = catalogue_sync(section, assets, parts.store, parts.intake, parts.http)
            return await sync.run(codes=codes, trigger="cli", on_progress=bar)
        finally:
            bar.close()


@procedures.command("show")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.argument("code")
def show(config_path: Path | None, code: str) -> None:
    """Print one procedure: current record, versions and change history (JSON)."""
    from hub.cli import _load, _run
    from hub.store.opening import open_store

    config = _load(config_path)

    async def go() -> dict[str, Any]:
        async with open_store(config.store) as store:
            catalogue = store.slice("procedures", SqliteProcedures)
            row = await catalogue.procedure(code)
            if row is None:
                raise HubError(f"no procedure {code} in the hub")
            versions = await catalogue.versions(code)
            changes = await catalogue.changes(code)
        return {
            **row.as_json(),
            "versions": [v.as_json(with_record=False) for v in versions],
            "history": [c.as_json() for c in changes],
        }

    click.echo(json.dumps(_run(go()), ensure_ascii=False, indent=2))


@procedures.command("quarantine")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None)
def quarantine(config_path: Path | None) -> None:
    """List catalogue records refused by validation, with the reason."""
    from hub.cli import _load, _run
    from hub.store.opening import open_store

    config = _load(config_path)

    async def go() -> list[Any]:
        async with open_store(config.store) as store:
            return await store.slice("procedures", SqliteProcedures).quarantined(1000)

    rows = _run(go())
    for q in rows:
        click.echo(f"{q.code}\t{q.at}\t{q.field or '-'}\t{q.reason}")
    click.echo(f"{len(rows)} quarantined record(s)", err=True)
