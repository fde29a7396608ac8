"""Sending inter-agency transfers on the axis: accepted at the door, sent from a queue.

`TransferDesk.accept` takes an `InterAgencyTransfer` whose attachments the API has already
streamed into a staging folder. It checks the dossier is one the hub holds and every target
agency is on the axis's list, moves the files into the transfer's own folder, writes the
edXML there (`document.edxml`: attachments base64-encoded from their files in chunks, or,
with `attachment_packaging: mime`, a multipart/related package with each file as a part), and
commits the transfer with its `axis.send` message in one transaction. A transfer id the hub
holds is answered with what it holds, and nothing is sent again.

`SendSink` is the handler behind the axis's send queue: it sends the edXML file and records
the axis's id and a line in the dossier's timeline. A refusal (`DestinationRejected`) parks
the message with the axis's reason and marks the transfer refused; anything transient is
retried through the delay tiers. A crash between the axis's reply and that record sends the
document again with the same DocumentId, which the axis takes as the same document.
This module must never ack messages or parse edXML.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from connectors.vdxp.agencies import AgencyDirectory
from connectors.vdxp.client import AxisClient
from connectors.vdxp.config import VdxpConfig
from connectors.vdxp.edxml import EdxmlCodec, EdxmlError, SpooledAttachment, SpooledDocument
from connectors.vdxp.mapping import (
    code_text,
    document_id_for,
    stored_attachments,
    transfer_document,
)
from connectors.vdxp.store import DocumentRow, SqliteVdxp
from hub import metrics
from hub.consumer import Envelope, Outcome
from hub.errors import DestinationRejected, HubError, PermanentError, ValidationFailed
from hub.store.base import Relay
from hub.store.sqlite import SqliteStore
from schemas.interagency import InterAgencyTransfer, TransferAttachment

log = structlog.get_logger(__name__)

EDXML_FILE = "document.edxml"


@dataclass(frozen=True)
class StagedFile:
    """One attachment the API streamed to disk, with what the sender said about it."""

    info: TransferAttachment
    path: Path
    size_bytes: int


@dataclass(frozen=True)
class Accepted:
    row: DocumentRow
    created: bool  # False: the transfer id was held already


def transfer_folder(transfer_id: str) -> str:
    return f"out/{hashlib.sha256(transfer_id.encode()).hexdigest()[:32]}"


class TransferDesk:
    def __init__(
        self,
        config: VdxpConfig,
        codec: EdxmlCodec,
        store: SqliteStore,
        relay: Relay,
        agencies: AgencyDirectory,
    ) -> None:
        self.config = config
        self.codec = codec
        self.store = store
        self.relay = relay
        self.agencies = agencies
        self._busy: set[str] = set()

    def staging(self) -> Path:
        """A fresh folder of its own (owner only) for the attachments of one request: named at
        random, never after anything the request says (two requests at the same instant, or a
        transfer id no file system can name, once met here)."""
        root = self.config.spool_dir / "staging"
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=root))

    async def accept(
        self, transfer: InterAgencyTransfer, files: list[StagedFile], staging: Path
    ) -> Accepted:
        """`ValidationFailed` (code unknown_dossier, unknown_organ, invalid, in_progress) for
        a transfer the hub will not send; the staging folder is gone either way."""
        tid = transfer.transfer_id
        try:
            held = await self.store.slice("vdxp", SqliteVdxp).transfer(tid)
            if held is not None:
                return Accepted(held, created=False)
            if tid in self._busy:  # the same transfer sent twice at once: its folder is shared
                raise ValidationFailed(
                    f"transfer {tid} is being accepted right now; send it again to see it",
                    code="in_progress",
                )
            self._busy.add(tid)
            try:
                await self._check(transfer)
                row = await self._prepare(transfer, files, staging)
            finally:
                self._busy.discard(tid)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        row, outbox = await self.store.slice("vdxp", SqliteVdxp).create_transfer(row)
        await self.relay(outbox)
        created = bool(outbox)
        if created:
            log.info(
                "vdxp_transfer_queued",
                transfer_id=transfer.transfer_id,
                document_id=row.document_id,
                dossier_code=row.dossier_code,
                to=row.to_organs,
            )
        return Accepted(row, created)

    async def _check(self, transfer: InterAgencyTransfer) -> None:
        code = transfer.dossier_code
        if code not in await self.store.known_dossiers([code]):
            raise ValidationFailed(
                f"no dossier {code} has reached the hub",
                field="dossier_code",
                code="unknown_dossier",
            )
        for organ in transfer.to:
            if not await self.agencies.known(organ):
                raise ValidationFailed(
                    f"agency {organ} is not on the axis's agency list",
                    field="to",
                    code="unknown_organ",
                )

    async def _prepare(
        self, transfer: InterAgencyTransfer, files: list[StagedFile], staging: Path
    ) -> DocumentRow:
        """The transfer's folder: its attachments and its edXML, ready to send."""
        folder = transfer_folder(transfer.transfer_id)
        target = self.config.spool_dir / folder
        shutil.rmtree(target, ignore_errors=True)  # left by a request that failed half-way
        target.mkdir(parents=True)
        spooled = []
        for index, staged in enumerate(files, start=1):
            path = target / f"attachment-{index}"
            staged.path.replace(path)
            spooled.append(
                SpooledAttachment(
                    attachment_id=self._attachment_id(index, folder),
                    name=staged.info.name,
                    content_type=staged.info.content_type,
                    description=staged.info.description,
                    size_bytes=staged.size_bytes,
                    path=path,
                )
            )
        now = datetime.now(UTC)
        document_id = document_id_for(self.config, transfer, now)
        doc = transfer_document(self.config, transfer, tuple(spooled), document_id, now)
        try:
            await asyncio.to_thread(self._write, doc, target / EDXML_FILE)
        except EdxmlError as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise ValidationFailed(exc.message, code="invalid") from None
        return DocumentRow(
            document_id=document_id,
            direction="out",
            transfer_id=transfer.transfer_id,
            dossier_code=transfer.dossier_code,
            from_organ=self.config.organ_id,
            to_organs=list(transfer.to),
            code=code_text(doc.header.code),
            subject=transfer.subject,
            business_type=int(doc.trace.business.doc_type),
            attachments=stored_attachments(spooled),
            folder=folder,
            state="queued",
        )

    def _attachment_id(self, index: int, folder: str) -> str:
        """`attachment-N` inside the envelope; in a MIME package, a `cid:` URL unique to the
        transfer (a Content-ID is meant to be unique everywhere)."""
        if self.config.attachment_packaging == "mime":
            return f"cid:attachment-{index}.{folder.rsplit('/', 1)[-1][:16]}@{self.config.organ_id}"
        return f"attachment-{index}"

    def _write(self, doc: SpooledDocument, dest: Path) -> None:
        with dest.open("wb") as out:
            self.codec.write_document(doc, out)


