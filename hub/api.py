"""The hub's own REST API: canonical dossier events in, the portal's change feed out.

`POST /api/v1/dossier-events` takes a batch and answers per item (accepted, duplicate,
rejected with code, field and message); valid items are committed before the reply.
`GET /api/v1/portal/dossier-changes?after=<cursor>&limit=<n>` returns the newest snapshot of
each dossier changed after the cursor, in commit order. Both authenticate with a bearer token
per source, within `http.api_limits` (per address, then per source: 429 with Retry-After).
This module must never let an invalid item reach the store or a queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from aiohttp import web
from pydantic import ValidationError

from hub import metrics
from hub.auth import Authenticator, Principal
from hub.errors import HubError, StoreUnavailable, ValidationFailed
from hub.httputil import (
    BodyError,
    echoable,
    error_response,
    model_response,
    read_json_object,
)
from hub.intake import Intake
from hub.ratelimit import DoorLimiter, retry_after
from hub.status_mapping import StatusTable
from hub.store.base import FeedItem
from hub.validation import Validator, item_error
from schemas.api import (
    DossierEventIn,
    EventsResponse,
    FeedItemOut,
    FeedPage,
    ItemError,
    ItemResultOut,
)
from schemas.canonical import DossierEvent, DossierRecord, DossierStatus, ProcessingStep

log = structlog.get_logger(__name__)

MAX_FEED_LIMIT = 1000


class ChangeFeed(Protocol):
    """The change feed: each dossier's newest snapshot, in commit order from a cursor."""

    async def changes_after(self, cursor: int, limit: int) -> list[FeedItem]: ...


def authorize(
    auth: Authenticator, request: web.Request, permission: str
) -> Principal | web.Response:
    """The calling system if its bearer token is valid and grants `permission`, else 401/403."""
    who = auth.bearer(request.headers.get("Authorization"))
    if who is None:
        return error_response(401, "unauthenticated", "send Authorization: Bearer <token>")
    if not who.may(permission):
        log.warning("api_forbidden", source=who.name, permission=permission)
        return error_response(403, "forbidden", f"system {who.name!r} lacks {permission!r}")
    return who


def too_many(who: str, wait_s: float) -> web.Response:
    """429 for a caller over a rate limit, with Retry-After."""
    message = f"too many requests from {who}: retry in {math.ceil(wait_s)} s"
    return retry_after(error_response(429, "too_many_requests", message), wait_s)


@dataclass
class EventsApi:
    auth: Authenticator
    intake: Intake
    store: ChangeFeed
    validator: Validator
    tables: dict[str, StatusTable]
    max_body_bytes: int
    limiter: DoorLimiter

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/dossier-events", self.post_events),
            web.get("/api/v1/portal/dossier-changes", self.get_changes),
        ]

    def _principal(self, request: web.Request, permission: str) -> Principal | web.Response:
        """The caller, checked against the limits: its address first, then (authenticated)
        itself; or the 401/403/429 to answer."""
        if wait := self.limiter.address(request):
            return too_many("this address", wait)
        who = authorize(self.auth, request, permission)
        if isinstance(who, Principal) and (wait := self.limiter.source(who.name)):
            return too_many(f"system {who.name!r}", wait)
        return who

    async def post_events(self, request: web.Request) -> web.Response:
        who = self._principal(request, "events.write")
        if isinstance(who, web.Response):
            return who
        try:
            body = await read_json_object(request, self.max_body_bytes)
        except BodyError as exc:
            return error_response(exc.status, "bad_body", exc.message)
        items = body.get("events")
        if not isinstance(items, list):
            return error_response(400, "bad_body", "events must be a list")
        try:
            self.validator.batch_size(len(items))
        except ValidationFailed as exc:
            return error_response(
                413 if exc.code == "batch_too_large" else 400, exc.code, exc.message
            )
        return await self._accept(who, items)

    async def _accept(self, who: Principal, items: list[Any]) -> web.Response:
        now = datetime.now(UTC)
        table = self.tables[who.config.status_mapping]
        results: dict[int, ItemResultOut] = {}
        valid: list[tuple[int, DossierEvent]] = []
        for i, item in enumerate(items):
            try:
                event = to_event(item, who.name, table, self.validator, now)
                who.check_dossier(event.dossier_code, "dossier_code")
                valid.append((i, event))
            except Exception as raw:  # every item failure stays that item's own
                exc = item_error(raw)
                error = ItemError(code=exc.code, field=exc.field, message=exc.message)
                event_id = item.get("event_id") if isinstance(item, dict) else None
                results[i] = ItemResultOut(
                    index=i,
                    event_id=echoable(event_id),
                    outcome="rejected",
                    error=error,
                )
                metrics.INBOUND_ITEMS.labels("api", "refused").inc()
        if valid:
            try:
                outcome = await self.intake.accept([e for _, e in valid], publish="later")
            except HubError as exc:
                log.error("api_store_failed", error=exc.message)
                return error_response(503, "unavailable", "the hub cannot store events now; retry")
            for (i, event), res in zip(valid, outcome.results, strict=True):
                label = "duplicate" if res.duplicate else "accepted"
                metrics.INBOUND_ITEMS.labels("api", label).inc()
                results[i] = ItemResultOut(index=i, event_id=event.event_id, outcome=label)
        ordered = [results[i] for i in range(len(items))]
        response = EventsResponse(
            accepted=sum(r.outcome == "accepted" for r in ordered),
            duplicates=sum(r.outcome == "duplicate" for r in ordered),
            rejected=sum(r.outcome == "rejected" for r in ordered),
            results=ordered,
        )
        return model_response(response)

    async def get_changes(self, request: web.Request) -> web.Response:
        who = self._principal(request, "portal.feed")
        if isinstance(who, web.Response):
            return who
        try:
            after = int(request.query.get("after", "0") or "0")
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return error_response(400, "bad_query", "after and limit must be integers")
        if not 0 <= after < 2**63 or not 1 <= limit <= MAX_FEED_LIMIT:
            return error_response(
                400, "bad_query", f"after >= 0 and 1 <= limit <= {MAX_FEED_LIMIT}"
            )
        try:
            items = await self.store.changes_after(after, limit)
        except StoreUnavailable as exc:
            log.error("feed_store_failed", error=exc.message)
            return error_response(503, "unavailable", "the hub cannot read its store now; retry")
        page = FeedPage(
            items=[
                FeedItemOut(
                    cursor=str(item.cursor),
                    dossier_code=item.snapshot.dossier_code,
                    status=int(item.snapshot.status),
                    status_name=item.snapshot.status.name,
                    status_at=item.snapshot.status_at.isoformat(),
                    version=item.snapshot.version,
                    record=item.snapshot.record,
                )
                for item in items
                # A source limited to some units sees their dossiers only; the cursor still
                # moves past the others.
                if who.may_see(item.snapshot.dossier_code)
            ],
            next_cursor=str(items[-1].cursor if items else after),
        )
        return model_response(page)


