"""The dashboard page of payments: the callback log and the latest reconciliation report."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from connectors.payment_platform.store import SqlitePayments
from hub.dashboard.flows import ROWS, recent_days, table
from hub.plugins import Flow


def payments_flow(store: SqlitePayments) -> Flow:
    async def read() -> dict[str, Any]:
        report: dict[str, Any] | None = None
        for day in recent_days(datetime.now(UTC).date(), 3):
            report = await store.report(day)
            if report:
                break
        callbacks = [asdict(c) for c in await store.callbacks(None, ROWS)]
        summary = {k: v for k, v in (report or {}).items() if not isinstance(v, list | dict)}
        findings = (report or {}).get("findings") or []
        return {
            "facts": {"report": summary or None},
            "tables": [
                table(
                    "callbacks",
                    ["at", "verdict", "code", "reason", "transaction_id", "reference"],
                    callbacks,
                ),
                table(
                    "findings",
                    sorted({k for f in findings if isinstance(f, dict) for k in f}),
                    findings if isinstance(findings, list) else [],
                ),
            ],
        }

    return read
