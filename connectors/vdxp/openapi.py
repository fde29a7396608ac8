"""The document axis's paths in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from hub.openapi import errors, get_op, param

VERDICTS = ("accepted", "duplicate", "refused")


def paths() -> dict[str, Any]:
    limit = param("limit", "query", "integer", minimum=1, maximum=1000)
    document = (
        "document_id, direction (in | out), transfer_id, dossier_code, from_organ, to_organs, "
        "code, subject, business_type, attachments (attachment_id, name, content_type, "
        "size_bytes, description), state (queued | sent | refused | received), axis_id, detail, "
        "created_at, updated_at"
    )
    with_statuses = (
        document + ", statuses (from_organ, status, description, occurred_at, "
        "received_at) in the order they happened"
    )
    transfer = (
        "An InterAgencyTransfer (transfer_id, dossier_code, to: agency codes, subject, "
        "code_number, code_notation, document_type, document_type_name, content, "
        "promulgation_place, signer_competence, signer_position, signer_name, due_date, "
        "steering_type, attachments: name, content_type, description). As JSON, each "
        "attachment also carries content_base64; as multipart/form-data, a first part named "
        "transfer holds the JSON and one file part follows per attachment."
    )
    return {
        "/api/v1/vdxp": get_op(
            "The document axis connector's state (vdxp.read)",
            "organ_id, axis, circuit, agencies, last_poll, last_error",
            [],
            401, 403,
        ),
        "/api/v1/vdxp/transfers": {
            "post": {
                "summary": "Send a dossier to other agencies over the axis (vdxp.send)",
                "description": transfer,
                "requestBody": {
                    "content": {"application/json": {}, "multipart/form-data": {}}
                },
                "responses": {
                    "202": {
                        "description": "queued durably: " + document + ", created: true",
                        "content": {"application/json": {}},
                    },
                    "200": {
                        "description": "a transfer id the hub holds: the same answer, "
                        "created: false; nothing is sent again",
                        "content": {"application/json": {}},
                    },
                    **errors(400, 401, 403, 409, 413, 415, 422, 503),
                },
            }
        },
        "/api/v1/vdxp/transfers/{transfer_id}": get_op(
            "One transfer and its statuses (vdxp.read)",
            with_statuses,
            [param("transfer_id", "path", "string")],
            401, 403, 404,
        ),
        "/api/v1/vdxp/document": get_op(
            "One document, sent or received, and its statuses (vdxp.read)",
            with_statuses,
            [param("document_id", "query", "string")],
            401, 403, 404,
        ),
        "/api/v1/vdxp/documents": get_op(
            "Documents, newest first (vdxp.read)",
            "documents: " + document,
            [
                param("direction", "query", "string", enum=["in", "out"]),
                param("dossier_code", "query", "string"),
                limit,
            ],
            400, 401, 403,
        ),
        "/api/v1/vdxp/attachment": {
            "get": {
                "summary": "One attachment's file, streamed (vdxp.read)",
                "parameters": [
                    param("document_id", "query", "string"),
                    param("attachment_id", "query", "string"),
                ],
                "responses": {
                    "200": {"description": "the file, in its content type"},
                    **errors(401, 403, 404, 410),
                },
            }
        },
        "/api/v1/vdxp/intake": get_op(
            "Items taken from the axis, newest first (vdxp.read)",
            "items: transport_id, messagetype (edoc | status), from_organ, verdict "
            "(accepted | duplicate | refused), code and reason of a refusal (malformed, "
            "entities, wrong_namespace, too_large, attachment_too_large, unknown_status, "
            "missing_field, unknown_organ, not_addressed, unknown_document), document_id, "
            "taken_at, acked_at",
            [param("verdict", "query", "string", enum=list(VERDICTS)), limit],
            400, 401, 403,
        ),
        "/api/v1/vdxp/poll": {
            "post": {
                "summary": "Take what waits on the axis now (vdxp.poll)",
                "responses": {
                    "200": {
                        "description": "taken (count per verdict), error",
                        "content": {"application/json": {}},
                    },
                    **errors(401, 403, 502),
                },
            }
        },
    }  # fmt: skip
