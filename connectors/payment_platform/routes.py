"""The payment platform's door: the signed result callback.

`POST <callback_path>` takes the platform's callback (JSON, or a form), checks it
(`mapping.read_callback`: message type, partner, signature in constant time, 24-hour time
inside the tolerance window, result code, amount, currency, reference) and that the
reference names a dossier the hub knows, then stores the result and its event in one commit
and only then answers `00`. The event is published in the background (the outbox relay
publishes it later if the broker is slow or away), so the platform never waits on RabbitMQ.
A repeated callback is answered `00` and changes nothing. Anything refused is answered `99`
with the reason, logged with personal data masked, and kept in the callback log operators
read (`GET /api/v1/payments/callbacks`). A store failure answers `99` too, so the platform
sends the callback again.

Before anything is read, the client address is checked against `callback_limits`: over its
rate, HTTP 429 with `Retry-After` and `MaLoi` `99`, nothing read, checked or stored. Of the
refused callbacks of one address, the callback log keeps `refusals_per_address_per_min` a
minute; the others are answered all the same and counted in
`hub_payment_refusals_unlogged_total` (decision 0046).

This module must never put a refused callback into the store's ledger or a queue.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from connectors.payment_platform.config import PaymentPlatformConfig
from connectors.payment_platform.ledger import Verdict
from connectors.payment_platform.mapping import CallbackContext, PaymentCodes, read_callback
from connectors.payment_platform.signing import SIGNATURE_FIELD
from connectors.payment_platform.store import SqlitePayments
from hub import metrics
from hub.config_blocks import DoorLimits
from hub.errors import StoreUnavailable, ValidationFailed
from hub.httputil import json_response, read_capped, writable
from hub.intake import Intake
from hub.masking import mask
from hub.ratelimit import Buckets, DoorLimiter, client_address, retry_after
from hub.validation import Validator, item_error

log = structlog.get_logger(__name__)

OK, ERROR = "00", "99"
DOOR = "payment_callback"
MAX_CALLBACK_BYTES = 64 * 1024
_KEPT_FIELDS = 30  # of a refused body, at most this many fields, each cut to 200 characters


def reply(code: str, message: str) -> web.Response:
    """The protocol's reply: always HTTP 200, the verdict is `MaLoi`."""
    return json_response({"MaLoi": code, "MoTaLoi": message})


def loggable(fields: dict[str, Any]) -> dict[str, Any]:
    """A callback as logs and operators may see it: masked, bounded, signature shortened."""
    kept: dict[str, Any] = {}
    for key, value in list(fields.items())[:_KEPT_FIELDS]:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        kept[writable(str(key)[:50])] = writable(text[:200])
    if isinstance(kept.get(SIGNATURE_FIELD), str):
        kept[SIGNATURE_FIELD] = kept[SIGNATURE_FIELD][:8] + "…"
    masked = mask(kept)
    return masked if isinstance(masked, dict) else {}


