"""Vendor status tables (mappings/*.yaml) translated to the canonical status."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigError, ValidationFailed
from hub.status_mapping import StatusTable, Translation, load_tables
from schemas.canonical import DossierStatus

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
S = DossierStatus


@pytest.fixture(scope="module")
def generic() -> StatusTable:
    return StatusTable.load(MAPPINGS / "one_stop_generic.yaml")


@pytest.fixture(scope="module")
def vendor() -> StatusTable:
    return StatusTable.load(MAPPINGS / "one_stop_sample_vendor.yaml")


def test_shipped_tables_load_with_their_names(generic: StatusTable, vendor: StatusTable) -> None:
    assert generic.name == "one_stop_generic"
    assert vendor.name == "one_stop_sample_vendor"


@pytest.mark.parametrize("status", list(DossierStatus))
def test_generic_table_passes_dvcqg_codes_through(
    generic: StatusTable, status: DossierStatus
) -> None:
    code = str(int(status))
    assert generic.translate(code) == Translation(status, None, code)
    assert generic.translate(int(status)).status is status
    assert generic.translate(f" {code} ").status is status


@pytest.mark.parametrize(
    ("code", "status", "sub_status"),
    [
        ("MOI_DANG_KY", S.submitted, None),
        ("TIEP_NHAN", S.accepted, None),
        ("TU_CHOI_TIEP_NHAN", S.refused, None),
        ("DANG_XU_LY", S.processing, None),
        ("DANG_XU_LY.THAM_DINH", S.processing, "appraisal"),
        ("DANG_XU_LY.XAC_MINH", S.processing, "field_check"),
        ("DANG_XU_LY.TRINH_KY", S.processing, "awaiting_signature"),
        ("DANG_XU_LY.LIEN_THONG", S.processing, "inter_agency"),
        ("CHO_BO_SUNG", S.supplement_requested, None),
        ("CHO_NOP_PHI", S.payment_requested, None),
        ("CONG_DAN_RUT", S.withdrawn, None),
        ("DUNG_XU_LY", S.stopped, None),
        ("DA_XU_LY", S.processed, None),
        ("DA_XU_LY.CHO_TRA", S.processed, "awaiting_pickup"),
        ("DA_TRA_KET_QUA", S.returned, None),
    ],
)
def test_vendor_table_with_sub_statuses(
    vendor: StatusTable, code: str, status: DossierStatus, sub_status: str | None
) -> None:
    assert vendor.translate(code, "vendor_status") == Translation(status, sub_status, code)


@pytest.mark.parametrize(
    ("table_name", "code"),
    [
        ("one_stop_generic", "11"),
        ("one_stop_generic", "0"),
        ("one_stop_generic", "processing"),
        ("one_stop_generic", None),
        ("one_stop_generic", 4.0),
        ("one_stop_sample_vendor", "dang_xu_ly"),
        ("one_stop_sample_vendor", "DANG_XU_LY.KHONG_CO"),
        ("one_stop_sample_vendor", "4"),
        ("one_stop_sample_vendor", ""),
    ],
)
def test_unknown_code_is_refused_naming_the_table(table_name: str, code: object) -> None:
    table = StatusTable.load(MAPPINGS / f"{table_name}.yaml")
    with pytest.raises(ValidationFailed) as info:
        table.translate(code, "TrangThaiHoSo")
    assert info.value.field == "TrangThaiHoSo"
    assert info.value.code == "unknown_status"
    assert repr(table_name) in info.value.message
    assert repr(code) in info.value.message


def test_table_naming_unknown_canonical_status_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken_vendor.yaml"
    path.write_text(
        "name: broken_vendor\nstatuses:\n"
        '  "A": {status: processing}\n'
        '  "B": {status: finished}\n'
        '  "C": {status: Processing}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        StatusTable.load(path)
    assert str(path) in info.value.message
    problems = info.value.problems
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}: statuses.B: 'finished' is not one of ")
    assert problems[1].startswith(f"{path}: statuses.C: 'Processing' is not one of ")
    assert "supplement_requested" in problems[0]  # lists the valid names


@pytest.mark.parametrize(
    ("text", "dotted"),
    [
        ("name: t\nstatuses: {}\n", "statuses"),
        ("statuses:\n  A: {status: processing}\n", "name"),
        ("name: t\nstatuses:\n  A: {status: processing, colour: red}\n", "statuses.A.colour"),
        ("name: t\nstatuses:\n  A: {label: x}\n", "statuses.A.status"),
    ],
)
def test_malformed_table_names_file_and_key(tmp_path: Path, text: str, dotted: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        StatusTable.load(path)
    assert any(p.startswith(f"{path}: {dotted}: ") for p in info.value.problems), (
        info.value.problems
    )


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [oops\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        StatusTable.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        StatusTable.load(tmp_path / "absent.yaml")


def test_load_tables_loads_what_configuration_names() -> None:
    tables = load_tables(MAPPINGS, {"one_stop_generic", "one_stop_sample_vendor"})
    assert set(tables) == {"one_stop_generic", "one_stop_sample_vendor"}
    assert tables["one_stop_sample_vendor"].translate("DA_XU_LY").status is S.processed


def test_load_tables_lists_every_failing_table(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(
        "name: good\nstatuses:\n  X: {status: returned}\n", encoding="utf-8"
    )
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nstatuses:\n  X: {status: nope}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_tables(tmp_path, {"good", "bad", "absent"})
    text = "\n".join(info.value.problems)
    assert str(tmp_path / "bad.yaml") in text
    assert "statuses.X" in text
    assert str(tmp_path / "absent.yaml") in text
    assert "good.yaml" not in text
