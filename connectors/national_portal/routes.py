"""The DVCQG-compatible facade: a one-stop system points its DVCQG adapter URL here.

It answers the protocol's login, `DongBoHoSoMC`, `CapNhatTienDoHoSoMC` and `TraCuuHoSo` with
the protocol's own reply shapes and codes (see PROTOCOL.md). Every item is validated and
mapped on its own: invalid items get their own error in `result`, valid ones beside them go
on. `"00"` is answered only after the store committed the items (guarantee 1); a store failure
answers `"99"` so the adapter repeats the call. `facade.limits` bound the calls per client
address (before the body is read) and per source (once its session is known): 429 with
`"99"` and Retry-After.

This module must never put an invalid item into the store or a queue.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from aiohttp import web

from connectors.national_portal.mapping import (
    InboundContext,
    record_event,
    record_to_wire,
    step_event,
    step_to_wire,
)
from hub import metrics
from hub.auth import Authenticator, LoginsBusy, Principal
from hub.errors import HubError, StoreUnavailable, ValidationFailed
from hub.httputil import BodyError, echoable, json_response, read_json_object
from hub.intake import Intake
from hub.ratelimit import DoorLimiter, retry_after
from hub.status_mapping import StatusTable
from hub.store.base import DossierView
from hub.validation import Validator, item_error
from schemas.canonical import DossierEvent, ProcessingStep

log = structlog.get_logger(__name__)

OK, INVALID, PARTIAL, FORBIDDEN, TRY_LATER, NOT_FOUND = "00", "01", "02", "03", "99", "06"
ITEM_INVALID = "04"
PUSH_SERVICES = {"DongBoHoSoMC": record_event, "CapNhatTienDoHoSoMC": step_event}
SERVICES = {*PUSH_SERVICES, "TraCuuHoSo"}


def _reply(status: int, code: str | int, message: str, **extra: Any) -> web.Response:
    return json_response({"error_code": code, "message": message, **extra}, status)


def _too_many(who: str, wait_s: float) -> web.Response:
    message = f"too many calls from {who}: repeat in {math.ceil(wait_s)} s"
    return retry_after(_reply(429, TRY_LATER, message), wait_s)


class DossierLookup(Protocol):
    """A dossier's newest state and history (`TraCuuHoSo`)."""

    async def dossier(self, code: str) -> DossierView: ...


