"""A stand-in for the civil-status (hộ tịch) REST service, for tests and demos.

It plays the Ministry of Justice's civil-status registration software on loopback (system
`civil_status` of the wire contract):

- `POST /oauth2/token`: OAuth2 client credentials, the client authenticated by HTTP Basic, by
  form fields, or either (`client_auth`);
- `POST /api/hotich/v1/ho-so`: submit a dossier, idempotent by `maHoSo` (201, then 200);
- `GET /api/hotich/v1/ket-qua?sau=<cursor>&soLuong=<n>`: results after a cursor (the sequence
  number of the last result returned);
- push: with `push_url` set, new results are POSTed to the hub as `{"ketQua": [...]}` with a
  bearer token or HMAC headers, retried on 5xx and connection errors, every attempt recorded.

The API authenticates by `auth`: "oauth2" (a token from the endpoint above), "bearer" (a fixed
token) or "hmac" (`hmac_headers`); `required_headers` (e.g. `X-Ma-Don-Vi`) are checked in every
mode. Faults and injections are set from Python (`sim.faults`, `inject_unknown_result`,
`duplicate_next_page`, `decide`) or over `<base_url>/_sim/faults`, `/_sim/state`, `/_sim/reset`.

It plays the external system honestly, so it must never import hub code (`hub.*`, `schemas.*`),
never bend its rules to suit the hub, and never be exposed beyond a test or demo machine (its
credentials are throwaway and its `_sim` endpoints have no authentication).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import inspect
import json
import math
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal, get_args
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from yarl import URL

from sims.loopback import (
    LoopbackServer,
    apply_changes,
    control_routes,
    parse_count,
    parse_seconds,
    read_json_object,
    serve_until_signalled,
)

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
OAUTH_PATH = "/oauth2/token"
SUBMIT_PATH = "/api/hotich/v1/ho-so"
RESULTS_PATH = "/api/hotich/v1/ket-qua"
SIM_PREFIX = "/_sim"
KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = "X-Api-Key", "X-Timestamp", "X-Signature"
MAX_SKEW_S = 300.0
MAX_PAGE = 1000  # soLuong when absent: 100
PUSH_BACKOFF_S = 0.05  # doubled after each failed attempt

AuthMode = Literal["oauth2", "bearer", "hmac"]
ClientAuth = Literal["basic", "form", "any"]
Mode = Literal[
    "ok", "http_503", "timeout", "slow", "expire_tokens", "invalid_json", "oversized_reply",
    "reject",
]  # fmt: skip
MODES: tuple[Mode, ...] = get_args(Mode)
Status = Literal["DANG_GIAI_QUYET", "BO_SUNG", "DA_DANG_KY", "TU_CHOI"]
STATUSES: tuple[Status, ...] = get_args(Status)
_STEPS: tuple[Status, ...] = ("DANG_GIAI_QUYET", "DA_DANG_KY")  # the last n, by default
RECEIVED = "DA_TIEP_NHAN"
NOTES: dict[str, str] = {
    "DANG_GIAI_QUYET": "Hồ sơ đang được giải quyết",
    "BO_SUNG": "Đề nghị bổ sung giấy tờ chứng minh nơi cư trú",
    "DA_DANG_KY": "Đã đăng ký, cấp bản chính trích lục",
    "TU_CHOI": "Từ chối: hồ sơ không đủ điều kiện đăng ký",
}
OFFICER, AUTHORITY = "Nguyễn Thị Hồng", "UBND phường Bến Nghé, TP. Hồ Chí Minh"

_STATE_FIELDS = (
    "auth", "submissions", "accepted", "results", "requests", "tokens_issued", "auth_failures",
    "fault_hits", "peak_in_flight", "results_served", "pushed_upto",
)  # fmt: skip

_dumps = partial(json.dumps, ensure_ascii=False)


def _json(
    payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(payload, status=status, dumps=_dumps, headers=headers)


def _loi(message: str, status: int = 400) -> web.Response:
    return _json({"loi": message}, status)


# -- the HMAC scheme (both directions) ------------------------------------------------------------


def hmac_headers(
    method: str, path_qs: str, body: bytes, key_id: str, secret: str, now: float | None = None
) -> dict[str, str]:
    """The three headers that sign one request (`now`: unix seconds, default the clock). The
    signature is lowercase hex HMAC-SHA256 of METHOD, PATH?QUERY (as sent), TIMESTAMP and the
    lowercase hex SHA-256 of the body, joined by newlines."""
    timestamp = str(int(time.time() if now is None else now))
    canonical = "\n".join([method.upper(), path_qs, timestamp, hashlib.sha256(body).hexdigest()])
    signature = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return {KEY_HEADER: key_id, TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}


def verify_hmac(
    method: str,
    path_qs: str,
    body: bytes,
    headers: Mapping[str, str],
    key_id: str,
    secret: str,
    now: float | None = None,
    max_skew_s: float = MAX_SKEW_S,
) -> str | None:
    """None when `headers` sign the request, else why not: "missing_headers", "unknown_key",
    "bad_timestamp", "stale_timestamp" (more than `max_skew_s` from now) or "bad_signature"."""
    key, stamp, signature = (
        headers.get(h) for h in (KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    )
    if key is None or stamp is None or signature is None:
        return "missing_headers"
    if not _same(key, key_id):
        return "unknown_key"
    stamp_s = _natural(stamp)
    if stamp_s is None:
        return "bad_timestamp"
    if abs(stamp_s - (time.time() if now is None else now)) > max_skew_s:
        return "stale_timestamp"
    expected = hmac_headers(method, path_qs, body, key_id, secret, now=stamp_s)
    if not _same(signature, expected[SIGNATURE_HEADER]):
        return "bad_signature"
    return None


# -- faults ---------------------------------------------------------------------------------------


def _parse_mode(value: object) -> Mode:
    if value not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {value!r}")
    return value


def _parse_status(value: object) -> Status:
    if value not in STATUSES:
        raise ValueError(f"status must be one of {list(STATUSES)}, got {value!r}")
    return value


_FAULT_PARSERS: dict[str, Callable[[object], object]] = {
    "mode": _parse_mode,
    "count": parse_count,
    "delay_s": parse_seconds,
    "timeout_sleep_s": parse_seconds,
    "oversized_bytes": parse_count,
}


@dataclass
class SimFaults:
    """What goes wrong. Faults apply to the two API endpoints, never to the token endpoint.

    - "ok": answer normally;
    - "http_503": HTTP 503 before anything is looked at;
    - "timeout": wait `timeout_sleep_s`, then HTTP 504 (a hung gateway), nothing done;
    - "slow": wait `delay_s`, then answer normally;
    - "expire_tokens": (oauth2) each token issued before the fault is refused once with 401
      invalid_token and forgotten, forcing a refresh; tokens issued during it are honoured;
    - "invalid_json": the request takes effect, its 2xx reply is cut in half (not JSON);
    - "oversized_reply": the request takes effect, its 2xx reply is padded past
      `oversized_bytes` (still valid JSON);
    - "reject": 422 `{"loi": ...}` to a well-formed, authorized submit, nothing accepted.
    `count`: how many requests get the fault, then back to "ok"; 0 = until changed.
    """

    mode: Mode = "ok"
    count: int = 0
    delay_s: float = 0.5
    timeout_sleep_s: float = 30.0
    oversized_bytes: int = 6 * 1024 * 1024

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the fields present in `changes`; all or nothing (raises ValueError)."""
        apply_changes(self, changes, _FAULT_PARSERS)


