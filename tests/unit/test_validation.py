"""Plausibility checks shared by every inbound door."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from hub.config import ValidationConfig
from hub.errors import ValidationFailed
from hub.validation import VN_TZ, Validator

NOW = datetime(2022, 11, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def v() -> Validator:
    return Validator(ValidationConfig())


# -- dossier codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "000.00.41.H41-221005-0012",
        "000.00.53.H48-220921-0099",
        "000.00.41.H41-221005-001",  # 3 digits: the default minimum
        "000.00.41.H41-221005-00000012",  # 8 digits: the default maximum
        "000.00.00.G22-240229-12345",  # a leap day
    ],
)
def test_valid_dossier_codes_pass(v: Validator, code: str) -> None:
    assert v.dossier_code(code) == code


@pytest.mark.parametrize("value", [None, "", "   ", 12345])
def test_missing_dossier_code(v: Validator, value: object) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.dossier_code(value, "MaHoSo")
    assert info.value.field == "MaHoSo"
    assert info.value.code == "missing"


@pytest.mark.parametrize(
    "code",
    [
        "000.00.41.H41-22100-0012",  # five-digit day
        "000.00.41.h41-221005-0012",  # lower-case letter
        "000.00.41.H41_221005_0012",
        "00.00.41.H41-221005-0012",
        "000.00.41.H41-221005-0012-1",
        " 000.00.41.H41-221005-0012",
        "000.00.41.H41-221005-0012 ",
        "000.00.41.H41-221005-12",  # sequence too short (2 < 3)
        "000.00.41.H41-221005-123456789",  # sequence too long (9 > 8)
        "000.00.41.H41-221005-00A2",
    ],
)
def test_wrongly_shaped_dossier_codes_are_refused(v: Validator, code: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.dossier_code(code, "MaHoSo")
    assert info.value.field == "MaHoSo"
    assert info.value.code == "bad_dossier_code"
    assert "000.00.53.H48-220921-0099" in info.value.message  # says what is expected


def test_dossier_code_with_trailing_newline_is_refused(v: Validator) -> None:
    # Fails until hub/validation.py anchors with \Z (or fullmatch): "$" allows a final "\n".
    with pytest.raises(ValidationFailed) as info:
        v.dossier_code("000.00.41.H41-221005-0012\n")
    assert info.value.code == "bad_dossier_code"


def test_agency_code_with_trailing_newline_is_refused(v: Validator) -> None:
    # Fails until hub/config_blocks.py AGENCY_CODE_RE is matched in full (\Z or fullmatch).
    with pytest.raises(ValidationFailed) as info:
        v.agency_code("000.00.41.H41\n", "madonvi")
    assert info.value.code == "bad_agency_code"


@pytest.mark.parametrize("day", ["221341", "220230", "221000", "221132", "230229"])
def test_dossier_code_with_impossible_date_is_refused(v: Validator, day: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.dossier_code(f"000.00.41.H41-{day}-0012")
    assert info.value.field == "dossier_code"
    assert info.value.code == "bad_dossier_code"
    assert "impossible date" in info.value.message
    assert day in info.value.message


def test_sequence_length_follows_configuration() -> None:
    v = Validator(ValidationConfig(dossier_sequence_digits_min=4, dossier_sequence_digits_max=5))
    assert v.dossier_code("000.00.41.H41-221005-0012") == "000.00.41.H41-221005-0012"
    assert v.dossier_code("000.00.41.H41-221005-00012") == "000.00.41.H41-221005-00012"
    for bad in ("000.00.41.H41-221005-012", "000.00.41.H41-221005-000012"):
        with pytest.raises(ValidationFailed, match="does not look like"):
            v.dossier_code(bad)


# -- agency codes --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["000.00.41.H41", "000.00.00.G22", "123.45.67.Z99"])
def test_valid_agency_codes(v: Validator, code: str) -> None:
    assert v.agency_code(code, "madonvi") == code


@pytest.mark.parametrize(
    "code",
    [None, 41, "", "41.H41", "000.00.41.h41", "000.00.41.H411", "000.00.41-H41", "000.0.41.H41"],
)
def test_bad_agency_codes(v: Validator, code: object) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.agency_code(code, "madonvi")
    assert info.value.field == "madonvi"
    assert info.value.code == "bad_agency_code"


# -- wire dates ----------------------------------------------------------------------------------


def test_wire_date_is_read_in_hanoi_time(v: Validator) -> None:
    parsed = v.wire_date("20220921130500", "NgayTiepNhan")
    assert parsed == datetime(2022, 9, 21, 13, 5, tzinfo=VN_TZ)
    assert parsed.utcoffset() == timedelta(hours=7)
    assert parsed.astimezone(UTC) == datetime(2022, 9, 21, 6, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2022092113:05",
        "202209211305",
        "2022-09-21 13:05:00",
        "20220921 130500",
        "20220921130500 ",
        "202209211305000",
        "2022092101:05PM",
        "",
        None,
        20220921130500,
    ],
)
def test_wire_date_shape_is_refused(v: Validator, value: object) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.wire_date(value, "NgayTiepNhan")
    assert info.value.field == "NgayTiepNhan"
    assert info.value.code == "bad_date"
    assert "yyyyMMddHHmmss" in info.value.message


@pytest.mark.parametrize(
    "value",
    ["20220231120000", "20221321000000", "20220921250000", "20220921126000", "20230229000000"],
)
def test_impossible_wire_dates_are_refused(v: Validator, value: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.wire_date(value, "ThoiDiemXuLy")
    assert info.value.field == "ThoiDiemXuLy"
    assert info.value.code == "bad_date"
    assert "not a real date" in info.value.message


# -- moments that happened -----------------------------------------------------------------------


def test_happened_accepts_past_and_small_skew(v: Validator) -> None:
    past = NOW - timedelta(days=30)
    assert v.happened(past, "occurred_at", NOW) == past
    within = NOW + timedelta(seconds=299)
    assert v.happened(within, "occurred_at", NOW) == within


def test_happened_refuses_future_beyond_skew(v: Validator) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.happened(NOW + timedelta(seconds=301), "occurred_at", NOW)
    assert info.value.field == "occurred_at"
    assert info.value.code == "future_date"


def test_skew_follows_configuration() -> None:
    v = Validator(ValidationConfig(max_future_skew_s=0))
    assert v.happened(NOW, "x", NOW) == NOW
    with pytest.raises(ValidationFailed, match="in the future"):
        v.happened(NOW + timedelta(seconds=1), "x", NOW)


def test_happened_compares_across_time_zones(v: Validator) -> None:
    # 10:00 in Hanoi is 03:00 UTC: equal to NOW, so not in the future.
    hanoi = datetime(2022, 11, 1, 10, 0, tzinfo=VN_TZ)
    assert v.happened(hanoi, "x", NOW) == hanoi
    with pytest.raises(ValidationFailed):
        v.happened(hanoi + timedelta(minutes=6), "x", NOW)


def test_happened_refuses_naive_datetime(v: Validator) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.happened(datetime(2022, 10, 5, 8, 30), "occurred_at", NOW)
    assert info.value.code == "bad_date"
    assert "time zone" in info.value.message


def test_happened_refuses_implausibly_old(v: Validator) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.happened(datetime(1999, 12, 31, tzinfo=UTC), "NgayTiepNhan", NOW)
    assert info.value.field == "NgayTiepNhan"
    assert info.value.code == "implausible_date"
    assert v.happened(datetime(2000, 1, 1, tzinfo=UTC), "x", NOW).year == 2000


# -- deadlines -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ahead", [timedelta(0), timedelta(days=30), timedelta(days=5 * 365)])
def test_due_dates_within_five_years_are_accepted(v: Validator, ahead: timedelta) -> None:
    assert v.due(NOW + ahead, "NgayHenTra", NOW) == NOW + ahead


def test_due_date_too_far_ahead_is_refused(v: Validator) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.due(NOW + timedelta(days=6 * 365), "NgayHenTra", NOW)
    assert info.value.field == "NgayHenTra"
    assert info.value.code == "future_date"


def test_due_date_too_old_is_refused(v: Validator) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.due(datetime(1990, 1, 1, tzinfo=UTC), "NgayHenTra", NOW)
    assert info.value.code == "implausible_date"


# -- batch sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 250, 500])
def test_batch_within_limit(v: Validator, count: int) -> None:
    v.batch_size(count)  # must not raise


def test_empty_batch_is_refused(v: Validator) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.batch_size(0)
    assert info.value.code == "empty_batch"
    assert info.value.field == "data"


def test_batch_too_large_is_refused(v: Validator) -> None:
    with pytest.raises(ValidationFailed) as info:
        v.batch_size(501)
    assert info.value.code == "batch_too_large"
    assert "501" in info.value.message
    assert "500" in info.value.message


def test_batch_limit_follows_configuration() -> None:
    v = Validator(ValidationConfig(max_items_per_batch=2))
    v.batch_size(2)
    with pytest.raises(ValidationFailed, match="at most 2"):
        v.batch_size(3)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("Nguyễn Văn An", None),
        ("dòng một\ndòng hai\tcột", None),  # line breaks and tabs are text
        ("An\x00", "U+0000"),
        ("An\x1b[31m", "U+001B"),
        ("An\u202egnaH", "U+202E"),  # right-to-left override
        ("An\u2066x\u2069", "U+2066"),  # an isolate
        ("An\x7f", "U+007F"),
    ],
)
def test_text_holds_printable_characters_only(text: str, refused: str | None) -> None:
    from schemas.text import printable

    if refused is None:
        assert printable(text) == text
        return
    with pytest.raises(ValueError, match=re.escape(refused)):
        printable(text)


def test_a_canonical_record_is_not_due_before_it_was_received() -> None:
    from pydantic import ValidationError

    from schemas.canonical import DossierRecord, DossierStatus

    received = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    base = {"dossier_code": "000.00.41.H41-261201-0001", "status": DossierStatus.accepted}
    DossierRecord(**base, received_at=received, due_at=received)
    with pytest.raises(ValidationError, match="before the date the dossier was received"):
        DossierRecord(**base, received_at=received, due_at=received.replace(day=1, hour=7))


@pytest.mark.parametrize(
    ("unit", "other", "covered"),
    [
        ("000.00.41.H41", "000.00.41.H41", True),
        ("000.00.41.H41", "000.20.41.H41", True),  # a unit under it
        ("000.00.41.H41", "123.20.41.H41", True),
        ("000.00.41.H41", "000.00.42.H41", False),  # another department
        ("000.00.41.H41", "000.00.00.H41", False),  # the level above
        ("000.00.41.H41", "000.00.41.H99", False),  # another province
        ("000.00.00.H41", "000.20.41.H41", True),  # the province covers all of it
        ("000.20.41.H41", "000.21.41.H41", False),
    ],
)
def test_a_unit_covers_itself_and_the_units_under_it(unit: str, other: str, covered: bool) -> None:
    from hub.auth import covers

    assert covers(unit, other) is covered
