"""The dashboard's HTML pages, rendered on the server with Jinja2 (autoescaped).

Pages read through the same `Board` as the admin API; forms post back here with the session's
CSRF token in the field `csrf_token`, and answer with a redirect carrying only a message key
and counts (nothing the user typed is echoed unescaped). Live numbers are refreshed by
`static/app.js` from the admin API. This module must never act for a role that may not.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from markupsafe import Markup, escape

from hub.auth import LoginsBusy
from hub.dashboard import checks, flow_view, flows, formats, i18n, reasons
from hub.dashboard.access import LOGIN_COOKIE, Ability, Operator, OperatorAccess, end_sessions
from hub.dashboard.api import ACTIONS, client_of, unlock_user, user_rows
from hub.dashboard.board import Board, PauseUnavailable, UnknownConnector
from hub.dashboard.bulk import BulkActions
from hub.dashboard.charts import connector_charts
from hub.dashboard.formats import clock, duration, money, number, percent, when
from hub.outage import State
from hub.store.dashboard import StuckFilter
from hub.store.sqlite import SqliteStore
from schemas.canonical import DossierStatus

BASE = "/dashboard"
FLASH_COOKIE = "hub_flash"
LIVE_HEADER = "X-Hub-Live"  # sent by app.js when a page asks for itself again
NAV = (
    ("overview", f"{BASE}/"),
    ("dossiers", f"{BASE}/dossiers"),
    ("stuck", f"{BASE}/stuck"),
    ("dead_letters", f"{BASE}/dead-letters"),
    ("audit", f"{BASE}/audit"),
)


def nav_with(flows: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The menu: the core's pages, with each connector's flow page before the audit log."""
    return (*NAV[:-1], *((f, f"{BASE}/{f}") for f in flows), NAV[-1])


TIMEZONE = flows.TIMEZONE
STUCK_FIELDS = ("destination", "agency", "procedure", "status", "older_than_min")
DEAD_LETTER_FIELDS = ("connector", "reason", "since", "until", "dossier_prefix", "dossier")
BULK_ACTIONS = ("replay", "discard")
PAUSE_ACTIONS = {"pause": True, "resume": False}
FLASHES = {  # the message keys a redirect may carry, and whether each tells of an error
    "discard_unconfirmed": True,
    "bad_filter": True,
    "replay": False,
    "discard": False,
    "gone": True,
    "none_selected": True,
    "unlocked": False,
    "sessions_revoked": False,
    "paused": False,
    "resumed": False,
    "already_paused": False,
    "already_running": False,
    "bad_pause_reason": True,
}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("hub.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _in_page_language(
    format_: Callable[[float | None, str], str],
) -> Callable[[jinja2.runtime.Context, float | None], str]:
    """The filter `format_`, in the language the page is rendered in."""

    @jinja2.pass_context
    def in_language(context: jinja2.runtime.Context, value: float | None) -> str:
        return format_(value, str(context.get("lang", i18n.DEFAULT)))

    return in_language


_env.filters.update(
    pretty=lambda value: _pretty(value),
    when=when,
    clock=clock,
    duration=_in_page_language(duration),
    percent=_in_page_language(percent),
    number=_in_page_language(number),
    money=_in_page_language(money),
)
_env.globals["states"] = tuple(str(s) for s in State)


@jinja2.pass_context
def _connector(context: jinja2.runtime.Context, name: str) -> str:
    """A connector's display name in the page's language (Cổng DVCQG, not national_portal)."""
    return formats.connector_name(
        str(name), str(context.get("lang", i18n.DEFAULT)), context.get("names") or {}
    )


@jinja2.pass_context
def _cell(context: jinja2.runtime.Context, column: dict[str, Any], value: Any) -> str:
    """A flow table's value as the page reads it (the CSV writes the same)."""
    return formats.cell(
        str(context.get("lang", i18n.DEFAULT)), column, value, context.get("names") or {}
    )


