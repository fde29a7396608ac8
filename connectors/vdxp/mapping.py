"""Between the axis's wire models and the hub's canonical ones, and the status policy file.

* `transfer_document`: an `InterAgencyTransfer` (with its attachments already on disk) as
  the edXML document the hub sends, From the province's agency To the targets.
* `status_of`: a received status message as a canonical `DocumentStatus`.
* `dossier_in`: the dossier code a received document names (`connectors.vdxp.dossier_link`).
* `StatusPolicy` (`mappings/vdxp.yaml`): the dossier status each edXML StatusCode's processing
  step carries, `keep` (the default) meaning the dossier's own status, so another agency's
  "processing" never moves the dossier's status at the one-stop; a province may choose
  otherwise per code.

This module must never talk to the axis or the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.vdxp.config import DossierLink, VdxpConfig
from connectors.vdxp.edxml import SpooledAttachment, SpooledDocument
from connectors.vdxp.store import StepStatus, StoredAttachment
from hub.errors import ConfigError
from hub.fieldmap import read_yaml
from schemas.canonical import DossierStatus
from schemas.interagency import DocumentStatus, InterAgencyTransfer
from schemas.vdxp import (
    VIETNAM_TZ,
    Business,
    BusinessDocType,
    DocumentCode,
    DocumentType,
    MessageHeader,
    Organization,
    PromulgationInfo,
    SignerInfo,
    StatusCode,
    StatusMessage,
    TraceHeader,
    TraceHeaderList,
)


def document_id_for(config: VdxpConfig, transfer: InterAgencyTransfer, now: datetime) -> str:
    """`<agency>,<yyyy/mm/dd>,<transfer id>`: the edXML DocumentId of a transfer (the shape
    axis documents use: sender, date, then the sender's own identifier)."""
    return f"{config.organ_id},{now.astimezone(VIETNAM_TZ):%Y/%m/%d},{transfer.transfer_id}"


def transfer_document(
    config: VdxpConfig,
    transfer: InterAgencyTransfer,
    attachments: tuple[SpooledAttachment, ...],
    document_id: str,
    now: datetime,
) -> SpooledDocument:
    local = now.astimezone(VIETNAM_TZ)
    signer = None
    if transfer.signer_name or transfer.signer_position or transfer.signer_competence:
        signer = SignerInfo(
            competence=transfer.signer_competence,
            position=transfer.signer_position,
            full_name=transfer.signer_name,
        )
    header = MessageHeader(
        from_org=Organization(organ_id=config.organ_id, organ_name=config.organ_name or None),
        to_orgs=tuple(Organization(organ_id=o) for o in transfer.to),
        code=DocumentCode(number=transfer.code_number, notation=transfer.code_notation),
        promulgation=PromulgationInfo(place=transfer.promulgation_place, date=local.date()),
        document_type=DocumentType(
            type_code=transfer.document_type, type_name=transfer.document_type_name
        ),
        subject=transfer.subject,
        content=transfer.content,
        signer=signer,
        due_date=transfer.due_date,
        steering_type=transfer.steering_type,
        document_id=document_id,
    )
    trace = TraceHeaderList(
        trace_headers=(TraceHeader(organ_id=config.organ_id, timestamp=local),),
        business=Business(doc_type=BusinessDocType.new, document_id=document_id),
    )
    return SpooledDocument(header=header, trace=trace, attachments=attachments)


def stored_attachments(attachments: Iterable[SpooledAttachment]) -> list[StoredAttachment]:
    """What the store keeps of spooled attachments: their files by name within the folder."""
    return [
        StoredAttachment(
            attachment_id=a.attachment_id,
            name=a.name,
            content_type=a.content_type,
            size_bytes=a.size_bytes,
            file=a.path.name,
            description=a.description,
        )
        for a in attachments
    ]


def code_text(code: DocumentCode) -> str:
    return f"{code.number}/{code.notation}" if code.notation else code.number


def status_of(message: StatusMessage, dossier_code: str | None) -> DocumentStatus:
    """A received status message as the hub keeps it: with its StaffInfo's Department and
    Staff (the mobile and e-mail stay out: the one-stop and DVCQG have no field for them)."""
    staff = message.staff_info
    return DocumentStatus(
        document_id=message.response_for.document_id,
        dossier_code=dossier_code,
        from_organ=message.from_org.organ_id,
        from_name=message.from_org.organ_name,
        status=message.status_code,
        description=message.description,
        occurred_at=message.timestamp,
        department=None if staff is None else staff.department,
        handler_name=None if staff is None else staff.staff,
    )


def dossier_in(header: MessageHeader, link: DossierLink) -> str | None:
    """The first dossier code the link's pattern finds in the configured header fields."""
    pattern = re.compile(link.pattern)
    values = {
        "subject": header.subject,
        "content": header.content,
        "code_number": header.code.number,
        "code_notation": header.code.notation,
    }
    for name in link.fields:
        text = values.get(name)
        if text:
            found = pattern.search(text)
            if found:
                return found.group("dossier")
    return None


@dataclass(frozen=True)
class StatusPolicy:
    steps: dict[StatusCode, StepStatus]

    def step_status(self, code: StatusCode) -> StepStatus:
        return self.steps.get(code, "keep")

    @classmethod
    def load(cls, path: Path) -> StatusPolicy:
        """Read the policy file; `ConfigError` names the file and line of each mistake."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}", [f"{path}: {exc.strerror}"]) from None
        document, where = read_yaml(text, str(path))
        table = document.get("dossier_status") if isinstance(document, dict) else None
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path} has no dossier_status table",
                [where((), "dossier_status must map StatusCode to keep or a dossier status")],
            )
        steps: dict[StatusCode, StepStatus] = {}
        problems: list[str] = []
        for raw_code, value in table.items():
            loc = ("dossier_status", str(raw_code))
            try:
                code = StatusCode(str(raw_code).zfill(2))
            except ValueError:
                problems.append(where(loc, f"{raw_code!r} is not an edXML StatusCode"))
                continue
            step = _step(value)
            if step is None:
                problems.append(where(loc, f"{value!r} is neither keep nor a dossier status 1-10"))
                continue
            steps[code] = step
        if problems:
            raise ConfigError(f"{len(problems)} problem(s) in {path}", problems)
        return cls(steps)


def _step(value: Any) -> StepStatus | None:
    if value == "keep":
        return "keep"
    try:
        return DossierStatus(int(value))
    except (TypeError, ValueError):
        return None
