"""The ministry half of the SQLite store: hand-offs, results, cursors, quarantine.

It shares the `SqliteStore`'s connection and lock. `record_results` takes a batch of mapped
results in one commit: each becomes a dossier step (folded like any other event, so DVCQG
hears of it), each new one also a `ministry.result.<system>` event in the outbox for the
subscribers, and the poll cursor that covers them is saved in the same commit, so a crash
re-reads at most what was not yet committed, and a result read twice is a duplicate. It must
never decide whether a result is acceptable: `connectors.ministry.intake` does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hub.store.base import OutboxMessage
from schemas.ministry import MinistryResult

if TYPE_CHECKING:
    import aiosqlite

    from hub.store.sqlite import SqliteStore


_ITEM_CHARS = 20_000  # of a quarantined item's JSON


def _now() -> str:
    return datetime.now(UTC).isoformat()


def result_routing_key(system: str) -> str:
    return f"ministry.result.{system}"


@dataclass(frozen=True)
class Handoff:
    system: str
    dossier_code: str
    procedure_code: str | None
    status: int
    reference: str | None
    submitted_at: str


@dataclass(frozen=True)
class Holder:
    """What decides whether a system may report on a dossier the hub holds."""

    procedure_code: str | None
    handed_off: bool  # to the system asked about


@dataclass(frozen=True)
class Quarantined:
    id: int
    system: str
    via: str
    code: str
    reason: str
    dossier_code: str | None
    item: Any
    first_at: str
    last_at: str
    seen: int


@dataclass(frozen=True)
class Recorded:
    new: set[str]  # event ids of results seen for the first time
    outbox: list[OutboxMessage]  # dossier changes and ministry.result events, to publish
    # (event id, dossier code) → the other dossier an earlier result of that id named
    conflicts: dict[tuple[str, str], str]


class SqliteMinistries:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    # -- hand-offs ------------------------------------------------------------------------------

    async def handed_off(self, system: str, codes: list[str]) -> set[str]:
        if not codes:
            return set()
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT dossier_code FROM ministry_handoffs WHERE system = ? "  # noqa: S608
                f"AND dossier_code IN ({','.join('?' * len(codes))})",
                [system, *codes],
            )
        return {r[0] for r in rows}

    async def holders(self, system: str, codes: list[str]) -> dict[str, Holder]:
        """For each of `codes` the hub holds: its procedure and whether it was handed off to
        `system` (a code the hub does not hold is left out). One read, whatever the answer,
        so what a system may report costs the same to decide for any code."""
        if not codes:
            return {}
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT d.code, json_extract(d.record_json, '$.procedure_code'), "  # noqa: S608
                "h.dossier_code IS NOT NULL FROM dossiers d LEFT JOIN ministry_handoffs h "
                "ON h.system = ? AND h.dossier_code = d.code "
                f"WHERE d.code IN ({','.join('?' * len(codes))})",
                [system, *codes],
            )
        return {r[0]: Holder(r[1], bool(r[2])) for r in rows}

    async def record_handoff(self, handoff: Handoff) -> None:
        """The hand-off, and a line in the dossier's delivery timeline, in one commit."""
        h = handoff
        detail = f"handed off to {h.system}" + (f", receipt {h.reference}" if h.reference else "")
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT OR IGNORE INTO ministry_handoffs VALUES (?,?,?,?,?,?)",
                (h.system, h.dossier_code, h.procedure_code, h.status, h.reference, h.submitted_at),
            )
            code, args = (
                ("handed_off_receipt", {"receipt": h.reference})
                if h.reference
                else (
                    "handed_off",
                    {},
                )
            )
            await db.execute(
                "INSERT INTO deliveries (dossier_code, connector, outcome, detail, reason_code, "
                "reason_args, at) VALUES (?,?,?,?,?,?,?)",
                (
                    h.dossier_code,
                    f"ministry.{h.system}",
                    "delivered",
                    detail,
                    code,
                    json.dumps(args, ensure_ascii=False) if args else None,
                    h.submitted_at,
                ),
            )

    async def handoffs(self, system: str, limit: int = 100) -> list[Handoff]:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT system, dossier_code, procedure_code, status, reference, submitted_at "
                "FROM ministry_handoffs WHERE system = ? ORDER BY submitted_at DESC LIMIT ?",
                (system, limit),
            )
        return [Handoff(*r) for r in rows]

    # -- results --------------------------------------------------------------------------------

    async def record_results(
        self, system: str, results: list[MinistryResult], cursor: str | None = None
    ) -> Recorded:
        from hub.store.sqlite import ingest_in  # the core store imports this module

        received = datetime.now(UTC)
        async with self._store.transaction() as db:
            conflicts = await _conflicts(db, results)
            results = [r for r in results if (r.event_id, r.dossier_code) not in conflicts]
            ingest = await ingest_in(db, [r.to_event() for r in results], received)
            new = {
                r.event_id
                for r, outcome in zip(results, ingest.results, strict=True)
                if not outcome.duplicate
            }
            fresh = [r for r in results if r.event_id in new]
            outbox = ingest.outbox + await _enqueue_results(db, system, fresh)
            if cursor is not None:
                await _save_cursor(db, system, cursor)
        return Recorded(new, outbox, conflicts)

    async def cursor(self, system: str) -> str | None:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT cursor FROM ministry_cursors WHERE system = ?", (system,)
            )
        return next((r[0] for r in rows), None)

    async def save_cursor(self, system: str, cursor: str) -> None:
        async with self._store.transaction() as db:
            await _save_cursor(db, system, cursor)

    # -- quarantine -----------------------------------------------------------------------------

    async def quarantine(
        self,
        system: str,
        fingerprint: str,
        via: str,
        code: str,
        reason: str,
        dossier_code: str | None,
        item_masked: Any,
    ) -> None:
        """Keep a refused result where operators see it; the same one again counts `seen`."""
        now = _now()
        # A lone surrogate (from a JSON escape) kept as "?": no UTF-8 store or reply holds it.
        item_json = json.dumps(item_masked, ensure_ascii=False, default=str)
        item_json = item_json.encode("utf-8", "replace").decode("utf-8")
        if len(item_json) > _ITEM_CHARS:  # a whole reply: keep its start, still valid JSON
            start = item_json[: _ITEM_CHARS // 2]  # escaped again below
            item_json = json.dumps({"truncated": True, "start": start}, ensure_ascii=False)
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO ministry_quarantine (system, fingerprint, via, code, reason, "
                "dossier_code, item_json, first_at, last_at) VALUES (?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (system, fingerprint) DO UPDATE SET "
                "seen = ministry_quarantine.seen + 1, last_at = excluded.last_at, "
                "code = excluded.code, reason = excluded.reason",
                (
                    system,
                    fingerprint,
                    via,
                    code,
                    reason[:1000],
                    dossier_code,
                    item_json,
                    now,
                    now,
                ),
            )

    async def quarantined(self, system: str | None, limit: int = 100) -> list[Quarantined]:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT id, system, via, code, reason, dossier_code, item_json, first_at, "
                "last_at, seen FROM ministry_quarantine "
                "WHERE (CAST(? AS TEXT) IS NULL OR system = ?) "
                "ORDER BY id DESC LIMIT ?",
                (system, system, limit),
            )
        return [
            Quarantined(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8], r[9])
            for r in rows
        ]


