"""The payments API's reply bodies: `api` replies through them and the OpenAPI fragment
(`connectors.payment_platform.openapi`) names them. A transaction is the canonical
`schemas.payment.PaymentRecord`, payer information masked. The platform's callback speaks the
platform's protocol (PROTOCOL.md beside this file), not these. This module must never read
the store.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.api import Reply
from schemas.payment import PaymentRecord

FindingKind = Literal[
    "missing_at_hub",
    "missing_at_one_stop",
    "unconfirmed_by_platform",
    "status_mismatch",
    "amount_mismatch",
    "time_mismatch",
    "currency_mismatch",
    "fee_mismatch",
    "duplicate",
    "pending_too_long",
    "unreadable",
]


class Payments(Reply):
    """Transactions, payer information masked."""

    payments: list[PaymentRecord]


class CallbackEntry(Reply):
    id: int
    at: str
    verdict: Literal["accepted", "duplicate", "refused"]
    code: str | None = Field(description="why it was refused")
    reason: str | None
    transaction_id: str | None
    reference: str | None
    body: dict[str, Any] = Field(description="the callback's fields, masked and cut short")


class Callbacks(Reply):
    """The platform's callbacks, newest first."""

    callbacks: list[CallbackEntry]


class Summary(Reply):
    platform_confirmed: int
    platform_total_vnd: int
    hub_paid: int
    hub_total_vnd: int
    acknowledged_by_one_stop: int
    findings: dict[FindingKind, int] = Field(description="kind → count, every kind")


class Finding(Reply):
    kind: FindingKind
    dossier_code: str
    reference: str
    transaction_id: str
    hub_outcome: str
    platform_outcome: str
    hub_amount_vnd: int | None
    platform_amount_vnd: int | None
    expected_vnd: int | None
    currency: str
    detail: str


class ReconciliationReport(Reply):
    """A day's reconciliation: what the platform confirmed, the hub paid, the one-stop
    acknowledged, and one finding per difference."""

    day: str
    generated_at: str
    summary: Summary
    findings: list[Finding]
    files: list[str] | None = Field(
        None, description="right after a run: where its JSON and CSV were written"
    )


class CheckRound(Reply):
    """One round of status checks of pending transactions."""

    checked: int
    paid: int
    failed: int
    pending: int
    errors: int
    stopped: str | None = Field(description="why the round ended early")
    problems: list[str]
