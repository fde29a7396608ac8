"""A ministry mapping's expressions are checked before anything runs: against the JMESPath
functions, the dossier record, a WSDL's types and a REST system's samples. Every refusal names
the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import jmespath
import pytest
import yaml
import zeep
import zeep.helpers
from lxml import etree

from connectors.ministry.checks import RECORD
from connectors.ministry.config import MinistryConfig
from connectors.ministry.mapping import MinistryMapping, as_json
from connectors.ministry.shapes import ANY, Checker, Shape, value_shape
from connectors.ministry.soap import SoapClient
from connectors.ministry.wsdl import reply_shape
from hub.config import load_config
from hub.config_blocks import BreakerConfig, RetryConfig
from hub.errors import ConfigError
from hub.resilience import Guard
from hub.runtime import load_everything

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


# -- against a WSDL: what `hub check-config` (and the hub's start) refuses ----------------------

CADASTRE = ROOT / "tests" / "data" / "ministry_cadastre"
MAPPING_TEXT = (CADASTRE / "ministry_cadastre.yaml").read_text("utf-8")
SECTION = """\
subscribers:
  one_stop: {url: "http://127.0.0.1:9/events", token: t, events: ["ministry.#"]}
ministries:
  cadastre:
    kind: soap
    mapping: MAPPING
    procedures: ["1.004227"]
    soap: {wsdl: WSDL, address: "http://127.0.0.1:9/ws"}
    submit: {operation: guiHoSo}
    poll:
      operation: layKetQua
      params:
        tuThoiDiem: "$cursor"
        soLuong: "$limit"
      first_cursor: ""
