"""Taking documents and status messages from the axis, exactly once.

A round lists the documents waiting for the hub, then the status messages, and takes each:

1. An item whose transport id the intake log holds was decided before (the hub stopped
   between its commit and the axis hearing the acknowledgement): it is acknowledged again
   the same way, and nothing else happens.
2. It is downloaded into the spool (streamed, refused past `max_document_bytes`) and parsed
   (`EdxmlCodec.read_document` decodes attachments straight into files; `read_status`).
3. It is checked: the sender must be on the axis's agency list; a document must be addressed
   to this hub's agency (or one of `accept_for`); a status must be about a document the hub
   sent or received.
4. It is committed with everything it causes (`SqliteVdxp.record_received` or
   `record_status`), published, and only then acknowledged `done`. A document whose
   DocumentId the hub holds is a duplicate: acknowledged, not forwarded.
5. A refused item is logged with its reason and acknowledged `fail` with that reason. It
   never reaches a queue.

Status messages of one round are committed in the order they happened (their Timestamp), so
an axis that lists them out of order still leaves the dossier's history in order. A failure
to reach the axis ends the round; `run_schedule` then waits with a doubling back-off. This
module must never build edXML or decide where events go: the codec and the store do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import structlog

from connectors.vdxp.agencies import AgencyDirectory
from connectors.vdxp.client import AxisClient, ListedItem
from connectors.vdxp.config import AxisPollConfig, VdxpConfig
from connectors.vdxp.edxml import EdxmlCodec, EdxmlError, SpooledDocument
from connectors.vdxp.mapping import (
    StatusPolicy,
    code_text,
    dossier_in,
    status_of,
    stored_attachments,
)
from connectors.vdxp.protocol import AckStatus, MessageType
from connectors.vdxp.store import DocumentRow, SqliteVdxp, Taken
from hub import metrics
from hub.errors import DestinationRejected, HubError, UnreadableReply
from hub.store.base import Relay
from hub.store.sqlite import SqliteStore
from schemas.interagency import DOCUMENT_EVENT, SOURCE_SYSTEM
from schemas.vdxp import StatusMessage

log = structlog.get_logger(__name__)

ATTACHMENT_PATH = "/api/v1/vdxp/attachment"


class Refused(Exception):
    """An item the hub will not take; acknowledged `fail` with `reason`."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class RoundReport:
    taken: dict[str, int] = field(default_factory=dict)  # verdict → count
    error: str | None = None
    full: bool = False  # stopped at max_items with more waiting: the next round starts at once

    def count(self, verdict: str) -> None:
        self.taken[verdict] = self.taken.get(verdict, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"taken": self.taken, "error": self.error}


@dataclass(frozen=True)
class _Status:
    item: ListedItem
    message: StatusMessage


