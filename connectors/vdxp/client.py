"""Talks to the document axis (`connectors.vdxp.protocol`): list, download, acknowledge, send.

Every call is signed with the hub's system id and secret and passes through the axis's own
`Guard` (retries, circuit breaker, rate limit). Documents never sit whole in memory here: a
download streams into a file (refused past `max_document_bytes`), and a send streams the
multipart body from a file written beforehand, which is also how its SHA-256 is known before
the request is signed. 408, 425, 429, 5xx, time-outs and connection failures are transient
(`DestinationUnavailable`); any other refusal is `DestinationRejected` carrying the axis's
`errorCode` and message. This module must never decide what an item means: the intake does.

Packages (`connectors.vdxp.mime`). A getEdoc reply whose Content-Type is multipart is a MIME
package whose headers travelled as HTTP headers: its file starts with that Content-Type, so
that it is a whole MIME message, read like one the axis serves as a file. A package the hub
sends is the file part of sendEdoc as it is, headers included, with the package's own
Content-Type: a receiver going by that Content-Type meets the headers as the preamble, one
keeping the bytes has a whole MIME message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiofiles
import aiofiles.os
import aiohttp

from connectors.vdxp import mime
from connectors.vdxp.config import VdxpConfig
from connectors.vdxp.protocol import (
    ACK_PATH,
    AGENCIES_PATH,
    EDXML_CONTENT_TYPE,
    GET_PATH,
    LIST_PATH,
    MAX_REASON_CHARS,
    SEND_FILE_FIELD,
    SEND_PATH,
    SEND_TYPE_FIELD,
    AckStatus,
    MessageType,
    body_sha256,
)
from hub.errors import (
    CredentialsRefused,
    DestinationRejected,
    DestinationUnavailable,
    HubError,
    UnreadableReply,
)
from hub.httputil import dumps, read_reply
from hub.resilience import Guard, translate_http_error
from hub.tls import client_context

CONNECTOR = "vdxp"
CHUNK = 64 * 1024
MAX_JSON_REPLY = 4 * 1024 * 1024
_RETRYABLE = frozenset({408, 425, 429})
T = TypeVar("T")


@dataclass(frozen=True)
class ListedItem:
    transport_id: str  # the axis's docId of this item
    messagetype: MessageType
    from_organ: str | None
    created: str | None


class AxisClient:
    def __init__(
        self,
        config: VdxpConfig,
        http: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.http = http
        self.ssl = client_context(config.tls)  # its CA, our client certificate
        self.clock = clock
        self.connector = CONNECTOR
        self.scheme = config.signing.scheme()
        self.guard = Guard(CONNECTOR, config.retry, config.breaker, config.rate_limit_per_s)

    # -- calls ----------------------------------------------------------------------------------

    async def list(self, messagetype: MessageType, limit: int) -> list[ListedItem]:
        reply = await self._json_call(LIST_PATH, {"messagetype": messagetype, "limit": limit})
        data = reply.get("data")
        if not isinstance(data, list):
            raise self._unreadable("getReceivedEdocList replied without a data list")
        items = []
        for entry in data:
            doc_id = entry.get("docId") if isinstance(entry, dict) else None
            if not isinstance(doc_id, str) or not doc_id:
                raise self._unreadable("getReceivedEdocList listed an item without a docId")
            source = entry.get("from")
            created = entry.get("created")
            items.append(
                ListedItem(
                    doc_id,
                    messagetype,
                    source if isinstance(source, str) else None,
                    created if isinstance(created, str) else None,
                )
            )
        return items

    async def download(self, transport_id: str, dest: Path) -> int:
        """The item's edXML streamed into `dest`; its size. Refused past max_document_bytes
        (`UnreadableReply` code `too_large`), the partial file removed."""
        return await self._guarded(partial(self._download, transport_id, dest))

    async def ack(self, transport_id: str, status: AckStatus, reason: str | None = None) -> None:
        payload: dict[str, Any] = {"docId": transport_id, "status": status}
        if reason:
            payload["reason"] = reason[:MAX_REASON_CHARS]
        await self._json_call(ACK_PATH, payload)

    async def send(self, edxml: Path, messagetype: MessageType = "edoc") -> str:
        """Send one edXML file; the axis's docId for it."""
        body = edxml.with_name(edxml.name + ".multipart")
        content_type, digest, size = await _multipart_file(edxml, messagetype, body)
        try:
            reply = await self._guarded(partial(self._send, body, content_type, digest, size))
        finally:
            with contextlib.suppress(FileNotFoundError):
                await aiofiles.os.remove(body)
        doc_id = reply.get("docId")
        if not isinstance(doc_id, str) or not doc_id:
            raise self._unreadable("sendEdoc replied without a docId")
        return doc_id

    async def agencies(self) -> dict[str, str]:
        """The axis's agency list: organ id → name."""
        reply = await self._json_call(AGENCIES_PATH, {})
        data = reply.get("data")
        if not isinstance(data, list):
            raise self._unreadable("getAgencyList replied without a data list")
        out: dict[str, str] = {}
        for entry in data:
            if isinstance(entry, dict) and isinstance(entry.get("organId"), str):
                out[entry["organId"]] = str(entry.get("organName") or "")
        return out

    async def breaker_state(self) -> str:
        return await self.guard.breaker_state()

    # -- exchanges ------------------------------------------------------------------------------

    async def _json_call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._guarded(partial(self._post_json, path, dumps(payload).encode()))

    async def _guarded(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await self.guard.call(partial(self._translated, fn))

    async def _translated(self, fn: Callable[[], Awaitable[T]]) -> T:
        async with self.guard.limiter:
            try:
                return await fn()
            except HubError:
                raise
            except Exception as exc:
                raise translate_http_error(exc, CONNECTOR, "the axis") from exc

    def _headers(self, path: str, digest: str, content_type: str) -> dict[str, str]:
        cfg = self.config
        return {
            **self.scheme.headers(
                cfg.system_id, cfg.secret.get_secret_value(), "POST", path, digest, self.clock()
            ),
            "Content-Type": content_type,
        }

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.config.timeout_s)

    async def _post_json(self, path: str, body: bytes) -> dict[str, Any]:
        headers = self._headers(path, body_sha256(body), "application/json")
        async with self.http.post(
            self.config.base_url + path,
            data=body,
            headers=headers,
            timeout=self._timeout(),
            ssl=self.ssl,
        ) as response:
            return await self._reply(response)

    async def _send(self, body: Path, content_type: str, digest: str, size: int) -> dict[str, Any]:
        headers = self._headers(SEND_PATH, digest, content_type)
        headers["Content-Length"] = str(size)
        with open(body, "rb") as stream:  # noqa: ASYNC230 (aiohttp reads it in a thread)
            async with self.http.post(
                self.config.base_url + SEND_PATH,
                data=stream,
                headers=headers,
                timeout=self._timeout(),
                ssl=self.ssl,
            ) as response:
                return await self._reply(response)

    async def _download(self, transport_id: str, dest: Path) -> int:
        body = dumps({"docId": transport_id}).encode()
        headers = self._headers(GET_PATH, body_sha256(body), "application/json")
        async with self.http.post(
            self.config.base_url + GET_PATH,
            data=body,
            headers=headers,
            timeout=self._timeout(),
            ssl=self.ssl,
        ) as response:
            if response.status != 200:
                await self._reply(response)  # raises with the axis's reason
                raise self._unreadable(f"getEdoc answered HTTP {response.status}")
            return await self._stream_to(response, dest)

    async def _stream_to(self, response: aiohttp.ClientResponse, dest: Path) -> int:
        limit = self.config.max_document_bytes
        size = 0
        try:
            async with aiofiles.open(dest, "wb") as out:
                if response.content_type.startswith("multipart/"):
                    declared = response.headers.get("Content-Type", "")
                    head = (
                        b"MIME-Version: 1.0\r\nContent-Type: "
                        + declared.encode("utf-8", "surrogateescape")
                        + b"\r\n\r\n"
                    )
                    size = len(head)  # counted like the rest: the codec reads the whole file
                    await out.write(head)
                async for chunk in response.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise UnreadableReply(
                            f"the document is larger than max_document_bytes ({limit})",
                            connector=CONNECTOR,
                            code="too_large",
                        )
                    await out.write(chunk)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                await aiofiles.os.remove(dest)
            raise
        return size

    async def _reply(self, response: aiohttp.ClientResponse) -> dict[str, Any]:
        raw = await read_reply(response, MAX_JSON_REPLY, connector=CONNECTOR, system="the axis")
        status = response.status
        try:
            reply = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            reply = None
        detail = _reason(reply, raw)
        if status >= 500 or status in _RETRYABLE:
            raise DestinationUnavailable(
                f"the axis answered HTTP {status}: {detail}",
                connector=CONNECTOR,
                http_status=status,
            )
        if status in (401, 403):  # the hub's signature or account: wait, park nothing
            raise CredentialsRefused(
                f"the axis refused the hub's credentials (HTTP {status}): {detail}",
                connector=CONNECTOR,
            )
        if not 200 <= status < 300 or (isinstance(reply, dict) and reply.get("status") == "FAIL"):
            code = reply.get("errorCode") if isinstance(reply, dict) else None
            raise DestinationRejected(
                f"the axis refused (HTTP {status}): {detail}",
                connector=CONNECTOR,
                code=str(code or status),
            )
        if not isinstance(reply, dict):
            raise self._unreadable(
                f"the axis replied with something that is not a JSON object: {detail[:100]!r}"
            )
        return reply

    def _unreadable(self, message: str) -> UnreadableReply:
        return UnreadableReply(message, connector=CONNECTOR, code="invalid_reply")


