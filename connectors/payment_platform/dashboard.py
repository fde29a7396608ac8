"""The dashboard page of payments: the transactions, the callback log (refused callbacks with
their reason), the latest reconciliation report and its findings, and the state and outages
of the hub's calls to the platform (status checks, reconciliation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.payment_platform.store import SqlitePayments
from hub.dashboard.flows import WINDOW, Column, fact, recent_days, table
from hub.plugins import Flow
from schemas.payment import PaymentRecord

NAME = "payment_platform"


def _row(record: PaymentRecord) -> dict[str, Any]:
    r = record.result
    return {
        "first_seen_at": record.first_seen_at.isoformat(),
        "paid_at": r.paid_at.isoformat(),
        "dossier_code": r.dossier_code,
        "reference": r.reference,
        "transaction_id": r.transaction_id,
        "amount_vnd": r.amount_vnd,
        "outcome": r.outcome.value,
        "source": r.source.value,
        "bank": r.bank,
        "checks": record.checks,
        "acknowledged_at": record.acknowledged_at.isoformat() if record.acknowledged_at else None,
    }


def payments_flow(store: SqlitePayments) -> Flow:
    async def read() -> dict[str, Any]:
        report: dict[str, Any] | None = None
        for day in recent_days(datetime.now(UTC).date(), 3):
            report = await store.report(day)
            if report:
                break
        summary = (report or {}).get("summary") or {}
        findings = (report or {}).get("findings") or []
        callbacks = await store.callbacks(None, WINDOW)
        return {
            "facts": [
                fact(
                    "refused_callbacks",
                    sum(1 for c in callbacks if c.verdict == "refused"),
                    "number",
                ),
                fact("report_day", (report or {}).get("day")),
                fact("platform_total", summary.get("platform_total_vnd"), "money"),
                fact("hub_total", summary.get("hub_total_vnd"), "money"),
                fact("findings", summary.get("findings"), "counts"),
            ],
            "tables": [
                table(
                    "payments",
                    [
                        Column("first_seen_at", "time"),
                        Column("paid_at", "time"),
                        Column("dossier_code", "dossier"),
                        Column("amount_vnd", "money"),
                        Column("outcome", "value", filter=True),
                        Column("source", "value", filter=True),
                        Column("reference", "id"),
                        Column("transaction_id", "id"),
                        Column("checks", "number"),
                        Column("acknowledged_at", "time"),
                    ],
                    [_row(p) for p in await store.recent(WINDOW)],
                ),
                table(
                    "callbacks",
                    [
                        Column("at", "time"),
                        Column("verdict", "value", filter=True),
                        Column("code", "value", filter=True),  # the refusal in words
                        Column("reason", "detail"),  # the hub's own text, folded away
                        Column("transaction_id", "id"),
                        Column("reference", "id"),
                    ],
                    callbacks,
                ),
                table(
                    "findings",
                    [
                        Column("kind", "value", filter=True),
                        Column("dossier_code", "dossier"),
                        Column("reference", "id"),
                        Column("transaction_id", "id"),
                        Column("hub_outcome", "value"),
                        Column("platform_outcome", "value"),
                        Column("hub_amount_vnd", "money"),
                        Column("platform_amount_vnd", "money"),
                        Column("detail"),
                    ],
                    findings if isinstance(findings, list) else [],
                ),
            ],
            "connectors": [NAME],
        }

    return read