class AxisIntake:
    def __init__(
        self,
        client: AxisClient,
        config: VdxpConfig,
        codec: EdxmlCodec,
        store: SqliteStore,
        relay: Relay,
        agencies: AgencyDirectory,
        policy: StatusPolicy,
    ) -> None:
        self.client = client
        self.config = config
        self.codec = codec
        self.store = store
        self.vdxp = store.slice("vdxp", SqliteVdxp)
        self.relay = relay
        self.agencies = agencies
        self.policy = policy
        self.spool = config.spool_dir
        self.last_round: datetime | None = None
        self.last_error: str | None = None
        self._round_lock = asyncio.Lock()
        self._more_waiting = asyncio.Event()

    # -- rounds ---------------------------------------------------------------------------------

    async def run_schedule(self) -> None:
        """Rounds forever: every `poll.interval_s`, at once after a round that stopped at
        `poll.max_items` (a backlog drains at full speed), or after a doubling back-off when
        the axis fails."""
        cfg = self.config.poll
        failures = 0
        while True:
            self._more_waiting.clear()
            report = await self.poll_once()
            failures = 0 if report.error is None else failures + 1
            wait = next_wait_s(cfg, failures)
            if failures:
                log.warning("vdxp_poll_backoff", wait_s=wait, failures=failures)
            elif report.full:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._more_waiting.wait(), wait)

    async def poll_once(self) -> RoundReport:
        """One round (rounds never overlap); the error that ended it early, if any."""
        async with self._round_lock:
            report = RoundReport()
            try:
                await self.agencies.refresh()
                await self._documents(report)
                await self._statuses(report)
            except HubError as exc:
                report.error = exc.message
            except Exception as exc:  # never let the schedule die: the next round tries again
                log.exception("vdxp_poll_crashed")
                report.error = f"unexpected {type(exc).__name__}: {exc}"[:500]
            if report.full and report.error is None:
                self._more_waiting.set()  # a round asked for by hand wakes the schedule too
            self.last_round = datetime.now(UTC)
            self.last_error = report.error
            metrics.VDXP_POLLS.labels("ok" if report.error is None else "failed").inc()
            if report.error:
                log.warning("vdxp_poll_failed", error=report.error, taken=report.taken)
            elif report.taken:
                log.info("vdxp_poll", taken=report.taken)
            return report

    async def _pages(
        self, messagetype: MessageType, report: RoundReport
    ) -> AsyncIterator[list[ListedItem]]:
        """Pages of waiting items, up to `max_items` (then `report.full`). Items stay listed
        until acknowledged, so each page is asked for after the one before it was taken."""
        cfg = self.config.poll
        seen: set[str] = set()
        while True:
            if len(seen) >= cfg.max_items:
                report.full = True
                return
            asked = min(cfg.limit, cfg.max_items - len(seen))
            page = await self.client.list(messagetype, asked)
            fresh = [i for i in page if i.transport_id not in seen]
            if not fresh:
                return
            seen.update(i.transport_id for i in fresh)
            yield fresh
            if len(page) < asked:
                return

    # -- documents ------------------------------------------------------------------------------

    async def _documents(self, report: RoundReport) -> None:
        async for page in self._pages("edoc", report):
            for item in page:
                await self._take_document(item, report)

    async def _take_document(self, item: ListedItem, report: RoundReport) -> None:
        if await self._decided_before(item, report):
            return
        try:
            doc, folder = await self._read_document(item)
            row = await self._accept_document(item, doc, folder)
        except Refused as refusal:
            await self._refuse(item, refusal, report)
            return
        recorded = await self.vdxp.record_received(
            item.transport_id, row, self._document_message(row, doc)
        )
        if not recorded.new:
            shutil.rmtree(self.spool / row.folder, ignore_errors=True)
        await self.relay(recorded.outbox)
        await self._ack_done(item, "accepted" if recorded.new else "duplicate", report)
        log.info(
            "vdxp_document_" + ("received" if recorded.new else "duplicate"),
            document_id=row.document_id,
            dossier_code=row.dossier_code,
            from_organ=row.from_organ,
            attachments=len(row.attachments),
        )

    async def _read_document(self, item: ListedItem) -> tuple[SpooledDocument, str]:
        raw = await self._download(item)
        folder = f"in/{_safe(item.transport_id)}"
        target = self.spool / folder
        shutil.rmtree(target, ignore_errors=True)  # left by a run stopped before its commit
        target.mkdir(parents=True)
        try:
            with raw.open("rb") as stream:
                doc = await asyncio.to_thread(self.codec.read_document, stream, target)
        except EdxmlError as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise Refused(exc.code, exc.message) from None
        finally:
            raw.unlink(missing_ok=True)
        return doc, folder

    async def _accept_document(
        self, item: ListedItem, doc: SpooledDocument, folder: str
    ) -> DocumentRow:
        header = doc.header
        try:
            await self._known_sender(header.from_org.organ_id)
            ours = self.config.own_organs
            if not any(o.organ_id in ours for o in header.to_orgs):
                to = ", ".join(o.organ_id for o in header.to_orgs)[:200]
                raise Refused("not_addressed", f"the document is addressed to {to}, not to us")
        except Refused:
            shutil.rmtree(self.spool / folder, ignore_errors=True)
            raise
        return DocumentRow(
            document_id=doc.document_id,
            direction="in",
            transfer_id=None,
            dossier_code=await self._dossier_of(doc),
            from_organ=header.from_org.organ_id,
            to_organs=[o.organ_id for o in header.to_orgs],
            code=code_text(header.code),
            subject=header.subject,
            business_type=int(doc.trace.business.doc_type),
            attachments=stored_attachments(doc.attachments),
            folder=folder,
            state="received",
            axis_id=item.transport_id,
        )

    async def _dossier_of(self, doc: SpooledDocument) -> str | None:
        """An answer to a document the hub holds takes that document's dossier; otherwise the
        dossier the header names (`dossier_link`), if the hub holds it."""
        for answered in doc.header.response_for:
            held = await self.vdxp.document(answered.document_id)
            if held is not None and held.dossier_code:
                return held.dossier_code
        named = dossier_in(doc.header, self.config.dossier_link)
        if named and named in await self.store.known_dossiers([named]):
            return named
        return None

    def _document_message(self, row: DocumentRow, doc: SpooledDocument) -> dict[str, Any]:
        header = doc.header
        return {
            "type": DOCUMENT_EVENT,
            "event_id": f"{SOURCE_SYSTEM}:{row.document_id}",
            "document_id": row.document_id,
            "dossier_code": row.dossier_code,
            "from_organ": row.from_organ,
            "from_name": header.from_org.organ_name,
            "to": row.to_organs,
            "document_code": row.code,
            "subject": row.subject,
            "document_type": header.document_type.type_name,
            "promulgation_date": header.promulgation.date.isoformat(),
            "due_date": header.due_date.isoformat() if header.due_date else None,
            "business_type": doc.trace.business.doc_type.name,
            "response_for": [r.document_id for r in header.response_for],
            "attachments": [
                {
                    "attachment_id": a.attachment_id,
                    "name": a.name,
                    "content_type": a.content_type,
                    "size_bytes": a.size_bytes,
                    "href": ATTACHMENT_PATH
                    + "?"
                    + urlencode({"document_id": row.document_id, "attachment_id": a.attachment_id}),
                }
                for a in row.attachments
            ],
        }

    # -- statuses -------------------------------------------------------------------------------

    async def _statuses(self, report: RoundReport) -> None:
        async for page in self._pages("status", report):
            await self._status_page(page, report)

    async def _status_page(self, page: list[ListedItem], report: RoundReport) -> None:
        """Read the whole page, then commit in the order the statuses happened."""
        read: list[_Status] = []
        for item in page:
            if await self._decided_before(item, report):
                continue
            try:
                read.append(_Status(item, await self._read_status(item)))
            except Refused as refusal:
                await self._refuse(item, refusal, report)
        read.sort(key=lambda s: (s.message.timestamp, s.message.status_code.value))
        for status in read:
            try:
                await self._take_status(status, report)
            except Refused as refusal:
                await self._refuse(status.item, refusal, report)

    async def _read_status(self, item: ListedItem) -> StatusMessage:
        raw = await self._download(item)
        try:
            with raw.open("rb") as stream:
                return await asyncio.to_thread(self.codec.read_status, stream)
        except EdxmlError as exc:
            raise Refused(exc.code, exc.message) from None
        finally:
            raw.unlink(missing_ok=True)

    async def _take_status(self, status: _Status, report: RoundReport) -> None:
        message, item = status.message, status.item
        await self._known_sender(message.from_org.organ_id)
        document_id = message.response_for.document_id
        held = await self.vdxp.document(document_id)
        if held is None:
            raise Refused(
                "unknown_document", f"a status about document {document_id[:100]!r}, never seen"
            )
        canonical = status_of(message, held.dossier_code)
        step = self.policy.step_status(message.status_code)
        recorded = await self.vdxp.record_status(item.transport_id, canonical, step)
        await self.relay(recorded.outbox)
        await self._ack_done(item, "accepted" if recorded.new else "duplicate", report)
        log.info(
            "vdxp_status_" + ("received" if recorded.new else "duplicate"),
            document_id=document_id,
            dossier_code=held.dossier_code,
            from_organ=canonical.from_organ,
            status=canonical.status.value,
        )

    # -- shared ---------------------------------------------------------------------------------

    async def _download(self, item: ListedItem) -> Path:
        incoming = self.spool / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        dest = incoming / f"{_safe(item.transport_id)}.edxml"
        try:
            await self.client.download(item.transport_id, dest)
        except UnreadableReply as exc:
            raise Refused(exc.code, exc.message) from None
        except DestinationRejected as exc:
            # The axis lists the item but refuses to hand it over (its credentials are fine:
            # they would be an outage). Refused with the axis's words, so that the round goes
            # on and the item leaves the list, instead of heading every round after this one.
            raise Refused(
                "download_refused", f"the axis refused to hand over the item: {exc.message}"
            ) from None
        return dest

    async def _known_sender(self, organ_id: str) -> None:
        if not await self.agencies.known(organ_id):
            raise Refused(
                "unknown_organ", f"the sender {organ_id[:60]!r} is not on the axis's agency list"
            )

    async def _decided_before(self, item: ListedItem, report: RoundReport) -> bool:
        taken = await self.vdxp.taken(item.transport_id)
        if taken is None:
            return False
        await self._ack_again(item, taken)
        report.count("acknowledged_again")
        return True

    async def _ack(self, item: ListedItem, status: AckStatus, reason: str | None = None) -> None:
        """Acknowledge, then note it. An axis that cannot be reached ends the round (the item
        is acknowledged again next round); one that refuses the acknowledgement (an item it
        no longer holds, say) is logged and the round goes on, so one such item never stops
        the intake."""
        try:
            await self.client.ack(item.transport_id, status, reason)
        except DestinationRejected as exc:
            log.warning(
                "vdxp_ack_refused", transport_id=item.transport_id, status=status, error=exc.message
            )
            return
        await self.vdxp.acked(item.transport_id)

    async def _ack_again(self, item: ListedItem, taken: Taken) -> None:
        if taken.verdict == "refused":
            await self._ack(item, "fail", _fail_reason(taken.code, taken.reason))
        else:
            await self._ack(item, "done")
        log.info("vdxp_acknowledged_again", transport_id=item.transport_id, verdict=taken.verdict)

    async def _ack_done(self, item: ListedItem, verdict: str, report: RoundReport) -> None:
        await self._ack(item, "done")
        metrics.VDXP_ITEMS.labels(item.messagetype, verdict).inc()
        report.count(verdict)

    async def _refuse(self, item: ListedItem, refusal: Refused, report: RoundReport) -> None:
        await self.vdxp.refused(
            item.transport_id, item.messagetype, item.from_organ, refusal.code, refusal.reason
        )
        await self._ack(item, "fail", _fail_reason(refusal.code, refusal.reason))
        metrics.VDXP_ITEMS.labels(item.messagetype, "refused").inc()
        report.count("refused")
        log.warning(
            "vdxp_item_refused",
            transport_id=item.transport_id,
            messagetype=item.messagetype,
            from_organ=item.from_organ,
            code=refusal.code,
            reason=refusal.reason,
        )


def next_wait_s(poll: AxisPollConfig, failures: int) -> float:
    """The wait before the next round: the interval after a good round, else a back-off
    doubling from `backoff_initial_s` up to `backoff_max_s`."""
    if failures == 0:
        return poll.interval_s
    return float(min(poll.backoff_max_s, poll.backoff_initial_s * 2 ** min(failures - 1, 30)))


def _fail_reason(code: str | None, reason: str | None) -> str:
    return f"{code or 'refused'}: {reason or 'no reason recorded'}"


def _safe(transport_id: str) -> str:
    """A file name for a transport id: never the id itself (it comes from outside)."""
    return hashlib.sha256(transport_id.encode()).hexdigest()[:32]
