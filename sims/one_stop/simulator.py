"""A provincial one-stop system in miniature: it generates dossiers and pushes them over DVCQG.

`OneStopTraffic.plan()` invents realistic dossiers (Vietnamese procedures, owners, documents,
fees, multi-step histories over all ten DVCQG statuses, dates in the recent past) from a seed;
`run()` sends them to any endpoint that speaks the DVCQG adapter protocol (the hub's facade,
or the DVCQG simulator) the way a vendor's adapter does: log in, push each step's dossier
record then the step itself, in order per dossier, batched across dossiers, logging in again
on HTTP 401 and repeating a call until it is answered. The `TrafficReport` says what the
receiver acknowledged, so a test can compare it with what arrived at the far end.

It plays an external system, so it must never import hub code, never peek at the receiver's
internals, and never send a dossier's next step before the previous one was acknowledged.
Procedure codes and names are plausible, not an official catalogue; people are invented.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import json
import signal
import time
import unicodedata
import uuid
from collections import Counter, deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from random import Random
from typing import Any, Literal, NamedTuple, TypeVar

import aiohttp

# The key is DVCQG's: the expected state is judged the way the portal stores steps.
from sims.national_portal.simulator import StepKey, step_key

T = TypeVar("T")
Kind = Literal["new", "update", "step"]
Record = dict[str, Any]

# Vietnam has kept UTC+7 without daylight saving since 1975; no tz database needed.
VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
WIRE_DATE = "%Y%m%d%H%M%S"
OK, PARTIAL, TRY_LATER, ALREADY_HELD = "00", "02", "99", "05"
INITIAL_BACKOFF_S, MAX_BACKOFF_S = 0.2, 2.0
SERVICE: dict[Kind, str] = {
    "new": "DongBoHoSoMC",
    "update": "DongBoHoSoMC",
    "step": "CapNhatTienDoHoSoMC",
}

# -- reference data -----------------------------------------------------------------------------


class Procedure(NamedTuple):
    code: str
    name: str
    field_code: str
    field_name: str
    unit: str
    department: str
    days: int
    documents: tuple[str, ...]
    fees: tuple[tuple[str, str, int, str], ...]  # name, code, amount in VND, 1 phí / 2 lệ phí
    results: tuple[str, ...]


UNITS = {
    "00": "Văn phòng Ủy ban nhân dân tỉnh",
    "20": "Sở Tư pháp",
    "21": "Sở Xây dựng",
    "22": "Sở Tài nguyên và Môi trường",
    "23": "Sở Kế hoạch và Đầu tư",
    "24": "Sở Giao thông vận tải",
    "25": "Sở Y tế",
    "26": "Sở Công Thương",
    "27": "Sở Lao động - Thương binh và Xã hội",
}

_HT, _TP = ("HOTICH", "Hộ tịch"), "Phòng Hành chính tư pháp"
PROCEDURES: tuple[Procedure, ...] = (
    Procedure("1.001193", "Đăng ký khai sinh", *_HT, "20", _TP, 1,
              ("Tờ khai đăng ký khai sinh", "Giấy chứng sinh"), (),
              ("Giấy khai sinh (bản chính)",)),
    Procedure("1.000894", "Đăng ký kết hôn", *_HT, "20", _TP, 3,
              ("Tờ khai đăng ký kết hôn", "Giấy xác nhận tình trạng hôn nhân"), (),
              ("Giấy chứng nhận kết hôn",)),
    Procedure("1.000656", "Đăng ký khai tử", *_HT, "20", _TP, 1,
              ("Tờ khai đăng ký khai tử", "Giấy báo tử"), (), ("Trích lục khai tử",)),
    Procedure("1.004873", "Cấp Giấy xác nhận tình trạng hôn nhân", *_HT, "20", _TP, 3,
              ("Tờ khai cấp Giấy xác nhận tình trạng hôn nhân",),
              (("Lệ phí cấp Giấy xác nhận tình trạng hôn nhân", "LP-HT05", 3000, "2"),),
              ("Giấy xác nhận tình trạng hôn nhân",)),
    Procedure("1.001612", "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam", "LLTP",
              "Lý lịch tư pháp", "20", _TP, 10,
              ("Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp", "Bản chụp Căn cước công dân"),
              (("Phí cung cấp thông tin lý lịch tư pháp", "PHI-LLTP", 200000, "1"),),
              ("Phiếu lý lịch tư pháp số 1",)),
    Procedure("1.000494", "Chứng thực bản sao từ bản chính giấy tờ, văn bản", "CHUNGTHUC",
              "Chứng thực", "20", _TP, 1, ("Bản chính giấy tờ", "Bản sao cần chứng thực"),
              (("Phí chứng thực bản sao từ bản chính", "PHI-CT01", 10000, "1"),),
              ("Bản sao có chứng thực",)),
    Procedure("1.009972", "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ", "XAYDUNG",
              "Hoạt động xây dựng", "21", "Phòng Quản lý hoạt động xây dựng", 15,
              ("Đơn đề nghị cấp giấy phép xây dựng",
               "Bản sao giấy tờ chứng minh quyền sử dụng đất", "Bản vẽ thiết kế xây dựng"),
              (("Lệ phí cấp giấy phép xây dựng", "LP-XD01", 75000, "2"),),
              ("Giấy phép xây dựng",)),
    Procedure("1.004227", "Cấp Giấy chứng nhận quyền sử dụng đất lần đầu", "DATDAI",
              "Đất đai", "22", "Văn phòng Đăng ký đất đai", 30,
              ("Đơn đăng ký, cấp Giấy chứng nhận", "Giấy tờ về quyền sử dụng đất",
               "Sơ đồ thửa đất"),
              (("Lệ phí cấp Giấy chứng nhận", "LP-DD01", 100000, "2"),
               ("Phí thẩm định hồ sơ cấp Giấy chứng nhận", "PHI-DD02", 500000, "1")),
              ("Giấy chứng nhận quyền sử dụng đất",)),
    Procedure("1.003003", "Đăng ký biến động quyền sử dụng đất", "DATDAI", "Đất đai", "22",
              "Văn phòng Đăng ký đất đai", 10,
              ("Đơn đăng ký biến động đất đai", "Bản gốc Giấy chứng nhận đã cấp",
               "Hợp đồng chuyển nhượng quyền sử dụng đất"),
              (("Lệ phí đăng ký biến động đất đai", "LP-DD03", 50000, "2"),),
              ("Giấy chứng nhận đã xác nhận nội dung biến động",)),
    Procedure("2.000046", "Đăng ký thành lập hộ kinh doanh", "HKD",
              "Thành lập và hoạt động của hộ kinh doanh", "23", "Phòng Đăng ký kinh doanh", 3,
              ("Giấy đề nghị đăng ký hộ kinh doanh", "Bản sao giấy tờ pháp lý của cá nhân"),
              (("Lệ phí đăng ký hộ kinh doanh", "LP-KD01", 100000, "2"),),
              ("Giấy chứng nhận đăng ký hộ kinh doanh",)),
    Procedure("1.001610", "Đăng ký thành lập doanh nghiệp tư nhân", "DN",
              "Thành lập và hoạt động của doanh nghiệp", "23", "Phòng Đăng ký kinh doanh", 3,
              ("Giấy đề nghị đăng ký doanh nghiệp",
               "Bản sao giấy tờ pháp lý của chủ doanh nghiệp"),
              (("Lệ phí đăng ký doanh nghiệp", "LP-DN01", 50000, "2"),
               ("Phí công bố nội dung đăng ký doanh nghiệp", "PHI-DN02", 100000, "1")),
              ("Giấy chứng nhận đăng ký doanh nghiệp",)),
    Procedure("1.002809", "Đổi giấy phép lái xe do ngành Giao thông vận tải cấp", "DUONGBO",
              "Đường bộ", "24", "Phòng Quản lý phương tiện và người lái", 5,
              ("Đơn đề nghị đổi giấy phép lái xe", "Giấy khám sức khỏe của người lái xe",
               "Bản sao giấy phép lái xe"),
              (("Lệ phí cấp giấy phép lái xe", "LP-GT01", 135000, "2"),),
              ("Giấy phép lái xe",)),
    Procedure("1.001776", "Cấp Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm", "ATTP",
              "An toàn thực phẩm", "25", "Phòng Nghiệp vụ Y", 20,
              ("Đơn đề nghị cấp Giấy chứng nhận", "Bản thuyết minh về cơ sở vật chất",
               "Giấy xác nhận đủ sức khỏe của chủ cơ sở"),
              (("Phí thẩm định cơ sở đủ điều kiện an toàn thực phẩm", "PHI-YT01", 500000, "1"),),
              ("Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm",)),
    Procedure("2.000633", "Cấp Giấy phép bán lẻ sản phẩm rượu", "LUUTHONG",
              "Lưu thông hàng hóa trong nước", "26", "Phòng Quản lý thương mại", 10,
              ("Đơn đề nghị cấp Giấy phép bán lẻ sản phẩm rượu",
               "Bản sao Giấy chứng nhận đăng ký kinh doanh"),
              (("Phí thẩm định cấp giấy phép kinh doanh", "PHI-CT02", 1200000, "1"),),
              ("Giấy phép bán lẻ sản phẩm rượu",)),
    Procedure("1.001758", "Giải quyết trợ cấp xã hội hằng tháng", "BTXH", "Bảo trợ xã hội",
              "27", "Phòng Bảo trợ xã hội", 12,
              ("Tờ khai đề nghị trợ giúp xã hội", "Bản sao Giấy xác nhận khuyết tật"), (),
              ("Quyết định trợ cấp xã hội hằng tháng",)),
)  # fmt: skip

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
          "Đỗ", "Hồ", "Ngô", "Dương", "Lý")  # fmt: skip
MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Thanh", "Ngọc", "Quang", "Xuân", "Thu", "Gia",
          "Hoài", "Bảo", "Công", "Kim")  # fmt: skip
GIVEN = ("An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Hương",
         "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Phương", "Quân", "Sơn", "Tâm",
         "Thảo", "Trang", "Tuấn", "Việt", "Yến")  # fmt: skip

# Typical histories; the first six together cover every status 1..10.
COVERING_PATHS: tuple[tuple[int, ...], ...] = (
    (1, 2, 4, 9, 10),
    (2, 4, 5, 4, 9, 10),
    (2, 4, 6, 4, 9, 10),
    (1, 3),
    (2, 4, 7),
    (2, 4, 8),
)
WEIGHTED_PATHS: tuple[tuple[tuple[int, ...], int], ...] = (
    ((2, 4, 9, 10), 8),
    ((1, 2, 4, 9, 10), 5),
    ((2, 4, 5, 4, 9, 10), 3),
    ((2, 4, 6, 4, 9, 10), 3),
    ((1, 2, 4, 5, 4, 6, 4, 9, 10), 1),
    ((1, 3), 1),
    ((2, 3), 1),
    ((2, 4, 7), 1),
    ((2, 4, 8), 1),
    ((2, 4, 9), 2),
    ((2, 4), 2),
)
# Seconds from the previous step to a step reaching this status (min, max).
GAP_S = {
    2: (600, 86_400),
    3: (600, 86_400),
    4: (1_800, 172_800),
    5: (86_400, 259_200),
    6: (14_400, 172_800),
    7: (86_400, 259_200),
    8: (86_400, 259_200),
    9: (86_400, 432_000),
    10: (3_600, 259_200),
}
DESK = ("Công chức tiếp nhận hồ sơ", "Bộ phận Tiếp nhận và Trả kết quả")
STEP_TEXT = {
    1: "Công dân nộp hồ sơ trực tuyến trên Cổng Dịch vụ công",
    2: "Tiếp nhận hồ sơ, chuyển phòng chuyên môn giải quyết",
    3: "Không tiếp nhận: hồ sơ thiếu thành phần {doc}",
    4: "Chuyển chuyên viên thụ lý, thẩm định hồ sơ",
    5: "Yêu cầu công dân bổ sung: {doc}",
    6: "Yêu cầu thực hiện nghĩa vụ tài chính: {fee} {amount} đồng",
    7: "Công dân có đơn đề nghị rút hồ sơ",
    8: "Dừng xử lý: hồ sơ không đủ điều kiện giải quyết theo quy định",
    9: "Lãnh đạo đã ký duyệt kết quả, chuyển Bộ phận Một cửa",
    10: "Đã trả kết quả cho công dân",
}
RESUMED_TEXT = {
    5: "Công dân đã bổ sung hồ sơ, tiếp tục giải quyết",
    6: "Công dân đã hoàn thành nghĩa vụ tài chính, tiếp tục giải quyết",
}
NOTE = {
    1: "Hồ sơ nộp trực tuyến, chờ tiếp nhận",
    3: "Hồ sơ không được tiếp nhận",
    5: "Chờ công dân bổ sung hồ sơ",
    6: "Chờ công dân nộp phí, lệ phí",
    7: "Công dân rút hồ sơ",
    8: "Dừng xử lý hồ sơ",
}
RETURN_INFO = (
    "Trả kết quả trực tiếp tại Bộ phận Tiếp nhận và Trả kết quả",
    "Trả kết quả qua dịch vụ bưu chính công ích",
)
# Allowed time per stage, for a step's NgayKetThucTheoQuyDinh (None: the procedure's limit).
STAGE_DAYS: dict[int, int | None] = {1: 1, 2: 1, 3: 1, 4: None, 5: 30, 6: 5, 7: 1, 8: None,
                                     9: None, 10: 1}  # fmt: skip
ENDED = frozenset({3, 7, 8, 9})


def wire_date(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime(WIRE_DATE)


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in plain if not unicodedata.combining(c)).lower()


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


# -- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DossierScript:
    """One dossier's life: at each step, the full record at that status and the step."""

    code: str
    pairs: list[tuple[Record, Record]]

    @property
    def statuses(self) -> list[int]:
        return [int(step["TrangThai"]) for _, step in self.pairs]


