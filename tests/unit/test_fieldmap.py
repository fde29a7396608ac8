"""Declarative field maps: JMESPath extraction, code tables, formats, defaults, and the
located mistakes `hub check-config` reports."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hub.errors import ConfigError, ValidationFailed
from hub.fieldmap import FieldMap
from hub.validation import VN_TZ

MAPPING = """\
name: sample_ministry
fields:
  dossier_code: {path: "HoSo.MaHoSo"}
  status: {path: "HoSo.TrangThai", table: status}
  decided_at: {path: "HoSo.NgayQuyetDinh", type: datetime, format: "%d/%m/%Y %H:%M"}
  issued_on: {path: "KetQua.NgayCap", type: date, format: "%d/%m/%Y", default: null}
  fee: {path: "KetQua.LePhi", type: decimal, default: "0"}
  copies: {path: "length(KetQua.BanSao[])", type: int}
  online: {path: "HoSo.TrucTuyen", type: bool, default: false}
  unit: {value: "000.00.00.G12"}
  first_doc: {path: "GiayTo[0].Ten", default: ""}
tables:
  status: {"DA_CAP": processed, "TU_CHOI": stopped}
"""

DOCUMENT: dict[str, Any] = {
    "HoSo": {"MaHoSo": "000.00.41.H41-261120-0001", "TrangThai": "DA_CAP",
             "NgayQuyetDinh": "20/11/2026 14:05", "TrucTuyen": "có"},
    "KetQua": {"NgayCap": "21/11/2026", "LePhi": "100000", "BanSao": [1, 2, 3]},
    "GiayTo": [{"Ten": "Giấy chứng nhận"}],
}  # fmt: skip


def test_a_document_becomes_the_target_fields() -> None:
    got = FieldMap.parse(MAPPING).apply(DOCUMENT)
    assert got == {
        "dossier_code": "000.00.41.H41-261120-0001",
        "status": "processed",
        "decided_at": datetime(2026, 11, 20, 14, 5, tzinfo=VN_TZ),
        "issued_on": date(2026, 11, 21),
        "fee": Decimal("100000"),
        "copies": 3,
        "online": True,
        "unit": "000.00.00.G12",
        "first_doc": "Giấy chứng nhận",
    }


def test_defaults_fill_what_is_absent_and_required_fields_are_named() -> None:
    sparse = {"HoSo": {"MaHoSo": "X", "TrangThai": "TU_CHOI", "NgayQuyetDinh": "01/01/2026 08:00"},
              "KetQua": {"BanSao": []}}  # fmt: skip
    got = FieldMap.parse(MAPPING).apply(sparse)
    assert (got["issued_on"], got["fee"], got["online"], got["first_doc"]) == (None, "0", False, "")
    assert got["copies"] == 0
    with pytest.raises(ValidationFailed) as err:
        FieldMap.parse(MAPPING).apply({"HoSo": {}})
    assert (err.value.field, err.value.code) == ("dossier_code", "missing")


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"TrangThai": "LA"}, "status", "unknown_code"),
        ({"NgayQuyetDinh": "2026-11-20 02:05 PM"}, "decided_at", "wrong_type"),
        ({"TrucTuyen": "maybe"}, "online", "wrong_type"),
        ({"MaHoSo": {"nested": 1}}, "dossier_code", "wrong_type"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(
    change: dict[str, object], field: str, code: str
) -> None:
    document = {**DOCUMENT, "HoSo": {**DOCUMENT["HoSo"], **change}}
    with pytest.raises(ValidationFailed) as err:
        FieldMap.parse(MAPPING).apply(document)
    assert (err.value.field, err.value.code) == (field, code)


def test_every_mistake_of_a_mapping_file_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "name: broken\n"
        "fields:\n"
        "  a: {path: 'HoSo.[[['}\n"
        "  b: {path: x, table: nowhere}\n"
        "  c: {path: x, type: int, default: mot}\n"
        "  d: {path: x, value: 1}\n"
        "  e: {path: x, format: '%d'}\n"
        "tables: {}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        FieldMap.load(path)
    problems = "\n".join(err.value.problems)
    assert f"{path}:6: fields.d" in problems  # path and value both given
    assert f"{path}:7: fields.e" in problems  # a format on a string
    path.write_text(
        "fields:\n"
        "  a: {path: 'HoSo.[[['}\n"
        "  b: {path: x, table: nowhere}\n"
        "  c: {path: x, type: int, default: mot}\n"
        "  f: {path: x, type: date, format: '%Q'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        FieldMap.load(path)
    assert len(err.value.problems) == 4, err.value.problems
    lines = [p.split(": ")[0] for p in err.value.problems]
    assert lines == [f"{path}:2", f"{path}:3", f"{path}:4", f"{path}:5"]
    assert "not a JMESPath expression" in err.value.problems[0]
    assert "no table 'nowhere'" in err.value.problems[1]
    assert "whole number" in err.value.problems[2]
    assert "date format" in err.value.problems[3]


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        FieldMap.load(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError):
        FieldMap.parse("fields: [unclosed")
    with pytest.raises(ConfigError):
        FieldMap.parse("fields: {}")