async def _fields(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_CALLBACK_BYTES:
        raise ValidationFailed(f"body larger than {MAX_CALLBACK_BYTES} bytes", code="too_large")
    try:
        raw = await read_capped(request.content, MAX_CALLBACK_BYTES)
    except Exception:
        raise ValidationFailed("the body could not be read", code="unreadable") from None
    if raw is None:
        raise ValidationFailed(f"body larger than {MAX_CALLBACK_BYTES} bytes", code="too_large")
    try:
        text = raw.decode("utf-8")
        if request.content_type == "application/x-www-form-urlencoded":
            from urllib.parse import parse_qsl

            return dict(parse_qsl(text, keep_blank_values=True))
        body = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValidationFailed("the body is not JSON (nor a form)", code="unreadable") from None
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", code="unreadable")
    return body


@dataclass
class CallbackDoor:
    config: PaymentPlatformConfig
    codes: PaymentCodes
    validator: Validator
    payments: SqlitePayments
    intake: Intake
    _relays: set[asyncio.Task[int]] = field(default_factory=set)
    _limiter: DoorLimiter = field(init=False)
    _refusals: Buckets = field(init=False)

    def __post_init__(self) -> None:
        limits = self.config.callback_limits
        self._limiter = DoorLimiter(
            DOOR,
            DoorLimits(
                per_address_per_s=limits.per_address_per_s, per_source_per_s=0, burst=limits.burst
            ),
        )
        per_min = limits.refusals_per_address_per_min
        self._refusals = Buckets(per_min / 60, per_min)

    def routes(self) -> list[web.RouteDef]:
        return [web.post(self.config.callback_path, self.handle)]

    def _over_limits(self, request: web.Request) -> web.Response | None:
        """429 for an address over its rate; nothing of the request is read."""
        if not (wait := self._limiter.address(request)):
            return None
        message = f"too many callbacks from this address: send again in {math.ceil(wait)} s"
        return retry_after(json_response({"MaLoi": ERROR, "MoTaLoi": message}, 429), wait)

    async def handle(self, request: web.Request) -> web.Response:
        if (over := self._over_limits(request)) is not None:
            return over
        fields: dict[str, Any] = {}
        try:
            fields = await _fields(request)
            ctx = CallbackContext(self.config, self.codes, self.validator, datetime.now(UTC))
            result = read_callback(fields, ctx)
            if self.config.require_known_dossier and not await self.payments.known_dossiers(
                [result.dossier_code]
            ):
                raise ValidationFailed(
                    "MaThamChieu names a dossier the hub has never received",
                    field="MaThamChieu",
                    code="unknown_reference",
                )
        except StoreUnavailable as exc:
            return self._store_failed(exc)
        except Exception as exc:  # every other failure refuses this callback only
            return await self._refuse(item_error(exc), fields, client_address(request))
        masked = loggable(fields)
        try:
            recorded = await self.payments.record(result, masked)
        except StoreUnavailable as exc:
            return self._store_failed(exc)
        bound = {
            "dossier_code": result.dossier_code,
            "transaction_id": result.transaction_id,
            "outcome": result.outcome.value,
        }
        if recorded.verdict is Verdict.CONFLICT:
            metrics.PAYMENT_CALLBACKS.labels("refused", "conflict").inc()
            held = recorded.held
            log.warning(
                "payment_callback_conflict",
                **bound,
                held=held.outcome.value if held else None,
                held_amount=held.amount_vnd if held else None,
                amount=result.amount_vnd,
            )
            return reply(ERROR, "the platform already reported another result for MaGiaoDich")
        if recorded.outbox:
            task = asyncio.create_task(self.intake.relay(recorded.outbox))
            self._relays.add(task)
            task.add_done_callback(self._relays.discard)
        verdict = "accepted" if recorded.verdict.changes else "duplicate"
        metrics.PAYMENT_CALLBACKS.labels(verdict, "").inc()
        # DEBUG: one line per callback on the hot path; every callback is in the callback log
        # operators read, and refusals and conflicts are logged at WARNING.
        log.debug(f"payment_callback_{verdict}", **bound, amount=result.amount_vnd)
        return reply(OK, "Thành công" if verdict == "accepted" else "Đã nhận trước đó")

    async def close(self) -> None:
        """At shutdown: let publishes in flight finish (their rows stay in the outbox if not)."""
        if self._relays:
            await asyncio.wait(self._relays, timeout=5)

    async def _refuse(
        self, exc: ValidationFailed, fields: dict[str, Any], address: str
    ) -> web.Response:
        masked = loggable(fields)
        metrics.PAYMENT_CALLBACKS.labels("refused", exc.code).inc()
        if self._refusals.take(address):  # the address spent its budget: answered, not kept
            metrics.PAYMENT_REFUSALS_UNLOGGED.inc()
            return reply(ERROR, exc.message)
        log.warning("payment_callback_refused", code=exc.code, reason=exc.message, body=masked)
        key = (
            writable(str(fields.get("MaGiaoDich") or ""))[:100],
            writable(str(fields.get("MaThamChieu") or ""))[:100],
        )
        try:
            await self.payments.refuse(exc.code, exc.message, masked, key)
        except StoreUnavailable as err:
            log.error("payment_refusal_not_logged", error=err.message)
        return reply(ERROR, exc.message)

    def _store_failed(self, exc: StoreUnavailable) -> web.Response:
        log.error("payment_callback_store_failed", error=exc.message)
        return reply(ERROR, "the hub cannot store the result now; send it again")