@jinja2.pass_context
def _reason(
    context: jinja2.runtime.Context,
    raw: str | None,
    connector: str | None = None,
    code: str | None = None,
    cause: str | None = None,
    args: dict[str, Any] | None = None,
    state: str | None = None,
) -> Markup:
    """A reason in the page's words, the hub's own text in a details element beside them.
    `state` is a connector state's reason code: an outage's cause or a state reason."""
    lang = str(context.get("lang", i18n.DEFAULT))
    if state:
        code, cause = (None, state) if state in reasons.CAUSES else (state, None)
    worded = reasons.word(lang, raw, connector=connector, code=code, cause=cause, args=args)
    if not worded.has_words:
        return escape(worded.raw)
    shown = Markup('<span class="reason-words" data-code="{}">{}</span>').format(
        worded.code, worded.words
    )
    if not worded.raw or worded.raw == worded.words:
        return shown
    return shown + Markup(
        ' <details class="raw"><summary>{}</summary><code>{}</code></details>'
    ).format(i18n.translate(lang, "reason.raw"), worded.raw)


@jinja2.pass_context
def _journaled(
    context: jinja2.runtime.Context,
    outcome: str | None,
    raw: str | None,
    connector: str | None,
    code: str | None,
    args: dict[str, Any] | None,
) -> Markup:
    """A reason on the stuck list or a dossier's "why": a journaled one (refused, retry,
    parked …) by its refusal code, one while `waiting` by the destination's state reason code;
    a line journaled without a code (before the hub kept them) is shown as it is."""
    if outcome == "waiting":
        return _reason(context, raw, connector, args=args, state=code)
    return _reason(context, raw, connector, code=code, args=args)


@jinja2.pass_context
def _reason_text(
    context: jinja2.runtime.Context,
    raw: str | None,
    code: str | None = None,
    args: dict[str, Any] | None = None,
) -> str:
    """A connector state's reason in the page's words, as plain text (a card's line)."""
    lang = str(context.get("lang", i18n.DEFAULT))
    code, cause = (None, code) if code in reasons.CAUSES else (code, None)
    return reasons.word(lang, raw, code=code, cause=cause, args=args).words


@jinja2.pass_context
def _reason_templates(context: jinja2.runtime.Context) -> dict[str, str]:
    """The words of every state reason code, for the overview's script to fill in."""
    words = i18n.catalogue(str(context.get("lang", i18n.DEFAULT)))
    found = {c: words[f"cause.{c}"] for c in reasons.CAUSES if f"cause.{c}" in words}
    found.update({c: words[f"reason.{c}"] for c in reasons.STATE_REASONS if f"reason.{c}" in words})
    return found


@jinja2.pass_context
def _hop_words(context: jinja2.runtime.Context, words: tuple[str, dict[str, Any]]) -> str:
    """A timeline hop's label or detail in the page's language: a status, an event kind or a
    payment outcome in its words, a time in the province's, an amount as money."""
    lang = str(context.get("lang", i18n.DEFAULT))
    key, values = words
    shown = dict(values)
    for name, prefix in (("status", "status"), ("kind", "event_kind"), ("outcome", "outcome")):
        if name in shown:
            shown[name] = i18n.translate(lang, f"{prefix}.{shown[name]}")
    if "happened" in shown:
        shown["happened"] = formats.when(shown["happened"])
    if "amount" in shown:
        shown["amount"] = formats.money(shown["amount"], lang)
    text = i18n.translate(lang, key, **shown)
    return f"{text} ({shown['sub']})" if shown.get("sub") else text


_env.filters["connector"] = _connector
_env.globals["hop_words"] = _hop_words
_env.globals["reason"] = _reason
_env.globals["journaled"] = _journaled
_env.globals["reason_text"] = _reason_text
_env.globals["reason_templates"] = _reason_templates
_env.globals["cell"] = _cell
_env.globals["query_of"] = lambda *parts: urlencode({k: v for p in parts for k, v in p.items()})


