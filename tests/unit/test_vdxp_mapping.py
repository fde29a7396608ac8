"""The axis connector's pure parts: configuration, signing, the status policy file, links."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.vdxp.config import DossierLink, VdxpConfig
from connectors.vdxp.edxml import (
    KNOWN_NAMESPACES,
    NS_GO_VN_EDOC,
    NS_QCVN_102_2016,
    EdxmlCodec,
    EdxmlError,
)
from connectors.vdxp.mapping import (
    StatusPolicy,
    code_text,
    document_id_for,
    dossier_in,
    status_of,
    transfer_document,
)
from connectors.vdxp.protocol import SignatureError, SigningScheme, body_sha256
from hub.config import load_config
from hub.errors import ConfigError
from schemas.canonical import DossierStatus
from schemas.interagency import DocumentStatus, InterAgencyTransfer
from schemas.vdxp import DocumentCode, StatusCode, StatusMessage
from tests.unit.edxml_world import sample

ROOT = Path(__file__).resolve().parents[2]
ORGAN = "000.00.00.H41"
ENABLED: dict[str, Any] = {
    "enabled": True,
    "system_id": "hub-nghe-an",
    "secret": "bi-mat",
    "organ_id": ORGAN,
}


CODEC = EdxmlCodec(NS_QCVN_102_2016, 1 << 20, 1 << 20, accept=KNOWN_NAMESPACES)


def _refusal(call: Any, *args: Any) -> str:
    with pytest.raises(EdxmlError) as caught:
        call(*args)
    return caught.value.code


def _transfer(**extra: Any) -> InterAgencyTransfer:
    return InterAgencyTransfer.model_validate(
        {
            "transfer_id": "lt-0001",
            "dossier_code": f"{ORGAN}-261123-0001",
            "to": ["000.00.00.G12"],
            "subject": "Chuyển hồ sơ liên thông",
            "code_number": "12",
            "code_notation": "UBND-VP",
            **extra,
        }
    )


# -- configuration ----------------------------------------------------------------------------


def test_an_enabled_axis_needs_its_identity_and_secret() -> None:
    with pytest.raises(ValueError, match="system_id, organ_id, secret not set"):
        VdxpConfig(enabled=True)
    with pytest.raises(ValueError, match="not an agency code"):
        VdxpConfig.model_validate({**ENABLED, "accept_for": ["H41"]})
    with pytest.raises(ValueError, match="cannot exceed"):
        VdxpConfig.model_validate({**ENABLED, "max_document_bytes": 10, "max_attachment_bytes": 20})
    assert VdxpConfig.model_validate(ENABLED).own_organs == {ORGAN}


def test_the_dossier_link_needs_a_named_group() -> None:
    with pytest.raises(ValueError, match="group named dossier"):
        DossierLink(pattern=r"[0-9]+")


def test_an_enabled_axis_needs_a_subscriber_for_its_events() -> None:
    subscriber = {"url": "http://127.0.0.1:1/events", "events": ["payment.#"]}
    raw = {"connectors": {"vdxp": ENABLED}, "subscribers": {"one_stop": subscriber}}
    with pytest.raises(ConfigError) as caught:
        load_config(None, raw)
    assert "add vdxp.# to its events" in str(caught.value.problems)
    raw["subscribers"]["one_stop"]["events"] = ["vdxp.#"]
    assert load_config(None, raw).connectors.vdxp.enabled
    raw["connectors"]["vdxp"] = {**ENABLED, "deliver_to": "nobody"}
    with pytest.raises(ConfigError) as caught:
        load_config(None, raw)
    assert "not an enabled subscriber" in str(caught.value.problems)


def test_the_configuration_chooses_the_forms_written() -> None:
    assert VdxpConfig().date_format == "qcvn102"
    assert VdxpConfig().codec().date_format == "qcvn102"
    assert VdxpConfig(date_format="iso").codec().date_format == "iso"
    assert VdxpConfig(attachment_packaging="mime").codec().packaging == "mime"
    assert VdxpConfig().codec().packaging == "inline"


def test_the_configuration_reads_both_known_namespaces_by_default() -> None:
    assert VdxpConfig().codec().accepted == (NS_QCVN_102_2016, NS_GO_VN_EDOC)
    only = VdxpConfig(namespace=NS_GO_VN_EDOC, accept_namespaces=[]).codec()
    assert only.accepted == (NS_GO_VN_EDOC,)
    assert _refusal(only.parse_status, sample("status_qcvn102.xml")) == "wrong_namespace"
    with pytest.raises(ValueError, match="must not be empty"):
        VdxpConfig(accept_namespaces=[" "])


# -- signing ------------------------------------------------------------------------------------


def test_a_signed_request_verifies_and_any_change_is_refused() -> None:
    scheme = SigningScheme()
    digest = body_sha256(b'{"messagetype":"edoc"}')
    headers = scheme.headers("hub", "s3cret", "post", "/getEdoc", digest, now=1_000_000)

    def secrets(system: str) -> str | None:
        return {"hub": "s3cret"}.get(system)

    def nobody(system: str) -> str | None:
        return None

    def other(system: str) -> str | None:
        return "other"

    assert scheme.verify(headers, secrets, "POST", "/getEdoc", digest, now=1_000_010) == "hub"
    cases = [
        (headers, secrets, "POST", "/getEdocList", digest, 1_000_010, "does not match"),
        (headers, secrets, "POST", "/getEdoc", body_sha256(b"{}"), 1_000_010, "does not match"),
        (headers, other, "POST", "/getEdoc", digest, 1_000_010, "does not match"),
        (headers, nobody, "POST", "/getEdoc", digest, 1_000_010, "unknown system"),
        (headers, secrets, "POST", "/getEdoc", digest, 1_000_400, "away from now"),
        ({}, secrets, "POST", "/getEdoc", digest, 1_000_010, "missing signing headers"),
    ]
    for given, secret_of, method, path, body, now, reason in cases:
        with pytest.raises(SignatureError, match=reason):
            scheme.verify(given, secret_of, method, path, body, now)


def test_the_canonical_string_follows_the_configured_components() -> None:
    scheme = SigningScheme(components=("timestamp", "system", "path"), separator="|")
    assert scheme.canonical("POST", "/sendEdoc", "17", "hub", "ab") == "17|hub|/sendEdoc"


# -- the status policy file ----------------------------------------------------------------------


def test_the_shipped_policy_keeps_the_dossier_status_for_every_code() -> None:
    policy = StatusPolicy.load(ROOT / "mappings" / "vdxp.yaml")
    assert {policy.step_status(code) for code in StatusCode} == {"keep"}


def test_policy_mistakes_are_named_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "vdxp.yaml"
    path.write_text('dossier_status:\n  "01": keep\n  "07": keep\n  "06": 11\n  "05": 9\n')
    with pytest.raises(ConfigError) as caught:
        StatusPolicy.load(path)
    problems = caught.value.problems
    assert len(problems) == 2
    assert ":3:" in problems[0]
    assert "not an edXML StatusCode" in problems[0]
    assert ":4:" in problems[1]
    assert "neither keep nor" in problems[1]
    path.write_text('dossier_status:\n  "06": 9\n  5: keep\n')
    policy = StatusPolicy.load(path)
    assert policy.step_status(StatusCode.completed) is DossierStatus.processed
    assert policy.step_status(StatusCode.processing) == "keep"
    path.write_text("statuses: {}\n")
    with pytest.raises(ConfigError, match="no dossier_status table"):
        StatusPolicy.load(path)


# -- transfers and links ---------------------------------------------------------------------


def test_a_transfer_becomes_a_new_document_from_the_province() -> None:
    config = VdxpConfig.model_validate({**ENABLED, "organ_name": "UBND tỉnh Nghệ An"})
    transfer = _transfer(signer_name="Nguyễn Văn B", due_date="2026-12-01")
    now = datetime(2026, 11, 23, 18, 30, tzinfo=UTC)  # 01:30 on the 24th in Vietnam
    document_id = document_id_for(config, transfer, now)
    assert document_id == f"{ORGAN},2026/11/24,lt-0001"
    doc = transfer_document(config, transfer, (), document_id, now)
    header = doc.header
    assert header.from_org.organ_id == ORGAN
    assert header.from_org.organ_name == "UBND tỉnh Nghệ An"
    assert [o.organ_id for o in header.to_orgs] == ["000.00.00.G12"]
    assert code_text(header.code) == "12/UBND-VP"
    assert header.signer is not None
    assert header.signer.full_name == "Nguyễn Văn B"
    assert header.promulgation.date.isoformat() == "2026-11-24"
    assert doc.trace.business.doc_type == 0
    assert doc.document_id == document_id


def test_a_document_names_its_dossier_where_the_link_says() -> None:
    config = VdxpConfig.model_validate(ENABLED)
    header = transfer_document(
        config,
        _transfer(subject="Trả kết quả hồ sơ 000.00.53.H48-220921-0099 của công dân"),
        (),
        "d",
        datetime.now(UTC),
    ).header
    assert dossier_in(header, config.dossier_link) == "000.00.53.H48-220921-0099"
    assert dossier_in(header, DossierLink(fields=["content"])) is None
    assert code_text(DocumentCode(number="7")) == "7"


def test_a_status_is_one_step_of_its_dossier_with_a_stable_key() -> None:
    status = DocumentStatus(
        document_id="d-1",
        dossier_code=f"{ORGAN}-261123-0001",
        from_organ="000.00.00.G12",
        from_name="Bộ Tư pháp",
        status=StatusCode.accepted,
        description="Số đến 15",
        occurred_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )
    event = status.to_event(DossierStatus.processing)
    assert event.kind == "step"
    assert event.status is DossierStatus.processing
    assert event.step is not None
    assert event.step.content == "Bộ Tư pháp: Đã tiếp nhận (Số đến 15)"
    assert event.event_id == status.key == status.model_copy().key
    later = status.model_copy(update={"occurred_at": datetime(2026, 11, 23, 9, 1, tzinfo=UTC)})
    assert later.key != status.key
    message = status.to_message()
    assert message["type"] == "vdxp.status"
    assert message["status"] == "03"


def test_staff_info_reaches_the_status_event_and_the_dossier_step() -> None:
    msg = CODEC.parse_status(sample("status_qcvn102_staff.xml"))
    status = status_of(msg, "000.00.41.H41-261123-0027")
    assert (status.department, status.handler_name) == (
        "Cục Hộ tịch, quốc tịch, chứng thực",
        "Đặng Thu Trang",
    )
    message = status.to_message()
    assert message["department"] == "Cục Hộ tịch, quốc tịch, chứng thực"
    assert message["handler_name"] == "Đặng Thu Trang"
    assert "mobile" not in message
    assert "0912000111" not in str(message)
    step = status.to_event(DossierStatus.processing).step
    assert step is not None
    assert step.handler_name == "Đặng Thu Trang"
    assert step.department == "Cục Hộ tịch, quốc tịch, chứng thực (Bộ Tư pháp)"
    assert step.content == "Bộ Tư pháp: Đã tiếp nhận (Đã tiếp nhận, vào sổ văn bản đến số 4512)"
    # Who handled it does not make it another status: the key is the same without StaffInfo.
    bare = status_of(msg.model_copy(update={"staff_info": None}), status.dossier_code)
    assert bare.key == status.key
    assert (bare.department, bare.handler_name) == (None, None)
    bare_step = bare.to_event(DossierStatus.processing).step
    assert bare_step is not None
    assert (bare_step.department, bare_step.handler_name) == ("Bộ Tư pháp", None)


def test_a_department_alone_is_enough() -> None:
    msg = CODEC.parse_status(sample("status_go_vn_staff.xml"))
    step = status_of(msg, "000.00.41.H41-261123-0027").to_event(DossierStatus.processing).step
    assert step is not None
    assert (step.department, step.handler_name) == ("Văn phòng Bộ (000.00.00.G12)", None)


def test_status_message_keeps_staff_info_written_by_the_hub() -> None:
    msg = StatusMessage.model_validate(
        {
            "response_for": {"organ_id": "000.00.41.H41", "code": "1", "document_id": "d"},
            "from_org": {"organ_id": "000.00.00.G12"},
            "staff_info": {"department": "Văn thư", "staff": "Nguyễn Thị Lan"},
            "status_code": "01",
            "timestamp": "2026-03-20T14:05:30+07:00",
        }
    )
    built = CODEC.build_status(msg).decode()
    assert "<edXML:StaffInfo><edXML:Department>Văn thư</edXML:Department>" in built


def test_a_failing_axis_is_polled_with_a_doubling_back_off() -> None:
    from connectors.vdxp.config import AxisPollConfig
    from connectors.vdxp.intake import next_wait_s

    poll = AxisPollConfig(interval_s=15, backoff_initial_s=5, backoff_max_s=60)
    assert [next_wait_s(poll, n) for n in range(6)] == [15, 5, 10, 20, 40, 60]
    assert next_wait_s(poll, 10_000) == 60


def test_check_config_names_the_axis_and_a_broken_status_policy(tmp_path: Path) -> None:
    import shutil

    import yaml
    from click.testing import CliRunner

    from hub.cli import main

    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    subscriber = {"url": "http://127.0.0.1:1/events", "events": ["vdxp.#"]}
    raw = {
        "mappings_dir": str(mappings),
        "connectors": {"vdxp": ENABLED},
        "subscribers": {"one_stop": subscriber},
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = CliRunner().invoke(main, ["check-config", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert f"document axis: http://127.0.0.1:8097 as {ORGAN}" in result.output
    assert "(also reading http://www.go.vn/eDoc), dates qcvn102, attachments inline" in (
        result.output
    )
    (mappings / "vdxp.yaml").write_text('dossier_status:\n  "01": keep\n  "99": keep\n')
    result = CliRunner().invoke(main, ["check-config", "-c", str(path)])
    assert result.exit_code == 1
    assert "vdxp.yaml:3:" in result.output


def test_a_document_with_or_without_content_refuses_repeated_attachment_ids() -> None:
    from pydantic import ValidationError

    from schemas.vdxp import Attachment, AttachmentReference, EdocDocument, EdocManifest

    config = VdxpConfig.model_validate(ENABLED)
    doc = transfer_document(config, _transfer(), (), "d-1", datetime.now(UTC))
    parts = {"header": doc.header, "trace": doc.trace}
    full = Attachment(attachment_id="a", name="a.pdf", content_type="application/pdf", content=b"x")
    ref = AttachmentReference(
        attachment_id="a", name="a.pdf", content_type="application/pdf", size_bytes=1
    )
    assert EdocDocument(**parts, attachments=(full,)).document_id == "d-1"
    assert EdocManifest(**parts, attachments=(ref,)).document_id == "d-1"
    with pytest.raises(ValidationError, match="must be unique"):
        EdocDocument(**parts, attachments=(full, full))
    with pytest.raises(ValidationError, match="must be unique"):
        EdocManifest(**parts, attachments=(ref, ref))