"""


def check_config(tmp_path: Path, mapping: str = MAPPING_TEXT, section: str = SECTION) -> list[str]:
    """What `hub check-config` says of the cadastre system configured by `section`."""
    (tmp_path / "ministry_cadastre.yaml").write_text(mapping, encoding="utf-8")
    config_path = tmp_path / "hub.yaml"
    text = section.replace("MAPPING", str(tmp_path / "ministry_cadastre.yaml"))
    config_path.write_text(text.replace("WSDL", str(CADASTRE / "cadastre.wsdl")), "utf-8")
    try:
        load_everything(load_config(config_path), deep=True)
    except ConfigError as exc:
        return exc.problems
    return []


def line_of(text: str, snippet: str) -> int:
    """The line of the first line holding `snippet`."""
    return next(i for i, t in enumerate(text.splitlines(), 1) if snippet in t)


def test_the_cadastre_system_fits_its_wsdl(tmp_path: Path) -> None:
    assert check_config(tmp_path) == []
    newest = MAPPING_TEXT.replace(
        "cursor: thoiDiemTiepTheo", 'cursor: "max_by(ketQua, &thoiDiem).thoiDiem"'
    )
    assert check_config(tmp_path, newest) == []


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        (  # a submit field the WSDL does not have
            "    hoSo.chuSuDung: {path: owner_name, default: null}",
            "    hoSo.chuSudung: {path: owner_name, default: null}",
            "submit.fields.hoSo.chuSudung",
            "'chuSudung' is not an element of hoSo in the WSDL (it has maHoSo, maThuTuc, "
            "ngayNhan, chuSuDung)",
        ),
        (  # a misspelled result field
            "    result_id: {path: ma}",
            "    result_id: {path: maa}",
            "results.fields.result_id.path",
            "'maa' is not a field of ketQua (it has loaiBienDong, ma, maHoSo, noiDung, "
            "thoiDiem, trangThai)",
        ),
        (  # a date where the WSDL takes a time
            "    hoSo.ngayNhan: {path: received_at, type: datetime, default: null}",
            "    hoSo.ngayNhan: {path: received_at, type: date, default: null}",
            "submit.fields.hoSo.ngayNhan",
            "ngayNhan is xsd:dateTime in the WSDL, which a date field cannot fill",
        ),
        (  # a format for what zeep gives as an ISO 8601 time
            "    occurred_at: {path: thoiDiem, type: datetime}",
            "    occurred_at: {path: thoiDiem, type: datetime, format: '%d/%m/%Y %H:%M:%S'}",
            "results.fields.occurred_at",
            "leave format out",
        ),
        (  # a sort key the WSDL makes optional
            "  cursor: thoiDiemTiepTheo",
            '  cursor: "max_by(ketQua, &noiDung).thoiDiem"',
            "results.cursor",
            "max_by(): the key &noiDung may be null (ketQua.noiDung is optional in the WSDL "
            "(xsd:string, minOccurs=0))",
        ),
        (  # a number compared with text: never accepted
            '  accepted: "ketQua == `0`"',
            "  accepted: \"ketQua == '0'\"",
            "submit.accepted",
            "compares a number with text: never equal",
        ),
        (  # a field of a list
            "  cursor: thoiDiemTiepTheo",
            "  cursor: ketQua.thoiDiem",
            "results.cursor",
            "ketQua is a list, which has no fields; for each item write ketQua[].thoiDiem",
        ),
        (  # the list itself where one value is read
            "  cursor: thoiDiemTiepTheo",
            "  cursor: ketQua[].thoiDiem",
            "results.cursor",
            "gives a list: it must give a single value",
        ),
        (  # an accepted test that can never be true
            '  accepted: "ketQua == `0`"',
            "  accepted: soBienNhan",
            "submit.accepted",
            "gives text or null, never true",
        ),
    ],
)
def test_a_mapping_that_does_not_fit_the_wsdl_is_refused(
    tmp_path: Path, old: str, new: str, key: str, words: str
) -> None:
    assert old in MAPPING_TEXT
    text = MAPPING_TEXT.replace(old, new)
    problems = check_config(tmp_path, text)
    where = f"{tmp_path / 'ministry_cadastre.yaml'}:{line_of(text, new.strip())}: {key}: "
    assert any(p.startswith(where) and words in p for p in problems), problems


def test_a_required_element_no_field_fills_is_refused(tmp_path: Path) -> None:
    text = MAPPING_TEXT.replace("    hoSo.maThuTuc: {path: procedure_code}\n", "")
    (problem,) = check_config(tmp_path, text)
    assert problem == (
        f"{tmp_path / 'ministry_cadastre.yaml'}:{line_of(text, '  fields:')}: submit.fields: "
        "hoSo.maThuTuc (xsd:string) is required by the input of guiHoSo, but no field fills it"
    )


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        (
            '        tuThoiDiem: "$cursor"',
            '        tuThoiDiemm: "$cursor"',
            "ministries.cadastre.poll.params.tuThoiDiemm",
            "not a parameter of layKetQua (it has tuThoiDiem, soLuong)",
        ),
        (
            '      first_cursor: ""',
            '      first_cursor: "0"',
            "ministries.cadastre.poll.first_cursor",
            "'0' is not an xsd:dateTime for tuThoiDiem (ISO 8601, e.g. 2026-01-01T00:00:00+07:00)",
        ),
        (
            '        soLuong: "$limit"',
            '        soLuong: "$cursor"',
            "ministries.cadastre.poll.first_cursor",
            "is empty, but soLuong (xsd:int) is required",
        ),
        (
            '        soLuong: "$limit"',
            '        soLuong: "100"\n        tuThoiDiem2: "$limit"',
            "ministries.cadastre.poll.params.tuThoiDiem2",
            "not a parameter of layKetQua",
        ),
    ],
)
def test_poll_parameters_that_do_not_fit_the_wsdl_are_refused(
    tmp_path: Path, old: str, new: str, key: str, words: str
) -> None:
    assert old in SECTION
    section = SECTION.replace(old, new)
    problems = check_config(tmp_path, section=section)
    line = line_of(section, key.rsplit(".", 1)[-1] + ":")
    where = f"{tmp_path / 'hub.yaml'}:{line}: {key}: "
    assert any(p.startswith(where) and words in p for p in problems), problems


def test_a_required_poll_parameter_left_out_is_refused(tmp_path: Path) -> None:
    section = SECTION.replace('        soLuong: "$limit"\n', "")
    (problem,) = check_config(tmp_path, section=section)
    assert problem == (
        f"{tmp_path / 'hub.yaml'}:{line_of(section, 'params:')}: "
        "ministries.cadastre.poll.params: soLuong (xsd:int) is required by layKetQua: give it "
        "in params"
    )


# -- against a REST system's samples ------------------------------------------------------------

CIVIL = ROOT / "mappings" / "ministry_civil_status.yaml"


def civil(tmp_path: Path, old: str, new: str) -> list[str]:
    """The civil-status mapping, changed, beside a copy of its samples."""
    text = CIVIL.read_text("utf-8")
    assert old in text
    samples = ROOT / "mappings" / "ministries" / "civil_status"
    text = text.replace(old, new).replace("ministries/civil_status/", f"{samples}/")
    return refusals(text, "civil.yaml", tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        (
            "canBo, default",
            "canbo, default",
            "results.fields.handler_name.path",
            "'canbo' is not a field of duLieu[] (it has canBo, coQuan, ghiChu, id, maHoSo, "
            "soDangKy, thoiDiem, trangThai)",
        ),
        ("reference: id", "reference: maBienNhan", "submit.reference", "'maBienNhan' is not"),
        ("more: conTiep", "more: conTro", "results.more", "gives text, never true"),
        ("items: duLieu", "items: conTro", "results.items", "gives text, not a list of results"),
        ("push_items: ketQua", "push_items: ketQua[0]", "results.push_items", "a push holds a"),
    ],
)
def test_a_rest_mapping_is_checked_against_its_samples(
    tmp_path: Path, old: str, new: str, key: str, words: str
) -> None:
    problems = civil(tmp_path, old, new)
    line = line_of(CIVIL.read_text("utf-8").replace(old, new), new)
    assert any(p.startswith(f"civil.yaml:{line}: {key}: ") and words in p for p in problems), (
        problems
    )


def test_a_sample_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    text = LAND.read_text("utf-8") + "samples:\n  push: bad.json\n  poll: absent.json\n"
    poll, push = line_of(text, "poll: absent"), line_of(text, "push: bad")
    problems = refusals(text, "m.yaml", tmp_path)
    assert problems[0].startswith(f"m.yaml:{poll}: samples.poll: cannot read {tmp_path}/absent")
    assert problems[1].startswith(f"m.yaml:{push}: samples.push: {tmp_path}/bad.json is not JSON")


def test_a_soap_system_takes_no_reply_samples(tmp_path: Path) -> None:
    sample = tmp_path / "reply.json"
    sample.write_text('{"thoiDiemTiepTheo": null, "ketQua": []}', encoding="utf-8")
    text = MAPPING_TEXT + f"samples:\n  poll: {sample}\n"
    (problem,) = check_config(tmp_path, text)
    assert problem == (
        f"{tmp_path / 'ministry_cadastre.yaml'}:{line_of(text, 'poll: /')}: samples.poll: a SOAP "
        "system's replies are checked against its WSDL: samples.submit and samples.poll are "
        "for REST systems"
    )


# -- the reply shapes are what zeep gives ------------------------------------------------------

UNWRAPPED = """<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:t="urn:t"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema"
    targetNamespace="urn:t">
  <types><xs:schema targetNamespace="urn:t" elementFormDefault="qualified">
    <xs:element name="Hoi"><xs:complexType><xs:sequence>
      <xs:element name="Tu" type="xs:dateTime" minOccurs="0"/>
    </xs:sequence></xs:complexType></xs:element>
    <xs:element name="HoiResponse"><xs:complexType><xs:sequence>
      <xs:element name="DanhSach" minOccurs="0"><xs:complexType><xs:sequence>
        <xs:element name="Muc" maxOccurs="unbounded"><xs:complexType><xs:sequence>
          <xs:element name="Ma" type="xs:string"/>
          <xs:element name="Luc" type="xs:dateTime"/>
          <xs:element name="SoTien" type="xs:decimal" minOccurs="0"/>
        </xs:sequence></xs:complexType></xs:element>
      </xs:sequence></xs:complexType></xs:element>
    </xs:sequence></xs:complexType></xs:element>
  </xs:schema></types>
  <message name="In"><part name="p" element="t:Hoi"/></message>
  <message name="Out"><part name="p" element="t:HoiResponse"/></message>
  <portType name="P"><operation name="Hoi"><input message="t:In"/><output message="t:Out"/>
  </operation></portType>
  <binding name="B" type="t:P"><soap:binding style="document"
      transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="Hoi"><soap:operation soapAction="Hoi"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output>
    </operation></binding>
  <service name="S"><port name="P" binding="t:B">
    <soap:address location="http://127.0.0.1:9/"/></port></service>