@dataclass(frozen=True)
class _Case:
    code: str
    procedure: Procedure
    unit_code: str
    path: tuple[int, ...]
    times: list[datetime]
    owner: str
    staff: dict[str, str]
    base: Record


class _Planner:
    def __init__(self, madonvi: str, seed: int, now: datetime) -> None:
        self.rng = Random(seed)
        self.seed = seed
        self.now = now.astimezone(VN_TZ).replace(microsecond=0)
        parts = madonvi.split(".")
        # Dossier codes carry the receiving unit's code; keep the sender's province.
        self.province = ".".join(parts[2:4]) if len(parts) == 4 else "41.H41"

    def plan(self, n: int) -> list[DossierScript]:
        return [self._script(i, n) for i in range(n)]

    def _script(self, i: int, n: int) -> DossierScript:
        case = self._case(i, n)
        pairs = [(self._record(case, k), self._step(case, k)) for k in range(len(case.path))]
        return DossierScript(case.code, pairs)

    def _path(self, i: int) -> tuple[int, ...]:
        if i < len(COVERING_PATHS):
            return COVERING_PATHS[(i + self.seed) % len(COVERING_PATHS)]
        paths = [path for path, _ in WEIGHTED_PATHS]
        return self.rng.choices(paths, [weight for _, weight in WEIGHTED_PATHS])[0]

    def _case(self, i: int, n: int) -> _Case:
        rng = self.rng
        path = self._path(i)
        choices = [p for p in PROCEDURES if p.fees] if 6 in path else list(PROCEDURES)
        procedure = rng.choice(choices)
        times = self._timeline(path)
        unit_code = f"000.{procedure.unit}.{self.province}"
        # Unique within a plan, and across seeds while seed * n stays below 9999.
        sequence = (self.seed * n + i) % 9999 + 1
        code = f"{unit_code}-{times[0]:%y%m%d}-{sequence:04d}"
        owner = self._person()
        staff = {"desk": self._person(), "expert": self._person(), "head": self._person()}
        case = _Case(code, procedure, unit_code, path, times, owner, staff, {})
        return dataclasses.replace(case, base=self._base(case))

    def _timeline(self, path: tuple[int, ...]) -> list[datetime]:
        gaps = [0] + [self.rng.randint(*GAP_S[s]) for s in path[1:]]
        start = self.now - timedelta(seconds=sum(gaps) + self.rng.randint(300, 432_000))
        times, moment = [], start
        for gap in gaps:
            moment += timedelta(seconds=max(gap, 1))
            times.append(moment)
        return times

    def _person(self) -> str:
        rng = self.rng
        return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"

    def _citizen_id(self) -> str:
        born = self.rng.randint(1950, 2005)
        century_sex = (0 if born < 2000 else 2) + self.rng.randint(0, 1)
        province = self.province.split(".")[0]
        return f"0{province}{century_sex}{born % 100:02d}{self.rng.randint(0, 999_999):06d}"

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _base(self, case: _Case) -> Record:
        rng, proc = self.rng, case.procedure
        family, *_, given = case.owner.split()
        received = case.times[0]
        online = case.path[0] == 1
        return {
            "MaHoSo": case.code,
            "MaTTHC": proc.code,
            "TenTTHC": proc.name,
            "MaLinhVuc": proc.field_code,
            "TenLinhVuc": proc.field_name,
            "SoBienNhan": case.code.split("-", 1)[1],
            "ChuHoSo": case.owner,
            "LoaiDoiTuong": "1",
            "MaDoiTuong": self._citizen_id(),
            "ThongTinKhac": "",
            "Email": f"{_ascii(given)}.{_ascii(family)}{rng.randint(1, 999)}@example.com",
            "Fax": "",
            "SoDienThoai": f"09{rng.randint(0, 99_999_999):08d}",
            "TrichYeuHoSo": f"{proc.name} cho ông/bà {case.owner}",
            "NgayTiepNhan": wire_date(received),
            "NgayHenTra": wire_date(received + timedelta(days=proc.days + 1)),
            "TrangThaiHoSo": str(case.path[0]),
            "NgayTra": "",
            "ThongTinTra": "",
            "HinhThuc": "1" if rng.random() < 0.25 else "0",
            "NgayKetThucXuLy": "",
            "DonViXuLy": UNITS[proc.unit],
            "GhiChu": "",
            "TaiLieuNop": [self._document(name, n) for n, name in enumerate(proc.documents, 1)],
            "DanhSachLePhi": [_fee(fee, online) for fee in proc.fees],
            "DanhSachTepDinhKemKhac": [],
            "DanhSachHoSoBoSung": [],
            "DanhSachGiayToKetQua": [],
        }

    def _document(self, name: str, number: int) -> Record:
        file_id = self._uuid()
        return {
            "TepDinhKemId": file_id,
            "TenTepDinhKem": f"{name}.pdf",
            "IsDeleted": "False",
            "MaThanhPhanHoSo": f"TP{number}",
            "DuongDanTaiTepTin": f"https://motcua.example/tai-lieu/{file_id}.pdf",
        }

    def _results(self, case: _Case) -> list[Record]:
        out = []
        for number, name in enumerate(case.procedure.results, 1):
            doc_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case.code}/KQ{number}"))
            out.append(
                {
                    "TenGiayTo": name,
                    "MaThanhPhanHoSo": f"KQ{number}",
                    "GiayToId": doc_id,
                    "DuongDanTepTinKetQua": f"https://motcua.example/ket-qua/{doc_id}.pdf",
                }
            )
        return out

    def _record(self, case: _Case, k: int) -> Record:
        status, reached = case.path[k], case.path[: k + 1]
        record = copy.deepcopy(case.base)
        ended = [j for j in range(k + 1) if case.path[j] in ENDED]
        finished = status in (9, 10)
        record.update(
            TrangThaiHoSo=str(status),
            NgayTra=wire_date(case.times[k]) if status == 10 else "",
            ThongTinTra=RETURN_INFO[int(record["HinhThuc"])] if status == 10 else "",
            NgayKetThucXuLy=wire_date(case.times[ended[-1]]) if ended else "",
            GhiChu=NOTE.get(status, ""),
            DanhSachGiayToKetQua=self._results(case) if finished and 9 in reached else [],
        )
        return record

    def _step(self, case: _Case, k: int) -> Record:
        status = case.path[k]
        handler, title, department = self._handler(case, status)
        begun = case.times[k - 1] if k else case.times[k]
        days = STAGE_DAYS[status] or case.procedure.days
        return {
            "MaHoSo": case.code,
            "NguoiXuLy": handler,
            "ChucDanh": title,
            "ThoiDiemXuLy": wire_date(case.times[k]),
            "PhongBanXuLy": department,
            "NoiDungXuLy": _content(case, k),
            "TrangThai": str(status),
            "NgayBatDau": wire_date(begun),
            "NgayKetThucTheoQuyDinh": wire_date(begun + timedelta(days=days)),
        }

    def _handler(self, case: _Case, status: int) -> tuple[str, str, str]:
        if status == 1:
            return case.owner, "Công dân", "Cổng Dịch vụ công"
        if status in (2, 3, 7, 10):
            return case.staff["desk"], *DESK
        if status == 9:
            return case.staff["head"], "Trưởng phòng", case.procedure.department
        return case.staff["expert"], "Chuyên viên", case.procedure.department


