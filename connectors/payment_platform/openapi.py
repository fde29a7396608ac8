"""The payments API's paths in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from hub.openapi import errors, get_op, param


def paths() -> dict[str, Any]:
    day = param("date", "query", "string", format="date")
    report = (
        "the report: day, generated_at, summary (platform_confirmed, platform_total_vnd, "
        "hub_paid, hub_total_vnd, acknowledged_by_one_stop, findings per kind) and findings "
        "(kind, dossier_code, reference, transaction_id, hub_outcome, platform_outcome, "
        "hub_amount_vnd, platform_amount_vnd, expected_vnd, currency, detail); "
        "text/csv with format=csv"
    )
    fmt = param("format", "query", "string", enum=["json", "csv"])
    return {
        "/api/v1/payments": get_op(
            "Payment transactions of a dossier or a local day (payments.read)",
            "payments: PaymentRecord items, payer information masked",
            [param("dossier_code", "query", "string"), day],
            400, 401, 403,
        ),
        "/api/v1/payments/callbacks": get_op(
            "The payment platform's callbacks, newest first: accepted, duplicate, refused",
            "callbacks (id, at, verdict, code, reason, transaction_id, reference, body masked)",
            [
                param("verdict", "query", "string", enum=["accepted", "duplicate", "refused"]),
                param("limit", "query", "integer", minimum=1, maximum=1000),
            ],
            400, 401, 403,
        ),
        "/api/v1/payments/reconciliation": {
            **get_op("The stored reconciliation report of a day", report, [day, fmt],
                   400, 401, 403, 404),
            "post": {
                "summary": "Reconcile a day now (payments.reconcile)",
                "parameters": [day, fmt],
                "responses": {
                    "200": {"description": report, "content": {"application/json": {}}},
                    **errors(400, 401, 403, 409, 502),
                },
            },
        },
        "/api/v1/payments/status-checks": {
            "post": {
                "summary": "Check pending transactions with the platform now (payments.reconcile)",
                "responses": {
                    "200": {
                        "description": "checked, paid, failed, pending, errors, stopped, problems",
                        "content": {"application/json": {}},
                    },
                    **errors(401, 403, 409),
                },
            }
        },
    }  # fmt: skip
