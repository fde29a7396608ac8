"""What the dossier doors (the DVCQG-compatible facade, `POST /api/v1/dossier-events`) are
sent by the bad-input corpus: per field, hostile values with their verdict, and the mutations
of one item that put such a value in one field.

A `Mutation` names the field the door must name when it refuses the item (`refused_as`,
`None` when no single field is to blame). Codes and ids that must be unique per item are
given as templates, filled in with the item's number when the case is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from hub.validation import VN_TZ
from tests.integration.corpus_world import (
    ANY_JSON,
    INVALID,
    UNKNOWN,
    VALID,
    Value,
    free_form_values,
    text_values,
)
from tests.support import UNIT

NOW = datetime.now(UTC)
DAY = "250101"
DROP = "<drop>"  # the field is left out of the item


@dataclass(frozen=True)
class Mutation:
    field: str
    value: Value
    refused_as: str | None  # the field a refusal must name

    @property
    def kind(self) -> str:
        return f"{self.field}:{self.value.kind}"


def dossier_code(n: int) -> str:
    return f"{UNIT}-{DAY}-{n:06d}"


# -- dossier codes ------------------------------------------------------------------------------

# Templates: "{n}" is the item's number; each is refused whatever the number.
BAD_CODES = [
    "000.00.99.H99-250101-{n:06d}",  # a unit the one-stop may not act for
    UNIT + "-251341-{n:06d}",  # month 13
    UNIT + "-250230-{n:06d}",  # 30 February
    UNIT + "-250101-{n:06d}\n",  # a trailing line break
    UNIT + "-250101-{n:06d} ",
    " " + UNIT + "-250101-{n:06d}",
    UNIT + "-250101-{n:06d}\x00",
    UNIT + "-250101-{n:06d}\u202e",
    "000.00.41.h41-250101-{n:06d}",  # lower-case province
    "０００.００.４１.H41-250101-{n:06d}",  # full-width digits
    UNIT + "-250101-{n:013d}",  # sequence too long
    UNIT + "-250101-12",  # sequence too short
    UNIT + "/250101/{n:06d}",
    "HS-{n:06d}",
    "",
]


def code_values() -> st.SearchStrategy[Value]:
    return st.one_of(
        st.builds(lambda t: Value(t, INVALID, "bad_code"), st.sampled_from(BAD_CODES)),
        st.just(Value(DROP, INVALID, "missing")),
        st.builds(
            lambda v: Value(v, INVALID, "wrong_type"),
            st.integers() | st.lists(st.integers(), max_size=2),
        ),
    )


# -- dates ----------------------------------------------------------------------------------------


def wire(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S")


def days(lo: float, hi: float) -> st.SearchStrategy[datetime]:
    """A moment between `lo` and `hi` days from now (whole seconds).

    `NOW` is read when the module is collected, which in a full run is a quarter of an hour
    or more before the case is sent: keep every bound at least a day away from the boundary
    the hub checks (clock skew, payment window), or a case drawn "future" arrives as present.
    """
    return st.builds(
        lambda s: NOW + timedelta(seconds=s), st.integers(int(lo * 86400), int(hi * 86400))
    )


BAD_WIRE_DATES = [
    "2022100508:00PM",  # 12-hour clock
    "2022-10-05T08:00:00",
    "20221005",
    "202210050800000",
    "20221305080000",  # month 13
    "20220230080000",  # 30 February
    "20221005240000",  # hour 24
    "20221005086000",  # minute 60
    "２０２２１００５０８００００",  # full-width digits
    "20221005080000\n",
    " 20221005080000",
    "00000000000000",
    " ",
]


def happened_wire() -> st.SearchStrategy[Value]:
    """Moments that already happened, as the facade's yyyyMMddHHmmss."""
    return st.one_of(
        st.builds(lambda d: Value(wire(d), VALID, "past"), days(-3650, -1)),
        st.builds(lambda d: Value(int(wire(d)), VALID, "number"), days(-3650, -1)),
        st.builds(lambda d: Value(wire(d), INVALID, "future"), days(1, 3650)),
        st.builds(lambda y: Value(f"{y:04d}0101000000", INVALID, "too_old"), st.integers(1, 1999)),
        st.builds(lambda t: Value(t, INVALID, "bad_format"), st.sampled_from(BAD_WIRE_DATES)),
        st.just(Value("", VALID, "empty")),
        st.builds(lambda v: Value(v, INVALID, "wrong_type"), st.lists(st.integers(), max_size=2)),
    )


