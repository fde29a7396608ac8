"""Ministry systems that speak SOAP 1.1, played on loopback for tests and demos.

`SoapSimulator` is a generic SOAP 1.1 document/literal server fed a WSDL file and one handler
per operation: it serves `GET <path>?wsdl` (the WSDL with its soap:address pointing here) and
`POST <path>`, where it parses the request hardened (no DTD, no entities, a size limit), checks
the WS-Security UsernameToken when given credentials, hands the handler the request element as
a plain dict and writes the dict it returns as `<Operation>Response` in the WSDL's namespace.
A handler refuses with `SoapFault`. Faults (outages, SOAP faults, broken replies) are set from
Python (`sim.faults`) or over HTTP, as are state and reset:

- `POST <base_url>/_sim/faults` with a JSON object of `SimFaults` fields to change;
- `GET <base_url>/_sim/state` for `state()`;
- `POST <base_url>/_sim/reset` for `reset()`.

`BusinessRegistrationSimulator` plays the national business-registration system (Hệ thống
thông tin quốc gia về đăng ký doanh nghiệp) on `/ws/dkkd`: `NopHoSo` takes dossiers
(idempotently, by MaHoSo) and queues their results, `LayDanhSachKetQua` pages through them by
sequence cursor. `python -m sims.ministry.soap_simulator` runs it until Ctrl-C.

It plays the external system honestly, so it must never import hub code (`hub.*`,
`schemas.*`), never bend its rules to suit the hub, and never be exposed beyond a test or demo
machine (its credentials are throwaway and its `_sim` endpoints have no authentication).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from lxml import etree

from sims.loopback import (
    LoopbackServer,
    control_routes,
    serve_until_signalled,
)
from sims.ministry.soap_xml import (
    CONTENT_TYPE,
    PASSWORD_TEXT,
    Mode,
    SimFaults,
    SoapFault,
    WsdlInfo,
    body_payload,
    broken_reply,
    envelope,
    fault_envelope,
    local_name,
    namespace,
    parse_envelope,
    response_element,
    username_token,
)

__all__ = ["BusinessRegistrationSimulator", "Handler", "SimFaults", "SoapFault", "SoapSimulator"]

Handler = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]

SIM_PREFIX = "/_sim"
MAX_REQUEST_BYTES = 1024 * 1024
UNREADABLE = "(unreadable)"  # the `requests` key of a POST whose operation is unknown

_dumps = partial(json.dumps, ensure_ascii=False)


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, dumps=_dumps)


def _xml(body: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, headers={"Content-Type": CONTENT_TYPE})


def _fault_response(fault: SoapFault) -> web.Response:
    # SOAP 1.1 over HTTP: a fault travels with HTTP 500, whoever is to blame.
    return _xml(fault_envelope(fault), 500)


# -- the generic server core ----------------------------------------------------------------------


class SoapSimulator(LoopbackServer):
    """A SOAP 1.1 service on loopback: `async with SoapSimulator(wsdl_path=..., path=...,
    handlers={"Op": handler}) as sim:`, then point a client at `sim.wsdl_url` or `sim.url`."""

    max_body_bytes = MAX_REQUEST_BYTES

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        wsdl_path: str | Path,
        path: str,
        handlers: Mapping[str, Handler],
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if not path.startswith("/") or path.startswith(SIM_PREFIX):
            raise ValueError(f"path must start with '/' and not with {SIM_PREFIX!r}: {path!r}")
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        super().__init__(host, port)
        self.path, self.username, self.password = path, username, password
        self.wsdl = WsdlInfo.read(Path(wsdl_path).read_bytes())
        self.handlers = dict(handlers)
        self._check_handlers()
        self.faults = SimFaults()
        self.requests: Counter[str] = Counter()  # SOAP POSTs by operation, faulted ones too
        self.responses: Counter[int] = Counter()  # by HTTP status
        self.faulted: Counter[str] = Counter()  # SOAP POSTs that got each fault mode
        self.wsse_failures = 0
        self.handler_errors: list[str] = []  # exceptions a handler raised (answered soap:Server)
        self.in_flight = self.peak_in_flight = 0
        self._served_wsdl = b""

    def _check_handlers(self) -> None:
        for name in self.handlers:
            for element in (name, f"{name}Response"):
                if element not in self.wsdl.elements:
                    raise ValueError(f"the WSDL declares no element {element!r}")

    @property
    def url(self) -> str:
        """The SOAP endpoint (empty until started)."""
        return f"{self.base_url}{self.path}" if self.base_url else ""

    @property
    def wsdl_url(self) -> str:
        return f"{self.url}?wsdl" if self.base_url else ""

    async def start(self) -> None:
        await super().start()
        self._served_wsdl = self.wsdl.with_address(self.url)

    def routes(self, app: web.Application) -> None:
        app.router.add_get(self.path, self._get_wsdl)
        app.router.add_post(self.path, self._soap)
        control_routes(app, self, SIM_PREFIX)

    # -- state ------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "responses": {str(status): n for status, n in sorted(self.responses.items())},
            "faulted": dict(self.faulted),
            "wsse_failures": self.wsse_failures,
            "handler_errors": list(self.handler_errors),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "faults": asdict(self.faults),
        }

    def reset(self) -> None:
        """Forget every counter and fault (in-flight requests still finish)."""
        self.faults = SimFaults()
        self.requests.clear()
        self.responses.clear()
        self.faulted.clear()
        self.wsse_failures = 0
        self.handler_errors.clear()
        self.peak_in_flight = self.in_flight

    # -- the service ------------------------------------------------------------------------------

    async def _get_wsdl(self, request: web.Request) -> web.Response:
        if "wsdl" not in {key.lower() for key in request.query}:
            return web.Response(
                status=405, text="POST SOAP requests here", headers={"Allow": "POST"}
            )
        return _xml(self._served_wsdl)

    async def _soap(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            response = await self._answer(request)
        finally:
            self.in_flight -= 1
        self.responses[response.status] += 1
        return response

    async def _answer(self, request: web.Request) -> web.Response:
        mode = self.faults.take()
        if mode != "ok":
            self.faulted[mode] += 1
        payload = await self._read(request)
        self.requests[UNREADABLE if isinstance(payload, SoapFault) else local_name(payload)] += 1
        outage = await self._outage(mode)
        if outage is not None:
            return outage
        if isinstance(payload, SoapFault):
            return _fault_response(payload)
        try:
            reply = await self._serve(payload, mode)
        except SoapFault as fault:
            return _fault_response(fault)
        return self._deliver(reply, mode)

    async def _read(self, request: web.Request) -> etree._Element | SoapFault:
        """The Body's first element, or the fault that refuses the request."""
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return SoapFault("Client", f"the request is larger than {self.max_body_bytes} bytes")
        try:
            return parse_envelope(data)
        except SoapFault as fault:
            return fault

    async def _outage(self, mode: Mode) -> web.Response | None:
        """The answer of a service that is down or hung, or None after a slow start."""
        if mode == "http_503":
            return web.Response(status=503, text="Service Unavailable")
        if mode == "timeout":
            await self._sleep(self.faults.timeout_sleep_s)
            return web.Response(status=504, text="Gateway Timeout")
        if mode == "slow":
            await self._sleep(self.faults.delay_s)
        return None

    async def _serve(self, payload: etree._Element, mode: Mode) -> etree._Element:
        """The response element of the operation `payload` asks for; raises SoapFault."""
        if mode == "soap_fault_client":
            raise SoapFault("Client", "Yêu cầu bị từ chối (lỗi giả lập)")
        if mode == "soap_fault_server":
            raise SoapFault("Server", "Lỗi hệ thống, vui lòng thử lại sau (lỗi giả lập)")
        self._authenticate(payload)
        name, handler = self._operation(payload)
        try:
            result = handler(body_payload(payload))
            if inspect.isawaitable(result):
                result = await result
            return response_element(f"{name}Response", result, self.wsdl.target_namespace)
        except SoapFault:
            raise
        except Exception as exc:  # a handler bug: answered as the service would, kept for tests
            self.handler_errors.append(f"{name}: {exc!r}")
            raise SoapFault("Server", "Lỗi xử lý nội bộ") from exc

    def _authenticate(self, payload: etree._Element) -> None:
        if self.username is None or self.password is None:
            return
        token = username_token(payload)
        if token is None or token.password_type != PASSWORD_TEXT:
            accepted = False
        else:
            # `&`, not `and`: both comparisons always run, so timing tells nothing.
            accepted = _same(token.username, self.username) & _same(token.password, self.password)
        if not accepted:
            self.wsse_failures += 1
            raise SoapFault("Client", "FailedAuthentication")

    def _operation(self, payload: etree._Element) -> tuple[str, Handler]:
        name, ns = local_name(payload), namespace(payload)
        if ns != self.wsdl.target_namespace:
            raise SoapFault("Client", f"{name} must be in namespace {self.wsdl.target_namespace}")
        handler = self.handlers.get(name)
        if handler is None:
            raise SoapFault("Client", f"unknown operation {name}")
        return name, handler

    def _deliver(self, reply: etree._Element, mode: Mode) -> web.Response:
        broken = broken_reply(mode, reply, self.wsdl.target_namespace, self.faults.oversized_bytes)
        return _xml(envelope(reply) if broken is None else broken)


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison, so a wrong guess takes as long as a near miss."""
    return secrets.compare_digest(given.encode(), expected.encode())


# -- business registration ------------------------------------------------------------------------

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DKKD_PATH = "/ws/dkkd"
DKKD_WSDL = Path(__file__).resolve().parents[2] / "mappings/ministries/business_registration.wsdl"
RESULT_TIME = "%d/%m/%Y %H:%M:%S"
OK, MISSING_FIELD, REFUSED = "00", "01", "02"  # NopHoSoResponse MaLoi
IN_PROGRESS, MORE_INFO, GRANTED, REJECTED = "DANG_XU_LY", "YEU_CAU_BO_SUNG", "DA_CAP_GCN", "TU_CHOI"
STATUSES = (IN_PROGRESS, MORE_INFO, GRANTED, REJECTED)
# The schema's sequence order, which is the wire order.
RESULT_FIELDS = (
    "MaKetQua", "MaHoSo", "TrangThai", "ThoiGian", "CanBoXuLy", "DonViXuLy", "NoiDung",
    "MaSoDoanhNghiep", "SoGiayChungNhan",
)  # fmt: skip
UNKNOWN_CODE = "KHONG-TON-TAI-0001"
OFFICER = "Nguyễn Thị Lan"
OFFICE = "Phòng Đăng ký kinh doanh - Sở Tài chính TP. Hồ Chí Minh"
NOTES = {
    IN_PROGRESS: "Hồ sơ đang được xử lý",
    MORE_INFO: "Đề nghị bổ sung Điều lệ công ty có đủ chữ ký của các thành viên",
    GRANTED: "Đã cấp Giấy chứng nhận đăng ký doanh nghiệp",
    REJECTED: "Tên doanh nghiệp trùng với tên doanh nghiệp đã đăng ký",
}
MAX_PAGE = 500


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {list(STATUSES)}, got {status!r}")
    return status


def _text(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    return value.strip() if isinstance(value, str) else ""


def _cursor(request: dict[str, Any]) -> int:
    text = _text(request, "TuMoc")
    if text and not (text.isascii() and text.isdigit()):
        raise SoapFault("Client", f"TuMoc phải là số thứ tự, nhận được {text!r}")
    return int(text or "0")


def _page_size(request: dict[str, Any]) -> int:
    text = _text(request, "SoLuong")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE:
        raise SoapFault("Client", f"SoLuong phải từ 1 đến {MAX_PAGE}, nhận được {text!r}")
    return int(text)


class BusinessRegistrationSimulator(SoapSimulator):
    """The business-registration system on loopback: `async with
    BusinessRegistrationSimulator(username="u", password="p") as sim:`, then call
    `sim.wsdl_url`. `results_per_dossier`: 0 queues nothing until `decide`, 1 the decision
    (DA_CAP_GCN unless decided), 2 DANG_XU_LY then the decision."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
        results_per_dossier: int = 1,
        wsdl_path: str | Path = DKKD_WSDL,
        path: str = DKKD_PATH,
    ) -> None:
        if results_per_dossier not in (0, 1, 2):
            raise ValueError(f"results_per_dossier must be 0, 1 or 2, got {results_per_dossier}")
        handlers = {"NopHoSo": self._submit, "LayDanhSachKetQua": self._list_results}
        super().__init__(
            host,
            port,
            wsdl_path=wsdl_path,
            path=path,
            handlers=handlers,
            username=username,
            password=password,
        )
        self.results_per_dossier = results_per_dossier
        self.submissions: list[dict[str, Any]] = []  # every parsed NopHoSo, repeats included
        self.accepted: dict[str, str] = {}  # MaHoSo → MaBienNhan
        self.results: list[dict[str, str]] = []  # results[i] has sequence number i + 1
        self.results_served = 0  # items returned, duplicates included
        self.decisions: dict[str, str] = {}  # MaHoSo → final status, for dossiers not yet seen
        self.refusals: dict[str, str] = {}  # MaHoSo → MoTaLoi of a NopHoSo refusal
        self._certificates = 0
        self._last_page: list[dict[str, str]] = []
        self._duplicate_next = False

    # -- control from Python ----------------------------------------------------------------------

    def decide(self, code: str, status: str) -> None:
        """The outcome of dossier `code`: its final result when it arrives, or, if it is
        already accepted, one more result with `status` queued now."""
        _check_status(status)
        if code in self.accepted:
            self.queue_result(code, status)
        else:
            self.decisions[code] = status

    def refuse(self, code: str, reason: str = "Hồ sơ không hợp lệ") -> None:
        """Answer NopHoSo for `code` with MaLoi "02" and `reason` from now on."""
        self.refusals[code] = reason

    def queue_result(self, code: str, status: str, **fields: str) -> dict[str, str]:
        """Queue one result for `code` (any code); `fields` override the made-up ones."""
        _check_status(status)
        unknown = set(fields) - set(RESULT_FIELDS)
        if unknown:
            raise ValueError(f"unknown result fields {sorted(unknown)}")
        seq = len(self.results) + 1
        values = {
            "MaKetQua": f"KQ-{seq}",
            "MaHoSo": code,
            "TrangThai": status,
            "ThoiGian": datetime.now(VN_TZ).strftime(RESULT_TIME),
            "CanBoXuLy": OFFICER,
            "DonViXuLy": OFFICE,
            "NoiDung": NOTES[status],
            **(self._certificate() if status == GRANTED else {}),
            **fields,
        }
        item = {name: values[name] for name in RESULT_FIELDS if name in values}
        self.results.append(item)
        return item

    def inject_unknown_result(
        self, code: str = UNKNOWN_CODE, status: str = GRANTED
    ) -> dict[str, str]:
        """Queue a result for a dossier code never submitted."""
        if code in self.accepted:
            raise ValueError(f"dossier {code!r} was submitted; pick a code never submitted")
        return self.queue_result(code, status)

    def duplicate_next_page(self) -> None:
        """Make the next page repeat the items of the last non-empty page before its own."""
        self._duplicate_next = True

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "submissions": list(self.submissions),
            "accepted": dict(self.accepted),
            "results_queued": len(self.results),
            "results_served": self.results_served,
            "results": list(self.results),
        }

    def reset(self) -> None:
        """Forget every dossier, result, decision, refusal, counter and fault."""
        super().reset()
        self.submissions.clear()
        self.accepted.clear()
        self.results.clear()
        self.results_served = self._certificates = 0
        self.decisions.clear()
        self.refusals.clear()
        self._last_page = []
        self._duplicate_next = False

    # -- operations -------------------------------------------------------------------------------

    def _submit(self, request: dict[str, Any]) -> dict[str, Any]:
        self.submissions.append(request)
        code = _text(request, "MaHoSo")
        missing = [name for name in ("MaHoSo", "MaTTHC") if not _text(request, name)]
        if missing:
            return {"MaLoi": MISSING_FIELD, "MoTaLoi": f"Thiếu {', '.join(missing)}"}
        if code in self.refusals:
            return {"MaLoi": REFUSED, "MoTaLoi": self.refusals[code]}
        if code not in self.accepted:
            self.accepted[code] = f"BN-{len(self.accepted) + 1:06d}"
            self._queue_for(code)
        return {"MaLoi": OK, "MoTaLoi": "Tiếp nhận thành công", "MaBienNhan": self.accepted[code]}

    def _queue_for(self, code: str) -> None:
        if self.results_per_dossier == 2:
            self.queue_result(code, IN_PROGRESS)
        if self.results_per_dossier > 0 or code in self.decisions:
            self.queue_result(code, self.decisions.pop(code, GRANTED))

    def _certificate(self) -> dict[str, str]:
        self._certificates += 1
        year = datetime.now(VN_TZ).year
        return {
            "MaSoDoanhNghiep": f"{312345677 + self._certificates:010d}",
            "SoGiayChungNhan": f"GCN-{year}-{self._certificates:06d}",
        }

    def _list_results(self, request: dict[str, Any]) -> dict[str, Any]:
        after, size = _cursor(request), _page_size(request)
        page = self.results[after : after + size]
        items = page
        if self._duplicate_next:
            items, self._duplicate_next = self._last_page + page, False
        if page:
            self._last_page = page
        self.results_served += len(items)
        cursor = str(after + len(page)) if page else _text(request, "TuMoc") or "0"
        listing = {"KetQua": items} if items else None
        return {"MaLoi": OK, "MocTiepTheo": cursor, "DanhSachKetQua": listing}


# -- standalone -----------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    sim = BusinessRegistrationSimulator(
        args.host, args.port, username=args.username, password=args.password
    )

    def describe() -> list[str]:
        security = f"WS-Security user {sim.username}" if sim.username else "no WS-Security"
        return [
            f"business registration simulator: POST {sim.url}  ({security})",
            f"  WSDL: GET {sim.wsdl_url}",
            f"  faults: POST {sim.base_url}/_sim/faults   state: GET {sim.base_url}/_sim/state",
        ]

    await serve_until_signalled(sim, "business registration simulator", describe)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Run the business registration (DKKD) SOAP simulator until Ctrl-C."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--username", default=None, help="require this WS-Security user")
    parser.add_argument("--password", default=None, help="and this password (PasswordText)")
    args = parser.parse_args(argv)
    if (args.username is None) != (args.password is None):
        parser.error("give both --username and --password, or neither")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