def _fee(fee: tuple[str, str, int, str], online: bool) -> Record:
    name, code, amount, kind = fee
    return {
        "TenPhiLePhi": name,
        "MaPhiLePhi": code,
        "HinhThucThu": "2" if online else "1",
        "Gia": str(amount),
        "LoaiPhiLePhi": kind,
    }


def _content(case: _Case, k: int) -> str:
    status, previous = case.path[k], case.path[k - 1] if k else 0
    if status == 4 and previous in RESUMED_TEXT:
        return RESUMED_TEXT[previous]
    docs, fees = case.procedure.documents, case.procedure.fees
    fee_name, amount = (fees[0][0], _vnd(fees[0][2])) if fees else ("", "0")
    return STEP_TEXT[status].format(doc=docs[-1].lower(), fee=fee_name.lower(), amount=amount)


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    kind: Kind
    dossier_code: str
    code: str
    message: str
    item: Record


@dataclass
class ExpectedState:
    """What the receiver must hold: newest acknowledged record per dossier, and the steps."""

    records: dict[str, Record]
    steps: set[StepKey]
    steps_by_dossier: dict[str, list[Record]]


@dataclass
class TrafficReport:
    acknowledged_records: list[Record] = field(default_factory=list)
    acknowledged_steps: list[Record] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    in_doubt: list[Record] = field(default_factory=list)
    calls: int = 0
    retries: int = 0
    logins: int = 0
    relogins: int = 0
    completed: bool = False
    elapsed_s: float = 0.0
    last_error: str = ""

    def expected_state(self) -> ExpectedState:
        records = {str(r["MaHoSo"]): r for r in self.acknowledged_records}
        by_dossier: dict[str, list[Record]] = {}
        for step in self.acknowledged_steps:
            by_dossier.setdefault(str(step["MaHoSo"]), []).append(step)
        steps = {step_key(s) for s in self.acknowledged_steps}
        return ExpectedState(records, steps, by_dossier)

    def summary(self) -> str:
        codes = Counter(r.code for r in self.refused)
        refused = ", ".join(f"{c}×{n}" for c, n in sorted(codes.items())) or "none"
        state = "completed" if self.completed else "stopped early"
        return (
            f"{state} in {self.elapsed_s:.1f}s: "
            f"{len({r['MaHoSo'] for r in self.acknowledged_records})} dossiers, "
            f"{len(self.acknowledged_records)} records and {len(self.acknowledged_steps)} steps "
            f"acknowledged; refused: {refused}; {self.calls} calls, {self.retries} retries, "
            f"{self.logins} logins ({self.relogins} after HTTP 401)"
        )


