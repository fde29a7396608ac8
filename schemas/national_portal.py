"""Wire models of the DVCQG adapter protocol (see connectors/national_portal/PROTOCOL.md).

Field names are the protocol's own. Values arrive as strings or numbers depending on the
vendor, so scalars are coerced to strings here and interpreted (dates, codes, amounts) by
`connectors.national_portal.mapping`. Unknown fields are ignored, as DVCQG does, so a vendor's
extra fields never break the facade. These models must never travel past the mapping.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    return value


# Limits match the canonical fields they feed (schemas/canonical.py), so a long value is
# refused here, by its wire name, and not later.
Scalar = Annotated[str | None, BeforeValidator(_to_str), Field(max_length=4000)]
Short = Annotated[str | None, BeforeValidator(_to_str), Field(max_length=500)]
RequiredScalar = Annotated[str, BeforeValidator(_to_str), Field(max_length=200)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireAttachment(_Wire):
    TepDinhKemId: Short = None
    TenTepDinhKem: Short = None
    IsDeleted: Short = None
    MaThanhPhanHoSo: Short = None
    DuongDanTaiTepTin: Scalar = None


class WireFee(_Wire):
    TenPhiLePhi: Short = None
    MaPhiLePhi: Short = None
    HinhThucThu: Short = None
    Gia: Short = None
    LoaiPhiLePhi: Short = None


class WireResultDocument(_Wire):
    TenGiayTo: Short = None
    MaThanhPhanHoSo: Short = None
    GiayToId: Short = None
    DuongDanTepTinKetQua: Scalar = None


class WireDossier(_Wire):
    MaHoSo: RequiredScalar
    TrangThaiHoSo: RequiredScalar
    MaTTHC: Short = None
    TenTTHC: Scalar = None
    MaLinhVuc: Short = None
    TenLinhVuc: Scalar = None
    SoBienNhan: Short = None
    ChuHoSo: Short = None
    LoaiDoiTuong: Short = None
    MaDoiTuong: Short = None
    ThongTinKhac: Scalar = None
    Email: Short = None
    Fax: Short = None
    SoDienThoai: Short = None
    TrichYeuHoSo: Scalar = None
    NgayTiepNhan: Scalar = None
    NgayHenTra: Scalar = None
    NgayTra: Scalar = None
    ThongTinTra: Scalar = None
    HinhThuc: Short = None
    NgayKetThucXuLy: Scalar = None
    DonViXuLy: Scalar = None
    GhiChu: Scalar = None
    TaiLieuNop: list[WireAttachment] = Field(default_factory=list, max_length=200)
    DanhSachLePhi: list[WireFee] = Field(default_factory=list, max_length=200)
    DanhSachTepDinhKemKhac: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    DanhSachHoSoBoSung: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    DanhSachGiayToKetQua: list[WireResultDocument] = Field(default_factory=list, max_length=200)


class WireStep(_Wire):
    MaHoSo: RequiredScalar
    TrangThai: RequiredScalar
    ThoiDiemXuLy: RequiredScalar
    NguoiXuLy: Short = None
    ChucDanh: Short = None
    PhongBanXuLy: Scalar = None
    NoiDungXuLy: Scalar = None
    NgayBatDau: Scalar = None
    NgayKetThucTheoQuyDinh: Scalar = None


class ItemResult(BaseModel):
    """One entry of a reply's `result` list."""

    MaHoSo: str | None
    error_code: str
    message: str
