"""DVCQG wire ⇄ canonical, in both directions, and the portal's reply-code table.

Inbound (the facade): a `DongBoHoSoMC` or `CapNhatTienDoHoSoMC` item becomes a canonical
`DossierEvent`, its status translated through the sending system's table, every date parsed
and checked. Outbound (the client): a canonical record or step becomes the item DVCQG expects.
The reply codes DVCQG uses come from `mappings/national_portal.yaml`. This module must never
perform I/O beyond reading that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.errors import ValidationFailed
from hub.status_mapping import StatusTable, load_code_table
from hub.validation import VN_TZ, WIRE_DATE_FORMAT, Validator, parse_vnd
from schemas.canonical import (
    Attachment,
    DossierEvent,
    DossierRecord,
    Fee,
    ProcessingStep,
    ResultDocument,
    content_id,
)
from schemas.national_portal import WireDossier, WireFee, WireStep

WireT = TypeVar("WireT", WireDossier, WireStep)


class PortalCodes(BaseModel):
    """Reply codes of the DVCQG protocol (`mappings/national_portal.yaml`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    success: str = "00"
    partial: str = "02"
    session_expired: list[str] = Field(default_factory=lambda: ["401"])
    credentials_refused: list[str] = Field(default_factory=lambda: ["-1"])
    transient: list[str] = Field(default_factory=lambda: ["99"])
    already_held: str = "05"
    not_held: str = "06"

    @classmethod
    def load(cls, path: Path) -> PortalCodes:
        return load_code_table(cls, path)


@dataclass(frozen=True)
class InboundContext:
    source_system: str
    table: StatusTable
    validator: Validator
    now: datetime


def wire_error(exc: ValidationError) -> ValidationFailed:
    """The first problem of a wire model, said the way a sender can act on."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    if err["type"] == "missing":
        return ValidationFailed(f"{field} is required", field=field, code="missing")
    return ValidationFailed(f"{field}: {err['msg']}", field=field, code="wrong_type")


def _parse(item: Any, model: type[WireT]) -> WireT:
    if not isinstance(item, dict):
        raise ValidationFailed("each item must be a JSON object", code="wrong_type")
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        raise wire_error(exc) from None


def record_event(item: Any, ctx: InboundContext) -> DossierEvent:
    """A `DongBoHoSoMC` item → a canonical event (raises `ValidationFailed`)."""
    wire = _parse(item, WireDossier)
    v, now = ctx.validator, ctx.now
    code = v.dossier_code(wire.MaHoSo, "MaHoSo")
    translation = ctx.table.translate(wire.TrangThaiHoSo, "TrangThaiHoSo")
    received_at = _happened(v, wire.NgayTiepNhan, "NgayTiepNhan", now)
    due_at = _due(v, wire.NgayHenTra, "NgayHenTra", now)
    if received_at and due_at and due_at < received_at:
        raise ValidationFailed(
            "NgayHenTra is before NgayTiepNhan (the due date before the dossier was received)",
            field="NgayHenTra",
        )
    record = DossierRecord(
        dossier_code=code,
        status=translation.status,
        procedure_code=wire.MaTTHC,
        procedure_name=wire.TenTTHC,
        field_code=wire.MaLinhVuc,
        field_name=wire.TenLinhVuc,
        receipt_number=wire.SoBienNhan,
        owner_name=wire.ChuHoSo,
        applicant_type=wire.LoaiDoiTuong,
        applicant_id=wire.MaDoiTuong,
        other_info=wire.ThongTinKhac,
        email=wire.Email,
        fax=wire.Fax,
        phone=wire.SoDienThoai,
        summary=wire.TrichYeuHoSo,
        received_at=received_at,
        due_at=due_at,
        returned_at=_happened(v, wire.NgayTra, "NgayTra", now),
        return_info=wire.ThongTinTra,
        return_method=wire.HinhThuc,
        processing_ended_at=_happened(v, wire.NgayKetThucXuLy, "NgayKetThucXuLy", now),
        handling_unit=wire.DonViXuLy,
        note=wire.GhiChu,
        submitted_documents=[
            Attachment(
                file_id=a.TepDinhKemId,
                name=a.TenTepDinhKem,
                deleted=(a.IsDeleted or "").lower() == "true",
                component_code=a.MaThanhPhanHoSo,
                url=a.DuongDanTaiTepTin,
            )
            for a in wire.TaiLieuNop
        ],
        fees=[_fee(f, i) for i, f in enumerate(wire.DanhSachLePhi)],
        other_attachments=wire.DanhSachTepDinhKemKhac,
        supplements=wire.DanhSachHoSoBoSung,
        result_documents=[
            ResultDocument(
                name=d.TenGiayTo,
                component_code=d.MaThanhPhanHoSo,
                document_id=d.GiayToId,
                url=d.DuongDanTepTinKetQua,
            )
            for d in wire.DanhSachGiayToKetQua
        ],
    )
    return DossierEvent(
        event_id=content_id(item),
        source_system=ctx.source_system,
        kind="record",
        dossier_code=code,
        status=translation.status,
        sub_status=translation.sub_status,
        vendor_status=translation.vendor_code,
        occurred_at=record.progress_time() or now,
        record=record,
    )


def step_event(item: Any, ctx: InboundContext) -> DossierEvent:
    """A `CapNhatTienDoHoSoMC` item → a canonical event (raises `ValidationFailed`)."""
    wire = _parse(item, WireStep)
    v, now = ctx.validator, ctx.now
    code = v.dossier_code(wire.MaHoSo, "MaHoSo")
    translation = ctx.table.translate(wire.TrangThai, "TrangThai")
    processed_at = v.happened(v.wire_date(wire.ThoiDiemXuLy, "ThoiDiemXuLy"), "ThoiDiemXuLy", now)
    step = ProcessingStep(
        dossier_code=code,
        status=translation.status,
        processed_at=processed_at,
        handler_name=wire.NguoiXuLy,
        handler_title=wire.ChucDanh,
        department=wire.PhongBanXuLy,
        content=wire.NoiDungXuLy,
        started_at=_happened(v, wire.NgayBatDau, "NgayBatDau", now),
        due_at=_due(v, wire.NgayKetThucTheoQuyDinh, "NgayKetThucTheoQuyDinh", now),
    )
    return DossierEvent(
        event_id=content_id(item),
        source_system=ctx.source_system,
        kind="step",
        dossier_code=code,
        status=translation.status,
        sub_status=translation.sub_status,
        vendor_status=translation.vendor_code,
        occurred_at=processed_at,
        step=step,
    )


def _happened(v: Validator, raw: str | None, field: str, now: datetime) -> datetime | None:
    if raw is None or raw == "":
        return None
    return v.happened(v.wire_date(raw, field), field, now)


def _due(v: Validator, raw: str | None, field: str, now: datetime) -> datetime | None:
    if raw is None or raw == "":
        return None
    return v.due(v.wire_date(raw, field), field, now)


# Amounts in VND: plain digits, Vietnamese or English thousands groups ("1.200.000",
# "1,200,000"), or a decimal with a zero fraction ("8000.0", as a JSON number arrives).
def _fee(fee: WireFee, index: int) -> Fee:
    amount = None
    if fee.Gia not in (None, ""):
        amount = parse_vnd(str(fee.Gia), f"DanhSachLePhi.{index}.Gia")
    return Fee(
        name=fee.TenPhiLePhi,
        code=fee.MaPhiLePhi,
        collection_method=fee.HinhThucThu,
        amount_vnd=amount,
        kind=fee.LoaiPhiLePhi,
    )


# -- outbound ----------------------------------------------------------------------------------


def wire_date(value: datetime | None) -> str:
    return value.astimezone(VN_TZ).strftime(WIRE_DATE_FORMAT) if value else ""


def record_to_wire(record: DossierRecord) -> dict[str, Any]:
    """A canonical record → a `DongBoHoSoMC` item, TrangThaiHoSo as DVCQG's number."""
    return {
        "MaHoSo": record.dossier_code,
        "MaTTHC": record.procedure_code or "",
        "TenTTHC": record.procedure_name or "",
        "MaLinhVuc": record.field_code or "",
        "TenLinhVuc": record.field_name or "",
        "SoBienNhan": record.receipt_number or "",
        "ChuHoSo": record.owner_name or "",
        "LoaiDoiTuong": record.applicant_type or "",
        "MaDoiTuong": record.applicant_id or "",
        "ThongTinKhac": record.other_info or "",
        "Email": record.email or "",
        "Fax": record.fax or "",
        "SoDienThoai": record.phone or "",
        "TrichYeuHoSo": record.summary or "",
        "NgayTiepNhan": wire_date(record.received_at),
        "NgayHenTra": wire_date(record.due_at),
        "TrangThaiHoSo": str(int(record.status)),
        "NgayTra": wire_date(record.returned_at),
        "ThongTinTra": record.return_info or "",
        "HinhThuc": record.return_method or "",
        "NgayKetThucXuLy": wire_date(record.processing_ended_at),
        "DonViXuLy": record.handling_unit or "",
        "GhiChu": record.note or "",
        "TaiLieuNop": [
            {
                "TepDinhKemId": a.file_id or "",
                "TenTepDinhKem": a.name or "",
                "IsDeleted": "True" if a.deleted else "False",
                "MaThanhPhanHoSo": a.component_code or "",
                "DuongDanTaiTepTin": a.url or "",
            }
            for a in record.submitted_documents
        ],
        "DanhSachLePhi": [
            {
                "TenPhiLePhi": f.name or "",
                "MaPhiLePhi": f.code or "",
                "HinhThucThu": f.collection_method or "",
                "Gia": "" if f.amount_vnd is None else str(f.amount_vnd),
                "LoaiPhiLePhi": f.kind or "",
            }
            for f in record.fees
        ],
        "DanhSachTepDinhKemKhac": record.other_attachments,
        "DanhSachHoSoBoSung": record.supplements,
        "DanhSachGiayToKetQua": [
            {
                "TenGiayTo": d.name or "",
                "MaThanhPhanHoSo": d.component_code or "",
                "GiayToId": d.document_id or "",
                "DuongDanTepTinKetQua": d.url or "",
            }
            for d in record.result_documents
        ],
    }


def step_to_wire(step: ProcessingStep) -> dict[str, Any]:
    """A canonical step → a `CapNhatTienDoHoSoMC` item."""
    return {
        "MaHoSo": step.dossier_code,
        "NguoiXuLy": step.handler_name or "",
        "ChucDanh": step.handler_title or "",
        "ThoiDiemXuLy": wire_date(step.processed_at),
        "PhongBanXuLy": step.department or "",
        "NoiDungXuLy": step.content or "",
        "TrangThai": str(int(step.status)),
        "NgayBatDau": wire_date(step.started_at),
        "NgayKetThucTheoQuyDinh": wire_date(step.due_at),
    }