# -- sending ------------------------------------------------------------------------------------


class LoginRefused(RuntimeError):
    """The receiver refused our credentials: repeating will not help."""


class _Stopped(Exception):
    pass


class _Transient(Exception):
    pass


@dataclass(frozen=True)
class _Again:
    wait: bool


@dataclass(frozen=True)
class _Item:
    kind: Kind
    payload: Record

    @property
    def dossier_code(self) -> str:
        return str(self.payload["MaHoSo"])


Verdicts = list[tuple[str, str]]
Batch = list[tuple[int, _Item]]


def _items(script: DossierScript) -> deque[_Item]:
    out: deque[_Item] = deque()
    for k, (record, step) in enumerate(script.pairs):
        out.append(_Item("update" if k else "new", record))
        out.append(_Item("step", step))
    return out


def _next_batch(queues: Sequence[deque[_Item]], size: int) -> Batch:
    heads = [(i, q[0]) for i, q in enumerate(queues) if q]
    if not heads:
        return []
    kinds = Counter(item.kind for _, item in heads)
    kind = max(kinds, key=lambda k: kinds[k])
    return [(i, item) for i, item in heads if item.kind == kind][:size]


def _verdicts(reply: dict[str, Any], code: str, n: int) -> Verdicts | None:
    results = reply.get("result")
    if code == OK and not isinstance(results, list):
        return [(OK, "")] * n
    if not isinstance(results, list) or len(results) != n:
        return None
    return [
        (str(r.get("error_code", "")), str(r.get("message", "")))
        if isinstance(r, dict)
        else ("", "")
        for r in results
    ]


