"""Small helpers shared by every HTTP door: reading a bounded JSON body, writing JSON.

The APIs reply through their models (`schemas/`, each connector's `models.py`), which are also
the OpenAPI document's schemas: `model_response` sends a model, `reply` checks a dict a part
of the hub built against its model first (a key the model does not name, or a missing one, is
an error here, never a reply the document does not describe). This module must never decide a
protocol's reply shape: each door words its own errors.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from hub.errors import UnreadableReply
from schemas.api import ErrorOut


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_json_object(request: web.Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, or `BodyError` (413 too large, 400 not a JSON object)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyError(413, f"body larger than {limit} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyError(413, f"body larger than {limit} bytes") from None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:  # nested deeper than the parser goes: refused, never a 500
        raise BodyError(400, "body is nested too deeply to be a request") from None
    if not isinstance(body, dict):
        raise BodyError(400, "body must be a JSON object")
    return body


def echoable(value: object) -> str | None:
    """A value from a request, fit to be repeated in the reply (an id the sender gave): a
    string that UTF-8 can carry, else None. A lone surrogate (JSON may escape one) cannot
    be, and would turn a refusal into a failed reply."""
    if not isinstance(value, str):
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return None
    return value


def writable(text: str) -> str:
    """`text` as every store back-end and a log can keep it: a lone surrogate written as its
    escape (`\\ud800`), and so is NUL (`\\x00`: PostgreSQL's text holds every character but
    that one; SQLite's would), everything else unchanged. For what a door keeps of a refused
    request (a log-in's name, a callback's ids)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def model_response(
    model: BaseModel, status: int = 200, exclude_unset: bool = False
) -> web.Response:
    """A reply model as JSON; `exclude_unset` leaves out the fields that were never given."""
    data = model.model_dump(mode="json", exclude_unset=exclude_unset, fallback=str)
    return json_response(data, status)


def reply(model: type[BaseModel], data: Any, status: int = 200) -> web.Response:
    """`data` (built by a part of the hub that knows nothing of HTTP) checked against its reply
    model and sent with exactly the keys it has: an optional field it leaves out stays out."""
    return model_response(model.model_validate(data), status, exclude_unset=True)


def error_response(status: int, error: str, message: str) -> web.Response:
    """The APIs' one error shape: `{"error": <stable code>, "message": <a sentence>}`."""
    return model_response(ErrorOut(error=error, message=message), status)


async def read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes | None:
    """The whole body, or None as soon as it grows past `limit` bytes (the rest unread).

    Every body the hub reads, a request's or a destination's reply, goes through here or
    `read_reply`: never `read()`, `json()` or `text()` on a stream whose size nobody checked."""
    body = bytearray()
    while chunk := await stream.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def read_reply(
    response: aiohttp.ClientResponse, limit: int, *, connector: str, system: str
) -> bytes:
    """A destination's whole reply, or `UnreadableReply` (`oversized`) as soon as it grows
    past `limit` bytes: the call's item is parked with that reason. A caller for whom an
    oversized reply is an outage instead (a token endpoint) uses `read_capped`."""
    raw = await read_capped(response.content, limit)
    if raw is None:
        raise UnreadableReply(
            f"{system} replied with more than {limit} bytes; refused unread",
            connector=connector,
            code="oversized",
        )
    return raw
