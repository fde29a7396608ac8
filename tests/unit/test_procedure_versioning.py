"""Classification of procedure changes and the lifecycle transitions (pure logic)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from connectors.national_portal.catalogue_mapping import CatalogueCodes, procedure_from_wire
from connectors.national_portal.procedures.lifecycle import (
    CREATED,
    LOCKED,
    UPDATED,
    Current,
    LockReason,
    State,
    on_record,
    on_removed,
)
from connectors.national_portal.procedures.versioning import ChangeKind, classify, record_json
from hub.errors import ValidationFailed
from sims.national_portal.catalogue import generate

ROOT = Path(__file__).resolve().parents[2]
CODES = CatalogueCodes.load(ROOT / "mappings" / "national_portal_catalogue.yaml")
UNIT = "000.00.00.H29"


def _records() -> list[dict[str, Any]]:
    return [record_json(procedure_from_wire(r, CODES, UNIT)) for r in generate(40, seed=3).values()]


def test_the_generated_catalogue_maps_whole() -> None:
    records = _records()
    assert len(records) == 40
    assert all(r["localized_code"] == f"{r['code']}.{UNIT}" for r in records)


@pytest.mark.parametrize(
    ("path", "value", "kind"),
    [
        (("name",), "Tên mới", ChangeKind.editorial),
        (("receiving_address",), "Địa chỉ mới", ChangeKind.editorial),
        (("conditions",), "Điều kiện mới", ChangeKind.substantive),
        (("online_payment",), True, ChangeKind.substantive),
        (("applicants",), ["Tổ chức"], ChangeKind.substantive),
    ],
)
def test_top_level_changes_are_classified(path: tuple[str, ...], value: Any, kind: str) -> None:
    before = _records()[0]
    after = copy.deepcopy(before)
    after[path[0]] = value if after[path[0]] != value else "x"
    assert classify(before, after).kind == kind


def test_a_fee_amount_is_substantive_and_its_description_editorial() -> None:
    before = next(
        r for r in _records() if any(t["fees"] for c in r["channels"] for t in c["time_limits"])
    )
    c, t = next(
        (ci, ti)
        for ci, ch in enumerate(before["channels"])
        for ti, tl in enumerate(ch["time_limits"])
        if tl["fees"]
    )
    amount = copy.deepcopy(before)
    amount["channels"][c]["time_limits"][t]["fees"][0]["amount_vnd"] += 1000
    found = classify(before, amount)
    assert found.kind is ChangeKind.substantive
    assert [d.path for d in found.diff] == [f"/channels/{c}/time_limits/{t}/fees/0/amount_vnd"]
    wording = copy.deepcopy(before)
    wording["channels"][c]["time_limits"][t]["fees"][0]["description"] = "Lệ phí (sửa lời)"
    found = classify(before, wording)
    assert found.kind is ChangeKind.editorial
    assert found.diff[0].substantive is False


def test_a_document_added_is_substantive_and_a_renamed_one_editorial() -> None:
    before = _records()[1]
    added = copy.deepcopy(before)
    added["documents"][0]["documents"].append(
        {"code": "GT9", "name": "Bản sao", "form_name": "", "form_url": "",
         "originals": 0, "copies": 1}
    )  # fmt: skip
    assert classify(before, added).kind is ChangeKind.substantive
    renamed = copy.deepcopy(before)
    renamed["documents"][0]["documents"][0]["name"] += " (mẫu mới)"
    assert classify(before, renamed).kind is ChangeKind.editorial
    copies = copy.deepcopy(before)
    copies["documents"][0]["documents"][0]["copies"] += 1
    assert classify(before, copies).kind is ChangeKind.substantive


def test_identical_records_are_unchanged_and_a_locked_one_is_reinstated() -> None:
    record = _records()[2]
    assert classify(record, copy.deepcopy(record)).kind is ChangeKind.unchanged
    assert classify(record, copy.deepcopy(record), previous_locked=True).kind is (
        ChangeKind.reinstated
    )


def _current(record: dict[str, Any], state: State = State.active) -> Current:
    return Current(record["code"], 3, 2, state, record)


def test_lifecycle_transitions() -> None:
    record = _records()[4]
    created = on_record(None, record)
    assert created is not None
    assert (created.event_type, created.version, created.new_version) == (CREATED, 1, True)
    assert created.event_id == f"{record['code']}/v1r0/created"
    assert on_record(_current(record), record) is None

    editorial = on_record(_current(record), {**record, "name": "Tên khác"})
    assert editorial is not None
    assert (editorial.event_type, editorial.version, editorial.revision) == (UPDATED, 3, 3)
    assert editorial.lock_version is None

    substantive = on_record(_current(record), {**record, "conditions": "Mới"})
    assert substantive is not None
    assert (substantive.version, substantive.revision, substantive.lock_version) == (4, 0, 3)
    assert substantive.lock_reason is LockReason.superseded

    unpublished = on_record(_current(record), {**record, "published": False})
    assert unpublished is not None
    assert (unpublished.event_type, unpublished.state) == (LOCKED, State.locked)
    assert on_record(None, {**record, "published": False}) is None

    removed = on_removed(_current(record))
    assert removed is not None
    assert removed.lock_reason is LockReason.removed
    assert on_removed(_current(record, State.locked)) is None

    back = on_record(_current(record, State.locked), record)
    assert back is not None
    assert (back.change, back.version, back.lock_version) == (ChangeKind.reinstated, 4, None)


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"MATTHC": ""}, "MATTHC", "missing"),
        ({"MATTHC": "ABC"}, "MATTHC", "bad_code"),
        ({"TENTTHC": None}, "TENTTHC", "missing"),
        ({"CACHTHUCTHUCHIEN": [{"KENH": "9", "THOIGIAN": []}]}, "KENH", "bad_code"),
        ({"THANHPHANHOSO": [{"GIAYTO": [{"TENGIAYTO": "x", "SOBANSAO": "hai"}]}]}, "SOBANSAO",
         "bad_count"),
        ({"TENTTHC": "x" * 9000}, "TENTTHC", "wrong_type"),
        ({"CAPTHUCHIEN": {"TENCAP": "x"}}, "CAPTHUCHIEN", "wrong_type"),
    ],
)  # fmt: skip
def test_bad_records_name_the_field(change: dict[str, Any], field: str, code: str) -> None:
    record = {**next(iter(generate(1, seed=5).values())), **change}
    with pytest.raises(ValidationFailed) as caught:
        procedure_from_wire(record, CODES, UNIT)
    assert field in (caught.value.field or "")
    assert caught.value.code == code


def test_times_have_one_spelling_and_units_match_loosely() -> None:
    record = next(iter(generate(1, seed=6).values()))
    record["CACHTHUCTHUCHIEN"] = [
        {"KENH": "1", "THOIGIAN": [
            {"THOIGIANGIAIQUYET": "05,0", "DONVITINH": "  NGÀY LÀM VIỆC ", "PHILEPHI": []}]}
    ]  # fmt: skip
    procedure = procedure_from_wire(record, CODES, UNIT)
    limit = procedure.channels[0].time_limits[0]
    assert (str(limit.amount), limit.unit.value) == ("5", "working_day")


def test_nulls_are_absent_values_and_long_text_is_refused_by_name() -> None:
    from pydantic import ValidationError

    from schemas.national_portal import WireDossier

    dossier = WireDossier.model_validate({"MaHoSo": "x", "TrangThaiHoSo": "1", "TenTTHC": None})
    assert dossier.TenTTHC is None
    with pytest.raises(ValidationError) as caught:
        WireDossier.model_validate({"MaHoSo": "x", "TrangThaiHoSo": "1", "TenTTHC": "x" * 5000})
    assert caught.value.errors()[0]["loc"] == ("TenTTHC",)
