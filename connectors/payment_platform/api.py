"""The payments API: what the hub holds of fee payments, refused callbacks, reconciliation.

* `GET /api/v1/payments?dossier_code=<code>` or `?date=YYYY-MM-DD`: transactions, with
  whether the one-stop system acknowledged each;
* `GET /api/v1/payments/callbacks?verdict=refused&limit=<n>`: the callback log, newest first
  (`accepted`, `duplicate`, `refused` with its code and reason), personal data masked;
* `GET /api/v1/payments/reconciliation?date=YYYY-MM-DD[&format=csv]`: the stored report of a
  day, 404 if that day was never reconciled; `POST` the same path to reconcile it now;
* `POST /api/v1/payments/status-checks`: check the pending transactions now (one round).

Reading needs `payments.read`; reconciling and checking need `payments.reconcile`.
This module must never change a payment itself: the checker and the reconciler do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import structlog
from aiohttp import web

from connectors.payment_platform.checks import StatusChecker
from connectors.payment_platform.models import (
    Callbacks,
    CheckRound,
    Payments,
    ReconciliationReport,
)
from connectors.payment_platform.reconcile import Reconciler, to_csv
from connectors.payment_platform.store import SqlitePayments
from hub.api import authorize
from hub.auth import Authenticator
from hub.downloads import download_headers
from hub.errors import HubError
from hub.httputil import error_response, reply
from hub.masking import mask
from schemas.payment import PaymentRecord

log = structlog.get_logger(__name__)

MAX_LIMIT = 1000
VERDICTS = ("accepted", "duplicate", "refused")


def _day(request: web.Request) -> date | web.Response:
    text = request.query.get("date")
    if not text:
        return error_response(400, "missing_date", "give ?date=YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        return error_response(400, "bad_date", f"date must be YYYY-MM-DD, got {text[:40]!r}")


def payment_json(record: PaymentRecord) -> dict[str, Any]:
    """A stored transaction as operators and systems may see it (payer info masked)."""
    data = record.model_dump(mode="json")
    masked = mask(data)
    return masked if isinstance(masked, dict) else {}


@dataclass
class PaymentsApi:
    auth: Authenticator
    payments: SqlitePayments
    checker: StatusChecker | None
    reconciler: Reconciler | None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/payments", self.list_payments),
            web.get("/api/v1/payments/callbacks", self.callbacks),
            web.get("/api/v1/payments/reconciliation", self.report),
            web.post("/api/v1/payments/reconciliation", self.reconcile),
            web.post("/api/v1/payments/status-checks", self.check_now),
        ]

    async def list_payments(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "payments.read"), web.Response):
            return denied
        code = request.query.get("dossier_code")
        if code:
            records = await self.payments.for_dossiers([code[:100]])
        elif "date" in request.query:
            if isinstance(day := _day(request), web.Response):
                return day
            records = await self.payments.on_day(day.isoformat())
        else:
            return error_response(
                400, "missing_filter", "give ?dossier_code=<code> or ?date=YYYY-MM-DD"
            )
        return reply(Payments, {"payments": [payment_json(r) for r in records]})

    async def callbacks(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "payments.read"), web.Response):
            return denied
        verdict = request.query.get("verdict")
        if verdict is not None and verdict not in VERDICTS:
            return error_response(400, "bad_verdict", f"verdict must be one of {list(VERDICTS)}")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return error_response(400, "bad_limit", "limit must be a whole number")
        if not 1 <= limit <= MAX_LIMIT:
            return error_response(400, "bad_limit", f"limit must be between 1 and {MAX_LIMIT}")
        rows = await self.payments.callbacks(verdict, limit)
        return reply(Callbacks, {"callbacks": [r.__dict__ for r in rows]})

    async def report(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "payments.read"), web.Response):
            return denied
        if isinstance(day := _day(request), web.Response):
            return day
        report = await self.payments.report(day.isoformat())
        if report is None:
            return error_response(
                404,
                "not_reconciled",
                f"{day} has not been reconciled; POST this path or run "
                f"`hub payments reconcile --date {day}`",
            )
        return self._render(request, report)

    async def reconcile(self, request: web.Request) -> web.Response:
        who = authorize(self.auth, request, "payments.reconcile")
        if isinstance(who, web.Response):
            return who
        if isinstance(day := _day(request), web.Response):
            return day
        if self.reconciler is None:
            return error_response(409, "disabled", "the payment platform connector is not enabled")
        try:
            report = await self.reconciler.run(day)
        except HubError as exc:
            return error_response(502, "platform_failed", exc.message)
        log.info("reconciliation_requested", source=who.name, day=day.isoformat())
        return self._render(request, report)

    async def check_now(self, request: web.Request) -> web.Response:
        who = authorize(self.auth, request, "payments.reconcile")
        if isinstance(who, web.Response):
            return who
        if self.checker is None:
            return error_response(409, "disabled", "the payment platform connector is not enabled")
        done = await self.checker.run_once()
        log.info("status_checks_requested", source=who.name, checked=done.checked)
        return reply(CheckRound, done.__dict__)

    @staticmethod
    def _render(request: web.Request, report: dict[str, Any]) -> web.Response:
        if request.query.get("format") == "csv":
            name = f"reconciliation-{report['day']}.csv"
            return web.Response(
                body=to_csv(report).encode(),
                headers=download_headers(name, "text/csv", charset="utf-8"),
            )
        return reply(ReconciliationReport, report)
