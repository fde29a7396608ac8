"""The payment half of the SQLite store: transactions, callbacks, reconciliation reports.

It shares the `SqliteStore`'s connection and lock. `record` applies what `ledger.decide` says
in one commit (shared with the callbacks that arrive meanwhile: a group commit, each
callback's writes in a savepoint of their own): the transaction row, the callback row and,
for a new final outcome, the `payment.<outcome>` event in the outbox; a crash at any instant
leaves all of it or none, and the platform is answered `00` only after that commit. It must
never decide a ledger rule itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiosqlite

from connectors.payment_platform.ledger import Verdict, decide, delivers
from hub.store.base import OutboxMessage
from hub.validation import VN_TZ
from schemas.payment import PaymentRecord, PaymentResult

if TYPE_CHECKING:
    from hub.store.sqlite import SqliteStore

_COLUMNS = (
    "result_json, first_seen_at, updated_at, checks, checked_at, event_id, "
    "(SELECT delivered_at FROM subscriber_deliveries s WHERE s.subscriber = ? "
    "AND s.event_id = payments.event_id) AS acknowledged_at"
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Recorded:
    verdict: Verdict
    outbox: list[OutboxMessage]
    held: PaymentResult | None  # what the hub held before (for a conflict's message)


@dataclass(frozen=True)
class CallbackRow:
    id: int
    at: str
    verdict: str
    code: str | None
    reason: str | None
    transaction_id: str | None
    reference: str | None
    body: dict[str, Any]


class SqlitePayments:
    def __init__(self, store: SqliteStore, subscriber: str = "one_stop") -> None:
        self._store = store
        # Whose confirmation counts as "the one-stop acknowledged" (config `deliver_to`).
        self.subscriber = subscriber

    async def record(self, result: PaymentResult, callback: dict[str, Any] | None) -> Recorded:
        """Apply one result; with `callback` (masked), also log the callback that carried it."""
        now = _now()

        async def work(db: aiosqlite.Connection) -> Recorded:
            rows = list(
                await db.execute_fetchall(
                    "SELECT result_json FROM payments WHERE transaction_id = ? AND reference = ?",
                    result.key,
                )
            )
            held = PaymentResult.model_validate_json(rows[0][0]) if rows else None
            verdict = decide(held, result)
            outbox: list[OutboxMessage] = []
            if verdict.changes:
                event_id = result.event_id() if result.outcome.final else None
                await db.execute(
                    "INSERT INTO payments (transaction_id, reference, dossier_code, day, paid_at, "
                    "outcome, amount_vnd, currency, result_json, first_seen_at, updated_at, "
                    "event_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT (transaction_id, reference) DO UPDATE SET "
                    "outcome=excluded.outcome, amount_vnd=excluded.amount_vnd, "
                    "currency=excluded.currency, result_json=excluded.result_json, "
                    "paid_at=excluded.paid_at, day=excluded.day, "
                    "updated_at=excluded.updated_at, event_id=excluded.event_id",
                    (
                        result.transaction_id,
                        result.reference,
                        result.dossier_code,
                        result.paid_at.astimezone(VN_TZ).date().isoformat(),
                        result.paid_at.astimezone(UTC).isoformat(),
                        result.outcome.value,
                        result.amount_vnd,
                        result.currency,
                        result.model_dump_json(),
                        now,
                        now,
                        event_id,
                    ),
                )
            if delivers(verdict, result):
                event = result.event()
                body = json.dumps(event, ensure_ascii=False)
                ids = await db.execute_fetchall(
                    "INSERT INTO outbox (routing_key, body, created_at) VALUES (?,?,?) "
                    "RETURNING id",
                    (event["type"], body, time.time()),
                )
                outbox.append(OutboxMessage(next(iter(ids))[0], event["type"], event))
            if callback is not None:
                accepted = verdict is not Verdict.CONFLICT
                await _log_callback(
                    db,
                    ("accepted" if verdict.changes else "duplicate") if accepted else "refused",
                    None if accepted else "conflict",
                    None if accepted else "the platform already reported another result",
                    result.transaction_id,
                    result.reference,
                    callback,
                )
            return Recorded(verdict, outbox, held)

        # Callbacks arriving together share one commit (`SqliteStore.grouped`); each is
        # answered only after it.
        return await self._store.grouped(work)

    async def refuse(
        self, code: str, reason: str, callback: dict[str, Any], key: tuple[str, str]
    ) -> None:
        """Log a refused callback (masked) where operators see it."""
        async with self._store.transaction() as db:
            await _log_callback(db, "refused", code, reason, key[0], key[1], callback)

    async def known_dossiers(self, codes: list[str]) -> set[str]:
        return await self._store.known_dossiers(codes)

    async def pending(
        self, older_than: datetime, newer_than: datetime, limit: int
    ) -> list[PaymentRecord]:
        """Pending transactions in the status-check window, least recently checked first."""
        return await self._select(
            "WHERE outcome = 'pending' AND paid_at <= ? AND paid_at >= ? "
            "ORDER BY checked_at IS NOT NULL, checked_at, id LIMIT ?",
            (_utc(older_than), _utc(newer_than), limit),
        )

    async def mark_checked(self, result: PaymentResult) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "UPDATE payments SET checks = checks + 1, checked_at = ? "
                "WHERE transaction_id = ? AND reference = ?",
                (_now(), *result.key),
            )

    async def on_day(self, day: str) -> list[PaymentRecord]:
        return await self._select("WHERE day = ? ORDER BY id", (day,))

    async def for_dossiers(self, codes: list[str]) -> list[PaymentRecord]:
        if not codes:
            return []
        marks = ",".join("?" * len(codes))
        return await self._select(f"WHERE dossier_code IN ({marks}) ORDER BY id", tuple(codes))

    async def pending_before(self, cutoff: datetime) -> list[PaymentRecord]:
        return await self._select(
            "WHERE outcome = 'pending' AND paid_at < ? ORDER BY id", (_utc(cutoff),)
        )

    async def recent(self, limit: int) -> list[PaymentRecord]:
        """The newest `limit` transactions, newest first (the dashboard's page)."""
        return await self._select("ORDER BY id DESC LIMIT ?", (limit,))

    async def get(self, transaction_id: str, reference: str) -> PaymentRecord | None:
        rows = await self._select(
            "WHERE transaction_id = ? AND reference = ?", (transaction_id, reference)
        )
        return rows[0] if rows else None

    async def callbacks(self, verdict: str | None, limit: int) -> list[CallbackRow]:
        where = "WHERE verdict = ? " if verdict else ""
        params: tuple[Any, ...] = (verdict, limit) if verdict else (limit,)
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT id, at, verdict, code, reason, transaction_id, reference, body_json "  # noqa: S608
                f"FROM payment_callbacks {where}ORDER BY id DESC LIMIT ?",
                params,
            )
        return [
            CallbackRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows
        ]

    async def save_report(self, day: str, report: dict[str, Any]) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO reconciliation_reports VALUES (?,?,?) ON CONFLICT(day) DO UPDATE "
                "SET created_at=excluded.created_at, report_json=excluded.report_json",
                (day, _now(), json.dumps(report, ensure_ascii=False)),
            )

    async def report(self, day: str) -> dict[str, Any] | None:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT report_json FROM reconciliation_reports WHERE day = ?", (day,)
            )
        row = next(iter(rows), None)
        return json.loads(row[0]) if row else None

    async def _select(self, where: str, params: tuple[Any, ...]) -> list[PaymentRecord]:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                f"SELECT {_COLUMNS} FROM payments {where}",  # noqa: S608
                (self.subscriber, *params),
            )
        return [_record(r) for r in rows]


async def _log_callback(
    db: Any,
    verdict: str,
    code: str | None,
    reason: str | None,
    transaction_id: str | None,
    reference: str | None,
    body: dict[str, Any],
) -> None:
    await db.execute(
        "INSERT INTO payment_callbacks (at, verdict, code, reason, transaction_id, reference, "
        "body_json) VALUES (?,?,?,?,?,?,?)",
        (
            _now(),
            verdict,
            code,
            reason,
            (transaction_id or "")[:100] or None,
            (reference or "")[:100] or None,
            json.dumps(body, ensure_ascii=False),
        ),
    )


def _utc(moment: datetime) -> str:
    """Stored times are UTC ISO strings, so they compare as text."""
    return moment.astimezone(UTC).isoformat()


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _record(row: Any) -> PaymentRecord:
    return PaymentRecord(
        result=PaymentResult.model_validate_json(row[0]),
        first_seen_at=datetime.fromisoformat(row[1]),
        updated_at=datetime.fromisoformat(row[2]),
        checks=row[3],
        checked_at=_when(row[4]),
        event_id=row[5],
        acknowledged_at=_when(row[6]),
    )
