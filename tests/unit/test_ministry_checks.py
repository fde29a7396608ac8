"""A ministry mapping's expressions are checked before anything runs: against the JMESPath
functions, the dossier record, a WSDL's types and a REST system's samples. Every refusal names
the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import jmespath
import pytest

from connectors.ministry.checks import RECORD
from connectors.ministry.mapping import MinistryMapping
from connectors.ministry.shapes import ANY, Checker, Shape, value_shape
from hub.config import load_config
from hub.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
LAND = ROOT / "tests" / "data" / "ministry_land" / "ministry_land_registry.yaml"


def problems_of(expression: str, shape: Shape) -> list[str]:
    checker = Checker()
    checker.check(jmespath.compile(expression), shape)
    return checker.problems


def refusals(text: str, name: str = "m.yaml", base: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        MinistryMapping.parse(text, name, base)
    return caught.value.problems


# -- the checker --------------------------------------------------------------------------------

REPLY = value_shape(
    {"MaLoi": "00", "Moc": 7, "KetQua": [{"Ma": "A", "Luc": "2026-01-02T10:00:00+07:00"}]},
    "the reply",
)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("MaLo", "'MaLo' is not a field of the reply (it has KetQua, MaLoi, Moc)"),
        ("KetQua.Ma", "for each item write KetQua[].Ma"),
        ("KetQua[0].Maa", "'Maa' is not a field of KetQua[] (it has Luc, Ma)"),
        ("lenght(KetQua)", "lenght() is not a JMESPath function"),
        ("length(KetQua, Moc)", "length() takes 1 argument(s), not 2"),
        ("length(Moc)", "length() takes text or a list or an object, but Moc is a number"),
        ("MaLoi == `0`", "compares text with a number: never equal"),
        ("MaLoi > `0`", "orders text against a number"),
        ("sum(KetQua[].Ma)", "sum() takes a list of all a number, but the items of KetQua[].Ma"),
        ("max_by(KetQua, Ma)", "max_by(): argument 2 must be an &expression"),
        ("Moc[0]", "[0] takes a list, but Moc is a number"),
    ],
)
def test_what_cannot_work_is_named(expression: str, words: str) -> None:
    found = problems_of(expression, REPLY)
    assert any(words in p for p in found), found


@pytest.mark.parametrize(
    "expression",
    [
        "MaLoi == '00'",
        "max_by(KetQua, &Luc).Luc",
        "join(', ', KetQua[].Ma)",
        "length(KetQua)",
        "KetQua[?Ma == 'A'] | [0].Luc",
        "not_null(MaLoi, '')",
        "{a: MaLoi, b: KetQua[0].Ma}",
        "Moc && to_string(Moc)",
    ],
)
def test_what_works_passes(expression: str) -> None:
    assert problems_of(expression, REPLY) == []


def test_nothing_is_known_inside_any_but_functions_still_are() -> None:
    assert problems_of("a.b[0].c || length(d)", ANY) == []
    assert problems_of("foo(a)", ANY) != []


def test_an_optional_value_may_be_null_and_a_test_or_a_filter_says_it_is_there() -> None:
    assert "may be null" in problems_of("length(owner_name)", RECORD)[0]
    assert problems_of("owner_name && length(owner_name)", RECORD) == []
    assert problems_of("length(owner_name || '')", RECORD) == []
    (problem,) = problems_of("max_by(fees, &amount_vnd).name", RECORD)
    assert "max_by(fees[?amount_vnd], &amount_vnd)" in problem
    assert problems_of("max_by(fees[?amount_vnd], &amount_vnd).name", RECORD) == []


# -- submit fields read the dossier record ------------------------------------------------------


def test_a_misspelled_record_field_is_refused_with_file_line_and_key() -> None:
    text = LAND.read_text("utf-8").replace("path: procedure_code", "path: procedure_cod")
    (problem,) = refusals(text)
    assert problem.startswith(
        "m.yaml:10: submit.fields.ThongTinHoSo.MaThuTuc.path: 'procedure_cod' is not a field "
        "of the dossier record (it has applicant_id, "
    )


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ("{path: submitted_documents}", "type string cannot take it: submitted_documents gives a"),
        ("{path: received_at, type: datetime, format: '%d/%m/%Y'}", "leave format out"),
        ("{path: fees.amount_vnd, default: null}", "for each item write fees[].amount_vnd"),
        ("{path: 'length(summary)', default: null}", "length(): summary may be null"),
    ],
)
def test_a_record_field_its_type_cannot_take_is_refused(field: str, words: str) -> None:
    text = LAND.read_text("utf-8").replace("{path: owner_name, default: null}", field)
    (problem,) = refusals(text)
    assert problem.startswith("m.yaml:12: submit.fields.ThongTinHoSo.ChuSuDung"), problem
    assert words in problem


def test_the_shipped_mappings_pass() -> None:
    for path in [*(ROOT / "mappings").glob("ministry_*.yaml"), LAND]:
        MinistryMapping.load(path)


# -- placeholders -------------------------------------------------------------------------------


def test_an_unknown_placeholder_is_refused_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(
        "ministries:\n"
        "  land:\n"
        "    kind: soap\n"
        f"    mapping: {LAND}\n"
        "    soap: {wsdl: land_registry.wsdl}\n"
        "    poll:\n"
        "      operation: TraCuuCapNhat\n"
        "      params:\n"
        '        MocThoiGian: "$cursr"\n'
        '        ToiDa: "$limit"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.startswith(
        f"{path}:9: ministries.land.poll.params.MocThoiGian: Value error, $cursr is not a "
        "placeholder: use $cursor"
    )
