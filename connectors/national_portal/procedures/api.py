"""The procedure pull API: what the hub holds of the national catalogue, and its syncs.

* `GET /api/v1/procedures?changed_after=<ISO time>&cursor=<n>&limit=<n>`: procedures whose
  current state changed after the time and/or the cursor, oldest change first, with
  `next_cursor` to page on (the cursor is exact; times can tie);
* `GET /api/v1/procedures/{code}`: the current record, every version and the full change
  history with field-level diffs;
* `GET /api/v1/procedures/{code}/versions/{n}`: one version's record;
* `GET /api/v1/procedure-quarantine[?include_resolved=true]`: records refused, with reasons;
* `GET /api/v1/procedure-sync-runs`: recent runs; `POST` the same path to start one
  (`{"codes": [...]}` for some procedures, `{}` for a full sync), answered 202, or 409
  while another sync runs;
* `GET /api/v1/catalogue-lists/{fields|agencies}`: the reference lists.

Reading needs the `procedures.read` permission, starting a sync `procedures.sync`.
This module must never change a procedure itself.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from connectors.national_portal.procedures.models import (
    CatalogueList,
    ProcedureDetail,
    ProcedurePage,
    ProcedureVersion,
    QuarantinePage,
    SyncRuns,
    SyncStarted,
)
from connectors.national_portal.procedures.store import SqliteProcedures
from connectors.national_portal.procedures.sync import CatalogueSync
from hub.api import authorize
from hub.auth import Authenticator
from hub.httputil import BodyError, error_response, model_response, read_json_object, reply

log = structlog.get_logger(__name__)

MAX_LIMIT = 1000
MAX_SYNC_CODES = 1000
_CODE = re.compile(r"[0-9]{1,2}\.[0-9]{6}")
_LISTS = {"fields": "field", "agencies": "agency"}


def _changed_after(text: str | None) -> str | None:
    """The ISO time as the store writes it (UTC), or ValueError."""
    if text is None:
        return None
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("changed_after needs a timezone, e.g. 2026-11-23T08:00:00+07:00")
    # The store's own spelling (UTC, microseconds), so that text order is time order.
    return when.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass
class ProceduresApi:
    auth: Authenticator
    store: SqliteProcedures
    sync: CatalogueSync | None
    max_body_bytes: int
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/procedures", self.list_changed),
            web.get("/api/v1/procedures/{code}", self.one),
            web.get("/api/v1/procedures/{code}/versions/{version}", self.version),
            web.get("/api/v1/procedure-quarantine", self.quarantine),
            web.get("/api/v1/procedure-sync-runs", self.runs),
            web.post("/api/v1/procedure-sync-runs", self.start_sync),
            web.get("/api/v1/catalogue-lists/{kind}", self.catalogue_list),
        ]

    async def list_changed(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "procedures.read"), web.Response):
            return denied
        try:
            after = _changed_after(request.query.get("changed_after"))
            cursor = int(request.query.get("cursor", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError as exc:
            return error_response(
                400, "bad_query", f"{exc} (changed_after: ISO time; cursor, limit: n)"
            )
        if not 0 <= cursor < 2**63 or not 1 <= limit <= MAX_LIMIT:
            return error_response(400, "bad_query", f"cursor >= 0 and 1 <= limit <= {MAX_LIMIT}")
        rows = await self.store.changed(cursor, after, limit)
        return reply(
            ProcedurePage,
            {
                "items": [r.as_json() for r in rows],
                "next_cursor": rows[-1].change_seq if rows else cursor,
            },
        )

    async def one(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "procedures.read"), web.Response):
            return denied
        code = request.match_info["code"]
        if not _CODE.fullmatch(code):
            return error_response(400, "bad_code", "a procedure code looks like 1.000494")
        row = await self.store.procedure(code)
        if row is None:
            return error_response(404, "not_found", f"no procedure {code} in the hub")
        versions = await self.store.versions(code)
        changes = await self.store.changes(code)
        return reply(
            ProcedureDetail,
            {
                **row.as_json(),
                "versions": [v.as_json(with_record=False) for v in versions],
                "history": [c.as_json() for c in changes],
            },
        )

    async def version(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "procedures.read"), web.Response):
            return denied
        code = request.match_info["code"]
        try:
            number = int(request.match_info["version"])
        except ValueError:
            return error_response(400, "bad_version", "a version is a whole number")
        found = [v for v in await self.store.versions(code) if v.version == number]
        if not found:
            return error_response(404, "not_found", f"no version {number} of procedure {code}")
        return reply(ProcedureVersion, {"code": code, **found[0].as_json()})

    async def quarantine(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "procedures.read"), web.Response):
            return denied
        resolved = request.query.get("include_resolved", "false").lower() == "true"
        rows = await self.store.quarantined(MAX_LIMIT, include_resolved=resolved)
        return reply(QuarantinePage, {"items": [r.as_json() for r in rows]})

    async def runs(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "procedures.read"), web.Response):
            return denied
        return reply(SyncRuns, {"items": [r.as_json() for r in await self.store.runs(20)]})

    async def catalogue_list(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "procedures.read"), web.Response):
            return denied
        kind = _LISTS.get(request.match_info["kind"])
        if kind is None:
            return error_response(404, "not_found", f"lists are: {', '.join(_LISTS)}")
        entries = await self.store.catalogue_list(kind)
        return reply(
            CatalogueList,
            {"items": [{"code": e.code, "name": e.name, "extra": e.extra} for e in entries]},
        )

    async def start_sync(self, request: web.Request) -> web.Response:
        who = authorize(self.auth, request, "procedures.sync")
        if isinstance(who, web.Response):
            return who
        if self.sync is None:
            return error_response(409, "disabled", "the catalogue sync is not enabled in this hub")
        try:
            body = await read_json_object(request, self.max_body_bytes)
        except BodyError as exc:
            return error_response(exc.status, "bad_body", exc.message)
        codes = body.get("codes")
        if codes is not None and not (
            isinstance(codes, list)
            and 0 < len(codes) <= MAX_SYNC_CODES
            and all(isinstance(c, str) and _CODE.fullmatch(c) for c in codes)
        ):
            return error_response(
                400, "bad_codes", f"codes: 1 to {MAX_SYNC_CODES} codes like 1.000494"
            )
        if self.sync.busy:
            return error_response(409, "busy", "a catalogue sync is already running")
        task = asyncio.create_task(self._sync(codes, who.name), name="catalogue-sync-api")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("catalogue_sync_requested", source=who.name, codes=codes)
        return model_response(SyncStarted(status="started", codes=codes), 202)

    async def close(self) -> None:
        """At shutdown: stop a sync the API started (it resumes at the next start)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _sync(self, codes: list[str] | None, source: str) -> None:
        assert self.sync is not None
        await self.sync.run_logged(self.sync.run(codes=codes, trigger=f"api:{source}"))
