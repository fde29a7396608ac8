"""A stand-in for the National Public Service Portal (DVCQG), for tests and `hub demo`.

It serves the adapter protocol of PROTOCOL.md on loopback (login, `DongBoHoSoMC`,
`CapNhatTienDoHoSoMC`, `TraCuuHoSo`) with the checks and reply codes a portal applies, keeps
what it accepted in memory where a test can read it (`dossiers`, `steps`, counters), and lets
a test or an operator inject faults: outages, timeouts, slow answers, per-dossier refusals and
expired sessions, from Python (`sim.faults`) or over HTTP (`POST <url>/_sim/faults`).

It also serves the national procedure catalogue (CSDL quốc gia về TTHC: `LayDanhSachTTHC`,
`LayThuTuc`, `LayDanhMucLinhVuc`, `LayDanhMucCoQuan`) from `sim.catalogue` (see
`sim_catalogue.py`): generated from a seed (`procedures=`, `--procedures`), changed by a test
(added, withdrawn, renamed, fees revised) and able to answer one code with broken data, from
Python or over HTTP (`POST <url>/_sim/catalogue`). `peak_in_flight` records how many
`LayThuTuc` calls were open at once, so a test can check a caller's concurrency bound.

It plays the external system honestly, so it must never import hub code, never bend its rules
to suit the hub, and never be exposed beyond a test or demo machine (its credentials are
throwaway and its `_sim` endpoints have no authentication).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal, cast

from aiohttp import web

from sims.loopback import (
    LoopbackServer,
    apply_changes,
    parse_count,
    parse_seconds,
    read_json_object,
    serve_until_signalled,
)
from sims.national_portal.catalogue import Catalogue, agency_list, field_list, generate

Mode = Literal["ok", "http_503", "http_429", "timeout", "slow", "lost_reply"]
MODES: tuple[Mode, ...] = ("ok", "http_503", "http_429", "timeout", "slow", "lost_reply")
StepKey = tuple[str, str, str, str]

BASE_PATH = "/api"
OK, INVALID, PARTIAL = "00", "01", "02"
ITEM_INVALID, ALREADY_HELD, NOT_HELD = "04", "05", "06"
DOSSIER_SERVICES = ("DongBoHoSoMC", "CapNhatTienDoHoSoMC", "TraCuuHoSo")
CATALOGUE_SERVICES = ("LayDanhSachTTHC", "LayThuTuc", "LayDanhMucLinhVuc", "LayDanhMucCoQuan")
SERVICES = frozenset(DOSSIER_SERVICES + CATALOGUE_SERVICES)
STATUSES = frozenset(str(n) for n in range(1, 11))
DOSSIER_DATES = ("NgayTiepNhan", "NgayHenTra", "NgayTra", "NgayKetThucXuLy")
STEP_DATES = ("ThoiDiemXuLy", "NgayBatDau", "NgayKetThucTheoQuyDinh")
_DATE_RE = re.compile(r"^\d{14}$")
_AGENCY_RE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
_ITEM_CODE_RE = re.compile(r"^\d{2}$")
# Batches of a few hundred full dossiers exceed aiohttp's 1 MiB default.
MAX_BODY_BYTES = 32 * 1024 * 1024

_dumps = partial(json.dumps, ensure_ascii=False)


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, dumps=_dumps)


def _error(status: int, code: str | int, message: str) -> web.Response:
    return _json({"error_code": code, "message": message}, status)


def _text(value: object) -> str | None:
    """A scalar as the portal reads it: vendors send codes as strings or numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def step_key(step: dict[str, Any]) -> StepKey:
    """The natural key under which the portal stores a processing step once."""
    return (
        str(step.get("MaHoSo", "")),
        str(step.get("ThoiDiemXuLy", "")),
        str(step.get("TrangThai", "")),
        str(step.get("NoiDungXuLy", "")),
    )


# -- faults -------------------------------------------------------------------------------------


