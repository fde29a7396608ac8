"""The door ministry systems push their results through.

`POST /api/v1/ministries/{system}/results`, in the system's own JSON (its mapping file's
`results.push_items` says where the list is). Each system authenticates with its own
credential (`ministries.<system>.push`): a bearer token whose salted hash is configured
(`hub.tokens`), or an HMAC-signed request (`connectors.ministry.auth.verify_hmac`). Its
`limits` bound the pushes per client address (checked first) and per system (once
authenticated): 429 with Retry-After. The answer is 200 with one outcome per item
(`accepted`, `duplicate`, or `quarantined` with its code and reason), so a bad item never
spoils its neighbours; 400 for a body that is not JSON, 401 for a wrong credential, 404 for a
system that does not push, 413 for an oversized body, 422 when the results are not where the
mapping says, 503 when the store cannot commit (push again). This module must never map a
result itself: the intake does.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass

import structlog
from aiohttp import web

from connectors.ministry.auth import verify_hmac
from connectors.ministry.config import PushConfig
from connectors.ministry.intake import ResultIntake
from connectors.ministry.mapping import MappingFailed, MinistryMapping
from connectors.ministry.models import PushReply
from hub.errors import TransientError, ValidationFailed
from hub.httputil import error_response, read_capped, reply
from hub.ratelimit import DoorLimiter, retry_after
from hub.tokens import token_matches

log = structlog.get_logger(__name__)

PATH = "/api/v1/ministries/{system}/results"
MAX_ITEMS = 1000


@dataclass(frozen=True)
class PushEntry:
    config: PushConfig
    mapping: MinistryMapping
    intake: ResultIntake
    limiter: DoorLimiter


def push_entry(
    system: str, config: PushConfig, mapping: MinistryMapping, intake: ResultIntake
) -> PushEntry:
    return PushEntry(config, mapping, intake, DoorLimiter("ministry_push", config.limits))


class ResultsDoor:
    def __init__(self, systems: dict[str, PushEntry], max_body_bytes: int) -> None:
        self.systems = systems
        self.max_body_bytes = max_body_bytes

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PATH, self.push)]

    async def push(self, request: web.Request) -> web.Response:
        system = request.match_info["system"]
        entry = self.systems.get(system)
        if entry is None:
            return error_response(
                404, "unknown_system", f"no ministry system {system[:50]!r} pushes here"
            )
        body = await self._admit(system, entry, request)
        if isinstance(body, web.Response):
            return body
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return error_response(400, "invalid_json", "the body is not JSON")
        try:
            items = entry.mapping.pushed_items(document)
        except MappingFailed as exc:  # kept for operators, as a polled reply would be
            try:
                await entry.intake.quarantine_reply(document, "push", exc)
            except TransientError as failed:
                return error_response(503, "unavailable", f"{failed.message}; push again")
            return error_response(422, exc.code, exc.message)
        except ValidationFailed as exc:
            return error_response(422, exc.code, exc.message)
        if len(items) > MAX_ITEMS:
            return error_response(413, "too_many", f"push at most {MAX_ITEMS} results at a time")
        try:
            outcomes = await entry.intake.accept(items, "push")
        except TransientError as exc:  # the store (or the broker) failed: push again
            return error_response(503, "unavailable", f"{exc.message}; push again")
        counts = Counter(o.verdict for o in outcomes)
        return reply(
            PushReply,
            {
                "accepted": counts["accepted"],
                "duplicate": counts["duplicate"],
                "quarantined": counts["quarantined"],
                "items": [o.as_dict() for o in outcomes],
            },
        )

    async def _admit(
        self, system: str, entry: PushEntry, request: web.Request
    ) -> bytes | web.Response:
        """The body of a push within the limits and carrying the system's credential, or the
        reply refusing it (429, 413, 401)."""
        if wait := entry.limiter.address(request):
            return _too_many("this address", wait)
        body = await read_capped(request.content, self.max_body_bytes)
        if body is None:
            return error_response(
                413, "too_large", f"the body is larger than {self.max_body_bytes} bytes"
            )
        if (why := _unauthenticated(entry.config, request, body)) is not None:
            log.warning("ministry_push_unauthenticated", system=system, reason=why)
            return error_response(401, "unauthenticated", why)
        if wait := entry.limiter.source(system):
            return _too_many(f"system {system!r}", wait)
        return body


def _too_many(who: str, wait_s: float) -> web.Response:
    message = f"too many pushes from {who}: push again in {math.ceil(wait_s)} s"
    return retry_after(error_response(429, "too_many_requests", message), wait_s)


def _unauthenticated(config: PushConfig, request: web.Request, body: bytes) -> str | None:
    """None when the request carries the system's credential; otherwise why not."""
    if config.hmac is not None:
        return verify_hmac(config.hmac, request.method, request.path_qs, request.headers, body)
    assert config.token_sha256 is not None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "send Authorization: Bearer <token>"
    if not token_matches(config.token_sha256.get_secret_value(), token.strip()):
        return "the token is not this system's"
    return None