def due_wire() -> st.SearchStrategy[Value]:
    """Deadlines: ahead is fine, up to five years; before the dossier was received is not."""
    return st.one_of(
        st.builds(lambda d: Value(wire(d), VALID, "ahead"), days(1, 4 * 365)),
        st.builds(lambda d: Value(wire(d), INVALID, "far_ahead"), days(5 * 366 + 2, 80 * 365)),
        st.builds(lambda d: Value(wire(d), INVALID, "before_received"), days(-3000, -31)),
        st.builds(lambda t: Value(t, INVALID, "bad_format"), st.sampled_from(BAD_WIRE_DATES)),
    )


def iso(moment: datetime, offset_h: int = 7) -> str:
    from datetime import timezone

    return moment.astimezone(timezone(timedelta(hours=offset_h))).isoformat()


BAD_ISO = [
    "2022-10-05T08:00:00",  # no offset
    "2022-10-05",
    "2022-13-05T08:00:00+07:00",
    "2022-02-30T08:00:00+07:00",
    "2022-10-05T08:00:00+25:00",
    "2022-10-05T25:00:00+07:00",
    "05/10/2022 08:00",
    "yesterday",
    "",
    "２０２２-10-05T08:00:00+07:00",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+00:00",
]


def happened_iso() -> st.SearchStrategy[Value]:
    return st.one_of(
        st.builds(
            lambda d, h: Value(iso(d, h), VALID, "past"), days(-3650, -1), st.integers(-12, 14)
        ),
        st.builds(lambda d: Value(iso(d), INVALID, "future"), days(1, 3650)),
        st.builds(
            lambda y: Value(f"{y:04d}-06-01T00:00:00+07:00", INVALID, "too_old"),
            st.integers(1, 1999),
        ),
        st.builds(lambda t: Value(t, INVALID, "bad_format"), st.sampled_from(BAD_ISO)),
        st.builds(
            lambda v: Value(v, UNKNOWN, "number"),
            st.integers(-(2**40), 2**40) | st.floats(allow_nan=False),
        ),
        st.builds(
            lambda v: Value(v, INVALID, "wrong_type"),
            st.lists(st.integers(), max_size=2) | st.booleans(),
        ),
    )


def due_iso() -> st.SearchStrategy[Value]:
    return st.one_of(
        st.builds(lambda d: Value(iso(d), VALID, "ahead"), days(1, 4 * 365)),
        st.builds(lambda d: Value(iso(d), INVALID, "far_ahead"), days(5 * 366 + 2, 80 * 365)),
        st.builds(lambda d: Value(iso(d), INVALID, "before_received"), days(-3000, -31)),
        st.builds(lambda t: Value(t, INVALID, "bad_format"), st.sampled_from(BAD_ISO)),
    )


# -- statuses and amounts -----------------------------------------------------------------------

BAD_STATUS_CODES = ["0", "11", "42", "-1", "abc", "", " ", "２", "1.0", "1e0", "2\x00", "\u202e2"]


def status_codes() -> st.SearchStrategy[Value]:
    """DVCQG's status codes as the one-stop's table (one_stop_generic) knows them."""
    return st.one_of(
        st.builds(lambda s: Value(str(s), VALID, "known"), st.integers(1, 10)),
        st.builds(lambda s: Value(s, VALID, "number"), st.integers(1, 10)),
        st.builds(lambda s: Value(f" {s} ", VALID, "padded"), st.integers(1, 10)),
        st.builds(lambda s: Value(s, INVALID, "unknown"), st.sampled_from(BAD_STATUS_CODES)),
        st.builds(
            lambda s: Value(s, INVALID, "out_of_table"),
            st.integers().filter(lambda i: not 1 <= i <= 10),
        ),
        st.just(Value(DROP, INVALID, "missing")),
    )


STATUS_NAMES = [
    "submitted", "accepted", "refused", "processing", "supplement_requested",
    "payment_requested", "withdrawn", "stopped", "processed", "returned",
]  # fmt: skip


def status_names() -> st.SearchStrategy[Value]:
    return st.one_of(
        st.builds(lambda s: Value(s, VALID, "known"), st.sampled_from(STATUS_NAMES)),
        st.builds(
            lambda s: Value(s, INVALID, "unknown"),
            st.sampled_from(
                ["finished", "Processing", "PROCESSING", "", " accepted", "4", "accepted\x00"]
            ),
        ),
        st.builds(
            lambda v: Value(v, INVALID, "wrong_type"),
            st.integers() | st.lists(st.text(max_size=3), max_size=2),
        ),
    )


GOOD_AMOUNTS = ["150000", "150.000", "150,000", "1.200.000", "8000.0", "8000,00", "0", 8000, 8000.0]
BAD_AMOUNTS = [
    "-5",
    "1.5",
    "1,55",
    "1e3",
    "abc",
    "١٢٣",
    "150 000",
    "+5",
    "0x10",
    "1.2.3",
    -5,
    1.5,
    "∞",
]


