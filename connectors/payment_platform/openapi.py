"""The payments API's paths in the OpenAPI document, with the models it replies through
(`connectors.payment_platform.models`). The platform's signed callback is the platform's own
protocol, described in PROTOCOL.md beside this file, not here."""

from __future__ import annotations

from typing import Any

from connectors.payment_platform.models import (
    Callbacks,
    CheckRound,
    Payments,
    ReconciliationReport,
)
from hub.openapi import content, operation, param


def paths() -> dict[str, Any]:
    day = param("date", "query", "string", "a local day", format="date")
    fmt = param("format", "query", "string", "csv: the findings as text/csv", enum=["json", "csv"])
    report = {**content(ReconciliationReport), **content(None, "text/csv")}
    disabled = (409, "the payment platform connector is not enabled")
    return {
        "/api/v1/payments": {"get": operation(
            "Payment transactions of a dossier or a local day (payments.read)",
            Payments,
            (400, "give dossier_code or date (YYYY-MM-DD)"), 401, 403,
            params=[param("dossier_code", "query", "string"), day],
        )},
        "/api/v1/payments/callbacks": {"get": operation(
            "The payment platform's callbacks, newest first: accepted, duplicate, refused "
            "(payments.read)",
            Callbacks,
            400, 401, 403,
            params=[
                param("verdict", "query", "string", enum=["accepted", "duplicate", "refused"]),
                param("limit", "query", "integer", minimum=1, maximum=1000),
            ],
        )},
        "/api/v1/payments/reconciliation": {
            "get": operation(
                "The stored reconciliation report of a day (payments.read)",
                report,
                400, 401, 403, (404, "the day was never reconciled"),
                answer="the stored report",
                params=[day, fmt],
            ),
            "post": operation(
                "Reconcile a day now (payments.reconcile)",
                report,
                400, 401, 403, disabled, (502, "the platform's listing failed"),
                answer="the new report (it replaces the stored one)",
                params=[day, fmt],
            ),
        },
        "/api/v1/payments/status-checks": {"post": operation(
            "Check pending transactions with the platform now (payments.reconcile)",
            CheckRound,
            401, 403, disabled,
        )},
    }  # fmt: skip
