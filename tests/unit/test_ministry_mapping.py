"""Ministry mapping files: the shipped ones load, and every mistake is reported with its line."""

from __future__ import annotations

from collections import OrderedDict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.ministry.auth import hmac_signature, verify_hmac
from connectors.ministry.config import HmacAuth, MinistryConfig
from connectors.ministry.mapping import MappingFailed, MinistryMapping, as_json, load_for
from connectors.ministry.poller import fill
from connectors.ministry.wsdl import Slot, typed_params
from hub.errors import ConfigError, ValidationFailed
from hub.validation import VN_TZ
from schemas.canonical import DossierStatus

ROOT = Path(__file__).resolve().parents[2]
BUSINESS = ROOT / "mappings" / "ministry_business_registration.yaml"
LAND = ROOT / "tests" / "data" / "ministry_land" / "ministry_land_registry.yaml"


def test_business_registration_result_maps_to_a_canonical_step() -> None:
    mapping = MinistryMapping.load(BUSINESS)
    result = mapping.result(
        "business_registration",
        {
            "MaKetQua": "KQ-7",
            "MaHoSo": "000.00.01.H41-260101-0001",
            "TrangThai": "DA_CAP_GCN",
            "ThoiGian": "02/01/2026 10:30:00",
            "SoGiayChungNhan": "GCN-1",
        },
    )
    assert result.status is DossierStatus.processed
    assert result.occurred_at.isoformat() == "2026-01-02T10:30:00+07:00"
    event = result.to_event()
    assert (event.kind, event.event_id, event.source_system) == (
        "step",
        "business_registration:KQ-7",
        "ministry.business_registration",
    )
    assert event.step is not None
    assert "GCN-1" in (event.step.content or "")


def test_a_result_without_an_id_gets_one_from_its_content() -> None:
    text = BUSINESS.read_text().replace("    result_id: {path: MaKetQua}\n", "")
    mapping = MinistryMapping.parse(text)
    item = {"MaHoSo": "H1", "TrangThai": "TU_CHOI", "ThoiGian": "02/01/2026 10:30:00"}
    first, again = mapping.result("s", item), mapping.result("s", dict(item))
    assert first.result_id == again.result_id
    assert first.result_id.startswith("sha256:")
    other = mapping.result("s", {**item, "ThoiGian": "03/01/2026 10:30:00"})
    assert other.result_id != first.result_id