def wire_amounts() -> st.SearchStrategy[Value]:
    return st.one_of(
        st.builds(lambda a: Value(a, VALID, "amount"), st.sampled_from(GOOD_AMOUNTS)),
        st.builds(lambda a: Value(str(a), VALID, "digits"), st.integers(0, 10**12)),
        st.builds(lambda a: Value(a, INVALID, "bad_amount"), st.sampled_from(BAD_AMOUNTS)),
        st.builds(lambda a: Value(a, INVALID, "negative"), st.integers(max_value=-1)),
        st.builds(
            lambda a: Value(a, INVALID, "fraction"),
            st.floats(0.001, 1e9).filter(lambda f: f != int(f)),
        ),
    )


def canonical_amounts() -> st.SearchStrategy[Value]:
    return st.one_of(
        st.builds(lambda a: Value(a, VALID, "amount"), st.integers(0, 10**12)),
        st.builds(lambda a: Value(str(a), VALID, "digits"), st.integers(0, 10**12)),
        st.builds(lambda a: Value(a, INVALID, "negative"), st.integers(max_value=-1)),
        st.builds(
            lambda a: Value(a, INVALID, "fraction"),
            st.floats(0.001, 1e9).filter(lambda f: f != int(f)),
        ),
        st.builds(
            lambda a: Value(a, INVALID, "bad_amount"),
            st.sampled_from(["1.5", "abc", "-1", "", "1e3", [1]]),
        ),
        st.builds(lambda a: Value(a, UNKNOWN, "huge"), st.integers(10**18, 10**40)),
    )


# -- the facade's items -----------------------------------------------------------------------

RECORD_SHORT = ["ChuHoSo", "MaTTHC", "SoBienNhan", "Email", "SoDienThoai", "MaDoiTuong", "HinhThuc"]
RECORD_LONG = ["TenTTHC", "TrichYeuHoSo", "GhiChu", "DonViXuLy", "ThongTinKhac", "ThongTinTra"]
STEP_SHORT = ["NguoiXuLy", "ChucDanh"]
STEP_LONG = ["NoiDungXuLy", "PhongBanXuLy"]


def _text_field(
    names: list[str], limit: int, coerced: bool, prefix: str = ""
) -> st.SearchStrategy[Mutation]:
    return st.builds(
        lambda f, v: Mutation(f, v, prefix + f),
        st.sampled_from(names),
        text_values(limit, numbers_coerced=coerced),
    )


def _listed(
    field: str, inner: str, values: st.SearchStrategy[Value]
) -> st.SearchStrategy[Mutation]:
    """A value inside the first object of a list field."""
    return st.builds(
        lambda v: Mutation(
            field, Value([{inner: v.value}], v.verdict, v.kind), f"{field}.0.{inner}"
        ),
        values,
    )


