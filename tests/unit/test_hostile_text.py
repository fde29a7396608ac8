"""What the bad-input corpus found (tests/integration/test_corpus_*.py), each pinned here without
HTTP: values no UTF-8 store, queue or log can hold, and what is no text at all, are refused by
their field or handled, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.ministry.auth import verify_hmac
from connectors.ministry.config import HmacAuth
from connectors.national_portal.mapping import InboundContext, record_event
from connectors.payment_platform.config import CALLBACK_FIELDS, PaymentPlatformConfig
from connectors.payment_platform.mapping import CallbackContext, PaymentCodes, read_callback
from connectors.payment_platform.routes import loggable
from connectors.payment_platform.signing import signed
from hub.api import to_event
from hub.auth import hash_password, sha256_hex, verify_password
from hub.config import ValidationConfig
from hub.errors import ValidationFailed
from hub.httputil import echoable, writable
from hub.logs import _escape_surrogates
from hub.status_mapping import StatusTable
from hub.validation import Validator
from schemas.text import MAX_FREE_FORM_DEPTH, plain_json, printable

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NOW = datetime(2022, 11, 1, 3, 0, tzinfo=UTC)
CODE = "000.00.41.H41-221005-0012"
TABLE = StatusTable.load(MAPPINGS / "one_stop_generic.yaml")
VALIDATOR = Validator(ValidationConfig())


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", "x\udc80"])
def test_a_lone_surrogate_is_no_printable_text(bad: str) -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        printable(bad)


def test_printable_text_keeps_real_characters() -> None:
    text = "Trần Thị Bình 👩‍👩‍👧 שלום\t漢字"
    assert printable(text) == text


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"a": "\ud800"}, "lone surrogate"),
        ({"\udfff": 1}, "lone surrogate"),
        ({"a": [float("nan")]}, "not finite"),
        ({"a": float("inf")}, "not finite"),
        (nested(MAX_FREE_FORM_DEPTH + 1), "deeper"),
    ],
)
def test_free_form_objects_refuse_what_cannot_travel(value: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        plain_json(value)


def test_free_form_objects_keep_the_rest() -> None:
    value = {"ten": "Bản sao", "trang": [1, 2.5, None, True], "x": nested(MAX_FREE_FORM_DEPTH - 1)}
    assert plain_json(value) is value


def api_item(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "event_id": "evt-1",
        "dossier_code": CODE,
        "kind": "record",
        "occurred_at": "2022-10-07T16:00:00+07:00",
        "status": "processed",
        "record": {"owner_name": "Nguyễn Văn An"},
    }
    return item | changes


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (api_item(event_id="ev-\ud800"), "event_id"),
        (api_item(event_id="ev\x00-1"), "event_id"),
        (api_item(record={"owner_name": "An\udc00"}), "record.owner_name"),
        (api_item(record={"other_attachments": [{"x": float("nan")}]}), "record.other_attachments"),
        (api_item(record={"supplements": [nested(40)]}), "record.supplements"),
        (api_item(kind="step", record=None, step={"content": "a\x00b"}), "step.content"),
    ],
)
def test_the_api_refuses_them_naming_the_field(item: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        to_event(item, "onestop", TABLE, VALIDATOR, NOW)
    assert caught.value.field is not None
    assert caught.value.field.startswith(field), caught.value


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ChuHoSo": "Trần\ud800"}, "ChuHoSo"),
        ({"DanhSachTepDinhKemKhac": [nested(40)]}, "DanhSachTepDinhKemKhac"),
        ({"DanhSachHoSoBoSung": [{"x": float("-inf")}]}, "DanhSachHoSoBoSung"),
    ],
)
def test_the_facade_refuses_them_naming_the_field(changes: dict[str, Any], field: str) -> None:
    item = {"MaHoSo": CODE, "TrangThaiHoSo": "2", "NgayTiepNhan": "20221005080000", **changes}
    ctx = InboundContext("onestop", TABLE, VALIDATOR, NOW)
    with pytest.raises(ValidationFailed) as caught:
        record_event(item, ctx)
    assert caught.value.field is not None
    assert caught.value.field.startswith(field), caught.value


def test_a_token_or_password_holding_a_lone_surrogate_is_simply_wrong() -> None:
    assert sha256_hex("tok\udcff") != sha256_hex("tok")
    assert sha256_hex("onestop-token") == sha256_hex("onestop-token")  # unchanged for text
    assert verify_password(hash_password("secret"), "secret\ud800") is False
    from hub.tokens import hash_token, token_matches

    stored = hash_token("onestop-token-that-is-long")
    assert token_matches(stored, "onestop-token-that-is-long")
    assert not token_matches(stored, "onestop-token-that-is-long\udcff")
    assert not token_matches(sha256_hex("tok"), "tok\udcff")  # the older, unsalted form


def test_a_log_line_holding_a_lone_surrogate_is_written_escaped() -> None:
    line = _escape_surrogates(None, "warning", json.dumps({"u": "a\ud800"}, ensure_ascii=False))
    line.encode()  # a stream can write it now
    assert json.loads(line) == {"u": "a\ud800"}  # and it still reads back as it came
    assert _escape_surrogates(None, "info", "Trần") == "Trần"


def test_replies_and_stores_keep_only_what_utf8_carries() -> None:
    assert echoable("ev-1") == "ev-1"
    assert echoable("ev-\ud800") is None
    assert echoable(["ev-1"]) is None
    assert writable("GD\udcff") == "GD\\udcff"
    assert writable("ad\x00min") == "ad\\x00min"  # PostgreSQL's text holds no NUL
    assert writable("Trần\x1b") == "Trần\x1b"


PARTNER, SECRET = "000.00.00.H41", "khoa"
PAY_NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("field", ["MaGiaoDich", "MaNganHang", "ThongTinGiaoDich"])
@pytest.mark.parametrize("bad", ["a\x00b", "a\u202eb", "a\x1bb"])
def test_a_signed_callback_with_a_control_character_is_refused(field: str, bad: str) -> None:
    fields = {
        "LoaiBanTin": "KetQuaThanhToan",
        "MaLoi": "00",
        "MaDoiTac": PARTNER,
        "MaThamChieu": CODE,
        "SoTien": "150000",
        "MaTienTe": "VND",
        "MaGiaoDich": "GD000123",
        "MaNganHang": "VCB",
        "ThoiGianGD": "20261123135900",
        "ThongTinGiaoDich": "Nguyen Van A",
        field: bad,
    }
    config = PaymentPlatformConfig(enabled=True, partner_code=PARTNER, secret_key=SECRET)
    codes = PaymentCodes.load(MAPPINGS / "payment_platform.yaml")
    ctx = CallbackContext(config, codes, VALIDATOR, PAY_NOW)
    with pytest.raises(ValidationFailed) as caught:
        read_callback(signed(fields, CALLBACK_FIELDS, SECRET), ctx)
    assert (caught.value.code, caught.value.field) == ("unprintable", field)


def test_what_a_refused_callback_keeps_can_be_stored() -> None:
    kept = loggable({"MaGiaoDich": "GD\ud800", "\udfffkey": "x", "ThongTinGiaoDich": "An"})
    json.dumps(kept, ensure_ascii=False).encode()  # no lone surrogate left


@pytest.mark.parametrize("gia", [1.001, 0.001, 150000.5, "0.001", "0,500"])
def test_a_fee_with_a_fraction_is_refused_never_read_as_thousands(gia: Any) -> None:
    item = {"MaHoSo": CODE, "TrangThaiHoSo": "2", "DanhSachLePhi": [{"Gia": gia}]}
    with pytest.raises(ValidationFailed) as caught:
        record_event(item, InboundContext("onestop", TABLE, VALIDATOR, NOW))
    assert caught.value.field == "DanhSachLePhi.0.Gia", caught.value


@pytest.mark.parametrize(("gia", "vnd"), [(8000.0, 8000), ("1.001", 1001), ("150.000", 150000)])
def test_whole_amounts_and_grouped_text_still_read(gia: Any, vnd: int) -> None:
    item = {"MaHoSo": CODE, "TrangThaiHoSo": "2", "DanhSachLePhi": [{"Gia": gia}]}
    event = record_event(item, InboundContext("onestop", TABLE, VALIDATOR, NOW))
    assert event.record is not None
    assert event.record.fees[0].amount_vnd == vnd


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Api-Key": "hub\udcff", "X-Timestamp": "1700000000", "X-Signature": "ab"},
        {"X-Api-Key": "hub-key", "X-Timestamp": "1700000000", "X-Signature": "\udcff\udcfe"},
    ],
)
def test_a_pushed_hmac_header_that_was_not_utf8_is_a_wrong_signature(
    headers: dict[str, str],
) -> None:
    config = HmacAuth(kind="hmac", key_id="hub-key", secret="bi-mat")
    why = verify_hmac(config, "POST", "/api/v1/ministries/x/results", headers, b"{}", 1700000000)
    assert why in ("unknown key id", "signature does not match")