class Pages:
    def __init__(
        self,
        access: OperatorAccess,
        board: Board,
        store: SqliteStore,
        refresh_s: float,
        bulk: BulkActions | None = None,
    ) -> None:
        self.access = access
        self.board = board
        self.store = store
        self.refresh_s = refresh_s
        self.names = board.config.names
        self.bulk = bulk or BulkActions(board, store)

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get(BASE, self.root),
            web.get(f"{BASE}/login", self.login_form),
            web.post(f"{BASE}/login", self.login),
            web.post(f"{BASE}/logout", self.logout),
            web.get(f"{BASE}/", self.overview),
            web.get(f"{BASE}/connectors/{{name}}", self.connector),
            web.post(f"{BASE}/connectors/{{name}}/{{action}}", self.set_paused),
            web.get(f"{BASE}/dossiers", self.dossiers),
            web.get(f"{BASE}/dossiers/{{code}}", self.dossier),
            web.get(f"{BASE}/stuck", self.stuck),
            web.get(f"{BASE}/bulk-actions/new", self.bulk_confirm),
            web.post(f"{BASE}/bulk-actions", self.bulk_start),
            web.get(f"{BASE}/bulk-actions/{{job}}", self.bulk_job),
            web.get(f"{BASE}/dead-letters", self.dead_letters),
            web.get(f"{BASE}/dead-letters/{{connector}}/{{message_id}}", self.dead_letter),
            web.post(f"{BASE}/dead-letters/{{connector}}/{{action}}", self.act),
            web.get(f"{BASE}/audit", self.audit),
            web.get(f"{BASE}/users", self.users),
            web.post(f"{BASE}/users/{{name}}/unlock", self.unlock),
            web.post(f"{BASE}/users/{{name}}/revoke-sessions", self.revoke_sessions),
            *(web.get(f"{BASE}/{flow}", self.flow) for flow in self.board.flows),
            *(web.get(f"{BASE}/{flow}/{{table}}.csv", self.flow_csv) for flow in self.board.flows),
            web.static(f"{BASE}/static", _static_dir(), append_version=True),
        ]

    # -- rendering ------------------------------------------------------------------------------

    def _lang(self, request: web.Request) -> str:
        return i18n.pick(request.query.get("lang"), request.cookies.get(i18n.COOKIE))

    def render(
        self,
        request: web.Request,
        template: str,
        operator: Operator | None,
        status: int = 200,
        **context: Any,
    ) -> web.Response:
        lang = self._lang(request)
        other = "en" if lang == "vi" else "vi"

        def t(key: str, **values: object) -> str:
            return i18n.translate(lang, key, **values)

        flash = context.pop("flash", None) or _flash_from_cookie(request, t)
        query = {k: v for k, v in request.query.items() if k != "lang"}
        switch_url = request.path + "?" + urlencode({**query, "lang": other})
        html = _env.get_template(template).render(
            t=t,
            lang=lang,
            switch_url=switch_url,
            path=request.path,
            query=request.query_string,
            user=operator,
            csrf=operator.csrf if operator else "",
            nav=nav_with(self.board.flows),
            base=BASE,
            refresh_s=self.refresh_s,
            names=self.names,
            flash=flash,
            **context,
        )
        response = web.Response(text=html, status=status, content_type="text/html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        if FLASH_COOKIE in request.cookies:
            response.del_cookie(FLASH_COOKIE, path=BASE)
        if request.query.get("lang") in i18n.LANGUAGES:
            response.set_cookie(
                i18n.COOKIE, lang, max_age=365 * 86400, path="/", samesite="Lax", httponly=True
            )
        return response

    async def _who(
        self, request: web.Request, ability: Ability = "read"
    ) -> Operator | web.Response:
        operator = await self.access.operator(request)
        if operator is None:
            raise web.HTTPSeeOther(f"{BASE}/login?" + urlencode({"next": request.path_qs[:500]}))
        if not operator.may(ability):
            return self._refused(request, operator)
        return operator

    def _refused(self, request: web.Request, operator: Operator) -> web.Response:
        return self.render(
            request,
            "error.html",
            operator,
            status=403,
            flash=(
                "error",
                i18n.translate(self._lang(request), "flash.forbidden", role=operator.role),
            ),
        )

    async def _acting(
        self, request: web.Request, ability: Ability
    ) -> tuple[Operator, Any] | web.Response:
        """The operator and the posted form, once the CSRF token and the role are checked."""
        operator = await self.access.operator(request)
        if operator is None:
            raise web.HTTPSeeOther(f"{BASE}/login")
        try:
            form: Any = await request.post()
        except (ValueError, HttpProcessingError):
            form = {}  # a body no parser reads carries no CSRF token either: refused below
        refused = await self.access.refusal(operator, form.get("csrf_token"), ability, request.path)
        if refused == "csrf":
            return self.render(
                request,
                "error.html",
                operator,
                status=403,
                flash=("error", i18n.translate(self._lang(request), "flash.csrf")),
            )
        if refused == "role":
            return self._refused(request, operator)
        return operator, form

    # -- log-in ---------------------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{BASE}/")

    async def login_form(
        self, request: web.Request, status: int = 200, error: str = ""
    ) -> web.Response:
        nonce = secrets.token_urlsafe(24)
        response = self.render(
            request,
            "login.html",
            None,
            status=status,
            login_nonce=nonce,
            error=error,
            next=_safe_next(request.query.get("next")),
        )
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=3600,
            path=f"{BASE}/login",
            httponly=True,
            samesite="Strict",
            secure=self.access.config.cookie_secure,
        )
        return response

    async def login(self, request: web.Request) -> web.Response:
        lang = self._lang(request)
        try:
            form = await request.post()
        except (ValueError, HttpProcessingError):
            # a multipart body without its boundary or with a part's header no parser takes,
            # a form that is not UTF-8
            return await self.login_form(request, 400, i18n.translate(lang, "login.failed"))
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        given = form.get("login_nonce")
        if not nonce or not isinstance(given, str) or not _same(nonce, given):
            return await self.login_form(request, 403, i18n.translate(lang, "login.expired"))
        try:
            result = await self.access.login(
                form.get("username"), form.get("password"), client_of(request)
            )
        except LoginsBusy:
            return await self.login_form(request, 503, i18n.translate(lang, "login.busy"))
        if result.operator is None:
            if result.locked_until:
                minutes = max(1, round((result.locked_until - time.time()) / 60))
                return await self.login_form(
                    request, 429, i18n.translate(lang, "login.locked", minutes=minutes)
                )
            return await self.login_form(request, 401, i18n.translate(lang, "login.failed"))
        nxt = form.get("next")
        response = web.HTTPSeeOther(_safe_next(nxt if isinstance(nxt, str) else None))
        self.access.set_cookie(response, result.operator)
        response.del_cookie(LOGIN_COOKIE, path=f"{BASE}/login")
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        acting = await self._acting(request, "read")
        if isinstance(acting, web.Response):
            return acting
        await self.access.logout(acting[0])
        response = web.HTTPSeeOther(f"{BASE}/login")
        self.access.clear_cookie(response)
        raise response

    # -- pages ----------------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        return self.render(request, "overview.html", who, data=await self.board.overview())

    async def connector(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        name = request.match_info["name"]
        try:
            hours = checks.number("hours", request.query.get("hours"), 24, 0.1, 24 * 14)
            data = await self.board.connector(name, hours)
        except (checks.BadInput, UnknownConnector):
            return self._not_found(request, who, "connector.unknown")
        charts = connector_charts(data, self._lang(request))
        return self.render(
            request,
            "connector.html",
            who,
            data=data,
            charts=charts,
            may_pause=self.board.may_pause(name) and who.may("connectors.pause"),
        )

    async def set_paused(self, request: web.Request) -> web.Response:
        paused = PAUSE_ACTIONS.get(request.match_info["action"])
        if paused is None:
            raise web.HTTPNotFound()
        acting = await self._acting(request, "connectors.pause")
        if isinstance(acting, web.Response):
            return acting
        who, form = acting
        name = request.match_info["name"]
        back = f"{BASE}/connectors/{_quote(name)}"
        try:
            reason = checks.pause_reason(form.get("reason"))
            done = await self.board.set_paused(name, who.name, reason, paused)
        except checks.BadInput:
            raise self._flashed(back, "bad_pause_reason") from None
        except (UnknownConnector, PauseUnavailable):
            return self._not_found(request, who, "connector.unknown")
        if not done["changed"]:
            raise self._flashed(back, "already_paused" if paused else "already_running")
        raise self._flashed(back, "paused" if paused else "resumed")

    async def dossiers(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        raw = request.query.get("q")
        if raw is None:
            return self.render(request, "dossiers.html", who, q="", found=None, error="")
        try:
            text = checks.search_text(raw)
            page = checks.page(request.query.get("page"))
        except checks.BadInput:
            return self.render(
                request,
                "dossiers.html",
                who,
                status=400,
                q=raw[:200],
                found=None,
                error=i18n.translate(self._lang(request), "search.invalid"),
            )
        found = await self.board.search(text, page)
        items = found["items"]
        if found["total"] == 1 and items and items[0]["code"].casefold() == text.casefold():
            raise web.HTTPSeeOther(f"{BASE}/dossiers/{_quote(items[0]['code'])}")
        return self.render(request, "dossiers.html", who, q=text, found=found, error="")

    async def dossier(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        code = checks.code(request.match_info["code"])
        try:
            page = checks.page(request.query.get("page"))
        except checks.BadInput:
            page = 0
        found = await self.board.dossier(code, page) if code else None
        if found is None:
            return self._not_found(request, who, "dossier.unknown")
        return self.render(request, "dossier.html", who, d=found)

    async def stuck(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        q = request.query
        form = {k: q.get(k, "")[:100] for k in STUCK_FIELDS}
        try:
            where = checks.stuck_filter(q)
            page = checks.page(q.get("page"))
            error = ""
        except checks.BadInput as exc:
            where, page, error = StuckFilter(), 0, exc.message
        data = await self.board.stuck(where, page)
        if error:
            data = {**data, "items": [], "total": 0, "pages": 1}
        return self.render(
            request,
            "stuck.html",
            who,
            status=400 if error else 200,
            data=data,
            form=form,
            error=error,
            statuses=[s.name for s in DossierStatus],
            page_query=_page_query(request),
        )

    async def dead_letters(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        q = request.query
        form = {k: q.get(k, "")[:200] for k in DEAD_LETTER_FIELDS}
        summary: dict[str, Any] | None = None
        try:
            where = checks.dead_letter_filter(q, TIMEZONE)
            if request.headers.get(LIVE_HEADER) == "1":  # the page refreshing itself
                summary = await self.bulk.preview_recent(where)
            else:
                summary = await self.bulk.preview(where)
            error = ""
        except checks.BadInput as exc:
            error = exc.message
        except UnknownConnector:
            return self._not_found(request, who, "connector.unknown")
        connectors = [n for n, w in self.board.watched.items() if w.parking]
        return self.render(
            request,
            "dead_letters.html",
            who,
            summary=summary,
            form=form,
            filter_query=urlencode({k: v for k, v in form.items() if v}),
            connectors=connectors,
            error=error,
            status=400 if error else 200,
        )

    async def bulk_confirm(self, request: web.Request) -> web.Response:
        """The preview before a bulk action: how many messages match, grouped, and the
        button that starts it (a discard says it cannot be undone)."""
        if isinstance(who := await self._who(request, "dlq.act"), web.Response):
            return who
        q = request.query
        action = q.get("action", "")
        if action not in BULK_ACTIONS:
            raise web.HTTPNotFound()
        form = {k: q.get(k, "")[:200] for k in DEAD_LETTER_FIELDS}
        try:
            where = checks.dead_letter_filter(q, TIMEZONE)
            summary = await self.bulk.preview(where)
        except checks.BadInput as exc:
            raise self._flashed(
                f"{BASE}/dead-letters?" + urlencode({k: v for k, v in form.items() if v}),
                "bad_filter",
            ) from exc
        except UnknownConnector:
            return self._not_found(request, who, "connector.unknown")
        return self.render(
            request,
            "bulk_confirm.html",
            who,
            action=action,
            summary=summary,
            form=form,
            filter_query=urlencode({k: v for k, v in form.items() if v}),
        )

    async def bulk_start(self, request: web.Request) -> web.Response:
        acting = await self._acting(request, "dlq.act")
        if isinstance(acting, web.Response):
            return acting
        who, form = acting
        fields = {k: v for k in DEAD_LETTER_FIELDS if isinstance(v := form.get(k), str)}
        back = f"{BASE}/dead-letters?" + urlencode({k: v for k, v in fields.items() if v})
        action = form.get("action")
        if action not in BULK_ACTIONS:
            raise web.HTTPNotFound()
        if action == "discard" and form.get("confirm") != "yes":
            raise self._flashed(back, "discard_unconfirmed")
        try:
            where = checks.dead_letter_filter(fields, TIMEZONE)
            expected = form.get("expected")
            counted = int(expected) if isinstance(expected, str) and expected.isdigit() else None
            job = self.bulk.start(str(action), where, who.name, counted)
        except checks.BadInput:
            raise self._flashed(back, "bad_filter") from None
        except UnknownConnector:
            return self._not_found(request, who, "connector.unknown")
        raise web.HTTPSeeOther(f"{BASE}/bulk-actions/{job.id}")

    async def bulk_job(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        job = self.bulk.job(request.match_info["job"])
        if job is None:
            return self._not_found(request, who, "bulk.unknown")
        return self.render(request, "bulk_job.html", who, job=job.as_json())

    async def dead_letter(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        try:
            found = await self.board.dead_letter(
                request.match_info["connector"], request.match_info["message_id"]
            )
        except UnknownConnector:
            found = None
        if found is None:
            return self._not_found(request, who, "dead_letter.gone")
        return self.render(request, "dead_letter.html", who, m=found)

    async def act(self, request: web.Request) -> web.Response:
        action = ACTIONS.get(request.match_info["action"])
        if action is None:
            raise web.HTTPNotFound()
        acting = await self._acting(request, "dlq.act")
        if isinstance(acting, web.Response):
            return acting
        who, form = acting
        connector = request.match_info["connector"]
        back = f"{BASE}/dead-letters?" + urlencode({"connector": connector})
        if action == "dlq.discard" and form.get("confirm") != "yes":
            raise self._flashed(back, "discard_unconfirmed")  # it cannot be undone
        try:
            ids = checks.message_ids(
                [v for v in form.getall("message_id", []) if isinstance(v, str)]
            )
            done, missing = await self.board.act_on_dead_letters(connector, ids, action, who.name)
            self.bulk.forget_previews()
        except checks.BadInput:
            raise self._flashed(back, "none_selected") from None
        except UnknownConnector:
            return self._not_found(request, who, "connector.unknown")
        if not done:
            await self.store.audit(
                who.name, f"{action}.missing", connector, {"message_ids": ids[:50]}
            )
        verb = request.match_info["action"]
        raise self._flashed(back, verb if done else "gone", len(done), len(missing))

    def _flashed(self, to: str, key: str, n: int = 0, missing: int = 0) -> web.HTTPSeeOther:
        """A redirect whose next page says what happened: the message travels in a cookie the
        hub sets (not in the URL, so a link cannot fake one) and the next page clears."""
        response = web.HTTPSeeOther(to)
        response.set_cookie(
            FLASH_COOKIE,
            f"{key}:{n}:{missing}",
            max_age=60,
            path=BASE,
            httponly=True,
            samesite="Strict",
            secure=self.access.config.cookie_secure,
        )
        return response

    async def audit(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "audit.read"), web.Response):
            return who
        try:
            before = request.query.get("before")
            before_id = int(checks.number("before", before, 0, 1, 2**62)) if before else None
        except checks.BadInput:
            before_id = None
        entries = await self.board.audit(before_id, 100)
        return self.render(request, "audit.html", who, entries=entries)

    async def users(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request, "users.manage"), web.Response):
            return who
        return self.render(request, "users.html", who, users=await user_rows(self.access))

    async def _user_action(self, request: web.Request) -> tuple[Operator, str] | web.Response:
        """The admin acting and the configured user named in the path, or the refusal."""
        acting = await self._acting(request, "users.manage")
        if isinstance(acting, web.Response):
            return acting
        name = request.match_info["name"]
        if name not in self.access.config.users:
            return self._not_found(request, acting[0], "user.unknown")
        return acting[0], name

    async def unlock(self, request: web.Request) -> web.Response:
        if isinstance(found := await self._user_action(request), web.Response):
            return found
        await unlock_user(self.access, *found)
        raise self._flashed(f"{BASE}/users", "unlocked")

    async def revoke_sessions(self, request: web.Request) -> web.Response:
        if isinstance(found := await self._user_action(request), web.Response):
            return found
        who, name = found
        ended = await end_sessions(self.access.store, who.name, name)
        raise self._flashed(f"{BASE}/users", "sessions_revoked", ended)

    async def flow(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        name = request.path.rsplit("/", 1)[-1]
        data = await self.board.flow(name)
        try:
            viewed = flow_view.view(data, request.query, self._lang(request), self.names)
            error = ""
        except flows.BadFilter:
            viewed = flow_view.view(data, {}, self._lang(request), self.names)
            error = i18n.translate(self._lang(request), "filter.bad_date")
        return self.render(
            request,
            "flow.html",
            who,
            status=400 if error else 200,
            flow=name,
            data=viewed,
            error=error,
            params={k: v for k, v in request.query.items() if k != "lang"},
        )

    async def flow_csv(self, request: web.Request) -> web.Response:
        """A flow table's rows that match the page's filters, all of them, as CSV."""
        if isinstance(who := await self._who(request), web.Response):
            return who
        name = request.path.split("/")[2]
        key = request.match_info["table"]
        lang = self._lang(request)
        try:
            text = flow_view.csv_of(
                await self.board.flow(name), key, request.query, lang, self.names
            )
        except flows.BadFilter:
            return self._not_found(request, who, "filter.bad_date")
        if text is None:
            return self._not_found(request, who, "flow.no_table")
        filename = f"{name}-{key}-{datetime.now(flows.TIMEZONE):%Y%m%d-%H%M%S}.csv"
        return web.Response(
            text=text,
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    def _not_found(self, request: web.Request, who: Operator, key: str) -> web.Response:
        message = i18n.translate(self._lang(request), key)
        return self.render(
            request, "error.html", who, status=404, flash=("error", message), not_found=True
        )


def _flash_from_cookie(request: web.Request, t: Callable[..., str]) -> tuple[str, str] | None:
    key, _, counts = request.cookies.get(FLASH_COOKIE, "").partition(":")
    if key not in FLASHES:
        return None
    try:
        n, missing = (int(x) for x in counts.split(":"))
    except ValueError:
        n = missing = 0
    text = t(f"flash.{key}", n=n)
    if missing:
        text += " " + t("flash.missing", n=missing)
    return ("error" if FLASHES[key] else "ok", text)


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two strings from a request, whatever they hold (compare_digest
    refuses non-ASCII str; a cookie that is not UTF-8 arrives holding lone surrogates)."""
    return secrets.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def _safe_next(value: str | None) -> str:
    """Only a path inside the dashboard: never an open redirect."""
    if value and value.startswith(f"{BASE}/") and "//" not in value and "\\" not in value:
        return value
    return f"{BASE}/"


def _quote(text: str) -> str:
    return quote(text, safe="")


def _static_dir() -> Path:
    return Path(str(resources.files("hub.dashboard") / "static"))


def _page_query(request: web.Request) -> str:
    """The page's query without its page number and language, for the paging links."""
    return urlencode({k: v for k, v in request.query.items() if k not in ("page", "lang")})


def _pretty(value: Any) -> str:
    """A payload as an operator reads it: indented JSON, Vietnamese as text (not \\uXXXX);
    the template escapes it."""
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
