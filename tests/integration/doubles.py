"""Doubles of DVCQG, the payment platform and the one-stop system written for the tests from
the protocol pages alone (`connectors/national_portal/PROTOCOL.md`,
`connectors/payment_platform/PROTOCOL.md`, `connectors/webhook/PROTOCOL.md`), sharing no code
with the hub or its simulators: a mistake the hub and its simulator made together (a codec, a
signature, a reply code) shows up against these. Each is an aiohttp application to put on the
wire with `tests.support.serving.serve`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

STEP_FIELDS = (
    "MaHoSo",
    "NguoiXuLy",
    "ChucDanh",
    "ThoiDiemXuLy",
    "PhongBanXuLy",
    "NoiDungXuLy",
    "TrangThai",
    "NgayBatDau",
    "NgayKetThucTheoQuyDinh",
)


def step_identity(step: dict[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(step.get("MaHoSo")),
        str(step.get("ThoiDiemXuLy")),
        str(step.get("TrangThai")),
        str(step.get("NoiDungXuLy")),
    )


@dataclass
class Dvcqg:
    """DVCQG as PROTOCOL.md describes it: a log-in gives a session; `DongBoHoSoMC` holds
    records (`05` for a new one it holds, `06` for an update of one it does not);
    `CapNhatTienDoHoSoMC` appends steps of dossiers it holds (`06` otherwise), keeping every
    copy it receives, as a portal that does not deduplicate would; `TraCuuHoSo` answers a
    record with its steps (`QuaTrinhXuLy`) or `06`.

    `lose_replies` set: each call is applied, then its reply is held until the hub has given
    up waiting (the event is set or `hold_s` passes)."""

    username: str
    password: str
    hold_s: float = 6.0
    sessions: set[str] = field(default_factory=set)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    receipts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    lose_replies: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "username" in body:
            if (body["username"], body.get("password")) != (self.username, self.password):
                return web.json_response({"error_code": -1, "message": "Sai tài khoản"}, status=401)
            session = f"phien-{len(self.sessions) + 1}"
            self.sessions.add(session)
            return web.json_response({"error_code": 0, "session": session})
        if body.get("session") not in self.sessions:
            return web.json_response({"error_code": "401", "message": "Hết phiên"}, status=401)
        service = str(body.get("service"))
        self.calls[service] += 1
        reply = self._serve(service, body)
        if self.lose_replies:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), self.hold_s)
        return web.json_response(reply)

    def _serve(self, service: str, body: dict[str, Any]) -> dict[str, Any]:
        if service == "TraCuuHoSo":
            code = str(body.get("mahoso"))
            if code not in self.records:
                return {"error_code": "06", "message": f"Không có hồ sơ {code}"}
            held = self.steps.get(code, [])
            return {"error_code": "00", "data": {**self.records[code], "QuaTrinhXuLy": held}}
        if service == "DongBoHoSoMC":
            updating = body.get("isUpdating") == "True"
            return _items(body["data"], lambda item: self._record(item, updating))
        if service == "CapNhatTienDoHoSoMC":
            return _items(body["data"], self._step)
        return {"error_code": "01", "message": f"Không có dịch vụ {service}"}

    def _record(self, item: dict[str, Any], updating: bool) -> str:
        code = item["MaHoSo"]
        if not updating and code in self.records:
            return "05"
        if updating and code not in self.records:
            return "06"
        self.records[code] = item
        return "00"

    def _step(self, item: dict[str, Any]) -> str:
        code = item["MaHoSo"]
        if code not in self.records:
            return "06"
        self.receipts[step_identity(item)] += 1
        self.steps.setdefault(code, []).append({k: item[k] for k in STEP_FIELDS if k in item})
        return "00"


def _items(items: list[dict[str, Any]], apply: Any) -> dict[str, Any]:
    result = [
        {"MaHoSo": item.get("MaHoSo"), "error_code": code, "message": ""}
        for item in items
        for code in [apply(item)]
    ]
    refused = any(r["error_code"] != "00" for r in result)
    return {"error_code": "02" if refused else "00", "message": "", "result": result}


def mac(values: list[str], secret: str) -> str:
    """`MaXacThuc`: hex SHA-256 of the values joined by `|`, the secret last."""
    return hashlib.sha256("|".join([*values, secret]).encode()).hexdigest()


@dataclass
class PaymentPlatform:
    """The payment platform's listing of a day (§3): `DoiSoat` requests are checked against
    the partner's key and answered with `listed[NgayGD]`, signed over `MaLoi, MaDoiTac,
    NgayGD, SoGD, TongTien`."""

    partner: str
    secret: str
    listed: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/doi-soat", self._listing)
        return app

    def callback(self, **fields: str) -> dict[str, str]:
        """A result callback (§1) signed in the protocol's default order."""
        order = [
            "LoaiBanTin",
            "MaLoi",
            "MaDoiTac",
            "MaThamChieu",
            "SoTien",
            "MaTienTe",
            "MaGiaoDich",
            "MaNganHang",
            "ThoiGianGD",
            "ThongTinGiaoDich",
        ]
        body = {"LoaiBanTin": "KetQuaThanhToan", "MaLoi": "00", "MaDoiTac": self.partner}
        body |= {"MaTienTe": "VND", "MaNganHang": "VCB", "ThongTinGiaoDich": ""} | fields
        return body | {"MaXacThuc": mac([body.get(k, "") for k in order], self.secret)}

    async def _listing(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        signed = [body.get(k, "") for k in ("LoaiBanTin", "MaDoiTac", "NgayGD")]
        if body.get("MaXacThuc", "").lower() != mac(signed, self.secret):
            return web.json_response({"MaLoi": "02", "MoTaLoi": "Sai chữ ký"})
        day = body["NgayGD"]
        rows = self.listed.get(day, [])
        reply = {
            "MaLoi": "00",
            "MaDoiTac": self.partner,
            "NgayGD": day,
            "SoGD": str(len(rows)),
            "TongTien": str(sum(int(r["SoTien"]) for r in rows)),
            "DanhSachGD": rows,
        }
        signed = [reply[k] for k in ("MaLoi", "MaDoiTac", "NgayGD", "SoGD", "TongTien")]
        return web.json_response(reply | {"MaXacThuc": mac(signed, self.secret)})


@dataclass
class OneStop:
    """A subscriber (webhook PROTOCOL.md §2): takes one event per POST with its bearer token,
    answers 200."""

    token: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/events", self._event)
        return app

    async def _event(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "token"}, status=401)
        self.events.append(await request.json())
        return web.json_response({"ok": True})