@dataclass
class Facade:
    auth: Authenticator
    intake: Intake
    store: DossierLookup
    validator: Validator
    tables: dict[str, StatusTable]
    max_body_bytes: int
    limiter: DoorLimiter

    def routes(self, path: str) -> list[web.RouteDef]:
        return [web.post(path, self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        if wait := self.limiter.address(request):
            return _too_many("this address", wait)
        try:
            return await self._handle(request)
        except StoreUnavailable as exc:
            log.error("facade_store_failed", error=exc.message)
            return _reply(503, TRY_LATER, "the hub cannot reach its store now; repeat the call")

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = await read_json_object(request, self.max_body_bytes)
        except BodyError as exc:
            return _reply(exc.status, INVALID, exc.message)
        service = body.get("service")
        if not isinstance(service, str | None):  # a list or an object is no service name
            return _reply(400, INVALID, "service must be the name of a service")
        if service in (None, "DangNhap") and "username" in body:
            return await self._login(body, request.remote or "?")
        if service not in SERVICES:
            return _reply(400, INVALID, f"unknown service {service!r}; served: {sorted(SERVICES)}")
        principal = await self.auth.session(body.get("session"))
        if principal is None:
            metrics.INBOUND_ITEMS.labels("facade", "unauthenticated").inc()
            return _reply(401, "401", "session missing, invalid or expired: log in again")
        if wait := self.limiter.source(principal.name):
            return _too_many(f"system {principal.name!r}", wait)
        refusal = self._authorize(principal, str(service), body.get("madonvi"))
        if refusal is not None:
            return refusal
        if service == "TraCuuHoSo":
            return await self._lookup(principal, body)
        return await self._push(principal, str(service), body)

    async def _login(self, body: dict[str, Any], client: str) -> web.Response:
        try:
            outcome = await self.auth.login(body.get("username"), body.get("password"), client)
        except LoginsBusy:
            log.warning("facade_logins_busy", client=client)
            reply = _reply(503, TRY_LATER, "too many log-ins at once: repeat in a few seconds")
            reply.headers["Retry-After"] = "5"
            return reply
        if outcome.locked_until:
            log.warning("facade_login_locked", username=_shown(body.get("username")), client=client)
            reply = _reply(429, -1, "too many failed log-ins from this address: wait, then retry")
            reply.headers["Retry-After"] = str(max(1, int(outcome.locked_until - time.time())))
            return reply
        if outcome.token is None:
            log.warning(
                "facade_login_refused", username=_shown(body.get("username")), client=client
            )
            return _reply(401, -1, "wrong username or password")
        return web.json_response({"error_code": 0, "session": outcome.token})

    def _authorize(self, who: Principal, service: str, unit: object) -> web.Response | None:
        if not who.may(f"facade.{service}"):
            log.warning("facade_forbidden", source=who.name, service=service)
            return _reply(403, FORBIDDEN, f"system {who.name!r} may not call {service}")
        try:
            unit_code = self.validator.agency_code(unit, "madonvi")
        except ValidationFailed as exc:
            return _reply(400, INVALID, exc.message, field="madonvi")
        if not who.may_use_unit(unit_code):
            return _reply(403, FORBIDDEN, f"system {who.name!r} may not act for unit {unit_code}")
        return None

    async def _push(self, who: Principal, service: str, body: dict[str, Any]) -> web.Response:
        data = body.get("data")
        if not isinstance(data, list):
            return _reply(400, INVALID, "data must be a list of items", field="data")
        if service == "DongBoHoSoMC" and str(body.get("isUpdating", "False")) not in (
            "True",
            "False",
            "true",
            "false",
        ):
            return _reply(400, INVALID, 'isUpdating must be "True" or "False"')
        try:
            self.validator.batch_size(len(data))
        except ValidationFailed as exc:
            return _reply(413 if exc.code == "batch_too_large" else 400, INVALID, exc.message)
        ctx = InboundContext(
            who.name, self.tables[who.config.status_mapping], self.validator, datetime.now(UTC)
        )
        return await self._accept(who, data, PUSH_SERVICES[service], ctx)

    async def _accept(
        self,
        who: Principal,
        data: list[Any],
        to_event: Callable[[Any, InboundContext], DossierEvent],
        ctx: InboundContext,
    ) -> web.Response:
        results: list[dict[str, Any] | None] = [None] * len(data)
        valid: list[tuple[int, DossierEvent]] = []
        for i, item in enumerate(data):
            try:
                event = to_event(item, ctx)
                who.check_dossier(event.dossier_code, "MaHoSo")
                valid.append((i, event))
            except Exception as raw:  # every item failure stays that item's own
                exc = item_error(raw)
                results[i] = _item(item, ITEM_INVALID, exc.message, exc.field)
                metrics.INBOUND_ITEMS.labels("facade", "refused").inc()
                log.info("facade_item_refused", index=i, field=exc.field, reason=exc.message)
        if valid:
            try:
                outcome = await self.intake.accept([e for _, e in valid], publish="later")
            except HubError as exc:
                log.error("facade_store_failed", error=exc.message)
                return _reply(503, TRY_LATER, "the hub cannot store items now; repeat the call")
            for (i, _), res in zip(valid, outcome.results, strict=True):
                label = "duplicate" if res.duplicate else "accepted"
                metrics.INBOUND_ITEMS.labels("facade", label).inc()
                results[i] = _item(data[i], OK, label)
        done = [r for r in results if r is not None]
        refused = sum(1 for r in done if r["error_code"] != OK)
        code = PARTIAL if refused else OK
        message = f"{len(done) - refused} accepted, {refused} refused"
        return _reply(200, code, message, result=done)

    async def _lookup(self, who: Principal, body: dict[str, Any]) -> web.Response:
        try:
            code = self.validator.dossier_code(body.get("mahoso"), "mahoso")
        except ValidationFailed as exc:
            return _reply(400, INVALID, exc.message, field="mahoso")
        # Another unit's dossier reads as unknown: the reply tells nothing of its existence.
        view = await self.store.dossier(code) if who.may_see(code) else None
        if view is None or view.snapshot is None:
            return _reply(200, NOT_FOUND, f"dossier {code} is unknown to the hub")
        return _reply(200, OK, "found", data=lookup_data(view))


def lookup_data(view: DossierView) -> dict[str, Any]:
    """A dossier in the protocol's shape, with its processing steps (`QuaTrinhXuLy`)."""
    assert view.snapshot is not None
    snap = view.snapshot
    data: dict[str, Any] = (
        record_to_wire(snap.record)
        if snap.record
        else {"MaHoSo": snap.dossier_code, "TrangThaiHoSo": str(int(snap.status))}
    )
    steps = [h.event.get("step") for h in view.history if h.kind == "step"]
    data["QuaTrinhXuLy"] = [step_to_wire(ProcessingStep.model_validate(s)) for s in steps if s]
    return data


def _shown(username: object) -> str:
    """A user name as the log shows it: what log-in compares (its first 64 characters), so a
    name of 200,000 characters is not written 200,000 characters long at every try."""
    return username[:64] if isinstance(username, str) else f"<{type(username).__name__}>"


def _item(item: Any, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    dossier = item.get("MaHoSo") if isinstance(item, dict) else None
    out: dict[str, Any] = {
        "MaHoSo": echoable(dossier),
        "error_code": code,
        "message": message,
    }
    if field:
        out["field"] = field
    return out
