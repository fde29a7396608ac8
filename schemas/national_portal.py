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


Scalar = Annotated[str | None, BeforeValidator(_to_str), Field(max_length=4000)]
RequiredScalar = Annotated[str, BeforeValidator(_to_str), Field(max_length=200)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireAttachment(_Wire):
    TepDinhKemId: Scalar = None
    TenTepDinhKem: Scalar = None
    IsDeleted: Scalar = None
    MaThanhPhanHoSo: Scalar = None
    DuongDanTaiTepTin: Scalar = None


class WireFee(_Wire):
    TenPhiLePhi: Scalar = None
    MaPhiLePhi: Scalar = None
    HinhThucThu: Scalar = None
    Gia: Scalar = None
    LoaiPhiLePhi: Scalar = None


class WireResultDocument(_Wire):
    TenGiayTo: Scalar = None
    MaThanhPhanHoSo: Scalar = None
    GiayToId: Scalar = None
    DuongDanTepTinKetQua: Scalar = None


class WireDossier(_Wire):
    MaHoSo: RequiredScalar
    TrangThaiHoSo: RequiredScalar
    MaTTHC: Scalar = None
    TenTTHC: Scalar = None
    MaLinhVuc: Scalar = None
    TenLinhVuc: Scalar = None
    SoBienNhan: Scalar = None
    ChuHoSo: Scalar = None
    LoaiDoiTuong: Scalar = None
    MaDoiTuong: Scalar = None
    ThongTinKhac: Scalar = None
    Email: Scalar = None
    Fax: Scalar = None
    SoDienThoai: Scalar = None
    TrichYeuHoSo: Scalar = None
    NgayTiepNhan: Scalar = None
    NgayHenTra: Scalar = None
    NgayTra: Scalar = None
    ThongTinTra: Scalar = None
    HinhThuc: Scalar = None
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
    NguoiXuLy: Scalar = None
    ChucDanh: Scalar = None
    PhongBanXuLy: Scalar = None
    NoiDungXuLy: Scalar = None
    NgayBatDau: Scalar = None
    NgayKetThucTheoQuyDinh: Scalar = None


class ItemResult(BaseModel):
    """One entry of a reply's `result` list."""

    MaHoSo: str | None
    error_code: str
    message: str
