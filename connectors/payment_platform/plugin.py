"""The `payment_platform` connector: the platform's callback door, the status checks of
pending transactions, the daily reconciliation, the payments API and its dashboard page.
Its results travel on the subscriber's queue (`deliver_to`): it has no queue of its own."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import click

from connectors.payment_platform.api import PaymentsApi
from connectors.payment_platform.checks import StatusChecker
from connectors.payment_platform.client import PlatformClient
from connectors.payment_platform.config import PaymentPlatformConfig
from connectors.payment_platform.dashboard import payments_flow
from connectors.payment_platform.mapping import PaymentCodes
from connectors.payment_platform.reconcile import Reconciler, run_daily
from connectors.payment_platform.routes import CallbackDoor
from connectors.payment_platform.store import SqlitePayments
from hub.config import HubConfig
from hub.intake import Intake
from hub.plugins import Connector, ConnectorContext
from hub.store.sqlite import SqliteStore
from hub.subscribers import destination_problems
from hub.validation import Validator

NAME = "payment_platform"
EVENTS = ("payment.paid", "payment.failed")


@dataclass(frozen=True)
class Payments:
    door: CallbackDoor
    checker: StatusChecker
    reconciler: Reconciler


class PaymentPlatform(Connector):
    name = NAME
    config_model = PaymentPlatformConfig
    migrations = "connectors.payment_platform"
    locale = "connectors.payment_platform"
    page = "payments"

    def check(
        self, section: PaymentPlatformConfig, config: HubConfig
    ) -> list[tuple[tuple[str, ...], str]]:
        if not section.enabled:
            return []
        where = ("connectors", NAME, "deliver_to")
        return destination_problems(
            config.subscribers, section.deliver_to, EVENTS, where, "payment.#"
        )

    def load(self, section: PaymentPlatformConfig, config: Any, deep: bool) -> PaymentCodes | None:
        if not section.enabled:
            return None
        return PaymentCodes.load(config.mappings_dir / f"{section.mapping}.yaml")

    def store_slices(self, store: SqliteStore) -> dict[str, Any]:
        return {"payments": SqlitePayments(store)}

    def describe(self, section: PaymentPlatformConfig) -> list[str]:
        if not section.enabled:
            return []
        return [
            f"payment platform: {section.base_url}, mapping {section.mapping}; "
            f"results to {section.deliver_to}"
        ]

    def commands(self) -> list[click.Command]:
        from connectors.payment_platform.cli import payments

        return [payments]

    def openapi(self) -> dict[str, Any]:
        from connectors.payment_platform.openapi import paths

        return paths()

    async def start(self, context: ConnectorContext) -> None:
        cfg: PaymentPlatformConfig = context.config
        slice_ = context.store.slice("payments", SqlitePayments)
        pay = None
        if context.assets is not None:
            pay = payment_parts(
                cfg, context.assets, context.store, context.intake, context.validator, context.http
            )
            context.watch(NAME, pay.checker.client.guard)
            context.on_stop(pay.door.close)
            if cfg.status_check.enabled:
                context.duty(pay.checker.run_schedule, "checks")
            if cfg.reconciliation.enabled:
                context.duty(partial(run_daily, pay.reconciler), "reconciliation")
            context.add_routes(pay.door.routes())
        context.add_flow(self.page, _flow if pay else None)
        api = PaymentsApi(
            context.auth, slice_, pay.checker if pay else None, pay.reconciler if pay else None
        )
        context.add_routes(api.routes())


def _flow(reader: SqliteStore) -> Any:
    return payments_flow(reader.slice("payments", SqlitePayments))


def payment_parts(
    cfg: PaymentPlatformConfig,
    codes: PaymentCodes,
    store: SqliteStore,
    intake: Intake,
    validator: Validator,
    http: aiohttp.ClientSession,
) -> Payments:
    """The payment platform's door, status checker and reconciler, sharing one client."""
    payments = store.slice("payments", SqlitePayments)
    payments.subscriber = cfg.deliver_to
    client = PlatformClient(cfg, http)
    return Payments(
        door=CallbackDoor(cfg, codes, validator, payments, intake),
        checker=StatusChecker(client, payments, codes, validator, intake.relay, cfg.status_check),
        reconciler=Reconciler(cfg, client, store, codes, validator, intake.relay),
    )


connector = PaymentPlatform()