</definitions>
"""
REPLIES = [
    (
        CADASTRE / "cadastre.wsdl",
        "layKetQua",
        '<dc:layKetQuaResponse xmlns:dc="urn:vn:gov:diachinh:lienthong:v3">'
        "<dc:thoiDiemTiepTheo>2026-12-06T12:18:47+07:00</dc:thoiDiemTiepTheo><dc:ketQua>"
        "<dc:ma>1</dc:ma><dc:maHoSo>H</dc:maHoSo><dc:trangThai>2</dc:trangThai>"
        "<dc:thoiDiem>2026-12-06T12:18:47+07:00</dc:thoiDiem><dc:loaiBienDong>x</dc:loaiBienDong>"
        "</dc:ketQua></dc:layKetQuaResponse>",
    ),
    (
        ROOT / "mappings" / "ministries" / "business_registration.wsdl",
        "LayDanhSachKetQua",
        '<t:LayDanhSachKetQuaResponse xmlns:t="urn:vn:dkkd:lienthong:v1"><t:MaLoi>00</t:MaLoi>'
        "<t:MocTiepTheo>3</t:MocTiepTheo><t:DanhSachKetQua><t:KetQua><t:MaKetQua>1</t:MaKetQua>"
        "<t:MaHoSo>H</t:MaHoSo><t:TrangThai>TU_CHOI</t:TrangThai><t:ThoiGian>x</t:ThoiGian>"
        "</t:KetQua></t:DanhSachKetQua></t:LayDanhSachKetQuaResponse>",
    ),
    (
        LAND.parent / "land_registry.wsdl",
        "GuiHoSoDatDai",
        '<d:GuiHoSoDatDaiResponse xmlns:d="urn:vn:datdai:dangky:v2"><d:ThanhCong>true'
        "</d:ThanhCong></d:GuiHoSoDatDaiResponse>",
    ),
    (
        None,  # zeep unwraps HoiResponse, then DanhSach: the reply is the list of Muc
        "Hoi",
        '<t:HoiResponse xmlns:t="urn:t"><t:DanhSach><t:Muc><t:Ma>A</t:Ma>'
        "<t:Luc>2026-12-06T12:18:47Z</t:Luc><t:SoTien>1.5</t:SoTien></t:Muc>"
        "</t:DanhSach></t:HoiResponse>",
    ),
]


def conforms(value: object, shape: Shape, at: str = "reply") -> list[str]:
    """Where `value` (plain JSON) is not what `shape` says."""
    if shape.is_any:
        return []
    kind = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    found = kind.get(type(value), "number")
    if found not in shape.kinds:
        return [f"{at}: {found}, not {shape.describe()}"]
    out: list[str] = []
    if isinstance(value, dict) and shape.fields is not None:
        if set(value) != set(shape.fields):
            out.append(f"{at}: keys {sorted(value)}, not {sorted(shape.fields)}")
        for key in set(value) & set(shape.fields):
            out += conforms(value[key], shape.fields[key], f"{at}.{key}")
    if isinstance(value, list) and shape.items is not None:
        for i, item in enumerate(value):
            out += conforms(item, shape.items, f"{at}[{i}]")
    if isinstance(value, str) and shape.text == "datetime" and "T" not in value:
        out.append(f"{at}: {value!r} is not ISO 8601 with a T")
    return out


@pytest.mark.parametrize(("wsdl_file", "operation", "body"), REPLIES)
def test_the_reply_shape_is_what_zeep_gives_as_plain_json(
    tmp_path: Path, wsdl_file: Path | None, operation: str, body: str
) -> None:
    if wsdl_file is None:
        wsdl_file = tmp_path / "t.wsdl"
        wsdl_file.write_text(UNWRAPPED, encoding="utf-8")
    client = zeep.Client(str(wsdl_file), settings=zeep.Settings(strict=True))  # type: ignore[no-untyped-call]
    op = client.bind()._binding._operations[operation]
    envelope = etree.fromstring(
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )
    reply = op.output.deserialize(envelope)
    value = as_json(zeep.helpers.serialize_object(reply, dict))  # type: ignore[no-untyped-call]
    shape = reply_shape(op)
    assert conforms(value, shape) == [], (value, shape)
    if wsdl_file.name == "t.wsdl":
        assert isinstance(value, list)
        assert value[0]["SoTien"] == 1.5


async def test_the_hub_checks_the_mapping_against_the_wsdl_as_it_starts(tmp_path: Path) -> None:
    """The hub itself reads the WSDL as the system's client starts (a URL included): a
    mapping that does not fit stops the start, with the same messages as check-config."""
    text = MAPPING_TEXT.replace("path: ma}", "path: maa}")
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    mapping = MinistryMapping.load(path)
    section = yaml.safe_load(SECTION)["ministries"]["cadastre"]
    section["soap"]["wsdl"] = str(CADASTRE / "cadastre.wsdl")
    config = MinistryConfig.model_validate(section)
    guard = Guard("ministry.cadastre", RetryConfig(attempts=1), BreakerConfig(), 100.0)
    client = SoapClient("cadastre", config, guard, CADASTRE, mapping)
    with pytest.raises(ConfigError) as caught:
        await client.load()
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:{line_of(text, 'maa')}: results.fields.result_id.path: ")
    await client.close()


def test_the_reference_lists_every_field_a_submit_mapping_reads() -> None:
    """docs/reference/mapping-syntax.md's table is the dossier record, field for field."""
    page = (ROOT / "docs" / "reference" / "mapping-syntax.md").read_text("utf-8")
    section = page.split("## What a submit mapping reads")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    listed = {row.split("`")[1]: row for row in rows}
    assert RECORD.fields is not None
    assert list(listed) == list(RECORD.fields)
    for name, shape in RECORD.fields.items():
        items = shape.items
        if items is not None and items.fields is not None:  # the fields of each item
            assert "{" + ", ".join(items.fields) + "}" in listed[name], name
