"""The admin API: everything the dashboard shows and does, as JSON, with the same roles.

Log in with `POST /api/v1/admin/session` ({"username", "password"}): the answer sets the
session cookie and returns the CSRF token, which every POST and DELETE must send back in
`X-CSRF-Token`. Errors have the hub's one shape, `{"error": <code>, "message": <sentence>}`:
400 bad input, 401 no session or bad credentials, 403 `forbidden` (role) or `csrf`,
404 `unknown_*` or `gone`, 429 `locked`. Operators pause and resume a connector with
`POST .../connectors/{name}/pause|resume` (body `{"reason": ...}`, optional); admins
unlock a user (`POST .../users/{name}/unlock`) and end all of a user's sessions
(`POST .../users/{name}/revoke-sessions`). `GET .../stuck` lists unconfirmed dossiers;
`GET .../dead-letters/summary` counts and groups what a filter selects, and
`POST .../dead-letter-actions` replays or discards all of it as a job on the hub
(`hub.dashboard.bulk`). Every reply
goes through its model in `schemas/admin.py`, the OpenAPI document's schemas.
Refused actions and every act are written to the audit log with who, what and when. This
module must never act before the role and the CSRF token are checked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from hub.auth import LoginsBusy
from hub.dashboard import checks, flow_view, flows, i18n
from hub.dashboard.access import (
    CSRF_HEADER,
    Ability,
    Operator,
    OperatorAccess,
    end_sessions,
    unlock,
)
from hub.dashboard.board import Board, PauseUnavailable, UnknownConnector
from hub.dashboard.bulk import BulkActions
from hub.errors import BrokerUnavailable, StoreUnavailable
from hub.httputil import BodyError, error_response, model_response, read_json_object, reply
from hub.store.sqlite import SqliteStore
from schemas.admin import (
    ActResult,
    AuditPage,
    BulkRequest,
    ConnectorDetail,
    DeadLetter,
    DeadLetterPage,
    DeadLetterSummary,
    DossierDetail,
    DossierHits,
    FlowPage,
    LoginReply,
    Overview,
    PauseResult,
    SessionsRevoked,
    StuckPage,
    Unlocked,
    UserList,
)
from schemas.admin import BulkJob as BulkJobOut

log = structlog.get_logger(__name__)

PREFIX = "/api/v1/admin"
MAX_BODY = 256_000
ACTIONS = {"replay": "dlq.replay", "discard": "dlq.discard"}


@web.middleware
async def unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The dashboard and admin API answer 503 with a sentence, not a crash, while the store or
    the broker cannot answer (other routes handle their own errors)."""
    try:
        return await handler(request)
    except (StoreUnavailable, BrokerUnavailable) as exc:
        if not request.path.startswith(("/dashboard", PREFIX)):
            raise
        log.error("dashboard_unavailable", path=request.path, error=exc.message)
        return error_response(
            503, "unavailable", "the hub cannot read its store or broker now; try again shortly"
        )


def client_of(request: web.Request) -> str:
    return request.remote or "?"