class _Run:
    """One `run()`: the session, the pacing and the retry loop."""

    def __init__(
        self,
        traffic: OneStopTraffic,
        http: aiohttp.ClientSession,
        stop: asyncio.Event,
        rate_per_s: float | None,
    ) -> None:
        self.t = traffic
        self.http = http
        self.stop = stop
        self.rate = rate_per_s if rate_per_s and rate_per_s > 0 else None
        self.report = TrafficReport()
        self.session: str | None = None
        self.expired_in_row = 0
        self.next_send = time.monotonic()
        self.in_flight: Batch = []

    async def drive(self, scripts: Sequence[DossierScript]) -> None:
        queues = [_items(script) for script in scripts]
        while not self.stop.is_set():
            batch = _next_batch(queues, self.t.batch_size)
            if not batch:
                self.report.completed = True
                return
            await self._pace(len(batch))
            self.in_flight = batch
            verdicts = await self._send(batch)
            self.in_flight = []
            self._settle(queues, batch, verdicts)

    def _settle(self, queues: list[deque[_Item]], batch: Batch, verdicts: Verdicts) -> None:
        for (i, item), (code, message) in zip(batch, verdicts, strict=True):
            if code == OK:
                acked = self.report.acknowledged_steps
                if item.kind != "step":
                    acked = self.report.acknowledged_records
                acked.append(item.payload)
                queues[i].popleft()
                continue
            # A refused item needs a person at the one-stop; its later steps would only
            # be refused too, so the dossier stops here.
            self.report.refused.append(
                Refusal(item.kind, item.dossier_code, code, message, item.payload)
            )
            self.report.abandoned.append(item.dossier_code)
            queues[i].clear()

    async def _send(self, batch: Batch) -> Verdicts:
        kind = batch[0][1].kind
        body: Record = {"service": SERVICE[kind], "madonvi": self.t.madonvi}
        if kind != "step":
            body["isUpdating"] = "True" if kind == "update" else "False"
        body["data"] = [item.payload for _, item in batch]
        backoff, attempts = INITIAL_BACKOFF_S, 0
        while True:
            attempts += 1
            outcome = await self._attempt(body, len(batch))
            if not isinstance(outcome, _Again):
                return self._forgive(outcome, kind, attempts > 1)
            self.report.retries += 1
            if outcome.wait:
                await self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _forgive(self, verdicts: Verdicts, kind: Kind, repeated: bool) -> Verdicts:
        if kind != "new" or not repeated:
            return verdicts
        # "Already held" after an unanswered attempt means that attempt landed.
        return [
            (OK, "held since an earlier attempt") if code == ALREADY_HELD else (code, message)
            for code, message in verdicts
        ]

    async def _attempt(self, body: Record, n: int) -> Verdicts | _Again:
        try:
            session = await self._session()
            self.report.calls += 1
            status, reply = await self._post({**body, "session": session})
        except _Transient as exc:
            self.report.last_error = str(exc)
            return _Again(wait=True)
        if status == 401 or (isinstance(reply, dict) and str(reply.get("error_code")) == "401"):
            self.session = None
            self.report.relogins += 1
            self.expired_in_row += 1
            # Log in again at once; only a receiver that keeps refusing fresh sessions waits.
            return _Again(wait=self.expired_in_row > 1)
        self.expired_in_row = 0
        return self._judge(status, reply, n)

    def _judge(self, status: int, reply: Any, n: int) -> Verdicts | _Again:
        if status >= 500 or status == 429 or not isinstance(reply, dict):
            self.report.last_error = f"HTTP {status}"
            return _Again(wait=True)
        code = str(reply.get("error_code", ""))
        message = str(reply.get("message", ""))
        if code == TRY_LATER:
            self.report.last_error = f"{code} {message}"
            return _Again(wait=True)
        if code in (OK, PARTIAL):
            verdicts = _verdicts(reply, code, n)
            if verdicts is None:
                self.report.last_error = "reply without a result per item"
                return _Again(wait=True)
            return verdicts
        # The call as a whole was refused (01, 03, …): repeating it will not change that.
        return [(code or f"HTTP {status}", message)] * n

    async def _session(self) -> str:
        if self.session is None:
            self.session = await self._login()
        return self.session

    async def _login(self) -> str:
        status, reply = await self._post({"username": self.t.username, "password": self.t.password})
        body = reply if isinstance(reply, dict) else {}
        token = body.get("session")
        if str(body.get("error_code")) == "0" and isinstance(token, str):
            self.report.logins += 1
            return token
        if status in (401, 403) or str(body.get("error_code")) == "-1":
            raise LoginRefused(f"{self.t.url} refused the login of {self.t.username!r}")
        raise _Transient(f"login failed: HTTP {status}")

    async def _post(self, payload: Record) -> tuple[int, Any]:
        return await self._unless_stopped(self._exchange(payload))

    async def _exchange(self, payload: Record) -> tuple[int, Any]:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        timeout = aiohttp.ClientTimeout(total=self.t.request_timeout_s)
        try:
            async with self.http.post(
                self.t.url, data=data, headers=headers, timeout=timeout
            ) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        try:
            return status, json.loads(text)
        except ValueError:
            return status, None

    async def _unless_stopped(self, coro: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(coro)
        waiter = asyncio.ensure_future(self.stop.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task not in done:
            task.cancel()
            await asyncio.wait({task})
            raise _Stopped
        return task.result()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        if self.stop.is_set():
            raise _Stopped

    async def _pace(self, n: int) -> None:
        if self.rate is None:
            return
        now = time.monotonic()
        if self.next_send > now:
            await self._pause(self.next_send - now)
        self.next_send = max(self.next_send, now) + n / self.rate


class OneStopTraffic:
    """Plans and sends a one-stop system's traffic to a DVCQG-protocol endpoint."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        madonvi: str,
        *,
        seed: int = 0,
        batch_size: int = 10,
        request_timeout_s: float = 10.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.url = url
        self.username = username
        self.password = password
        self.madonvi = madonvi
        self.seed = seed
        self.batch_size = batch_size
        self.request_timeout_s = request_timeout_s

    def plan(self, n_dossiers: int, *, now: datetime | None = None) -> list[DossierScript]:
        """`n_dossiers` dossier lives, the same for the same seed and `now`."""
        return _Planner(self.madonvi, self.seed, now or datetime.now(VN_TZ)).plan(n_dossiers)

    async def run(
        self,
        scripts: Sequence[DossierScript],
        *,
        rate_per_s: float | None = None,
        stop: asyncio.Event | None = None,
    ) -> TrafficReport:
        """Send every script; `rate_per_s` caps items (records + steps) per second.

        Returns when everything was answered, or soon after `stop` is set (items then in
        flight are listed in `in_doubt`). Raises `LoginRefused` on wrong credentials.
        """
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            runner = _Run(self, http, stop or asyncio.Event(), rate_per_s)
            try:
                await runner.drive(scripts)
            except _Stopped:
                runner.report.in_doubt = [item.payload for _, item in runner.in_flight]
        runner.report.elapsed_s = time.monotonic() - started
        return runner.report


# -- standalone ---------------------------------------------------------------------------------


async def _cli(args: argparse.Namespace) -> TrafficReport:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    traffic = OneStopTraffic(
        args.url,
        args.username,
        args.password,
        args.madonvi,
        seed=args.seed,
        batch_size=args.batch_size,
        request_timeout_s=args.timeout,
    )
    scripts = traffic.plan(args.dossiers)
    steps = sum(len(s.pairs) for s in scripts)
    print(f"sending {len(scripts)} dossiers ({steps} steps) to {args.url} …", flush=True)
    return await traffic.run(scripts, rate_per_s=args.rate or None, stop=stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Send one-stop traffic to a DVCQG endpoint.")
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8081/api")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--madonvi", required=True, help="the sender's unit, e.g. 000.00.41.H41")
    parser.add_argument("--dossiers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="items per second; 0: no cap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = parser.parse_args(argv)
    try:
        report = asyncio.run(_cli(args))
    except LoginRefused as exc:
        raise SystemExit(str(exc)) from None
    print(report.summary(), flush=True)
    for refusal in report.refused:
        print(f"  refused {refusal.kind} {refusal.dossier_code}: {refusal.code} {refusal.message}")


if __name__ == "__main__":
    main()
