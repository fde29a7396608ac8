"""Wire models of the DVCQG adapter protocol (see connectors/national_portal/PROTOCOL.md).

Field names are the protocol's own. Values arrive as strings or numbers depending on the
vendor, so scalars are coerced to strings here and interpreted (dates, codes, amounts) by
`connectors.national_portal.mapping`. Unknown fields are ignored, as DVCQG does, so a vendor's
extra fields never break the facade. These models must never travel past the mapping.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from schemas.text import PlainObject, Printable


def _to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    return value


def _amount_to_str(value: Any) -> Any:
    """An amount as text. A JSON number with a fraction is refused here: read as text,
    `1.001` would pass for Vietnamese thousands grouping (1,001 đồng)."""
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("is a number with a fraction; fees are whole đồng")
        return str(int(value))
    return _to_str(value)


# Limits match the canonical fields they feed (schemas/canonical.py), so a long value is
# refused here, by its wire name, and not later.
# The limit sits on the string inside the optional: on the optional itself, pydantic applies it
# to null too and fails with a TypeError instead of accepting the null.
Scalar = Annotated[Annotated[Printable, Field(max_length=4000)] | None, BeforeValidator(_to_str)]
Short = Annotated[Annotated[Printable, Field(max_length=500)] | None, BeforeValidator(_to_str)]
RequiredScalar = Annotated[Printable, BeforeValidator(_to_str), Field(max_length=200)]
Amount = Annotated[
    Annotated[Printable, Field(max_length=500)] | None, BeforeValidator(_amount_to_str)
]


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
    Gia: Amount = None
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
    DanhSachTepDinhKemKhac: list[PlainObject] = Field(default_factory=list, max_length=200)
    DanhSachHoSoBoSung: list[PlainObject] = Field(default_factory=list, max_length=200)
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


# -- the national procedure catalogue (LayDanhSachTTHC, LayThuTuc, LayDanhMuc…) -------------

Long = Annotated[Annotated[Printable, Field(max_length=8000)] | None, BeforeValidator(_to_str)]


def _items() -> Any:
    """A list field with the protocol's item limit (a fresh FieldInfo for each field)."""
    return Field(default_factory=list, max_length=500)


class WireCatalogueEntry(_Wire):
    """One entry of `LayDanhSachTTHC`."""

    MATTHC: Short = None
    TENTTHC: Long = None


class WireField(_Wire):
    MALINHVUC: Short = None
    TENLINHVUC: Short = None


class WireAgency(_Wire):
    MADONVI: Short = None
    TENDONVI: Short = None
    CAPDONVI: Short = None


class WireLevel(_Wire):
    TENCAP: Short = None


class WireStepText(_Wire):
    TENTRINHTU: Long = None


class WireProcessCase(_Wire):
    TRUONGHOP: Long = None
    TRINHTU: list[WireStepText] = _items()


class WireProcedureFee(_Wire):
    MAPHILEPHI: Short = None
    SOTIEN: Short = None
    DONVI: Short = None
    MOTA: Long = None


class WireTimeLimit(_Wire):
    THOIGIANGIAIQUYET: Short = None
    DONVITINH: Short = None
    MOTA: Long = None
    PHILEPHI: list[WireProcedureFee] = _items()


class WireChannel(_Wire):
    KENH: Short = None
    THOIGIAN: list[WireTimeLimit] = _items()


class WireDocument(_Wire):
    MAGIAYTO: Short = None
    TENGIAYTO: Long = None
    TENMAUDON: Short = None
    URL: Short = None
    SOBANCHINH: Short = None
    SOBANSAO: Short = None


class WireDocumentGroup(_Wire):
    TRUONGHOP: Long = None
    GIAYTO: list[WireDocument] = _items()


class WireApplicant(_Wire):
    TENDOITUONG: Short = None


class WireResult(_Wire):
    MAKETQUA: Short = None
    TENKETQUA: Short = None


class WireLegalBasis(_Wire):
    SOVANBAN: Short = None
    TENVANBAN: Long = None


class WireProcedure(_Wire):
    """One procedure record of `LayThuTuc` (PROTOCOL.md, "National procedure catalogue")."""

    MATTHC: Short = None
    TENTTHC: Long = None
    LOAITTHC: Short = None
    CAPTHUCHIEN: list[WireLevel] = _items()
    LINHVUCTHUCHIEN: list[WireField] = _items()
    TRINHTUTHUCHIEN: list[WireProcessCase] = _items()
    CACHTHUCTHUCHIEN: list[WireChannel] = _items()
    THANHPHANHOSO: list[WireDocumentGroup] = _items()
    YEUCAU: Long = None
    DOITUONGTHUCHIEN: list[WireApplicant] = _items()
    KETQUATHUCHIEN: list[WireResult] = _items()
    CANCUPHAPLY: list[WireLegalBasis] = _items()
    COQUANTHUCHIEN: list[WireAgency] = _items()
    COQUANCOTHAMQUYEN: list[WireAgency] = _items()
    COQUANDUOCUYQUYEN: list[WireAgency] = _items()
    COQUANPHOIHOP: list[WireAgency] = _items()
    DIACHITIEPNHAN: Long = None
    MUCDO: Short = None
    COBUUCHINH: Short = None
    THANHTOANTRUCTUYEN: Short = None
    GUISMS: Short = None
    MOTCUA: Short = None
    LIENTHONG: Short = None
    TRANGTHAI: Short = None
