"""The procedure API's paths in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from hub.openapi import errors, get_op, param


def paths() -> dict[str, Any]:
    code = param("code", "path", "string", pattern=r"^[0-9]{1,2}\.[0-9]{6}$")
    procedure = {"$ref": "#/components/schemas/Procedure"}
    return {
        "/api/v1/procedures": get_op(
            "Procedures changed after a time and/or a cursor (procedures.read)",
            "items (code, version, revision, state, changed_at, cursor, procedure: "
            "a Procedure) and next_cursor",
            [
                param("changed_after", "query", "string", format="date-time"),
                param("cursor", "query", "integer", minimum=0),
                param("limit", "query", "integer", minimum=1, maximum=1000),
            ],
            400, 401, 403,
        ),
        "/api/v1/procedures/{code}": get_op(
            "One procedure: current record, versions, change history with diffs",
            "the procedure",
            [code],
            400, 401, 403, 404,
        ),
        "/api/v1/procedures/{code}/versions/{version}": {
            "get": {
                "summary": "One version of a procedure",
                "parameters": [code, param("version", "path", "integer", minimum=1)],
                "responses": {
                    "200": {
                        "description": "the version, its record under `procedure`",
                        "content": {"application/json": {"schema": {
                            "type": "object", "properties": {"procedure": procedure}}}},
                    },
                    **errors(400, 401, 403, 404),
                },
            }
        },
        "/api/v1/procedure-quarantine": get_op(
            "Catalogue records refused by validation, with field, reason and excerpt",
            "items",
            [param("include_resolved", "query", "boolean")],
            401, 403,
        ),
        "/api/v1/procedure-sync-runs": {
            **get_op("Recent catalogue sync runs", "items", [], 401, 403),
            "post": {
                "summary": "Start a catalogue sync: {} for all, {codes: [...]} for some",
                "responses": {"202": {"description": "started"}, **errors(400, 401, 403, 409)},
            },
        },
        "/api/v1/catalogue-lists/{kind}": get_op(
            "The catalogue's reference lists (fields, agencies)",
            "items (code, name, extra)",
            [param("kind", "path", "string", enum=["fields", "agencies"])],
            401, 403, 404,
        ),
    }  # fmt: skip