async def _conflicts(
    db: aiosqlite.Connection, results: list[MinistryResult]
) -> dict[tuple[str, str], str]:
    """Results reusing the id of an earlier one (held, or before them in the batch) about
    another dossier: (event id, dossier code) → the other dossier. Never a mere duplicate."""
    if not results:
        return {}
    keys = sorted({r.to_event().idempotency_key for r in results})
    rows = await db.execute_fetchall(
        "SELECT idem_key, dossier_code FROM dossier_events "  # noqa: S608
        f"WHERE idem_key IN ({','.join('?' * len(keys))})",
        keys,
    )
    held: dict[str, str] = {key: code for key, code in rows}
    found: dict[tuple[str, str], str] = {}
    for result in results:
        key = result.to_event().idempotency_key
        earlier = held.setdefault(key, result.dossier_code)
        if earlier != result.dossier_code:
            found[(result.event_id, result.dossier_code)] = earlier
    return found


async def _save_cursor(db: aiosqlite.Connection, system: str, cursor: str) -> None:
    await db.execute(
        "INSERT INTO ministry_cursors VALUES (?,?,?) ON CONFLICT (system) DO UPDATE SET "
        "cursor = excluded.cursor, updated_at = excluded.updated_at",
        (system, cursor, _now()),
    )


async def _enqueue_results(
    db: aiosqlite.Connection, system: str, results: list[MinistryResult]
) -> list[OutboxMessage]:
    key = result_routing_key(system)
    out: list[OutboxMessage] = []
    for result in results:
        body = result.to_message()
        rows = await db.execute_fetchall(
            "INSERT INTO outbox (routing_key, body, created_at) VALUES (?,?,?) RETURNING id",
            (key, json.dumps(body, ensure_ascii=False), time.time()),
        )
        out.append(OutboxMessage(next(iter(rows))[0], key, body))
    return out
