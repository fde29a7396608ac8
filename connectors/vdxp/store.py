"""The document-axis half of the SQLite store: documents, statuses, the intake log.

It shares the `SqliteStore`'s connection and lock. Each item taken from the axis is committed
in one transaction with everything it causes (the document or status, its events in the
outbox, the dossier step a linked status becomes, and the intake log line that names its
transport id), so the hub acknowledges an item to the axis only once all of that is durable,
and an item listed again after a crash is recognised by its transport id or its DocumentId.
It must never decide whether an item is acceptable: `connectors.vdxp.intake` does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from hub.store.base import OutboxMessage
from schemas.canonical import DossierStatus
from schemas.interagency import DOCUMENT_EVENT, STATUS_EVENT, DocumentStatus

if TYPE_CHECKING:
    import aiosqlite

    from hub.store.sqlite import SqliteStore

SEND_ROUTING_KEY = "axis.send"  # internal: a queued transfer for the axis sender

Direction = Literal["in", "out"]
Verdict = Literal["accepted", "duplicate", "refused"]
# A status message's dossier step carries this status, or the dossier's own ("keep").
StepStatus = DossierStatus | Literal["keep"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class StoredAttachment:
    attachment_id: str
    name: str
    content_type: str
    size_bytes: int
    file: str  # relative to the document's folder
    description: str | None = None


@dataclass(frozen=True)
class DocumentRow:
    document_id: str
    direction: Direction
    transfer_id: str | None
    dossier_code: str | None
    from_organ: str
    to_organs: list[str]
    code: str
    subject: str
    business_type: int
    attachments: list[StoredAttachment]
    folder: str  # relative to the spool directory
    state: str
    axis_id: str | None = None
    detail: str | None = None
    created_at: str = ""
    updated_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("attachments", "folder")}
        out["attachments"] = [
            {k: v for k, v in a.__dict__.items() if k != "file"} for a in self.attachments
        ]
        return out


@dataclass(frozen=True)
class Taken:
    """An item the hub decided on before: acknowledge it again the same way."""

    transport_id: str
    verdict: Verdict
    code: str | None
    reason: str | None
    acked: bool


@dataclass(frozen=True)
class IntakeEntry:
    transport_id: str
    messagetype: str
    from_organ: str | None
    verdict: Verdict
    code: str | None
    reason: str | None
    document_id: str | None
    taken_at: str
    acked_at: str | None


@dataclass(frozen=True)
class Recorded:
    new: bool
    outbox: list[OutboxMessage]


_DOC_COLUMNS = (
    "document_id, direction, transfer_id, dossier_code, from_organ, to_organs, code, subject, "
    "business_type, attachments, folder, state, axis_id, detail, created_at, updated_at"
)


def _document(row: Any) -> DocumentRow:
    values = list(row)
    values[5] = json.loads(values[5])
    values[9] = [StoredAttachment(**a) for a in json.loads(values[9])]
    return DocumentRow(*values)


class SqliteVdxp:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    # -- intake ---------------------------------------------------------------------------------

    async def taken(self, transport_id: str) -> Taken | None:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT transport_id, verdict, code, reason, acked_at FROM vdxp_intake "
                "WHERE transport_id = ?",
                (transport_id,),
            )
        return next((Taken(r[0], r[1], r[2], r[3], r[4] is not None) for r in rows), None)

    async def acked(self, transport_id: str) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "UPDATE vdxp_intake SET acked_at = ? WHERE transport_id = ?", (_now(), transport_id)
            )

    async def refused(
        self,
        transport_id: str,
        messagetype: str,
        from_organ: str | None,
        code: str,
        reason: str,
        document_id: str | None = None,
    ) -> None:
        async with self._store.transaction() as db:
            await _log_intake(
                db, transport_id, messagetype, from_organ, "refused", document_id, code, reason
            )

    async def record_received(
        self, transport_id: str, row: DocumentRow, message: dict[str, Any]
    ) -> Recorded:
        """A received document and its `vdxp.document` event; a DocumentId held already is a
        duplicate and changes nothing but the intake log."""
        now = _now()
        async with self._store.transaction() as db:
            inserted = await db.execute_fetchall(
                f"INSERT INTO vdxp_documents ({_DOC_COLUMNS}) "  # noqa: S608
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (document_id) DO NOTHING "
                "RETURNING document_id",
                _document_values(row, now),
            )
            new = bool(inserted)
            verdict: Verdict = "accepted" if new else "duplicate"
            await _log_intake(db, transport_id, "edoc", row.from_organ, verdict, row.document_id)
            outbox = []
            if new:
                outbox.append(await _enqueue(db, DOCUMENT_EVENT, message))
                if row.dossier_code:
                    await _timeline(
                        db,
                        row.dossier_code,
                        "received",
                        f"document {row.code} from {row.from_organ} received on the axis",
                        now,
                    )
        return Recorded(new, outbox)

    async def record_status(
        self, transport_id: str, status: DocumentStatus, step_status: StepStatus
    ) -> Recorded:
        """A status message: its row, its `vdxp.status` event and, when it is linked to a
        dossier the hub holds, that dossier's processing step, all in one commit."""
        from hub.store.sqlite import ingest_in  # the core store imports this module

        received = datetime.now(UTC)
        async with self._store.transaction() as db:
            inserted = await db.execute_fetchall(
                "INSERT INTO vdxp_statuses VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT (status_key) DO NOTHING RETURNING status_key",
                (
                    status.key,
                    status.document_id,
                    status.dossier_code,
                    status.from_organ,
                    status.status.value,
                    status.description,
                    status.occurred_at.isoformat(),
                    received.isoformat(),
                ),
            )
            new = bool(inserted)
            verdict: Verdict = "accepted" if new else "duplicate"
            await _log_intake(
                db, transport_id, "status", status.from_organ, verdict, status.document_id
            )
            outbox: list[OutboxMessage] = []
            if new:
                dossier_status = await _step_status(db, status.dossier_code, step_status)
                if dossier_status is not None:
                    ingest = await ingest_in(db, [status.to_event(dossier_status)], received)
                    outbox += ingest.outbox
                outbox.append(await _enqueue(db, STATUS_EVENT, status.to_message()))
        return Recorded(new, outbox)

    async def intake_log(self, verdict: str | None, limit: int) -> list[IntakeEntry]:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT transport_id, messagetype, from_organ, verdict, code, reason, "
                "document_id, taken_at, acked_at FROM vdxp_intake "
                "WHERE (CAST(? AS TEXT) IS NULL OR verdict = ?) ORDER BY taken_at DESC LIMIT ?",
                (verdict, verdict, limit),
            )
        return [IntakeEntry(*r) for r in rows]

    # -- transfers ------------------------------------------------------------------------------

    async def transfer(self, transfer_id: str) -> DocumentRow | None:
        return await self._one("transfer_id = ?", transfer_id)

    async def create_transfer(self, row: DocumentRow) -> tuple[DocumentRow, list[OutboxMessage]]:
        """Queue a transfer for the axis; one with the same `transfer_id` is returned as held
        (and nothing is queued again)."""
        now = _now()
        async with self._store.transaction() as db:
            held = await db.execute_fetchall(
                f"SELECT {_DOC_COLUMNS} FROM vdxp_documents WHERE transfer_id = ?",  # noqa: S608
                (row.transfer_id,),
            )
            if held:
                return _document(next(iter(held))), []
            await db.execute(
                f"INSERT INTO vdxp_documents ({_DOC_COLUMNS}) "  # noqa: S608
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                _document_values(row, now),
            )
            message = {"document_id": row.document_id, "dossier_code": row.dossier_code}
            outbox = [await _enqueue(db, SEND_ROUTING_KEY, message)]
            if row.dossier_code:
                to = ", ".join(row.to_organs)
                await _timeline(
                    db, row.dossier_code, "queued", f"transfer {row.code} to {to} queued", now
                )
        return DocumentRow(**{**row.__dict__, "created_at": now, "updated_at": now}), outbox

    async def sent(self, document_id: str, axis_id: str, detail: str) -> None:
        await self._settle(document_id, "sent", axis_id, detail, "delivered")

    async def send_refused(self, document_id: str, reason: str, code: str | None = None) -> None:
        """The axis refused the document: `code` is the axis's own (for the words the console
        shows in the dossier's timeline, the stuck list and its "why")."""
        await self._settle(document_id, "refused", None, reason, "failed", code)

    async def _settle(
        self,
        document_id: str,
        state: str,
        axis_id: str | None,
        detail: str,
        outcome: str,
        reason_code: str | None = None,
    ) -> None:
        now = _now()
        async with self._store.transaction() as db:
            rows = await db.execute_fetchall(
                "UPDATE vdxp_documents SET state = ?, axis_id = coalesce(?, axis_id), "
                "detail = ?, updated_at = ? WHERE document_id = ? AND direction = 'out' "
                "RETURNING dossier_code",
                (state, axis_id, detail[:1000], now, document_id),
            )
            code = next((r[0] for r in rows), None)
            if code:
                await _timeline(db, code, outcome, detail, now, "vdxp", reason_code)

    # -- reads ----------------------------------------------------------------------------------

    async def document(self, document_id: str) -> DocumentRow | None:
        return await self._one("document_id = ?", document_id)

    async def documents(
        self, direction: Direction | None, dossier_code: str | None, limit: int
    ) -> list[DocumentRow]:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                f"SELECT {_DOC_COLUMNS} FROM vdxp_documents "  # noqa: S608
                "WHERE (CAST(? AS TEXT) IS NULL OR direction = ?) "
                "AND (CAST(? AS TEXT) IS NULL OR dossier_code = ?) "
                "ORDER BY created_at DESC LIMIT ?",
                (direction, direction, dossier_code, dossier_code, limit),
            )
        return [_document(r) for r in rows]

    async def statuses(self, document_id: str) -> list[dict[str, Any]]:
        """The document's statuses in the order they happened."""
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                "SELECT from_organ, status_code, description, occurred_at, received_at "
                "FROM vdxp_statuses WHERE document_id = ? ORDER BY occurred_at, received_at",
                (document_id,),
            )
        keys = ("from_organ", "status", "description", "occurred_at", "received_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    async def _one(self, where: str, value: str) -> DocumentRow | None:
        async with self._store.reading():
            rows = await self._store.db.execute_fetchall(
                f"SELECT {_DOC_COLUMNS} FROM vdxp_documents WHERE {where}",  # noqa: S608
                (value,),
            )
        return next((_document(r) for r in rows), None)


def _document_values(row: DocumentRow, now: str) -> tuple[Any, ...]:
    attachments = [a.__dict__ for a in row.attachments]
    return (
        row.document_id,
        row.direction,
        row.transfer_id,
        row.dossier_code,
        row.from_organ,
        json.dumps(row.to_organs),
        row.code,
        row.subject,
        row.business_type,
        json.dumps(attachments, ensure_ascii=False),
        row.folder,
        row.state,
        row.axis_id,
        row.detail,
        now,
        now,
    )


async def _log_intake(
    db: aiosqlite.Connection,
    transport_id: str,
    messagetype: str,
    from_organ: str | None,
    verdict: Verdict,
    document_id: str | None,
    code: str | None = None,
    reason: str | None = None,
) -> None:
    await db.execute(
        "INSERT INTO vdxp_intake (transport_id, messagetype, from_organ, verdict, code, reason, "
        "document_id, taken_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (transport_id) DO NOTHING",
        (
            transport_id,
            messagetype,
            from_organ,
            verdict,
            code,
            reason[:1000] if reason else None,
            document_id,
            _now(),
        ),
    )


async def _step_status(
    db: aiosqlite.Connection, dossier_code: str | None, wanted: StepStatus
) -> DossierStatus | None:
    """The status a linked status message's step carries; None when the hub does not hold
    the dossier (the status is still recorded and forwarded, not as a step)."""
    if dossier_code is None:
        return None
    rows = await db.execute_fetchall(
        "SELECT status FROM dossiers WHERE code = ? AND status IS NOT NULL", (dossier_code,)
    )
    current = next((DossierStatus(r[0]) for r in rows), None)
    if current is None:
        return None
    return current if wanted == "keep" else wanted


async def _timeline(
    db: aiosqlite.Connection,
    dossier_code: str,
    outcome: str,
    detail: str,
    at: str,
    connector: str = "vdxp",
    reason_code: str | None = None,
) -> None:
    await db.execute(
        "INSERT INTO deliveries (dossier_code, connector, outcome, detail, reason_code, at) "
        "VALUES (?,?,?,?,?,?)",
        (dossier_code, connector, outcome, detail[:2000], reason_code, at),
    )


async def _enqueue(db: aiosqlite.Connection, key: str, body: dict[str, Any]) -> OutboxMessage:
    rows = await db.execute_fetchall(
        "INSERT INTO outbox (routing_key, body, created_at) VALUES (?,?,?) RETURNING id",
        (key, json.dumps(body, ensure_ascii=False), time.time()),
    )
    return OutboxMessage(next(iter(rows))[0], key, body)