def to_event(
    item: Any, source: str, table: StatusTable, validator: Validator, now: datetime
) -> DossierEvent:
    """One API item → a canonical event, or `ValidationFailed` naming the field."""
    if not isinstance(item, dict):
        raise ValidationFailed("each event must be a JSON object", code="wrong_type")
    try:
        incoming = DossierEventIn.model_validate(item)
    except ValidationError as exc:
        raise _first_error(exc) from None
    code = validator.dossier_code(incoming.dossier_code)
    status, sub_status = _status(incoming, table)
    occurred_at = validator.happened(incoming.occurred_at, "occurred_at", now)
    record = step = None
    if incoming.kind == "record":
        if incoming.record is None:
            raise ValidationFailed("a record event needs record", field="record", code="missing")
        fields = _checked_dates(
            incoming.record.model_dump(exclude_none=True), "record", validator, now
        )
        try:
            record = DossierRecord(dossier_code=code, status=status, **fields)
        except ValidationError as exc:
            raise _first_error(exc, "record.") from None
    else:
        details = incoming.step.model_dump(exclude_none=True) if incoming.step else {}
        details = _checked_dates(details, "step", validator, now)
        try:
            step = ProcessingStep(
                dossier_code=code, status=status, processed_at=occurred_at, **details
            )
        except ValidationError as exc:
            raise _first_error(exc, "step.") from None
    return DossierEvent(
        event_id=incoming.event_id,
        source_system=source,
        kind=incoming.kind,
        dossier_code=code,
        status=status,
        sub_status=sub_status,
        vendor_status=incoming.vendor_status,
        occurred_at=occurred_at,
        record=record,
        step=step,
    )


def _checked_dates(
    fields: dict[str, Any], prefix: str, validator: Validator, now: datetime
) -> dict[str, Any]:
    """Deadlines may lie ahead; every other `*_at` is a moment that already happened."""
    for name, value in fields.items():
        if not name.endswith("_at"):
            continue
        if name == "due_at":
            validator.due(value, f"{prefix}.{name}", now)
        else:
            validator.happened(value, f"{prefix}.{name}", now)
    return fields


def _status(incoming: DossierEventIn, table: StatusTable) -> tuple[DossierStatus, str | None]:
    if incoming.status is not None:
        try:
            return DossierStatus[incoming.status], None
        except KeyError:
            names = ", ".join(s.name for s in DossierStatus)
            raise ValidationFailed(
                f"unknown status {incoming.status!r}; use one of {names} or vendor_status",
                field="status",
                code="unknown_status",
            ) from None
    if incoming.vendor_status is not None:
        translation = table.translate(incoming.vendor_status, "vendor_status")
        return translation.status, translation.sub_status
    raise ValidationFailed("give status or vendor_status", field="status", code="missing")


def _first_error(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    err = exc.errors()[0]
    field = prefix + ".".join(str(p) for p in err["loc"])
    kind = "missing" if err["type"] == "missing" else "invalid"
    if err["type"] == "extra_forbidden":
        return ValidationFailed(f"unknown field {field}", field=field, code="unknown_field")
    return ValidationFailed(f"{field}: {err['msg']}", field=field, code=kind)
