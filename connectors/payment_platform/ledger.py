"""What a payment result does to the transaction the hub already holds. Pure.

One transaction (`MaGiaoDich` + `MaThamChieu`) moves at most once from pending to a final
outcome, and a final outcome never changes:

| held      | incoming                    | verdict    | effect                              |
|-----------|-----------------------------|------------|-------------------------------------|
| nothing   | any                         | `new`      | stored; delivered if final          |
| pending   | final                       | `resolved` | updated; delivered                  |
| pending   | pending                     | `duplicate`| nothing                             |
| final     | the same outcome and amount | `duplicate`| nothing                             |
| final     | pending                     | `duplicate`| nothing (an older message, late)    |
| final     | another outcome or amount   | `conflict` | nothing; refused and shown          |

A conflict is not guessed away: a platform that says "paid 150,000" and then "failed", or
another amount, for one transaction needs a person (and shows in the reconciliation).
"""

from __future__ import annotations

from enum import StrEnum

from schemas.payment import PaymentResult


class Verdict(StrEnum):
    NEW = "new"
    RESOLVED = "resolved"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"

    @property
    def changes(self) -> bool:
        return self in (Verdict.NEW, Verdict.RESOLVED)


def decide(held: PaymentResult | None, incoming: PaymentResult) -> Verdict:
    if held is None:
        return Verdict.NEW
    if not held.outcome.final:
        return Verdict.RESOLVED if incoming.outcome.final else Verdict.DUPLICATE
    if not incoming.outcome.final or held.same_result(incoming):
        return Verdict.DUPLICATE
    return Verdict.CONFLICT


def delivers(verdict: Verdict, incoming: PaymentResult) -> bool:
    """True when this result must reach the one-stop system (a new final outcome)."""
    return verdict.changes and incoming.outcome.final
