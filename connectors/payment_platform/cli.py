"""`hub payments …`: reconcile a day, check pending transactions, read the callback log.

`hub payments reconcile --date YYYY-MM-DD` runs in this process against the configured store,
broker and payment platform, writes the report as CSV and JSON under
`reconciliation.output_dir` (or `--out`), stores it for `GET /api/v1/payments/reconciliation`
and prints its summary. A payment the platform confirmed but the hub never heard of is
recorded and its event goes through the store's outbox (published now if the broker answers,
otherwise by the running hub). Exit status 0 when there is no finding, 3 when there are
findings, 1 when the day could not be reconciled (2 is click's own: a usage error).
This module must never print a secret or unmasked personal data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from connectors.payment_platform.plugin import Payments

T = TypeVar("T")


@click.group("payments")
def payments() -> None:
    """Fee payments from the national payment platform."""


def _enabled(config: Any) -> Any:
    pay = config.connectors.payment_platform
    if not pay.enabled:
        click.echo(
            "error: the payment platform connector is not enabled: set "
            "connectors.payment_platform.enabled, partner_code and secret_key",
            err=True,
        )
        raise SystemExit(1)
    return pay


@payments.command("reconcile")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.option("--date", "day", required=True, help="The local day to reconcile, YYYY-MM-DD.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Report folder.")
def reconcile(config_path: Path | None, day: str, out: Path | None) -> None:
    """Compare the platform, the hub and the one-stop system for one day."""
    from hub.cli import _load, _run

    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise click.BadParameter(
            f"{day!r} is not a date like 2026-11-22", param_hint="--date"
        ) from None
    folder = {"reconciliation": {"output_dir": str(out)}} if out is not None else {}
    config = _load(config_path, {"connectors": {"payment_platform": folder}})
    _enabled(config)
    report = _run(_with_parts(config, lambda parts: parts.reconciler.run(when)))
    summary = report["summary"]
    click.echo(
        f"{report['day']}: platform confirmed {summary['platform_confirmed']} "
        f"({summary['platform_total_vnd']} đồng), hub paid {summary['hub_paid']} "
        f"({summary['hub_total_vnd']} đồng), one-stop acknowledged "
        f"{summary['acknowledged_by_one_stop']}"
    )
    for kind, count in summary["findings"].items():
        if count:
            click.echo(f"  {kind}: {count}")
    for path in report.get("files", []):
        click.echo(f"written: {path}", err=True)
    if any(summary["findings"].values()):
        raise SystemExit(3)


async def _with_parts(config: Any, act: Callable[[Payments], Awaitable[T]]) -> T:
    """Run `act` on the payment parts, with the store, broker and HTTP of a CLI command."""
    from connectors.payment_platform.plugin import connector, payment_parts
    from hub.runtime import standalone
    from hub.validation import Validator

    codes = config.assets(connector)
    assert codes is not None  # _enabled checked it
    async with standalone(config, "hub-cli") as parts:
        validator = Validator(config.validation)
        return await act(
            payment_parts(_enabled(config), codes, parts.store, parts.intake, validator, parts.http)
        )


@payments.command("check")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None)
def check(config_path: Path | None) -> None:
    """Ask the platform about pending transactions now (one round)."""
    from hub.cli import _load, _run

    config = _load(config_path)
    _enabled(config)

    done = _run(_with_parts(config, lambda parts: parts.checker.run_once()))
    click.echo(
        f"checked {done.checked}: paid {done.paid}, failed {done.failed}, "
        f"still pending {done.pending}, errors {done.errors}"
    )
    for problem in done.problems:
        click.echo(f"  {problem}", err=True)
    if done.stopped:
        click.echo(f"stopped early: {done.stopped}", err=True)


@payments.command("callbacks")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.option("--refused", is_flag=True, help="Only refused callbacks.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100)
def callbacks(config_path: Path | None, refused: bool, limit: int) -> None:
    """The callback log, newest first (personal data masked)."""
    from connectors.payment_platform.store import SqlitePayments
    from hub.cli import _load, _run
    from hub.store.opening import open_store

    config = _load(config_path)

    async def go() -> list[Any]:
        async with open_store(config.store) as store:
            payments = store.slice("payments", SqlitePayments)
            return await payments.callbacks("refused" if refused else None, limit)

    for row in _run(go()):
        click.echo(
            f"{row.at}\t{row.verdict}\t{row.code or '-'}\t{row.transaction_id or '-'}\t"
            f"{row.reference or '-'}\t{row.reason or ''}"
        )
