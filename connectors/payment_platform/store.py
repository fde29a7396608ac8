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
        """Apply one result; with `callback` (masked), also log the callback that carried it.
        Callbacks arriving together are folded together (`SqliteStore.merged`, `_record_all`):
        a handful of statements and one commit for all; each is answered after it."""
        recorded: Recorded = await self._store.merged("payments", _record_all, (result, callback))
        return recorded

    async def refuse(
        self, code: str, reason: str, callback: dict[str, Any], key: tuple[str, str]
    ) -> None:
        """Log a refused callback (masked) where operators see it."""
        async with self._store.transaction() as db:
            await db.execute(
                _CALLBACK_SQL, _callback_row("refused", code, reason, key[0], key[1], callback)
            )

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


_UPSERT_PAYMENT_SQL = (
    "INSERT INTO payments (transaction_id, reference, dossier_code, day, paid_at, "
    "outcome, amount_vnd, currency, result_json, first_seen_at, updated_at, "
    "event_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (transaction_id, reference) DO UPDATE SET "
    "outcome=excluded.outcome, amount_vnd=excluded.amount_vnd, "
    "currency=excluded.currency, result_json=excluded.result_json, "
    "paid_at=excluded.paid_at, day=excluded.day, "
    "updated_at=excluded.updated_at, event_id=excluded.event_id"
)
_CALLBACK_SQL = (
    "INSERT INTO payment_callbacks (at, verdict, code, reason, transaction_id, reference, "
    "body_json) VALUES (?,?,?,?,?,?,?)"
)
Call = tuple[PaymentResult, dict[str, Any] | None]


async def _record_all(db: aiosqlite.Connection, items: list[Call]) -> list[Recorded]:
    """Results applied in the order they came, as one by one (`ledger.decide` against what
    is held, earlier results of the same group included), with one read of the held rows,
    one write of the transaction rows, one of the outbox rows and one of the callback rows."""
    now = _now()
    keys = sorted({result.key for result, _ in items})
    marks = ",".join("(?,?)" for _ in keys)
    rows = await db.execute_fetchall(
        "SELECT transaction_id, reference, result_json FROM payments "  # noqa: S608
        f"WHERE (transaction_id, reference) IN (VALUES {marks})",
        [part for key in keys for part in key],
    )
    held_now = {(r[0], r[1]): PaymentResult.model_validate_json(r[2]) for r in rows}
    upserts: dict[tuple[str, str], tuple[Any, ...]] = {}
    events: list[tuple[int, dict[str, Any]]] = []  # (item index, event)
    logs: list[tuple[Any, ...]] = []
    decided: list[tuple[Verdict, PaymentResult | None]] = []
    for index, (result, callback) in enumerate(items):
        held = held_now.get(result.key)
        verdict = decide(held, result)
        decided.append((verdict, held))
        if verdict.changes:
            held_now[result.key] = result
            upserts[result.key] = _payment_row(result, now)
        if delivers(verdict, result):
            events.append((index, result.event()))
        if callback is not None:
            accepted = verdict is not Verdict.CONFLICT
            logs.append(
                _callback_row(
                    ("accepted" if verdict.changes else "duplicate") if accepted else "refused",
                    None if accepted else "conflict",
                    None if accepted else "the platform already reported another result",
                    result.transaction_id,
                    result.reference,
                    callback,
                )
            )
    if upserts:
        await db.executemany(_UPSERT_PAYMENT_SQL, list(upserts.values()))
    outbox: list[list[OutboxMessage]] = [[] for _ in items]
    if events:
        ids = await _insert_outbox(db, [event for _, event in events])
        for (index, event), row_id in zip(events, ids, strict=True):
            outbox[index].append(OutboxMessage(row_id, event["type"], event))
    if logs:
        await db.executemany(_CALLBACK_SQL, logs)
    return [Recorded(verdict, outbox[index], held) for index, (verdict, held) in enumerate(decided)]


def _payment_row(result: PaymentResult, now: str) -> tuple[Any, ...]:
    return (
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
        result.event_id() if result.outcome.final else None,
    )


async def _insert_outbox(db: aiosqlite.Connection, events: list[dict[str, Any]]) -> list[int]:
    """The events' outbox rows, written in one statement; their ids in the events' order
    (RETURNING's order is not promised: each row is found again by its body, which names
    its event)."""
    bodies = [json.dumps(event, ensure_ascii=False) for event in events]
    values = ",".join("(?,?,?)" for _ in bodies)
    params = [
        p
        for event, body in zip(events, bodies, strict=True)
        for p in (event["type"], body, time.time())
    ]
    rows = await db.execute_fetchall(
        f"INSERT INTO outbox (routing_key, body, created_at) VALUES {values} "  # noqa: S608
        "RETURNING id, body",
        params,
    )
    by_body: dict[str, list[int]] = {}
    for row_id, body in sorted((r[0], r[1]) for r in rows):
        by_body.setdefault(body, []).append(row_id)
    return [by_body[body].pop(0) for body in bodies]


def _callback_row(
    verdict: str,
    code: str | None,
    reason: str | None,
    transaction_id: str | None,
    reference: str | None,
    body: dict[str, Any],
) -> tuple[Any, ...]:
    return (
        _now(),
        verdict,
        code,
        reason,
        (transaction_id or "")[:100] or None,
        (reference or "")[:100] or None,
        json.dumps(body, ensure_ascii=False),
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
