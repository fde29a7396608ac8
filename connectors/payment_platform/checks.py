"""Status checks: transactions left pending are asked about again, on a schedule.

A round takes the pending transactions whose time (`ThoiGianGD`) lies in the window (by
default 30 minutes to 3 days old), least recently checked first, asks the platform about each
(`TruyVanGiaoDich`) and applies the answer like a callback: `TrangThaiGD` 1 paid and 4 failed
are recorded and delivered once; 3 leaves it pending for the next round. A transaction older
than the window is left alone and shows in the reconciliation as pending too long. An open
circuit ends the round early; one failing check never stops the others.

This module must never decide the ledger's rules (`ledger`) or speak HTTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from connectors.payment_platform.client import PlatformClient
from connectors.payment_platform.config import StatusCheckConfig
from connectors.payment_platform.mapping import PaymentCodes, read_status
from connectors.payment_platform.store import SqlitePayments
from hub import metrics
from hub.errors import CircuitOpen, CredentialsRefused, HubError
from hub.store.base import Relay
from hub.validation import Validator, item_error

log = structlog.get_logger(__name__)


@dataclass
class CheckRound:
    checked: int = 0
    paid: int = 0
    failed: int = 0
    pending: int = 0
    errors: int = 0
    stopped: str | None = None  # why the round ended early
    problems: list[str] = field(default_factory=list)


class StatusChecker:
    def __init__(
        self,
        client: PlatformClient,
        payments: SqlitePayments,
        codes: PaymentCodes,
        validator: Validator,
        relay: Relay,
        config: StatusCheckConfig,
    ) -> None:
        self.client = client
        self.payments = payments
        self.codes = codes
        self.validator = validator
        self.relay = relay
        self.config = config

    async def run_once(self, now: datetime | None = None) -> CheckRound:
        now = now or datetime.now(UTC)
        cfg = self.config
        due = await self.payments.pending(
            older_than=now - timedelta(seconds=cfg.min_age_s),
            newer_than=now - timedelta(seconds=cfg.max_age_s),
            limit=cfg.batch,
        )
        done = CheckRound()
        for record in due:
            held = record.result
            try:
                reply = await self.client.status(held)
                outcome = "pending"
                if reply is not None:
                    result = read_status(reply, held, self.codes, self.validator)
                    result = result.model_copy(update={"payer_info": held.payer_info})
                    outcome = result.outcome.value
                    if result.outcome.final:
                        recorded = await self.payments.record(result, None)
                        await self.relay(recorded.outbox)
                await self.payments.mark_checked(held)
            except (CircuitOpen, CredentialsRefused) as exc:  # every other check would too
                done.stopped = exc.message
                metrics.PAYMENT_CHECKS.labels("error").inc()
                break
            except Exception as exc:
                problem = exc.message if isinstance(exc, HubError) else item_error(exc).message
                done.errors += 1
                done.problems.append(f"{held.transaction_id}: {problem}")
                metrics.PAYMENT_CHECKS.labels("error").inc()
                log.warning(
                    "payment_status_check_failed",
                    transaction_id=held.transaction_id,
                    dossier_code=held.dossier_code,
                    error=problem,
                )
                continue
            done.checked += 1
            setattr(done, outcome, getattr(done, outcome) + 1)
            metrics.PAYMENT_CHECKS.labels(outcome).inc()
            log.info(
                "payment_status_checked",
                transaction_id=held.transaction_id,
                dossier_code=held.dossier_code,
                outcome=outcome,
            )
        if due:
            log.info(
                "payment_status_round",
                due=len(due),
                checked=done.checked,
                paid=done.paid,
                failed=done.failed,
                pending=done.pending,
                errors=done.errors,
                stopped=done.stopped,
            )
        return done

    async def run_schedule(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # keep checking: one bad round must not end the schedule
                log.exception("payment_status_round_failed")
            await asyncio.sleep(self.config.interval_s)