@dataclass
class AdminApi:
    access: OperatorAccess
    board: Board
    store: SqliteStore  # the writing store, for the audit log
    bulk: BulkActions

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
            web.post(f"{p}/session", self.login),
            web.delete(f"{p}/session", self.logout),
            web.get(f"{p}/overview", self.overview),
            web.get(f"{p}/connectors/{{name}}", self.connector),
            web.post(f"{p}/connectors/{{name}}/pause", self.pause),
            web.post(f"{p}/connectors/{{name}}/resume", self.resume),
            web.get(f"{p}/dossiers", self.search),
            web.get(f"{p}/stuck", self.stuck),
            web.get(f"{p}/dead-letters/summary", self.dead_letter_summary),
            web.post(f"{p}/dead-letter-actions", self.start_bulk),
            web.get(f"{p}/dead-letter-actions/{{job}}", self.bulk_job),
            web.get(f"{p}/dossiers/{{code}}", self.dossier),
            web.get(f"{p}/dead-letters", self.dead_letters),
            web.get(f"{p}/dead-letters/{{connector}}/{{message_id}}", self.dead_letter),
            web.post(f"{p}/dead-letters/{{connector}}/{{action}}", self.act),
            web.get(f"{p}/audit", self.audit),
            web.get(f"{p}/users", self.users),
            web.post(f"{p}/users/{{name}}/unlock", self.unlock),
            web.post(f"{p}/users/{{name}}/revoke-sessions", self.revoke_sessions),
            *(web.get(f"{p}/{flow}", self.flow) for flow in self.board.flows),
        ]

    async def _who(
        self, request: web.Request, ability: Ability, acting: bool = False
    ) -> Operator | web.Response:
        operator = await self.access.operator(request)
        if operator is None:
            return error_response(401, "unauthenticated", f"log in first: POST {PREFIX}/session")
        if acting:
            csrf = request.headers.get(CSRF_HEADER)
            refused = await self.access.refusal(operator, csrf, ability, request.path)
        else:
            refused = None if operator.may(ability) else "role"
        if refused == "csrf":
            return error_response(
                403, "csrf", f"send the session's CSRF token in the {CSRF_HEADER} header"
            )
        if refused == "role":
            return error_response(
                403, "forbidden", f"the role {operator.role!r} may not do this ({ability})"
            )
        return operator

    async def login(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            # A page elsewhere can post a form or text/plain without asking (no CORS
            # preflight), and log the browser into an account of its choosing; it cannot send
            # application/json. The log-in page has its own guard (a nonce cookie).
            return error_response(
                415, "bad_content_type", "log in with a JSON body (Content-Type: application/json)"
            )
        try:
            body = await read_json_object(request, 10_000)
        except BodyError as exc:
            return error_response(exc.status, "bad_body", exc.message)
        try:
            result = await self.access.login(
                body.get("username"), body.get("password"), client_of(request)
            )
        except LoginsBusy:
            response = error_response(503, "busy", "too many log-ins at once: retry shortly")
            response.headers["Retry-After"] = "5"
            return response
        if result.operator is None:
            if result.locked_until:
                response = error_response(
                    429, "locked", "too many failed log-ins: this user is locked for a while"
                )
                wait = max(1, int(result.locked_until - time.time()))
                response.headers["Retry-After"] = str(wait)
                return response
            return error_response(401, "bad_credentials", "wrong user name or password")
        op = result.operator
        response = model_response(
            LoginReply(user=op.name, role=op.role, csrf_token=op.csrf, expires_at=result.expires_at)
        )
        self.access.set_cookie(response, op)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read", acting=True), web.Response):
            return who
        await self.access.logout(who)
        response = web.Response(status=204)
        self.access.clear_cookie(response)
        return response

    async def overview(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        return reply(Overview, await self.board.overview())

    async def connector(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        try:
            hours = checks.number("hours", request.query.get("hours"), 24, 0.1, 24 * 14)
            return reply(
                ConnectorDetail, await self.board.connector(request.match_info["name"], hours)
            )
        except checks.BadInput as exc:
            return error_response(400, "bad_query", exc.message)
        except UnknownConnector:
            return _unknown_connector(request.match_info["name"])

    async def pause(self, request: web.Request) -> web.Response:
        return await self._set_paused(request, True)

    async def resume(self, request: web.Request) -> web.Response:
        return await self._set_paused(request, False)

    async def _set_paused(self, request: web.Request, paused: bool) -> web.Response:
        """Pause or resume a connector; the body `{"reason": ...}` is optional."""
        acting = await self._who(request, "connectors.pause", acting=True)
        if isinstance(acting, web.Response):
            return acting
        name = request.match_info["name"]
        try:
            body = await read_json_object(request, 10_000) if request.body_exists else {}
            reason = checks.pause_reason(body.get("reason"))
            return reply(
                PauseResult, await self.board.set_paused(name, acting.name, reason, paused)
            )
        except BodyError as exc:
            return error_response(exc.status, "bad_body", exc.message)
        except checks.BadInput as exc:
            return error_response(400, "bad_body", exc.message)
        except UnknownConnector:
            return _unknown_connector(name)
        except PauseUnavailable:
            return error_response(503, "unavailable", "this hub cannot pause connectors")

    async def search(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        try:
            text = checks.search_text(request.query.get("q"))
            page = checks.page(request.query.get("page"))
        except checks.BadInput as exc:
            return error_response(400, "bad_query", exc.message)
        return reply(DossierHits, await self.board.search(text, page))

    async def stuck(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        try:
            where = checks.stuck_filter(request.query)
            page = checks.page(request.query.get("page"))
        except checks.BadInput as exc:
            return error_response(400, "bad_query", exc.message)
        return reply(StuckPage, await self.board.stuck(where, page))

    async def dead_letter_summary(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        try:
            where = checks.dead_letter_filter(request.query)
            return reply(DeadLetterSummary, await self.bulk.preview(where))
        except checks.BadInput as exc:
            return error_response(400, "bad_query", exc.message)
        except UnknownConnector:
            return _unknown_connector(request.query.get("connector", ""))

    async def start_bulk(self, request: web.Request) -> web.Response:
        """Replay or discard every parked message a filter selects, as a job on the hub
        (202 with the job; its progress at `dead-letter-actions/{id}`). A discard must say
        `"confirm": true`: it cannot be undone."""
        if isinstance(who := await self._who(request, "dlq.act", acting=True), web.Response):
            return who
        where = None
        try:
            body = BulkRequest.model_validate(await read_json_object(request, 10_000))
            where = checks.dead_letter_filter(body.filter.model_dump())
            if body.action == "discard" and not body.confirm:
                return error_response(
                    400,
                    "confirm",
                    'a discard cannot be undone: send "confirm": true to discard',
                )
            job = self.bulk.start(body.action, where, who.name, body.expected)
        except BodyError as exc:
            return error_response(exc.status, "bad_body", exc.message)
        except ValidationError as exc:
            return error_response(400, "bad_body", _first_error(exc))
        except checks.BadInput as exc:
            return error_response(400, "bad_body", exc.message)
        except UnknownConnector:
            return _unknown_connector((where.connector if where else None) or "")
        return reply(BulkJobOut, job.as_json(), 202)

    async def bulk_job(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        job = self.bulk.job(request.match_info["job"])
        if job is None:
            return error_response(404, "unknown_job", "no such bulk action (the hub restarted?)")
        return reply(BulkJobOut, job.as_json())

    async def dossier(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        code = checks.code(request.match_info["code"])
        try:
            page = int(checks.number("page", request.query.get("page"), 0, 0, 10**6))
        except checks.BadInput as exc:
            return error_response(400, "bad_query", exc.message)
        found = await self.board.dossier(code, page) if code else None
        if found is None:
            return error_response(404, "unknown_dossier", "the hub holds no dossier with this code")
        return reply(DossierDetail, found)

    async def dead_letters(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        q = request.query
        try:
            items = await self.board.dead_letters(
                q.get("connector") or None,
                checks.reason(q.get("reason")),
                checks.moment("since", q.get("since")),
                checks.moment("until", q.get("until")),
                int(checks.number("limit", q.get("limit"), 200, 1, 1000)),
            )
        except checks.BadInput as exc:
            return error_response(400, "bad_query", exc.message)
        except UnknownConnector:
            return _unknown_connector(q.get("connector", ""))
        return reply(DeadLetterPage, {"items": items})

    async def dead_letter(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        connector, message_id = request.match_info["connector"], request.match_info["message_id"]
        try:
            found = await self.board.dead_letter(connector, message_id)
        except UnknownConnector:
            return _unknown_connector(connector)
        if found is None:
            return error_response(404, "gone", "no such message is parked (replayed or discarded?)")
        return reply(DeadLetter, found)

    async def act(self, request: web.Request) -> web.Response:
        action = ACTIONS.get(request.match_info["action"])
        if action is None:
            return error_response(404, "unknown_action", "use replay or discard")
        if isinstance(who := await self._who(request, "dlq.act", acting=True), web.Response):
            return who
        connector = request.match_info["connector"]
        try:
            body = await read_json_object(request, MAX_BODY)
            ids = checks.message_ids(body.get("message_ids"))
            done, missing = await self.board.act_on_dead_letters(connector, ids, action, who.name)
        except BodyError as exc:
            return error_response(exc.status, "bad_body", exc.message)
        except checks.BadInput as exc:
            return error_response(400, "bad_body", exc.message)
        except UnknownConnector:
            return _unknown_connector(connector)
        if not done:
            await self.store.audit(
                who.name, f"{action}.missing", connector, {"message_ids": ids[:50]}
            )
            return error_response(
                404, "gone", "none of these messages is parked any more: nothing was done"
            )
        return model_response(ActResult(done=done, missing=missing))

    async def audit(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "audit.read"), web.Response):
            return who
        try:
            limit = int(checks.number("limit", request.query.get("limit"), 100, 1, 500))
            before = request.query.get("before")
            before_id = int(checks.number("before", before, 0, 1, 2**62)) if before else None
        except checks.BadInput as exc:
            return error_response(400, "bad_query", exc.message)
        return reply(AuditPage, {"items": await self.board.audit(before_id, limit)})

    async def users(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "users.manage"), web.Response):
            return who
        return reply(UserList, {"items": await user_rows(self.access)})

    async def unlock(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "users.manage", acting=True), web.Response):
            return who
        name = request.match_info["name"]
        if name not in self.access.config.users:
            return error_response(404, "unknown_user", "no such dashboard user")
        await unlock_user(self.access, who, name)
        return model_response(Unlocked(unlocked=name))

    async def revoke_sessions(self, request: web.Request) -> web.Response:
        """End every session of a user (a stolen cookie, a colleague gone): their next request
        needs a new log-in. An admin may end their own, this one included."""
        if isinstance(who := await self._who(request, "users.manage", acting=True), web.Response):
            return who
        name = request.match_info["name"]
        if name not in self.access.config.users:
            return error_response(404, "unknown_user", "no such dashboard user")
        ended = await end_sessions(self.access.store, who.name, name)
        return model_response(SessionsRevoked(user=name, sessions_ended=ended))

    async def flow(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "read"), web.Response):
            return who
        data = await self.board.flow(request.path.rsplit("/", 1)[-1])
        try:
            viewed = flow_view.view(data, request.query, i18n.DEFAULT, self.board.config.names)
        except flows.BadFilter as exc:
            return error_response(400, "bad_filter", f"not a date (YYYY-MM-DD): {exc}")
        return reply(FlowPage, flow_view.as_json(viewed))


async def user_rows(access: OperatorAccess) -> list[dict[str, Any]]:
    out = []
    for name, user in sorted(access.config.users.items()):
        state = await access.store.dashboard.login_summary(name)
        locked = state is not None and state.locked_until > time.time()
        out.append(
            {
                "name": name,
                "role": user.role,
                "locked": locked,
                "failures": state.failures if state else 0,
            }
        )
    return out


async def unlock_user(access: OperatorAccess, who: Operator, name: str) -> None:
    await unlock(access.store, who.name, name)


def _unknown_connector(name: str) -> web.Response:
    return error_response(404, "unknown_connector", f"no connector is named {name[:100]!r}")


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
