"""DVCQG catalogue record (`LayThuTuc`) → canonical `Procedure`, and its code table.

The words DVCQG uses for time units, currencies, online levels and yes/no flags vary between
portal versions and LGSPs, so they live in `mappings/national_portal_catalogue.yaml`. A record
that cannot be read whole (no code, a negative or non-numeric fee, an unknown time unit, a
list that is not a list...) raises `ValidationFailed` naming the wire field: the sync
quarantines it with that reason instead of guessing. This module must never perform I/O
beyond reading that file.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.national_portal.mapping import wire_error
from hub.errors import ValidationFailed
from hub.status_mapping import load_code_table
from hub.validation import parse_vnd
from schemas.national_portal import (
    WireAgency,
    WireChannel,
    WireDocumentGroup,
    WireProcedure,
    WireTimeLimit,
)
from schemas.procedure import (
    Agencies,
    AgencyRef,
    Channel,
    ChannelTerms,
    DocumentGroup,
    LegalBasis,
    NamedCode,
    OnlineLevel,
    Procedure,
    ProcedureFee,
    ProcessCase,
    RequiredDocument,
    TimeLimit,
    TimeUnit,
)

_NATIONAL_CODE = re.compile(r"^\d{1,2}\.\d{6}$")
_COUNT = re.compile(r"^\d{1,4}$")


def _key(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().casefold()


class CatalogueCodes(BaseModel):
    """The words of `mappings/national_portal_catalogue.yaml`, matched case-insensitively."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    time_units: dict[str, TimeUnit]
    currencies: list[str] = Field(default_factory=lambda: ["Đồng", "VNĐ", "VND"])
    channels: dict[str, Channel] = Field(default_factory=dict)
    online_levels: dict[str, OnlineLevel] = Field(default_factory=dict)
    true_values: list[str] = Field(default_factory=lambda: ["1", "true", "có"])
    published: list[str] = Field(default_factory=lambda: ["1"])
    not_found: str = "06"

    def unit(self, raw: str | None, field: str) -> TimeUnit:
        found = {_key(k): v for k, v in self.time_units.items()}.get(_key(raw or ""))
        if found is None:
            raise ValidationFailed(
                f"{field}: unknown time unit {raw!r} (add it to the catalogue mapping)",
                field=field,
                code="unknown_unit",
            )
        return found

    def flag(self, raw: str | None, default: bool = False) -> bool:
        if raw is None or raw == "":
            return default
        return _key(raw) in {_key(y) for y in self.true_values}

    @classmethod
    def load(cls, path: Path) -> CatalogueCodes:
        return load_code_table(cls, path)


def procedure_from_wire(raw: object, codes: CatalogueCodes, agency_code: str) -> Procedure:
    """The canonical procedure, or `ValidationFailed` saying which wire field is wrong."""
    if not isinstance(raw, dict):
        raise ValidationFailed("the procedure record is not a JSON object", code="not_object")
    try:
        wire = WireProcedure.model_validate(raw)
    except ValidationError as exc:
        raise wire_error(exc) from None
    code = (wire.MATTHC or "").strip()
    if not code:
        raise ValidationFailed("MATTHC is required", field="MATTHC", code="missing")
    if not _NATIONAL_CODE.fullmatch(code):
        raise ValidationFailed(
            f"MATTHC {code!r} is not a national procedure code like 1.000494",
            field="MATTHC",
            code="bad_code",
        )
    name = (wire.TENTTHC or "").strip()
    if not name:
        raise ValidationFailed("TENTTHC is required", field="TENTTHC", code="missing")
    try:
        return _procedure(wire, code, name, codes, agency_code)
    except ValidationError as exc:  # a canonical limit (a count or amount out of range)
        raise wire_error(exc) from None