@pytest.mark.parametrize(
    ("item", "field", "code"),
    [
        ({"MaKetQua": "1", "TrangThai": "DA_CAP_GCN", "ThoiGian": "02/01/2026 10:30:00"},
         "dossier_code", "missing"),
        ({"MaKetQua": "1", "MaHoSo": "H", "TrangThai": "LA", "ThoiGian": "02/01/2026 10:30:00"},
         "status", "unknown_code"),
        ({"MaKetQua": "1", "MaHoSo": "H", "TrangThai": "TU_CHOI", "ThoiGian": "2026-01-02"},
         "occurred_at", "wrong_type"),
    ],
)  # fmt: skip
def test_a_bad_result_names_its_field(item: dict[str, str], field: str, code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        MinistryMapping.load(BUSINESS).result("s", item)
    assert (caught.value.field, caught.value.code) == (field, code)


def test_a_nested_submit_request_for_the_third_system() -> None:
    mapping = MinistryMapping.load(LAND)
    request = mapping.submit_request(
        {"dossier_code": "H1", "procedure_code": "2.0", "received_at": "2026-01-02T09:00:00+07:00"}
    )
    assert request["ThongTinHoSo"]["SoHoSo"] == "H1"
    assert str(request["ThongTinHoSo"]["NgayNhan"]) == "2026-01-02"
    assert "ChuSuDung" not in request["ThongTinHoSo"]  # absent, not sent empty
    assert mapping.submit_outcome({"ThanhCong": False, "LyDo": "sai"}).accepted is False
    assert mapping.submit_outcome({"ThanhCong": True, "MaTiepNhan": "T1"}).reference == "T1"


def test_every_mistake_is_reported_with_its_line() -> None:
    text = """name: broken
submit:
  accepted: "MaLoi =="
  fields:
    MaHoSo: {path: dossier_code}
results:
  items: DanhSach
  fields:
    dossier_code: {path: MaHoSo}
    status: {path: TrangThai, table: status}
    colour: {path: Mau}
tables:
  status:
    XONG: finished
"""
    with pytest.raises(ConfigError) as caught:
        MinistryMapping.parse(text, "m.yaml")
    problems = "\n".join(caught.value.problems)
    assert "m.yaml:3: submit.accepted: not a JMESPath expression" in problems
    assert "m.yaml:11: results.fields.colour: not a result field" in problems
    assert "m.yaml:8: results.fields: occurred_at is required" in problems
    assert "m.yaml:14: tables.status.XONG: 'finished' is not a dossier status" in problems


def test_the_mapping_must_cover_what_the_configuration_asks(tmp_path: Path) -> None:
    config = MinistryConfig.model_validate(
        {
            "kind": "rest",
            "mapping": str(LAND),
            "rest": {"base_url": "http://127.0.0.1:1"},
            "push": {"token_sha256": "ab" * 32},
        }
    )
    assert load_for("land", config, ROOT / "mappings").results is not None
    submit_only = LAND.read_text().split("results:")[0]
    path = tmp_path / "submit-only.yaml"
    path.write_text(submit_only)
    with pytest.raises(ConfigError) as caught:
        load_for("land", config.model_copy(update={"mapping": str(path)}), ROOT / "mappings")
    assert "has no results section" in caught.value.problems[0]


def test_hmac_signature_and_its_checks() -> None:
    cfg = HmacAuth(kind="hmac", key_id="k1", secret=SecretStr("s3cret"))
    body = b'{"ketQua": []}'
    sig = hmac_signature("s3cret", "POST", "/api/v1/x?a=1", "1700000000", body)
    headers = {"X-Api-Key": "k1", "X-Timestamp": "1700000000", "X-Signature": sig}
    assert verify_hmac(cfg, "POST", "/api/v1/x?a=1", headers, body, now=1700000100) is None
    assert verify_hmac(cfg, "POST", "/api/v1/x?a=2", headers, body, now=1700000100)
    assert verify_hmac(cfg, "POST", "/api/v1/x?a=1", headers, b"{}", now=1700000100)
    assert verify_hmac(cfg, "POST", "/api/v1/x?a=1", headers, body, now=1700000400)
    assert verify_hmac(
        cfg, "POST", "/api/v1/x?a=1", {**headers, "X-Api-Key": "k2"}, body, now=1700000000
    )


def test_poll_parameters_are_filled_in() -> None:
    assert fill({"TuMoc": "$cursor", "SoLuong": "$limit", "q": "from-$cursor"}, "41", 100) == {
        "TuMoc": "41",
        "SoLuong": 100,
        "q": "from-41",
    }


# -- at run time: plain JSON for JMESPath, and mapping errors that never escape ---------------


def test_replies_reach_jmespath_as_plain_json() -> None:
    moment = datetime(2026, 12, 6, 12, 18, 47, tzinfo=VN_TZ)
    reply = OrderedDict(
        t=moment, d=date(2026, 12, 6), n=Decimal("5"), x=Decimal("1.5"), b=b"\x01\x02",
        k=timedelta(days=1, hours=2, seconds=3), e=DossierStatus.processed, s="a", l=(1, None),
    )  # fmt: skip
    assert as_json(reply) == {
        "t": "2026-12-06T12:18:47+07:00", "d": "2026-12-06", "n": 5, "x": 1.5, "b": "AQI=",
        "k": "P1DT2H3S", "e": 9, "s": "a", "l": [1, None],
    }  # fmt: skip
    assert type(as_json(reply)) is dict
    assert type(as_json(reply)["e"]) is int


def test_a_time_cursor_and_max_by_over_zeep_times() -> None:
    text = LAND.read_text("utf-8").replace(
        "  cursor: MocMoi", '  cursor: "max_by(CapNhat, &NgayCapNhat).NgayCapNhat"'
    )
    mapping = MinistryMapping.parse(text)
    late = datetime(2026, 12, 6, 12, 18, 47, tzinfo=VN_TZ)
    updates = [
        {"Id": "1", "SoHoSo": "H", "MaTrangThai": 1, "NgayCapNhat": late - timedelta(hours=1)},
        {"Id": "2", "SoHoSo": "H", "MaTrangThai": 2, "NgayCapNhat": late},
    ]
    page = mapping.page({"MocMoi": "x", "CapNhat": updates})
    assert page.cursor == "2026-12-06T12:18:47+07:00"
    assert page.items[1]["NgayCapNhat"] == "2026-12-06T12:18:47+07:00"
    assert mapping.result("land", page.items[1]).occurred_at == late


def test_an_expression_failing_on_a_reply_is_a_mapping_error_naming_its_key() -> None:
    text = LAND.read_text("utf-8").replace(
        "  cursor: MocMoi", '  cursor: "max_by(CapNhat, &NgayCapNhat).NgayCapNhat"'
    )
    mapping = MinistryMapping.parse(text)
    with pytest.raises(MappingFailed) as caught:
        mapping.page({"CapNhat": [{"Id": "1", "NgayCapNhat": None}]})
    assert (caught.value.code, caught.value.at) == ("mapping_error", "results.cursor")
    assert caught.value.message.startswith(
        "results.cursor: max_by(CapNhat, &NgayCapNhat).NgayCapNhat failed: "
    )
    with pytest.raises(MappingFailed, match=r"^results\.cursor: gives"):
        MinistryMapping.parse(LAND.read_text("utf-8")).page({"MocMoi": ["a"], "CapNhat": []})


def test_an_expression_failing_on_a_result_or_a_record_names_its_field() -> None:
    text = LAND.read_text("utf-8").replace(
        "content: {path: GhiChu, default: null}", "content: {path: \"length(GhiChu || '')\"}"
    )
    text = text.replace("{path: owner_name, default: null}", '{path: "to_string(length(fees))"}')
    mapping = MinistryMapping.parse(text)
    item = {"Id": "1", "SoHoSo": "H", "MaTrangThai": 1, "NgayCapNhat": "2026-01-02T00:00:00"}
    assert mapping.result("s", item).content == "0"
    with pytest.raises(MappingFailed) as caught:  # a record that breaks its own model
        mapping.submit_request({"dossier_code": "H", "procedure_code": "1", "fees": 5})
    assert caught.value.at == "submit.fields.ThongTinHoSo.ChuSuDung"
    assert mapping.submit_outcome({"ThanhCong": True}).accepted is True
    ordered = LAND.read_text("utf-8").replace(
        "accepted: ThanhCong", 'accepted: "MaTiepNhan > LyDo"'
    )
    with pytest.raises(MappingFailed) as caught:  # text against a number: Python refuses
        MinistryMapping.parse(ordered).submit_outcome({"MaTiepNhan": "TN-1", "LyDo": 1})
    assert caught.value.at == "submit.accepted"


def test_a_poll_parameter_is_written_in_its_wsdl_type() -> None:
    at = Slot("tuThoiDiem", "xsd:dateTime", "datetime", required=False, repeated=False)
    count = Slot("soLuong", "xsd:int", "integer", required=True, repeated=False)
    text = Slot("moc", "xsd:string", "string", required=False, repeated=False)
    slots = {s.name: s for s in (at, count, text)}
    params = typed_params(
        slots, {"tuThoiDiem": "2026-12-06 12:18:47+07:00", "soLuong": 100, "moc": "7"}
    )
    assert params == {
        "tuThoiDiem": datetime(2026, 12, 6, 12, 18, 47, tzinfo=VN_TZ),
        "soLuong": 100,
        "moc": "7",
    }
    assert typed_params(slots, {"tuThoiDiem": ""}) == {"tuThoiDiem": None}  # left out
    with pytest.raises(ValidationFailed, match="poll parameter tuThoiDiem: 'x' is not an xsd"):
        typed_params(slots, {"tuThoiDiem": "x"})
