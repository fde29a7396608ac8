"""The canonical payment result: what the hub stores and tells the one-stop system.

One `PaymentResult` per platform transaction (`transaction_id` + `reference`). `outcome` is
`paid`, `pending` or `failed`; only `paid` and `failed` are final and delivered (events
`payment.paid`, `payment.failed`); a pending transaction is re-checked with the platform.
Amounts are whole đồng. `payer_info` is the platform's free text and may name the payer: it is
personal data, masked everywhere but in the delivery itself.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.text import Printable


class PaymentOutcome(StrEnum):
    PAID = "paid"
    PENDING = "pending"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self is not PaymentOutcome.PENDING


class PaymentSource(StrEnum):
    CALLBACK = "callback"
    STATUS_CHECK = "status_check"
    RECONCILIATION = "reconciliation"


class PaymentResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: Printable = Field(min_length=1, max_length=100, description="MaThamChieu")
    dossier_code: str = Field(min_length=1, max_length=100)
    transaction_id: Printable = Field(min_length=1, max_length=100, description="MaGiaoDich")
    amount_vnd: int = Field(ge=0, le=10**13)
    currency: str = "VND"
    bank: Printable = Field("", max_length=50, description="MaNganHang")
    paid_at: AwareDatetime = Field(description="ThoiGianGD: when the transaction happened")
    outcome: PaymentOutcome
    platform_code: str = Field("", max_length=10, description="MaLoi or TrangThaiGD as sent")
    source: PaymentSource
    payer_info: Printable = Field(
        "", max_length=2000, description="ThongTinGiaoDich (personal data)"
    )

    @property
    def key(self) -> tuple[str, str]:
        return (self.transaction_id, self.reference)

    def same_result(self, other: PaymentResult) -> bool:
        """True when `other` says the same thing: a repeat, not a change."""
        return (other.outcome, other.amount_vnd, other.currency) == (
            self.outcome,
            self.amount_vnd,
            self.currency,
        )

    def event_id(self) -> str:
        """Stable per transaction and outcome, so a repeat is never announced under a new id."""
        raw = "\x1f".join(("payment", self.transaction_id, self.reference, self.outcome))
        return "pay-" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]

    def event(self) -> dict[str, Any]:
        """The `payment.<outcome>` event delivered to the one-stop system."""
        return {
            "event_id": self.event_id(),
            "type": f"payment.{self.outcome}",
            "occurred_at": self.paid_at.isoformat(),
            "dossier_code": self.dossier_code,
            "payment": self.model_dump(mode="json"),
        }


class PaymentRecord(BaseModel):
    """A stored transaction, as the API and the reconciliation read it."""

    model_config = ConfigDict(frozen=True)

    result: PaymentResult
    first_seen_at: datetime
    updated_at: datetime
    checks: int = 0
    checked_at: datetime | None = None
    event_id: str | None = None
    acknowledged_at: datetime | None = None  # when the one-stop confirmed the event