def _parse_mode(value: object) -> Mode:
    if value not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {value!r}")
    return value


def _parse_reject(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _ITEM_CODE_RE.match(v)
        for k, v in value.items()
    ):
        raise ValueError('reject must map MaHoSo to a two-digit item code, e.g. {"X": "07"}')
    return dict(value)


_FAULT_PARSERS: dict[str, Any] = {
    "mode": _parse_mode,
    "delay_s": parse_seconds,
    "timeout_sleep_s": parse_seconds,
    "fail_next": parse_count,
    "reject": _parse_reject,
}


@dataclass
class SimFaults:
    """What goes wrong, and how. `mode` applies to every call, logins included.

    - "ok": answer normally;
    - "http_503": HTTP 503 to everything;
    - "http_429": HTTP 429 with Retry-After to everything (a gateway's rate limit);
    - "timeout": wait `timeout_sleep_s`, apply nothing, then HTTP 504 (a hung gateway);
    - "slow": wait `delay_s`, then answer normally;
    - "lost_reply": apply the call, then wait `timeout_sleep_s` before answering, so the
      caller times out although the portal holds the data (tests idempotent resending).
    `fail_next` makes the next N service calls (not logins) fail with HTTP 503; `reject`
    refuses every item of the given MaHoSo with the given item code.
    """

    mode: Mode = "ok"
    delay_s: float = 0.5
    timeout_sleep_s: float = 30.0
    fail_next: int = 0
    reject: dict[str, str] = field(default_factory=dict)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the fields present in `changes`; all or nothing (raises ValueError)."""
        apply_changes(self, changes, _FAULT_PARSERS)


# -- item checks --------------------------------------------------------------------------------


def _dates_problem(item: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    for name in fields:
        value = item.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not _DATE_RE.match(value):
            return f"{name} must be yyyyMMddHHmmss, got {value!r}"
        try:
            datetime.strptime(value, "%Y%m%d%H%M%S")
        except ValueError:
            return f"{name} is not a real date: {value!r}"
    return None


def _item_problem(item: object, required: tuple[str, ...], dates: tuple[str, ...]) -> str | None:
    if not isinstance(item, dict):
        return "each item must be a JSON object"
    for name in required:
        if _text(item.get(name)) is None:
            return f"{name} is required"
    status_field = required[1]
    if _text(item.get(status_field)) not in STATUSES:
        return f"{status_field} must be one of 1..10, got {item.get(status_field)!r}"
    return _dates_problem(item, dates)


def _item_result(item: object, code: str, message: str) -> dict[str, Any]:
    dossier = _text(item.get("MaHoSo")) if isinstance(item, dict) else None
    return {"MaHoSo": dossier, "error_code": code, "message": message}


# -- the simulator ------------------------------------------------------------------------------


class DvcqgSimulator(LoopbackServer):
    """DVCQG on loopback. `async with DvcqgSimulator() as sim:` then POST to `sim.url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "hub",
        password: str = "secret",  # noqa: S107 - a throwaway credential of a loopback fake
        session_ttl_s: float = 3600.0,
        *,
        procedures: int = 0,
        catalogue_seed: int = 1,
    ) -> None:
        super().__init__(host, port)
        self.username, self.password = username, password
        self.session_ttl_s = session_ttl_s
        self.faults = SimFaults()
        self.dossiers: dict[str, dict[str, Any]] = {}
        self.steps: dict[str, list[dict[str, Any]]] = {}
        self.step_receipts: Counter[StepKey] = Counter()
        self.dossier_pushes: Counter[str] = Counter()
        # Every TrangThaiHoSo accepted for a dossier, in the order it came: a regression shows.
        self.dossier_history: dict[str, list[str]] = {}
        self.calls: Counter[str] = Counter()
        self.logins = 0
        self.catalogue = Catalogue(generate(procedures, catalogue_seed) if procedures else None)
        self.in_flight = 0  # LayThuTuc calls being handled now
        self.peak_in_flight = 0  # the most at once since start or reset()
        self._catalogue_services: dict[str, Callable[[dict[str, Any]], web.Response]] = {
            "LayDanhSachTTHC": self._list_procedures,
            "LayThuTuc": self._procedure,
            "LayDanhMucLinhVuc": lambda _: self._reference(field_list()),
            "LayDanhMucCoQuan": lambda _: self._reference(agency_list()),
        }
        self._sessions: dict[str, float] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    max_body_bytes = MAX_BODY_BYTES

    @property
    def url(self) -> str:
        """Where the protocol is served (empty until started)."""
        return f"{self.base_url}{BASE_PATH}" if self.base_url else ""

    def routes(self, app: web.Application) -> None:
        app.router.add_post(BASE_PATH, self._handle)
        app.router.add_post(f"{BASE_PATH}/_sim/faults", self._set_faults)
        app.router.add_get(f"{BASE_PATH}/_sim/state", self._get_state)
        app.router.add_post(f"{BASE_PATH}/_sim/reset", self._reset)
        app.router.add_post(f"{BASE_PATH}/_sim/catalogue", self._catalogue_op)
        app.router.add_get(f"{BASE_PATH}/_sim/catalogue", self._get_catalogue)

    # -- control from Python --------------------------------------------------------------------

    def expire_sessions(self) -> None:
        """Every session issued so far stops working; callers must log in again."""
        self._sessions.clear()

    def reset(self) -> None:
        """Forget every dossier, step, counter and fault (sessions and catalogue stay)."""
        self.faults = SimFaults()
        self.dossiers.clear()
        self.steps.clear()
        self.step_receipts.clear()
        self.dossier_pushes.clear()
        self.dossier_history.clear()
        self.calls.clear()
        self.logins = 0
        self.peak_in_flight = self.in_flight

    def state(self) -> dict[str, Any]:
        total = sum(self.step_receipts.values())
        return {
            "logins": self.logins,
            "calls": dict(self.calls),
            "dossier_pushes": dict(self.dossier_pushes),
            "step_receipts": {
                "unique": len(self.step_receipts),
                "total": total,
                "duplicates": total - len(self.step_receipts),
            },
            "faults": asdict(self.faults),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "catalogue": self.catalogue.summary(),
            "dossier_count": len(self.dossiers),
            "dossiers": self.dossiers,
            "steps": self.steps,
        }

    # -- control over HTTP ----------------------------------------------------------------------

    async def _set_faults(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if body is None:
            return _error(400, INVALID, "the body must be a JSON object")
        expire = body.pop("expire_sessions", False)
        try:
            self.faults.update(body)
        except ValueError as exc:
            return _error(400, INVALID, str(exc))
        if expire is True:
            self.expire_sessions()
        return _json({"error_code": OK, "faults": asdict(self.faults)})

    async def _get_state(self, request: web.Request) -> web.Response:
        return _json(self.state())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json({"error_code": OK, "message": "state and faults cleared"})

    async def _catalogue_op(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if body is None:
            return _error(400, INVALID, "the body must be a JSON object")
        try:
            self.catalogue.apply(body)
        except ValueError as exc:
            return _error(400, INVALID, str(exc))
        return _json({"error_code": OK, **self.catalogue.summary()})

    async def _get_catalogue(self, request: web.Request) -> web.Response:
        return _json(self.catalogue.summary())

    # -- the protocol ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        self._count(body)
        if body is None or body.get("service") != "LayThuTuc":
            return await self._respond(body)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._respond(body)
        finally:
            self.in_flight -= 1

    async def _respond(self, body: dict[str, Any] | None) -> web.Response:
        mode = self.faults.mode
        if mode == "http_503":
            return web.Response(status=503, text="Service Unavailable")
        if mode == "http_429":
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        if mode == "timeout":
            await self._sleep(self.faults.timeout_sleep_s)
            return web.Response(status=504, text="Gateway Timeout")
        if mode == "slow":
            await self._sleep(self.faults.delay_s)
        response = self._answer(body)
        if mode == "lost_reply":
            await self._sleep(self.faults.timeout_sleep_s)
        return response

    def _count(self, body: dict[str, Any] | None) -> None:
        # Every service call that reaches the portal counts, faulted or not, so a test can
        # compare it with the attempts its client made.
        service = body.get("service") if body is not None else None
        if isinstance(service, str) and service and service != "DangNhap":
            self.calls[service] += 1

    def _answer(self, body: dict[str, Any] | None) -> web.Response:
        if body is None:
            return _error(400, INVALID, "the body must be a JSON object")
        service = body.get("service")
        if service in (None, "DangNhap") and "username" in body:
            return self._login(body)
        if not isinstance(service, str) or not service:
            return _error(400, INVALID, "service is required")
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return web.Response(status=503, text="Service Unavailable")
        refusal = self._check_call(service, body)
        if refusal is not None:
            return refusal
        return self._dispatch(service, body)

    def _check_call(self, service: str, body: dict[str, Any]) -> web.Response | None:
        if not self._session_valid(body.get("session")):
            return _error(401, "401", "session missing, invalid or expired: log in again")
        if service not in SERVICES:
            return _error(400, INVALID, f"unknown service {service!r}")
        unit = body.get("madonvi")
        if not isinstance(unit, str) or not _AGENCY_RE.match(unit):
            return _error(400, INVALID, f"madonvi {unit!r} is not an agency code")
        return None

    def _dispatch(self, service: str, body: dict[str, Any]) -> web.Response:
        catalogue_service = self._catalogue_services.get(service)
        if catalogue_service is not None:
            return catalogue_service(body)
        if service == "TraCuuHoSo":
            return self._lookup(body)
        data = body.get("data")
        if not isinstance(data, list):
            return _error(400, INVALID, "data must be a list of items")
        if service == "CapNhatTienDoHoSoMC":
            return self._batch_reply([self._accept_step(item) for item in data])
        updating = body.get("isUpdating")
        if updating not in ("True", "False"):
            return _error(400, INVALID, f'isUpdating must be "True" or "False", got {updating!r}')
        return self._batch_reply([self._accept_dossier(i, updating == "True") for i in data])

    def _login(self, body: dict[str, Any]) -> web.Response:
        if body.get("username") != self.username or body.get("password") != self.password:
            return _error(401, -1, "wrong username or password")
        token = secrets.token_urlsafe(24)
        self._sessions[token] = time.monotonic() + self.session_ttl_s
        self.logins += 1
        return _json({"error_code": 0, "session": token})

    def _session_valid(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        expires = self._sessions.get(token)
        if expires is None:
            return False
        if expires < time.monotonic():
            del self._sessions[token]
            return False
        return True

    def _accept_dossier(self, item: object, updating: bool) -> dict[str, Any]:
        problem = _item_problem(item, ("MaHoSo", "TrangThaiHoSo"), DOSSIER_DATES)
        if problem is not None:
            return _item_result(item, ITEM_INVALID, problem)
        dossier = cast(dict[str, Any], item)
        code = str(_text(dossier["MaHoSo"]))
        refusal = self._rejection(dossier, code)
        if refusal is not None:
            return refusal
        if not updating and code in self.dossiers:
            return _item_result(item, ALREADY_HELD, f"dossier {code} is already held")
        if updating and code not in self.dossiers:
            return _item_result(item, NOT_HELD, f"dossier {code} is not held")
        self.dossiers[code] = json.loads(json.dumps(dossier))
        self.dossier_pushes[code] += 1
        self.dossier_history.setdefault(code, []).append(str(_text(dossier["TrangThaiHoSo"])))
        return _item_result(item, OK, "accepted")

    def _accept_step(self, item: object) -> dict[str, Any]:
        problem = _item_problem(item, ("MaHoSo", "TrangThai", "ThoiDiemXuLy"), STEP_DATES)
        if problem is not None:
            return _item_result(item, ITEM_INVALID, problem)
        step = cast(dict[str, Any], item)
        code = str(_text(step["MaHoSo"]))
        refusal = self._rejection(step, code)
        if refusal is not None:
            return refusal
        if code not in self.dossiers:
            return _item_result(item, NOT_HELD, f"dossier {code} is not held")
        key = step_key(step)
        self.step_receipts[key] += 1
        if self.step_receipts[key] == 1:
            self.steps.setdefault(code, []).append(json.loads(json.dumps(step)))
            return _item_result(item, OK, "accepted")
        # A repeated step is what an adapter sends after a lost reply: accept, store once.
        return _item_result(item, OK, "accepted (already held)")

    def _rejection(self, item: dict[str, Any], code: str) -> dict[str, Any] | None:
        refused_with = self.faults.reject.get(code)
        if refused_with is None:
            return None
        return _item_result(item, refused_with, f"refused by the portal's rules ({refused_with})")

    def _batch_reply(self, results: list[dict[str, Any]]) -> web.Response:
        refused = sum(1 for r in results if r["error_code"] != OK)
        return _json(
            {
                "error_code": PARTIAL if refused else OK,
                "message": f"{len(results) - refused} accepted, {refused} refused",
                "result": results,
            }
        )

    def _lookup(self, body: dict[str, Any]) -> web.Response:
        code = _text(body.get("mahoso"))
        if code is None:
            return _error(400, INVALID, "mahoso is required")
        dossier = self.dossiers.get(code)
        if dossier is None:
            return _error(200, NOT_HELD, f"dossier {code} is not held")
        data = {**dossier, "QuaTrinhXuLy": list(self.steps.get(code, []))}
        return _json({"error_code": OK, "message": "found", "data": data})

    def _list_procedures(self, body: dict[str, Any]) -> web.Response:
        listing = self.catalogue.listing()
        return _json({"error_code": OK, "message": f"{len(listing)} procedures", "result": listing})

    def _procedure(self, body: dict[str, Any]) -> web.Response:
        code = _text(body.get("maTTHC"))
        if code is None:
            return _error(400, INVALID, "maTTHC is required")
        reply = self.catalogue.lookup(code)
        if reply is None:
            return _error(200, NOT_HELD, f"procedure {code} not found")
        if isinstance(reply, str):  # injected: the body exactly as given, JSON or not
            return web.Response(text=reply, content_type="application/json")
        return _json({"error_code": OK, "message": "found", "result": reply})

    def _reference(self, items: list[dict[str, str]]) -> web.Response:
        return _json({"error_code": OK, "message": f"{len(items)} items", "result": items})


# -- standalone ---------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    sim = DvcqgSimulator(
        args.host,
        args.port,
        args.username,
        args.password,
        args.session_ttl,
        procedures=args.procedures,
        catalogue_seed=args.catalogue_seed,
    )

    def describe() -> list[str]:
        count = len(sim.catalogue.records)
        return [
            f"DVCQG simulator: POST {sim.url}  (user {sim.username})",
            f"  faults: POST {sim.url}/_sim/faults   state: GET {sim.url}/_sim/state",
            f"  catalogue: {count} procedures   POST/GET {sim.url}/_sim/catalogue",
        ]

    await serve_until_signalled(sim, "DVCQG simulator", describe)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the DVCQG simulator until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--username", default="hub")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--session-ttl", type=float, default=3600.0)
    parser.add_argument(
        "--procedures", type=int, default=0, help="procedures to generate for the catalogue"
    )
    parser.add_argument(
        "--catalogue-seed", type=int, default=1, help="seed of the generated catalogue"
    )
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
