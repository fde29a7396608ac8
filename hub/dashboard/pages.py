"""The dashboard's HTML pages, rendered on the server with Jinja2 (autoescaped).

Pages read through the same `Board` as the admin API; forms post back here with the session's
CSRF token in the field `csrf_token`, and answer with a redirect carrying only a message key
and counts (nothing the user typed is echoed unescaped). Live numbers are refreshed by
`static/app.js` from the admin API. This module must never act for a role that may not.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from hub.auth import LoginsBusy
from hub.dashboard import checks, i18n
from hub.dashboard.access import LOGIN_COOKIE, Ability, Operator, OperatorAccess
from hub.dashboard.api import ACTIONS, client_of, unlock_user, user_rows
from hub.dashboard.board import Board, PauseUnavailable, UnknownConnector
from hub.dashboard.charts import line_chart
from hub.outage import State
from hub.store.sqlite import SqliteStore

BASE = "/dashboard"
FLASH_COOKIE = "hub_flash"
NAV = (
    ("overview", f"{BASE}/"),
    ("dossiers", f"{BASE}/dossiers"),
    ("dead_letters", f"{BASE}/dead-letters"),
    ("audit", f"{BASE}/audit"),
)


def nav_with(flows: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The menu: the core's pages, with each connector's flow page before the audit log."""
    return (*NAV[:-1], *((f, f"{BASE}/{f}") for f in flows), NAV[-1])


TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PAUSE_ACTIONS = {"pause": True, "resume": False}
FLASHES = {  # the message keys a redirect may carry, and whether each tells of an error
    "replay": False,
    "discard": False,
    "gone": True,
    "none_selected": True,
    "unlocked": False,
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


def when(value: str | float | None) -> str:
    """A moment in the province's time (UTC+7), to the second."""
    if value is None or value == "":
        return "-"
    try:
        at = (
            datetime.fromtimestamp(value, TIMEZONE)
            if isinstance(value, int | float)
            else datetime.fromisoformat(value).astimezone(TIMEZONE)
        )
    except (ValueError, OverflowError, OSError):
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def clock(value: str | None, now: datetime | None = None) -> str:
    """A moment as a state's "since": the time alone when it is today (UTC+7), else the date
    too. `static/app.js` writes the same."""
    full = when(value)
    if len(full) != 19:
        return full
    today = (now or datetime.now(TIMEZONE)).astimezone(TIMEZONE).strftime("%Y-%m-%d")
    return full[11:] if full.startswith(today) else full


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f} %"


def number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


_env.filters.update(when=when, clock=clock, duration=duration, percent=percent, number=number)
_env.globals["states"] = tuple(str(s) for s in State)


class Pages:
    def __init__(
        self, access: OperatorAccess, board: Board, store: SqliteStore, refresh_s: float
    ) -> None:
        self.access = access
        self.board = board
        self.store = store
        self.refresh_s = refresh_s

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
            web.get(f"{BASE}/dead-letters", self.dead_letters),
            web.get(f"{BASE}/dead-letters/{{connector}}/{{message_id}}", self.dead_letter),
            web.post(f"{BASE}/dead-letters/{{connector}}/{{action}}", self.act),
            web.get(f"{BASE}/audit", self.audit),
            web.get(f"{BASE}/users", self.users),
            web.post(f"{BASE}/users/{{name}}/unlock", self.unlock),
            *(web.get(f"{BASE}/{flow}", self.flow) for flow in self.board.flows),
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
        form = await request.post()
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
        except ValueError:  # a multipart body without its boundary, a form that is not UTF-8
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
        lang = self._lang(request)

        def t(key: str) -> str:
            return i18n.translate(lang, key)

        series = data["series"]
        charts = [
            line_chart(
                t("chart.throughput"),
                [
                    (
                        t("chart.done_per_min"),
                        [(when(s["at"]), s["throughput_per_min"]) for s in series],
                    ),
                    (
                        t("chart.errors_per_min"),
                        [(when(s["at"]), s["errors_per_min"]) for s in series],
                    ),
                ],
            ),
            line_chart(
                t("chart.queue"),
                [
                    (t("card.queue_depth"), [(when(s["at"]), s["queue_depth"]) for s in series]),
                    (t("card.dead_letters"), [(when(s["at"]), s["dead_letters"]) for s in series]),
                ],
            ),
        ]
        if data["lag_series"]:
            lag = data["lag_series"]
            charts.append(
                line_chart(
                    t("chart.lag"),
                    [
                        ("p50", [(when(p["at"]), p["p50_s"]) for p in lag]),
                        ("p95", [(when(p["at"]), p["p95_s"]) for p in lag]),
                    ],
                    unit=" s",
                )
            )
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
            return self.render(request, "dossiers.html", who, q="", hits=None, error="")
        try:
            text = checks.search_text(raw)
        except checks.BadInput:
            return self.render(
                request,
                "dossiers.html",
                who,
                status=400,
                q=raw[:200],
                hits=None,
                error=i18n.translate(self._lang(request), "search.bad"),
            )
        hits = await self.board.search(text)
        if len(hits) == 1 and hits[0]["code"] == text:
            raise web.HTTPSeeOther(f"{BASE}/dossiers/{_quote(text)}")
        return self.render(request, "dossiers.html", who, q=text, hits=hits, error="")

    async def dossier(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        code = checks.code(request.match_info["code"])
        try:
            page = int(checks.number("page", request.query.get("page"), 0, 0, 10**6))
        except checks.BadInput:
            page = 0
        found = await self.board.dossier(code, page) if code else None
        if found is None:
            return self._not_found(request, who, "dossier.unknown")
        return self.render(request, "dossier.html", who, d=found)

    async def dead_letters(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        q = request.query
        connector = q.get("connector") or None
        filters = {
            "connector": connector or "",
            "reason": q.get("reason", "")[:200],
            "since": q.get("since", "")[:40],
            "until": q.get("until", "")[:40],
        }
        try:
            items = await self.board.dead_letters(
                connector,
                checks.reason(q.get("reason")),
                checks.moment("since", q.get("since")),
                checks.moment("until", q.get("until")),
                500,
            )
            error = ""
        except checks.BadInput as exc:
            items, error = [], exc.message
        except UnknownConnector:
            return self._not_found(request, who, "connector.unknown")
        connectors = [n for n, w in self.board.watched.items() if w.parking]
        return self.render(
            request,
            "dead_letters.html",
            who,
            items=items,
            filters=filters,
            connectors=connectors,
            error=error,
            status=400 if error else 200,
        )

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
        try:
            ids = checks.message_ids(
                [v for v in form.getall("message_id", []) if isinstance(v, str)]
            )
            done, missing = await self.board.act_on_dead_letters(connector, ids, action, who.name)
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

    async def unlock(self, request: web.Request) -> web.Response:
        acting = await self._acting(request, "users.manage")
        if isinstance(acting, web.Response):
            return acting
        name = request.match_info["name"]
        if name not in self.access.config.users:
            return self._not_found(request, acting[0], "user.unknown")
        await unlock_user(self.access, acting[0], name)
        raise self._flashed(f"{BASE}/users", "unlocked")

    async def flow(self, request: web.Request) -> web.Response:
        if isinstance(who := await self._who(request), web.Response):
            return who
        name = request.path.rsplit("/", 1)[-1]
        return self.render(request, "flow.html", who, flow=name, data=await self.board.flow(name))

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