@dataclass
class PushAttempt:
    """One POST of a batch to `push_url`: `status` is None when no HTTP answer came back."""

    batch: int
    attempt: int
    ids: list[str]
    status: int | None
    error: str | None
    reply: Any


# -- request checks -------------------------------------------------------------------------------


def _submission_problem(body: dict[str, Any]) -> str | None:
    """Why a submit body is not well formed (in Vietnamese, as the ministry answers), or None."""
    for name in ("maHoSo", "maThuTuc"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"thiếu trường bắt buộc {name}"
    if not all(isinstance(body.get(n), str | None) for n in ("loaiViec", "ngayTiepNhan", "ghiChu")):
        return "loaiViec, ngayTiepNhan, ghiChu phải là chuỗi"
    if not isinstance(body.get("nguoiYeuCau"), dict | None):
        return "nguoiYeuCau phải là đối tượng"
    return None if _is_iso(body.get("ngayTiepNhan")) else "ngayTiepNhan phải theo ISO 8601"


def _is_iso(value: str | None) -> bool:
    """True if `value` is absent or an ISO 8601 date or date-time."""
    try:
        return value is None or bool(datetime.fromisoformat(value))
    except ValueError:
        return False


def _page_query(query: Mapping[str, str]) -> tuple[int, int]:
    """(after, limit) from `?sau=&soLuong=`; raises ValueError with the ministry's message."""
    after, limit = _natural(query.get("sau") or "0"), _natural(query.get("soLuong") or "100")
    if after is None:
        raise ValueError("sau phải là con trỏ do hệ thống trả về")
    if limit is None or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"soLuong phải từ 1 đến {MAX_PAGE}")
    return after, limit