def _procedure(
    wire: WireProcedure, code: str, name: str, codes: CatalogueCodes, agency_code: str
) -> Procedure:
    level = codes.online_levels.get((wire.MUCDO or "").strip().upper(), OnlineLevel.none)
    return Procedure(
        code=code,
        localized_code=f"{code}.{agency_code}",
        name=name,
        kind=wire.LOAITTHC or "",
        levels=[lv.TENCAP for lv in wire.CAPTHUCHIEN if lv.TENCAP],
        fields=[
            NamedCode(code=f.MALINHVUC, name=f.TENLINHVUC or "")
            for f in wire.LINHVUCTHUCHIEN
            if f.MALINHVUC
        ],
        process=[
            ProcessCase(
                case=c.TRUONGHOP or "", steps=[s.TENTRINHTU for s in c.TRINHTU if s.TENTRINHTU]
            )
            for c in wire.TRINHTUTHUCHIEN
        ],
        channels=[_channel(ch, i, codes) for i, ch in enumerate(wire.CACHTHUCTHUCHIEN)],
        documents=[_documents(g, i) for i, g in enumerate(wire.THANHPHANHOSO)],
        conditions=wire.YEUCAU or "",
        applicants=[a.TENDOITUONG for a in wire.DOITUONGTHUCHIEN if a.TENDOITUONG],
        results=[
            NamedCode(code=r.MAKETQUA or r.TENKETQUA or "?", name=r.TENKETQUA or "")
            for r in wire.KETQUATHUCHIEN
            if r.MAKETQUA or r.TENKETQUA
        ],
        legal_bases=[
            LegalBasis(number=b.SOVANBAN, title=b.TENVANBAN or "")
            for b in wire.CANCUPHAPLY
            if b.SOVANBAN
        ],
        agencies=Agencies(
            executing=_agencies(wire.COQUANTHUCHIEN),
            deciding=_agencies(wire.COQUANCOTHAMQUYEN),
            authorized=_agencies(wire.COQUANDUOCUYQUYEN),
            coordinating=_agencies(wire.COQUANPHOIHOP),
        ),
        receiving_address=wire.DIACHITIEPNHAN or "",
        online_level=level,
        postal=codes.flag(wire.COBUUCHINH),
        online_payment=codes.flag(wire.THANHTOANTRUCTUYEN),
        sms=codes.flag(wire.GUISMS),
        one_stop=codes.flag(wire.MOTCUA, default=True),
        inter_agency=codes.flag(wire.LIENTHONG),
        published=_key(wire.TRANGTHAI or "1") in {_key(p) for p in codes.published},
    )


def _agencies(items: list[WireAgency]) -> list[AgencyRef]:
    return [
        AgencyRef(code=a.MADONVI or "", name=a.TENDONVI or "")
        for a in items
        if a.MADONVI or a.TENDONVI
    ]


def _channel(wire: WireChannel, index: int, codes: CatalogueCodes) -> ChannelTerms:
    field = f"CACHTHUCTHUCHIEN.{index}"
    channel = codes.channels.get((wire.KENH or "").strip())
    if channel is None:
        raise ValidationFailed(
            f"{field}.KENH: unknown channel {wire.KENH!r}", field=f"{field}.KENH", code="bad_code"
        )
    limits = [_time_limit(t, f"{field}.THOIGIAN.{i}", codes) for i, t in enumerate(wire.THOIGIAN)]
    return ChannelTerms(channel=channel, time_limits=limits)


def _time_limit(wire: WireTimeLimit, field: str, codes: CatalogueCodes) -> TimeLimit:
    amount = _decimal(wire.THOIGIANGIAIQUYET, f"{field}.THOIGIANGIAIQUYET")
    unit = codes.unit(wire.DONVITINH, f"{field}.DONVITINH")
    fees = []
    for i, fee in enumerate(wire.PHILEPHI):
        where = f"{field}.PHILEPHI.{i}"
        if fee.DONVI and _key(fee.DONVI) not in {_key(c) for c in codes.currencies}:
            raise ValidationFailed(
                f"{where}.DONVI: currency {fee.DONVI!r} is not VND",
                field=f"{where}.DONVI",
                code="bad_currency",
            )
        fees.append(
            ProcedureFee(
                code=fee.MAPHILEPHI or "",
                amount_vnd=parse_vnd(fee.SOTIEN or "", f"{where}.SOTIEN"),
                description=fee.MOTA or "",
            )
        )
    return TimeLimit(amount=amount, unit=unit, description=wire.MOTA or "", fees=fees)


def _decimal(raw: str | None, field: str) -> Decimal:
    text = (raw or "").strip().replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise ValidationFailed(
            f"{field} must be a non-negative number, got {raw!r}", field=field, code="bad_number"
        )
    # One spelling per amount ("5", "5.0" and "05" are the same limit): no spurious change.
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _documents(wire: WireDocumentGroup, index: int) -> DocumentGroup:
    docs = []
    for i, d in enumerate(wire.GIAYTO):
        where = f"THANHPHANHOSO.{index}.GIAYTO.{i}"
        if not d.TENGIAYTO:
            raise ValidationFailed(
                f"{where}.TENGIAYTO is required", field=f"{where}.TENGIAYTO", code="missing"
            )
        docs.append(
            RequiredDocument(
                code=d.MAGIAYTO or "",
                name=d.TENGIAYTO,
                form_name=d.TENMAUDON or "",
                form_url=d.URL or "",
                originals=_count(d.SOBANCHINH, f"{where}.SOBANCHINH"),
                copies=_count(d.SOBANSAO, f"{where}.SOBANSAO"),
            )
        )
    return DocumentGroup(case=wire.TRUONGHOP or "", documents=docs)


def _count(raw: str | None, field: str) -> int:
    text = (raw or "0").strip() or "0"
    if not _COUNT.fullmatch(text):
        raise ValidationFailed(
            f"{field} must be a whole number of copies, got {raw!r}", field=field, code="bad_count"
        )
    return int(text)


def catalogue_entries(result: Any) -> list[Any]:
    """The list a `LayDanhSach…` reply carries, or `ValidationFailed`."""
    if not isinstance(result, list):
        raise ValidationFailed("the reply's result is not a list", field="result", code="not_list")
    return result