class SendSink:
    """The handler behind the axis's send queue (`axis.send` messages)."""

    def __init__(self, client: AxisClient, store: SqliteStore, spool_dir: Path) -> None:
        self.client = client
        self.vdxp = store.slice("vdxp", SqliteVdxp)
        self.spool_dir = spool_dir

    async def __call__(self, envelopes: Sequence[Envelope]) -> Sequence[Outcome]:
        return [await self._send(e) for e in envelopes]

    async def _send(self, envelope: Envelope) -> Outcome:
        document_id = envelope.body.get("document_id")
        if not isinstance(document_id, str):
            return PermanentError("the message names no document_id", code="no_document_id")
        row = await self.vdxp.document(document_id)
        if row is None or row.direction != "out":
            return PermanentError(
                f"no transfer holds document {document_id[:100]!r}", code="unknown_transfer"
            )
        if row.state == "sent":
            return None  # a redelivery after the record: sent already
        edxml = self.spool_dir / row.folder / EDXML_FILE
        if not edxml.is_file():
            return PermanentError(
                f"the edXML of document {document_id} is missing from {edxml}",
                code="edxml_missing",
            )
        try:
            axis_id = await self.client.send(edxml)
        except DestinationRejected as exc:
            await self.vdxp.send_refused(
                document_id, f"the axis refused it: {exc.message}", exc.code
            )
            metrics.VDXP_SENT.labels("refused").inc()
            log.warning("vdxp_send_refused", document_id=document_id, error=exc.message)
            return exc
        except HubError as exc:
            metrics.VDXP_SENT.labels("failed").inc()
            log.warning("vdxp_send_failed", document_id=document_id, error=exc.message)
            return exc
        to = ", ".join(row.to_organs)
        await self.vdxp.sent(document_id, axis_id, f"sent on the axis to {to} ({axis_id})")
        metrics.VDXP_SENT.labels("sent").inc()
        log.info(
            "vdxp_sent", document_id=document_id, dossier_code=row.dossier_code, axis_id=axis_id
        )
        return None


def lane_of(envelope: Envelope) -> str:
    value = envelope.body.get("dossier_code") or envelope.body.get("document_id")
    return value if isinstance(value, str) else ""
