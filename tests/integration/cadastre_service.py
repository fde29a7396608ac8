"""A cadastre (địa chính) SOAP service on loopback, written for the mapping tests.

It serves `tests/data/ministry_cadastre/cadastre.wsdl` and answers with the hand-written
replies beside it. It shares no code with `sims/` nor with the hub: it reads requests with
lxml and checks what an xsd:dateTime looks like itself, so that a mistake the hub and the
project's simulators made alike would still show here. It refuses (SOAP Client fault) a
`tuThoiDiem` that is not an xsd:dateTime, as a strict service does.

Each dossier handed off gets its results (`steps`: by default trangThai 1 then 2), one second
apart and later than any before; a test may add results, or leave elements out of one
(`omit`), breaking what the WSDL promises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree

from hub.validation import VN_TZ

DATA = Path(__file__).resolve().parents[1] / "data" / "ministry_cadastre"
NS = "urn:vn:gov:diachinh:lienthong:v3"
# xsd:dateTime (XML Schema part 2, 3.2.7): a T between the date and the time, an optional zone.
XSD_DATETIME = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def _template(name: str) -> Template:
    return Template((DATA / "replies" / name).read_text(encoding="utf-8"))


@dataclass
class Result:
    ma: str
    maHoSo: str
    trangThai: int
    thoiDiem: datetime
    loaiBienDong: str = "Cấp giấy chứng nhận"
    noiDung: str | None = None
    omit: set[str] = field(default_factory=set)  # elements left out of the reply

    def xml(self) -> str:
        values = {
            "ma": self.ma,
            "maHoSo": self.maHoSo,
            "trangThai": str(self.trangThai),
            "thoiDiem": self.thoiDiem.isoformat(),
            "loaiBienDong": self.loaiBienDong,
            "noiDung": self.noiDung or "",
        }
        text = _template("ketQua.xml").substitute({k: escape(v) for k, v in values.items()})
        gone = set(self.omit) | ({"noiDung"} if self.noiDung is None else set())
        return "\n".join(
            line for line in text.split("\n") if not any(f"<dc:{n}>" in line for n in gone)
        )


class CadastreService:
    def __init__(
        self, next_cursor: bool = True, steps: list[tuple[int, set[str]]] | None = None
    ) -> None:
        self.next_cursor = next_cursor  # does layKetQuaResponse carry thoiDiemTiepTheo?
        # the results each dossier handed off gets: (trangThai, elements left out)
        self.steps = steps or [(1, set()), (2, set())]
        self.results: list[Result] = []
        self.received: dict[str, dict[str, str]] = {}  # maHoSo → the hoSo it was sent
        self.polls: list[str | None] = []  # each layKetQua's tuThoiDiem, as written
        self.faults: list[str] = []
        self.served: dict[str, int] = {}  # result id → times it was in a reply
        self._clock = datetime.now(VN_TZ).replace(microsecond=0) - timedelta(hours=1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def wsdl_url(self) -> str:
        return f"{self.url}?wsdl"

    async def __aenter__(self) -> CadastreService:
        app = web.Application()
        app.router.add_get("/ws/diachinh", self._wsdl)
        app.router.add_post("/ws/diachinh", self._call)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/ws/diachinh"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def add(self, dossier: str, status: int, **extra: Any) -> Result:
        """A new result about `dossier`, one second after the last one."""
        self._clock += timedelta(seconds=1)
        result = Result(f"DC-{len(self.results) + 1}", dossier, status, self._clock, **extra)
        self.results.append(result)
        return result

    async def _wsdl(self, request: web.Request) -> web.Response:
        return web.Response(
            text=(DATA / "cadastre.wsdl").read_text(encoding="utf-8"), content_type="text/xml"
        )

    async def _call(self, request: web.Request) -> web.Response:
        envelope = etree.fromstring(await request.read())
        body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
        assert body is not None
        operation = body[0]
        name = etree.QName(operation).localname
        if name == "guiHoSo":
            return self._submit(operation)
        if name == "layKetQua":
            return self._poll(operation)
        return self._fault(f"no operation {name}")

    def _submit(self, operation: etree._Element) -> web.Response:
        dossier = operation.find(f"{{{NS}}}hoSo")
        assert dossier is not None
        fields = {etree.QName(e).localname: e.text or "" for e in dossier}
        code = fields["maHoSo"]
        self.received[code] = fields
        for status, omit in self.steps:
            self.add(code, status, noiDung=f"bước {status}", omit=set(omit))
        reply = _template("guiHoSo.xml").substitute(soBienNhan=f"BN-{len(self.received)}")
        return web.Response(text=reply, content_type="text/xml")

    def _poll(self, operation: etree._Element) -> web.Response:
        after_text = operation.findtext(f"{{{NS}}}tuThoiDiem")
        limit = int(operation.findtext(f"{{{NS}}}soLuong") or "0")
        self.polls.append(after_text)
        after = None
        if after_text:
            if not XSD_DATETIME.match(after_text):
                return self._fault(f"tuThoiDiem: {after_text!r} is not an xsd:dateTime")
            after = datetime.fromisoformat(after_text)
        page = sorted(
            (r for r in self.results if after is None or r.thoiDiem > after),
            key=lambda r: r.thoiDiem,
        )[:limit]
        for result in page:
            self.served[result.ma] = self.served.get(result.ma, 0) + 1
        following = ""
        if self.next_cursor and page:
            following = _template("thoiDiemTiepTheo.xml").substitute(
                thoiDiem=page[-1].thoiDiem.isoformat()
            )
        reply = _template("layKetQua.xml").substitute(
            thoiDiemTiepTheo=following, ketQua="".join(r.xml() for r in page)
        )
        return web.Response(text=reply, content_type="text/xml")

    def _fault(self, reason: str) -> web.Response:
        self.faults.append(reason)
        text = _template("fault.xml").substitute(reason=escape(reason))
        return web.Response(text=text, status=500, content_type="text/xml")