def _natural(text: str) -> int | None:
    """`text` as a non-negative integer of at most 18 ASCII digits, else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, client_secret = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    # RFC 6749 §2.3.1: both parts are form-encoded before they are joined.
    return (unquote_plus(client_id), unquote_plus(client_secret)) if sep else None


def _bearer(request: web.Request) -> str:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


# -- the simulator --------------------------------------------------------------------------------


class CivilStatusSimulator(LoopbackServer):
    """The civil-status service on loopback: `async with CivilStatusSimulator() as sim:`, point
    the hub at `sim.base_url`; `sim.clock` (unix seconds) drives token expiry and HMAC checks."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auth: AuthMode = "oauth2",
        client_id: str = "hub-hotich",
        client_secret: str = "sim-client-secret",  # noqa: S107 - throwaway loopback credential
        client_auth: ClientAuth = "any",
        token_ttl_s: float = 300.0,
        bearer_token: str = "sim-bearer-token",  # noqa: S107 - throwaway loopback credential
        required_headers: Mapping[str, str] | None = None,
        hmac_key_id: str = "hub-key",
        hmac_secret: str = "sim-hmac-secret",  # noqa: S107 - throwaway loopback credential
        push_url: str | None = None,
        push_token: str | None = None,
        push_hmac_key_id: str | None = None,
        push_hmac_secret: str | None = None,
        push_batch: int = 1,
        push_interval_s: float = 0.2,
        push_attempts: int = 4,
        results_per_dossier: int = 1,
    ) -> None:
        if auth not in get_args(AuthMode) or client_auth not in get_args(ClientAuth):
            raise ValueError(f"unknown auth {auth!r} or client_auth {client_auth!r}")
        if not 0 <= results_per_dossier <= 2 or push_batch < 1 or push_attempts < 1:
            raise ValueError("results_per_dossier is 0..2; push_batch, push_attempts >= 1")
        super().__init__(host, port)
        self.auth, self.client_auth, self.token_ttl_s = auth, client_auth, token_ttl_s
        self.client_id, self.client_secret = client_id, client_secret
        self.bearer_token, self.required_headers = bearer_token, dict(required_headers or {})
        self.hmac_key_id, self.hmac_secret = hmac_key_id, hmac_secret
        self.push_url, self.push_token = push_url, push_token
        self.push_hmac_key_id, self.push_hmac_secret = push_hmac_key_id, push_hmac_secret
        self.push_batch, self.push_interval_s = push_batch, push_interval_s
        self.push_attempts, self.results_per_dossier = push_attempts, results_per_dossier
        self.clock: Callable[[], float] = time.time
        # token → (expires at, issued while "expire_tokens" was on, so honoured by it)
        self._tokens: dict[str, tuple[float, bool]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._push_task: asyncio.Task[None] | None = None
        self._push_lock = asyncio.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every submission, result, counter, push and fault (issued tokens stay valid)."""
        self.faults = SimFaults()
        self.submissions: list[dict[str, Any]] = []  # every well-formed authorized submit
        self.accepted: dict[str, str] = {}  # maHoSo → id
        self.results: list[dict[str, Any]] = []  # result n has sequence number n + 1
        self.requests: Counter[str] = Counter()  # "token", "submit", "results"
        self.auth_failures: Counter[str] = Counter()  # by reason
        self.fault_hits: Counter[str] = Counter()  # by mode
        self.tokens_issued = self.results_served = 0
        self.in_flight = self.peak_in_flight = 0
        self.pushes: list[PushAttempt] = []
        self.pushed_upto = 0  # sequence number of the last result pushed (or given up on)
        self._decisions: dict[str, Status] = {}
        self._registrations = 0
        self._last_page: list[dict[str, Any]] = []
        self._duplicate_next = False

    # -- lifecycle ------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post(OAUTH_PATH, self._token)
        app.router.add_post(SUBMIT_PATH, self._api("submit", self._submit))
        app.router.add_get(RESULTS_PATH, self._api("results", self._results))
        control_routes(app, self, SIM_PREFIX)

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10.0))
        await super().start()
        # Always running, idle while push_url is None, so a test may set push_url later.
        self._push_task = asyncio.create_task(self._push_loop())

    async def stop(self) -> None:
        if self._push_task is not None:
            self._push_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._push_task
            self._push_task = None
        await super().stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- control from Python --------------------------------------------------------------------

    def decide(self, code: str, status: str) -> None:
        """Queue a `status` result for `code` now if accepted; otherwise `status` replaces the
        final DA_DANG_KY result it gets when accepted (even with results_per_dossier=0)."""
        if code in self.accepted:
            self._queue(code, _parse_status(status))
        else:
            self._decisions[code] = _parse_status(status)

    def inject_unknown_result(self, code: str, status: str = "DA_DANG_KY") -> dict[str, Any]:
        """Queue a result for a dossier code never submitted; the queued item."""
        return self._queue(code, _parse_status(status))

    def duplicate_next_page(self) -> None:
        """The next page served (pulled or pushed) repeats the last non-empty page's items
        before its own."""
        self._duplicate_next = True

    def state(self) -> dict[str, Any]:
        """What `GET /_sim/state` answers: the record, the counters and the faults."""
        state = {name: getattr(self, name) for name in _STATE_FIELDS}
        pushes = [asdict(attempt) for attempt in self.pushes]
        return {**state, "pushes": pushes, "faults": asdict(self.faults)}

    # -- results --------------------------------------------------------------------------------

    def _queue(self, code: str, status: Status) -> dict[str, Any]:
        now = datetime.now(VN_TZ).replace(microsecond=0)
        number = None
        if status == "DA_DANG_KY":
            self._registrations += 1
            number = f"{self._registrations}/{now.year}/KS"
        item = {
            "id": f"KQ-{len(self.results) + 1}",
            "maHoSo": code,
            "trangThai": status,
            "thoiDiem": now.isoformat(),
            "canBo": OFFICER,
            "coQuan": AUTHORITY,
            "ghiChu": NOTES[status],
            "soDangKy": number,
        }
        self.results.append(item)
        return item

    def _queue_for_accepted(self, code: str) -> None:
        steps = list(_STEPS[len(_STEPS) - self.results_per_dossier :])
        decided = self._decisions.pop(code, None)
        if decided is not None:
            steps = [*steps[:-1], decided]
        for status in steps:
            self._queue(code, status)

    def _page(self, after: int, limit: int) -> dict[str, Any]:
        items = self.results[after : after + limit]
        last = after + len(items) if items else after
        served = [*self._last_page, *items] if self._duplicate_next else items
        self._duplicate_next = False
        if items:
            self._last_page = items
        return {"duLieu": served, "conTro": str(last), "conTiep": last < len(self.results)}

    # -- the API --------------------------------------------------------------------------------

    def _api(
        self, name: str, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """An API endpoint: counted, tracked in flight, faulted, authenticated, then `handler`."""

        async def endpoint(request: web.Request) -> web.Response:
            self.requests[name] += 1
            with self._tracked():
                refusal = await self._outage()
                if refusal is None:
                    refusal = await self._authenticate(request)
                return refusal if refusal is not None else await handler(request)

        return endpoint

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1

    async def _submit(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if body is None:
            return _loi("nội dung phải là đối tượng JSON")
        problem = _submission_problem(body)
        if problem is not None:
            return _loi(problem)
        self.submissions.append(body)
        if self._take_fault("reject") is not None:
            return _loi("hồ sơ bị từ chối tiếp nhận (giả lập)", 422)
        code = body["maHoSo"]
        known = code in self.accepted
        if not known:
            self.accepted[code] = f"HT-{len(self.accepted) + 1:06d}"
            self._queue_for_accepted(code)
        return self._reply(
            {"id": self.accepted[code], "trangThai": RECEIVED}, 200 if known else 201
        )

    async def _results(self, request: web.Request) -> web.Response:
        try:
            after, limit = _page_query(request.query)
        except ValueError as exc:
            return _loi(str(exc))
        page = self._page(after, limit)
        self.results_served += len(page["duLieu"])
        return self._reply(page)

    def _reply(self, payload: dict[str, Any], status: int = 200) -> web.Response:
        """A 2xx reply, garbled if an "invalid_json" or "oversized_reply" fault is on."""
        mode = self._take_fault("invalid_json", "oversized_reply")
        if mode == "invalid_json":
            text = _dumps(payload)
            return web.Response(
                status=status, text=text[: len(text) // 2], content_type="application/json"
            )
        if mode == "oversized_reply":
            payload = {**payload, "_dem": "x" * self.faults.oversized_bytes}
        return _json(payload, status)

    # -- faults ---------------------------------------------------------------------------------

    def _take_fault(self, *modes: Mode) -> Mode | None:
        """The fault mode if it is one of `modes`, counted against `count`."""
        mode = self.faults.mode
        if mode not in modes:
            return None
        self.fault_hits[mode] += 1
        if self.faults.count > 0:
            self.faults.count -= 1
            if self.faults.count == 0:
                self.faults.mode = "ok"
        return mode

    async def _outage(self) -> web.Response | None:
        """The answer of a service that is down or hung, or None after an optional slow wait."""
        mode = self._take_fault("http_503", "timeout", "slow")
        if mode == "http_503":
            return web.Response(status=503, text="Service Unavailable")
        if mode == "timeout":
            await self._sleep(self.faults.timeout_sleep_s)
            return web.Response(status=504, text="Gateway Timeout")
        if mode == "slow":
            await self._sleep(self.faults.delay_s)
        return None

    # -- authentication -------------------------------------------------------------------------

    async def _authenticate(self, request: web.Request) -> web.Response | None:
        checks = {
            "oauth2": self._check_token,
            "bearer": self._check_bearer,
            "hmac": self._check_hmac,
        }
        problem = await checks[self.auth](request) or self._header_problem(request)
        if problem is None:
            return None
        self.auth_failures[problem] += 1
        challenge = f'Bearer error="{problem}"' if self.auth != "hmac" else "HMAC"
        return _json({"error": problem}, 401, {"WWW-Authenticate": challenge})

    async def _check_token(self, request: web.Request) -> str | None:
        token = _bearer(request)
        expires_at, issued_under_fault = self._tokens.get(token, (0.0, False))
        if expires_at <= self.clock():
            return "invalid_token"
        if not issued_under_fault and self._take_fault("expire_tokens") is not None:
            del self._tokens[token]
            return "invalid_token"
        return None

    async def _check_bearer(self, request: web.Request) -> str | None:
        return None if _same(_bearer(request), self.bearer_token) else "invalid_token"

    async def _check_hmac(self, request: web.Request) -> str | None:
        body = await request.read()
        return verify_hmac(
            request.method, request.raw_path, body, request.headers,
            self.hmac_key_id, self.hmac_secret, now=self.clock(),
        )  # fmt: skip

    def _header_problem(self, request: web.Request) -> str | None:
        for name, expected in self.required_headers.items():
            value = request.headers.get(name)
            if value is None:
                return "missing_header"
            if not _same(value, expected):
                return "invalid_header"
        return None

    # -- the token endpoint ---------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        self.requests["token"] += 1
        form = await request.post()
        grant = form.get("grant_type")
        if grant != "client_credentials":
            error = "invalid_request" if grant is None else "unsupported_grant_type"
            return _json({"error": error}, 400)
        if not self._client_authenticated(request, form):
            self.auth_failures["invalid_client"] += 1
            return _json({"error": "invalid_client"}, 401, {"WWW-Authenticate": "Basic"})
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (self.clock() + self.token_ttl_s, self.faults.mode == "expire_tokens")
        self.tokens_issued += 1
        reply = {"access_token": token, "token_type": "Bearer", "expires_in": self._expires_in}
        return _json(reply, headers={"Cache-Control": "no-store"})

    @property
    def _expires_in(self) -> int:
        return math.ceil(self.token_ttl_s)

    def _client_authenticated(self, request: web.Request, form: Mapping[str, Any]) -> bool:
        basic = _basic_credentials(request.headers.get("Authorization", ""))
        posted = (form.get("client_id"), form.get("client_secret"))
        if basic is not None and self.client_auth != "form":
            given = basic
        elif None not in posted and self.client_auth != "basic":
            given = (str(posted[0]), str(posted[1]))
        else:
            return False
        return _same(given[0], self.client_id) and _same(given[1], self.client_secret)

    # -- push -----------------------------------------------------------------------------------

    async def _push_loop(self) -> None:
        while not self._closing.is_set():
            await self.push_now()
            await self._sleep(self.push_interval_s)

    async def push_now(self) -> int:
        """Push every pending result to `push_url` now, in batches; how many were sent. A batch
        still failing after `push_attempts` tries is given up on (the hub must pull it)."""
        sent = 0
        async with self._push_lock:
            while self.push_url and self.pushed_upto < len(self.results):
                page = self._page(self.pushed_upto, self.push_batch)
                await self._push_batch(page["duLieu"])
                # min: a reset() during the POST must not make the next results look pushed
                self.pushed_upto = min(int(page["conTro"]), len(self.results))
                sent += len(page["duLieu"])
        return sent

    async def _push_batch(self, items: list[dict[str, Any]]) -> None:
        body = _dumps({"ketQua": items}).encode()
        batch = 1 + max((attempt.batch for attempt in self.pushes), default=0)
        ids = [item["id"] for item in items]
        for attempt in range(1, self.push_attempts + 1):
            status, error, reply = await self._post_push(body)
            self.pushes.append(PushAttempt(batch, attempt, ids, status, error, reply))
            if status is not None and status < 500:
                return
            if attempt < self.push_attempts:
                await self._sleep(PUSH_BACKOFF_S * 2 ** (attempt - 1))

    async def _post_push(self, body: bytes) -> tuple[int | None, str | None, Any]:
        if self._http is None or not self.push_url:
            return None, "not started", None
        try:
            async with self._http.post(
                self.push_url, data=body, headers=self._push_headers(body)
            ) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, type(exc).__name__, None
        try:
            return response.status, None, json.loads(text)
        except ValueError:
            return response.status, None, text[:500]

    def _push_headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.push_token:
            headers["Authorization"] = f"Bearer {self.push_token}"
        if self.push_hmac_key_id and self.push_hmac_secret and self.push_url:
            path_qs = URL(self.push_url).raw_path_qs
            key_id, secret = self.push_hmac_key_id, self.push_hmac_secret
            headers |= hmac_headers("POST", path_qs, body, key_id, secret, now=self.clock())
        return headers


# -- standalone -----------------------------------------------------------------------------------


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _parser() -> argparse.ArgumentParser:
    """--host, --port, --header NAME=VALUE (repeatable) and one flag per keyword option."""
    parser = argparse.ArgumentParser(description="Run the civil-status simulator until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--header", type=_header, action="append", default=[])
    for name, param in inspect.signature(CivilStatusSimulator).parameters.items():
        if param.kind is param.KEYWORD_ONLY and name != "required_headers":
            kind = str if param.default is None else type(param.default)
            parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=param.default)
    return parser


async def _serve(args: argparse.Namespace) -> None:
    options = vars(args)
    host, port, headers = options.pop("host"), options.pop("port"), options.pop("header")
    sim = CivilStatusSimulator(host, port, required_headers=dict(headers), **options)

    def describe() -> list[str]:
        base = sim.base_url  # secrets are never printed
        return [
            f"civil-status simulator: {base}  (auth {sim.auth})",
            f"  token: POST {base}{OAUTH_PATH}  submit: POST {base}{SUBMIT_PATH}",
            f"  results: GET {base}{RESULTS_PATH}  push to: {sim.push_url or '-'}",
            f"  faults: POST {base}{SIM_PREFIX}/faults   state: GET {base}{SIM_PREFIX}/state",
        ]

    await serve_until_signalled(sim, "civil-status simulator", describe)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
