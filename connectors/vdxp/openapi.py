"""The document axis's paths in the OpenAPI document, with the models they read and reply
through (`connectors.vdxp.models`)."""

from __future__ import annotations

from typing import Any

from connectors.vdxp.models import (
    AxisState,
    Documents,
    DocumentWithStatuses,
    IntakeLog,
    RoundReport,
    TransferAccepted,
    TransferRequest,
)
from hub.openapi import content, operation, param

VERDICTS = ("accepted", "duplicate", "refused")

MULTIPART = {
    "schema": {
        "type": "object",
        "required": ["transfer"],
        "properties": {
            "transfer": {
                "type": "string",
                "contentMediaType": "application/json",
                "description": "the first part: the transfer as JSON (InterAgencyTransfer); "
                "its attachments list, if given, has one entry per file part",
            }
        },
        "additionalProperties": {
            "type": "string",
            "contentEncoding": "binary",
            "description": "then one file part per attachment, streamed to the spool (each "
            "within max_attachment_bytes); its file name and content type are used unless "
            "the transfer's attachments say otherwise",
        },
    }
}


def paths() -> dict[str, Any]:
    limit = param("limit", "query", "integer", minimum=1, maximum=1000)
    document_id = param("document_id", "query", "string", "document ids hold , and /")
    return {
        "/api/v1/vdxp": {"get": operation(
            "The document axis connector's state (vdxp.read)", AxisState, 401, 403
        )},
        "/api/v1/vdxp/transfers": {"post": operation(
            "Send a dossier to other agencies over the axis (vdxp.send)",
            TransferAccepted,
            400, 401, 403,
            (409, "the same transfer id is being accepted by another request"),
            413, 415,
            (422, "the dossier is unknown to the hub (unknown_dossier) or an agency is not on "
                  "the axis (unknown_organ)"),
            (503, "the axis's agency list cannot be read yet; retry"),
            status=202,
            answer="queued durably",
            body={**content(TransferRequest), "multipart/form-data": MULTIPART},
            replies={"200": {
                "description": "a transfer id the hub holds: the same answer, created false; "
                "nothing is sent again",
                "content": content(TransferAccepted),
            }},
        )},
        "/api/v1/vdxp/transfers/{transfer_id}": {"get": operation(
            "One transfer and its statuses (vdxp.read)",
            DocumentWithStatuses,
            401, 403, (404, "no such transfer"),
            params=[param("transfer_id", "path", "string")],
        )},
        "/api/v1/vdxp/document": {"get": operation(
            "One document, sent or received, and its statuses (vdxp.read)",
            DocumentWithStatuses,
            401, 403, (404, "no such document"),
            params=[document_id],
        )},
        "/api/v1/vdxp/documents": {"get": operation(
            "Documents, newest first (vdxp.read)",
            Documents,
            400, 401, 403,
            params=[
                param("direction", "query", "string", enum=["in", "out"]),
                param("dossier_code", "query", "string"),
                limit,
            ],
        )},
        "/api/v1/vdxp/attachment": {"get": operation(
            "One attachment's file, streamed (vdxp.read)",
            content(None, "*/*"),
            401, 403, (404, "no such document or attachment"),
            (410, "the attachment's file is no longer in the spool"),
            answer="the file, always as a download (Content-Disposition: attachment, "
            "X-Content-Type-Options: nosniff): in its own content type when browsers do not "
            "run it (PDF, PNG, JPEG, office documents, ...), otherwise "
            "application/octet-stream",
            params=[document_id, param("attachment_id", "query", "string")],
        )},
        "/api/v1/vdxp/intake": {"get": operation(
            "Items taken from the axis, newest first (vdxp.read)",
            IntakeLog,
            400, 401, 403,
            params=[param("verdict", "query", "string", enum=list(VERDICTS)), limit],
        )},
        "/api/v1/vdxp/poll": {"post": operation(
            "Take what waits on the axis now (vdxp.poll)",
            RoundReport,
            401, 403,
            replies={"502": {
                "description": "the round failed part-way: what it took, and why (error)",
                "content": content(RoundReport),
            }},
        )},
    }  # fmt: skip