def _reason(reply: Any, raw: bytes) -> str:
    if isinstance(reply, dict) and isinstance(reply.get("error"), str):
        return str(reply["error"])[:300]
    return raw[:300].decode("utf-8", "replace").strip()


class _HashingFile:
    """Where `MultipartWriter.write` puts the body: a file, hashed on the way."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    async def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)
        await self.out.write(data)


async def _multipart_file(
    edxml: Path, messagetype: MessageType, dest: Path
) -> tuple[str, str, int]:
    """The sendEdoc body written to `dest`; its content type, hex SHA-256 and size. The file
    part is the edXML, or a package with the package's Content-Type."""
    writer = aiohttp.MultipartWriter("form-data")
    part = writer.append(messagetype)
    part.set_content_disposition("form-data", name=SEND_TYPE_FIELD)
    with edxml.open("rb") as source:
        package_type = mime.content_type_of(source.read(mime.MAX_HEADER_BYTES))
        source.seek(0)
        part = writer.append(source, {"Content-Type": package_type or EDXML_CONTENT_TYPE})
        part.set_content_disposition("form-data", name=SEND_FILE_FIELD, filename=edxml.name)
        async with aiofiles.open(dest, "wb") as out:
            sink = _HashingFile(out)
            await writer.write(sink)  # type: ignore[arg-type]
    return writer.headers["Content-Type"], sink.sha256.hexdigest(), sink.size
