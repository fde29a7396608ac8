"""Canonical procedure (thủ tục hành chính) model: one national catalogue record.

It covers the fields of a procedure record listed by seed `001_…` Mẫu số 3 and served by
DVCQG's `LayThuTuc`: name and code, type, levels, fields, process steps, channels with their
processing time and fees, required documents with original and copy counts, applicants,
agencies by role, receiving address, results, legal bases, conditions, online level, postal
service, online payment, SMS, one-stop and inter-agency flags. The wire record is mapped
into it once, by `connectors.national_portal.catalogue`.

Amounts are whole đồng (`amount_vnd`); processing times keep their unit (`TimeUnit`) because
working days and calendar days are not interchangeable. Lists keep the national order.

This module must never depend on a transport, the store or configuration.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Text = Annotated[str, Field(max_length=8000)]
ShortText = Annotated[str, Field(max_length=1000)]
Code = Annotated[str, Field(min_length=1, max_length=100)]


class Channel(IntEnum):
    """How a procedure can be carried out (KENH)."""

    in_person = 1  # Trực tiếp
    online = 2  # Trực tuyến
    postal = 3  # Dịch vụ bưu chính công ích


class TimeUnit(StrEnum):
    """Unit of a processing time limit (DONVITINH, mapped in mappings/)."""

    working_day = "working_day"  # Ngày làm việc
    day = "day"  # Ngày (calendar)
    hour = "hour"  # Giờ
    month = "month"  # Tháng
    year = "year"  # Năm


class OnlineLevel(StrEnum):
    """Level of the online public service (MUCDO)."""

    full = "full"  # Toàn trình: submitted, processed and returned online
    partial = "partial"  # Một phần
    none = "none"  # Not offered online


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedCode(_Model):
    code: Code
    name: ShortText = ""


class ProcedureFee(_Model):
    """A fee or charge (phí, lệ phí) due for one channel and time limit."""

    code: ShortText = ""
    amount_vnd: int = Field(ge=0, le=10**13)
    description: Text = ""


class TimeLimit(_Model):
    amount: Decimal = Field(ge=0, le=100_000)
    unit: TimeUnit
    description: Text = ""
    fees: list[ProcedureFee] = Field(default_factory=list)


class ChannelTerms(_Model):
    channel: Channel
    time_limits: list[TimeLimit] = Field(default_factory=list)


class ProcessCase(_Model):
    """The steps of the procedure for one case (trường hợp); `case` empty when there is one."""

    case: Text = ""
    steps: list[Text] = Field(default_factory=list)


class RequiredDocument(_Model):
    code: ShortText = ""
    name: Text
    form_name: ShortText = ""
    form_url: ShortText = ""
    originals: int = Field(0, ge=0, le=1000)
    copies: int = Field(0, ge=0, le=1000)


class DocumentGroup(_Model):
    case: Text = ""
    documents: list[RequiredDocument] = Field(default_factory=list)


class LegalBasis(_Model):
    number: ShortText
    title: Text = ""


class AgencyRef(_Model):
    code: ShortText = ""
    name: ShortText = ""


class Agencies(_Model):
    executing: list[AgencyRef] = Field(default_factory=list)  # Cơ quan thực hiện
    deciding: list[AgencyRef] = Field(default_factory=list)  # Cơ quan có thẩm quyền quyết định
    authorized: list[AgencyRef] = Field(default_factory=list)  # Cơ quan được ủy quyền
    coordinating: list[AgencyRef] = Field(default_factory=list)  # Cơ quan phối hợp


class Procedure(_Model):
    code: Code  # national code, e.g. 1.000494
    localized_code: Code  # national code + the province's agency code, 1.000494.000.00.00.H29
    name: Text
    kind: ShortText = ""  # Loại thủ tục
    levels: list[ShortText] = Field(default_factory=list)  # Cấp thực hiện
    fields: list[NamedCode] = Field(default_factory=list)  # Lĩnh vực
    process: list[ProcessCase] = Field(default_factory=list)  # Trình tự thực hiện
    channels: list[ChannelTerms] = Field(default_factory=list)  # Cách thức, thời hạn, phí
    documents: list[DocumentGroup] = Field(default_factory=list)  # Thành phần hồ sơ
    conditions: Text = ""  # Yêu cầu, điều kiện
    applicants: list[ShortText] = Field(default_factory=list)  # Đối tượng thực hiện
    results: list[NamedCode] = Field(default_factory=list)  # Kết quả thực hiện
    legal_bases: list[LegalBasis] = Field(default_factory=list)  # Căn cứ pháp lý
    agencies: Agencies = Agencies()
    receiving_address: Text = ""  # Địa chỉ tiếp nhận hồ sơ
    online_level: OnlineLevel = OnlineLevel.none
    postal: bool = False  # tiếp nhận, trả kết quả qua bưu chính công ích
    online_payment: bool = False
    sms: bool = False
    one_stop: bool = True  # áp dụng cơ chế một cửa
    inter_agency: bool = False  # một cửa liên thông
    published: bool = True  # TRANGTHAI: an unpublished procedure is locked in the hub
