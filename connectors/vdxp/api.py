"""The document axis API: transfers in, documents and their statuses out.

* `POST /api/v1/vdxp/transfers` (`vdxp.send`): an inter-agency transfer of a dossier
  (`schemas.interagency.InterAgencyTransfer`). Either JSON, attachments inline as
  `content_base64` (the whole body within `http.max_body_bytes`), or `multipart/form-data`:
  a first part named `transfer` holding the JSON (within `http.max_body_bytes`), then one file
  part per attachment, streamed to disk. Every limit is checked while the parts stream in,
  before more is written: at most `MAX_TRANSFER_ATTACHMENTS` file parts, each within
  `max_attachment_bytes`, all together within `max_document_bytes` (the edXML that carries
  them could not be larger); past one, 413 and the staged files are removed. Their file name
  and content type are used unless the JSON's `attachments` list, one entry per file part,
  says otherwise. 202 with
  the DocumentId once the transfer is durable; 200 with the same answer for a transfer id
  the hub holds; 422 for an unknown dossier or agency; 409 while the same transfer id is
  being accepted by another request; 503 when the agency list cannot be read yet.
* `GET /api/v1/vdxp/transfers/{transfer_id}`, `GET /api/v1/vdxp/document?document_id=`:
  one document, its state and its statuses in the order they happened (`vdxp.read`).
* `GET /api/v1/vdxp/documents?direction=in|out&dossier_code=&limit=`: newest first.
* `GET /api/v1/vdxp/attachment?document_id=&attachment_id=`: the file, streamed.
* `GET /api/v1/vdxp/intake?verdict=accepted|duplicate|refused&limit=`: items taken from
  the axis and what the hub decided, refusals with their reason.
* `GET /api/v1/vdxp`: the connector's state; `POST /api/v1/vdxp/poll` (`vdxp.poll`): a round
  now, its report in the answer.

Document ids hold `,` and `/`, so they travel in the query, not the path. This module must
never talk to the axis except through the intake.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiofiles
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from connectors.vdxp.client import AxisClient
from connectors.vdxp.config import VdxpConfig
from connectors.vdxp.intake import AxisIntake
from connectors.vdxp.models import (
    AxisState,
    Documents,
    DocumentWithStatuses,
    IntakeLog,
    RoundReport,
    TransferAccepted,
)
from connectors.vdxp.outbound import StagedFile, TransferDesk
from connectors.vdxp.store import DocumentRow, SqliteVdxp
from hub.api import authorize
from hub.auth import Authenticator
from hub.downloads import download_headers
from hub.errors import HubError, ValidationFailed
from hub.httputil import error_response, read_capped, reply
from hub.validation import item_error
from schemas.interagency import MAX_TRANSFER_ATTACHMENTS, InterAgencyTransfer

MAX_LIMIT = 1000
CHUNK = 64 * 1024
VERDICTS = ("accepted", "duplicate", "refused")
_REFUSAL_STATUS = {"unknown_dossier": 422, "unknown_organ": 422, "in_progress": 409}


class _TooLarge(Exception):
    pass


@dataclass
class VdxpApi:
    auth: Authenticator
    config: VdxpConfig
    vdxp: SqliteVdxp
    client: AxisClient
    desk: TransferDesk
    intake: AxisIntake
    max_body_bytes: int

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/vdxp", self.state),
            web.post("/api/v1/vdxp/transfers", self.post_transfer),
            web.get("/api/v1/vdxp/transfers/{transfer_id}", self.get_transfer),
            web.get("/api/v1/vdxp/document", self.get_document),
            web.get("/api/v1/vdxp/documents", self.list_documents),
            web.get("/api/v1/vdxp/attachment", self.get_attachment),
            web.get("/api/v1/vdxp/intake", self.intake_log),
            web.post("/api/v1/vdxp/poll", self.poll_now),
        ]

    # -- transfers ------------------------------------------------------------------------------

    async def post_transfer(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "vdxp.send"), web.Response):
            return denied
        staging: Path | None = None
        try:
            if request.content_type == "multipart/form-data":
                transfer, files, staging = await self._read_multipart(request)
            elif request.content_type == "application/json":
                transfer, files, staging = await self._json(request)
            else:
                return error_response(
                    415, "unsupported_media_type", "send application/json or multipart/form-data"
                )
            accepted = await self.desk.accept(transfer, files, staging)
        except _TooLarge as exc:
            return error_response(413, "too_large", str(exc))
        except ValidationFailed as exc:
            status = _REFUSAL_STATUS.get(exc.code or "", 400)
            return error_response(status, exc.code or "invalid", exc.message)
        except HubError as exc:
            return error_response(503, "axis_unavailable", exc.message)
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        body = _transfer_json(accepted.row)
        body["created"] = accepted.created
        return reply(TransferAccepted, body, 202 if accepted.created else 200)

    async def _json(
        self, request: web.Request
    ) -> tuple[InterAgencyTransfer, list[StagedFile], Path]:
        raw = await read_capped(request.content, self.max_body_bytes)
        if raw is None:
            raise _TooLarge(
                f"the body is over {self.max_body_bytes} bytes: send large attachments as "
                "multipart/form-data"
            )
        data = _json_object(raw)
        contents: list[bytes] = []
        for index, entry in enumerate(_list(data.get("attachments"))):
            if not isinstance(entry, dict):
                raise ValidationFailed(f"attachments.{index} is not an object", code="invalid")
            contents.append(_base64(entry.pop("content_base64", None), index))
        transfer = _transfer(data)
        staging = self.desk.staging()
        files = []
        for index, (info, content) in enumerate(
            zip(transfer.attachments, contents, strict=True), start=1
        ):
            self._check_size(len(content), info.name)
            path = staging / f"part-{index}"
            path.write_bytes(content)
            files.append(StagedFile(info, path, len(content)))
        return transfer, files, staging

    async def _read_multipart(
        self, request: web.Request
    ) -> tuple[InterAgencyTransfer, list[StagedFile], Path]:
        """`_multipart`, its framing errors refused: no boundary or one the body does not
        hold, a part whose headers no parser takes (aiohttp's errors, once 500s)."""
        try:
            return await self._multipart(request)
        except (ValueError, HttpProcessingError):  # UnicodeError is a ValueError
            raise ValidationFailed(
                "the multipart body cannot be read: check its boundary and each part's headers",
                code="bad_multipart",
            ) from None

    async def _multipart(
        self, request: web.Request
    ) -> tuple[InterAgencyTransfer, list[StagedFile], Path]:
        reader = await request.multipart()
        first = await reader.next()
        if not isinstance(first, BodyPartReader) or first.name != "transfer":
            raise ValidationFailed("the first part must be named transfer (JSON)", code="invalid")
        head = await _read_part(first, self.max_body_bytes)
        if head is None:
            raise _TooLarge(f"the transfer part is over {self.max_body_bytes} bytes")
        data = _json_object(head)
        described = [a for a in _list(data.pop("attachments", None))]
        staging: Path | None = None
        parts: list[tuple[str, str, Path, int]] = []
        try:
            staging = self.desk.staging()
            total = 0
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise ValidationFailed("nested multipart is not supported", code="invalid")
                if part.name == "transfer":  # which one would the sender mean? (decision 0081)
                    raise ValidationFailed(
                        "only the first part may be named transfer",
                        field="transfer",
                        code="invalid",
                    )
                if len(parts) == MAX_TRANSFER_ATTACHMENTS:
                    raise _TooLarge(
                        f"more than {MAX_TRANSFER_ATTACHMENTS} file parts: a transfer carries "
                        f"at most {MAX_TRANSFER_ATTACHMENTS} attachments"
                    )
                index = len(parts) + 1
                path = staging / f"part-{index}"
                size = await self._stream_part(part, path, total)
                total += size
                parts.append(
                    (
                        part.filename or f"attachment-{index}",
                        part.headers.get("Content-Type", "application/octet-stream"),
                        path,
                        size,
                    )
                )
            if described and len(described) != len(parts):
                raise ValidationFailed(
                    f"attachments lists {len(described)} entries for {len(parts)} file parts",
                    field="attachments",
                    code="invalid",
                )
            data["attachments"] = described or [
                {"name": name, "content_type": ctype} for name, ctype, _, _ in parts
            ]
            transfer = _transfer(data)
        except BaseException:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        files = [
            StagedFile(info, path, size)
            for info, (_, _, path, size) in zip(transfer.attachments, parts, strict=True)
        ]
        return transfer, files, staging

    async def _stream_part(self, part: BodyPartReader, path: Path, before: int) -> int:
        """The part written to `path`, refused as soon as it, or all parts with the `before`
        bytes of those already written, grows past its limit (nothing more is written)."""
        size = 0
        limit = self.config.max_document_bytes
        async with aiofiles.open(path, "wb") as out:
            while chunk := await part.read_chunk(CHUNK):
                size += len(chunk)
                self._check_size(size, part.filename or path.name)
                if before + size > limit:
                    raise _TooLarge(
                        f"the attachments together are over max_document_bytes ({limit})"
                    )
                await out.write(chunk)
        return size

    def _check_size(self, size: int, name: str) -> None:
        limit = self.config.max_attachment_bytes
        if size > limit:
            raise _TooLarge(f"attachment {name[:100]!r} is over max_attachment_bytes ({limit})")

    async def get_transfer(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "vdxp.read"), web.Response):
            return denied
        row = await self.vdxp.transfer(request.match_info["transfer_id"])
        if row is None:
            return error_response(404, "unknown_transfer", "no such transfer")
        return reply(DocumentWithStatuses, await self._with_statuses(row))

    # -- documents ------------------------------------------------------------------------------

    async def get_document(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "vdxp.read"), web.Response):
            return denied
        row = await self.vdxp.document(request.query.get("document_id", ""))
        if row is None:
            return error_response(404, "unknown_document", "no such document")
        return reply(DocumentWithStatuses, await self._with_statuses(row))

    async def list_documents(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "vdxp.read"), web.Response):
            return denied
        if isinstance(limit := _limit(request), web.Response):
            return limit
        direction = request.query.get("direction") or None
        if direction not in (None, "in", "out"):
            return error_response(400, "bad_direction", "direction is in or out")
        rows = await self.vdxp.documents(
            direction,  # type: ignore[arg-type]
            request.query.get("dossier_code") or None,
            limit,
        )
        return reply(Documents, {"documents": [_transfer_json(r) for r in rows]})

    async def get_attachment(self, request: web.Request) -> web.StreamResponse:
        if isinstance(denied := authorize(self.auth, request, "vdxp.read"), web.Response):
            return denied
        row = await self.vdxp.document(request.query.get("document_id", ""))
        wanted = request.query.get("attachment_id", "")
        found = next(
            (a for a in (row.attachments if row else []) if a.attachment_id == wanted), None
        )
        if row is None or found is None:
            return error_response(404, "unknown_attachment", "no such document or attachment")
        path = self.config.spool_dir / row.folder / found.file
        if not path.is_file():
            return error_response(410, "gone", "the attachment's file is no longer in the spool")
        # Always a download, and never a type a browser runs (`hub.downloads`).
        return web.FileResponse(path, headers=download_headers(found.name, found.content_type))

    async def _with_statuses(self, row: DocumentRow) -> dict[str, Any]:
        out = _transfer_json(row)
        out["statuses"] = await self.vdxp.statuses(row.document_id)
        return out

    # -- the connector --------------------------------------------------------------------------

    async def intake_log(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "vdxp.read"), web.Response):
            return denied
        if isinstance(limit := _limit(request), web.Response):
            return limit
        verdict = request.query.get("verdict") or None
        if verdict is not None and verdict not in VERDICTS:
            return error_response(400, "bad_verdict", f"verdict is one of {', '.join(VERDICTS)}")
        rows = await self.vdxp.intake_log(verdict, limit)
        return reply(IntakeLog, {"items": [asdict(r) for r in rows]})

    async def state(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "vdxp.read"), web.Response):
            return denied
        last = self.intake.last_round
        return reply(
            AxisState,
            {
                "organ_id": self.config.organ_id,
                "axis": self.config.base_url,
                "circuit": await self.client.breaker_state(),
                "agencies": self.intake.agencies.size,
                "last_poll": last.isoformat() if last else None,
                "last_error": self.intake.last_error,
            },
        )

    async def poll_now(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "vdxp.poll"), web.Response):
            return denied
        report = await self.intake.poll_once()
        return reply(RoundReport, report.as_dict(), 200 if report.error is None else 502)


