"""The ministry systems' paths in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from hub.openapi import errors, get_op, param


def paths() -> dict[str, Any]:
    system = param("system", "path", "string")
    limit = param("limit", "query", "integer", minimum=1, maximum=1000)
    outcomes = (
        "accepted, duplicate, quarantined (counts) and items: one per result in order, with "
        "index, verdict (accepted | duplicate | quarantined), result_id, dossier_code, and for "
        "a quarantined one its code (unknown_dossier, missing, unknown_code, wrong_type, "
        "not_an_object, ...) and reason"
    )
    return {
        "/api/v1/ministries": get_op(
            "Configured ministry systems (ministries.read)",
            "systems: system, name, kind, procedures, handoff, poll, push, cursor, circuit",
            [],
            401, 403,
        ),
        "/api/v1/ministries/quarantine": get_op(
            "Results the hub refused to forward, newest first (ministries.read)",
            "quarantine: id, system, via, code, reason, dossier_code, item (masked), first_at, "
            "last_at, seen",
            [param("system", "query", "string"), limit],
            400, 401, 403, 404,
        ),
        "/api/v1/ministries/{system}/handoffs": get_op(
            "Dossiers handed off to a system, newest first (ministries.read)",
            "handoffs: system, dossier_code, procedure_code, status, reference, submitted_at",
            [system, limit],
            400, 401, 403, 404,
        ),
        "/api/v1/ministries/{system}/poll": {
            "post": {
                "summary": "Poll a system for results now (ministries.poll)",
                "parameters": [system],
                "responses": {
                    "200": {
                        "description": "system, pages, results (per verdict), cursor, error",
                        "content": {"application/json": {}},
                    },
                    **errors(401, 403, 404, 409, 502),
                },
            }
        },
        "/api/v1/ministries/{system}/results": {
            "post": {
                "summary": "A ministry system pushes its results, in its own JSON",
                "description": "Authenticated with the system's own credential "
                "(ministries.<system>.push: a bearer token, or HMAC-SHA256 signed headers); "
                "the body's shape is the system's mapping file's.",
                "parameters": [system],
                "requestBody": {"content": {"application/json": {}}},
                "responses": {
                    "200": {"description": outcomes, "content": {"application/json": {}}},
                    **errors(400, 401, 404, 413, 422, 503),
                },
            }
        },
    }  # fmt: skip