def _list_shapes(field: str, item: dict[str, Any]) -> st.SearchStrategy[Mutation]:
    return st.one_of(
        st.builds(
            lambda v: Mutation(field, Value(v, INVALID, "not_a_list"), field),
            st.text(max_size=5) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
        st.just(Mutation(field, Value([item] * 201, INVALID, "too_many"), field)),
        st.builds(
            lambda n: Mutation(field, Value([item] * n, VALID, "many"), None), st.integers(0, 200)
        ),
        st.just(
            Mutation(field, Value(["not an object"], INVALID, "item_not_object"), f"{field}.0")
        ),
    )


def _extra() -> st.SearchStrategy[Mutation]:
    """A field the protocol does not name: ignored, whatever it holds."""
    names = st.sampled_from(
        ["MaHoSoPhu", "__proto__", "constructor", "$where", "maHoSo", "Ma Ho So", "ẞ"]
    )
    return st.builds(
        lambda n, v: Mutation(n, Value(v, UNKNOWN, "extra_field"), None), names, ANY_JSON
    )


def record_mutations() -> st.SearchStrategy[Mutation]:
    fee = {"TenPhiLePhi": "Lệ phí", "Gia": "150000"}
    return st.one_of(
        _text_field(RECORD_SHORT, 500, coerced=True),
        _text_field(RECORD_LONG, 4000, coerced=True),
        st.builds(lambda v: Mutation("MaHoSo", v, "MaHoSo"), code_values()),
        st.builds(lambda v: Mutation("TrangThaiHoSo", v, "TrangThaiHoSo"), status_codes()),
        st.builds(
            lambda f, v: Mutation(f, v, f),
            st.sampled_from(["NgayTiepNhan", "NgayTra", "NgayKetThucXuLy"]),
            happened_wire(),
        ),
        st.builds(lambda v: Mutation("NgayHenTra", v, "NgayHenTra"), due_wire()),
        _listed("DanhSachLePhi", "Gia", wire_amounts()),
        _listed("DanhSachLePhi", "TenPhiLePhi", text_values(500, numbers_coerced=True)),
        _listed("TaiLieuNop", "TenTepDinhKem", text_values(500, numbers_coerced=True)),
        _listed(
            "DanhSachGiayToKetQua", "DuongDanTepTinKetQua", text_values(4000, numbers_coerced=True)
        ),
        _list_shapes("DanhSachLePhi", fee),
        _list_shapes("TaiLieuNop", {"TenTepDinhKem": "don.pdf"}),
        st.builds(
            lambda v: Mutation("DanhSachTepDinhKemKhac", v, "DanhSachTepDinhKemKhac"),
            free_form_values(),
        ),
        _extra(),
    )


def step_mutations() -> st.SearchStrategy[Mutation]:
    return st.one_of(
        _text_field(STEP_SHORT, 500, coerced=True),
        _text_field(STEP_LONG, 4000, coerced=True),
        st.builds(lambda v: Mutation("MaHoSo", v, "MaHoSo"), code_values()),
        st.builds(lambda v: Mutation("TrangThai", v, "TrangThai"), status_codes()),
        st.builds(
            lambda v: Mutation("ThoiDiemXuLy", v, "ThoiDiemXuLy"),
            happened_wire().filter(lambda v: v.kind != "empty"),
        ),
        st.just(Mutation("ThoiDiemXuLy", Value(DROP, INVALID, "missing"), "ThoiDiemXuLy")),
        st.just(Mutation("ThoiDiemXuLy", Value("", INVALID, "empty"), "ThoiDiemXuLy")),
        st.builds(lambda v: Mutation("NgayBatDau", v, "NgayBatDau"), happened_wire()),
        st.builds(
            lambda v: Mutation("NgayKetThucTheoQuyDinh", v, "NgayKetThucTheoQuyDinh"),
            due_wire().filter(lambda v: v.kind != "before_received"),
        ),
        _extra(),
    )


# -- the canonical API's items ------------------------------------------------------------------

API_SHORT = ["owner_name", "procedure_code", "receipt_number", "email", "phone", "applicant_id"]
API_LONG = ["procedure_name", "summary", "note", "handling_unit", "other_info", "return_info"]


def _in_record(m: Mutation) -> Mutation:
    return Mutation(f"record.{m.field}", m.value, m.refused_as and f"record.{m.refused_as}")


def api_record_mutations() -> st.SearchStrategy[Mutation]:
    inner = st.one_of(
        _text_field(API_SHORT, 500, coerced=False),
        _text_field(API_LONG, 4000, coerced=False),
        st.builds(
            lambda f, v: Mutation(f, v, f),
            st.sampled_from(["received_at", "returned_at", "processing_ended_at"]),
            happened_iso(),
        ),
        st.builds(lambda v: Mutation("due_at", v, "due_at"), due_iso()),
        _listed("fees", "amount_vnd", canonical_amounts()),
        _listed("fees", "name", text_values(500, numbers_coerced=False)),
        _listed("submitted_documents", "name", text_values(500, numbers_coerced=False)),
        st.builds(
            lambda v: Mutation("other_attachments", v, "other_attachments"), free_form_values()
        ),
        st.builds(
            lambda n, v: Mutation(n, Value(v, INVALID, "unknown_field"), n),
            st.sampled_from(["colour", "ownerName", "__proto__"]),
            ANY_JSON,
        ),
    )
    return inner.map(_in_record)


def required(v: Value) -> Value:
    """A value for a field that must be there: null is no value."""
    return Value(v.value, INVALID, "null") if v.value is None else v


def api_event_mutations() -> st.SearchStrategy[Mutation]:
    return st.one_of(
        st.builds(
            lambda v: Mutation("event_id", required(v), "event_id"),
            text_values(200, numbers_coerced=False),
        ),
        st.builds(lambda v: Mutation("dossier_code", v, "dossier_code"), code_values()),
        st.builds(lambda v: Mutation("status", v, "status"), status_names()),
        st.builds(lambda v: Mutation("occurred_at", v, "occurred_at"), happened_iso()),
        st.builds(
            lambda k: Mutation("kind", Value(k, INVALID, "bad_kind"), "kind"),
            st.sampled_from(["Record", "", "event", 1, None, DROP]),
        ),
        st.just(Mutation("record", Value(DROP, INVALID, "missing"), "record")),
        st.builds(
            lambda v: Mutation("record", Value(v, INVALID, "wrong_type"), "record"),
            st.text(max_size=5) | st.lists(st.integers(), max_size=2),
        ),
        st.builds(
            lambda n, v: Mutation(n, Value(v, INVALID, "unknown_field"), n),
            st.sampled_from(["colour", "eventId", "__proto__"]),
            ANY_JSON,
        ),
        api_record_mutations(),
        st.builds(
            lambda v: Mutation("step.content", v, "step.content"),
            text_values(4000, numbers_coerced=False),
        ),
    )