async def _read_part(part: BodyPartReader, limit: int) -> bytes | None:
    """A small part's bytes, or None as soon as it grows past `limit` (the rest unread)."""
    body = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _transfer_json(row: DocumentRow) -> dict[str, Any]:
    return row.as_dict()


def _limit(request: web.Request) -> int | web.Response:
    text = request.query.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        return error_response(400, "bad_limit", f"limit must be 1..{MAX_LIMIT}")
    return int(text)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValidationFailed("the transfer is not JSON", code="not_json") from None
    if not isinstance(data, dict):
        raise ValidationFailed("the transfer must be a JSON object", code="wrong_type")
    return data


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationFailed("attachments must be a list", field="attachments", code="invalid")
    return value


def _base64(value: Any, index: int) -> bytes:
    if not isinstance(value, str):
        raise ValidationFailed(
            f"attachments.{index}.content_base64 is missing",
            field=f"attachments.{index}",
            code="missing",
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(
            f"attachments.{index}.content_base64 is not base64",
            field=f"attachments.{index}",
            code="invalid",
        ) from None


def _transfer(data: dict[str, Any]) -> InterAgencyTransfer:
    try:
        return InterAgencyTransfer.model_validate(data)
    except ValidationError as exc:
        raise item_error(exc) from None
