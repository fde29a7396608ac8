"""The OpenAPI document of the hub's REST API, served at `/api/v1/openapi.json`.

Schemas come from the pydantic models in `schemas/api.py`, so the document cannot drift from
what the handlers validate. This module must never describe an endpoint the hub does not serve.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from schemas.api import DossierEventIn, ErrorOut, EventsRequest, EventsResponse, FeedPage


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "bad request",
        401: "no or wrong token",
        403: "not permitted",
        413: "body or batch too large",
        503: "store unavailable; retry",
    }
    return {
        str(c): {
            "description": words[c],
            "content": {"application/json": {"schema": _ref("ErrorOut")}},
        }
        for c in codes
    }


def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [
            (m, "validation")
            for m in (DossierEventIn, EventsRequest, EventsResponse, FeedPage, ErrorOut)
        ],
        ref_template="#/components/schemas/{model}",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Public-service integration hub",
            "version": "1",
            "description": "Canonical dossier events in; the portal's change feed out. "
            "The DVCQG-compatible facade is described in connectors/national_portal/PROTOCOL.md.",
        },
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/dossier-events": {
                "post": {
                    "summary": "Submit a batch of dossier events (per-item results)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("EventsRequest")}},
                    },
                    "responses": {
                        "200": {
                            "description": "per-item outcome; accepted items are durable",
                            "content": {"application/json": {"schema": _ref("EventsResponse")}},
                        },
                        **_errors(400, 401, 403, 413, 503),
                    },
                }
            },
            "/api/v1/portal/dossier-changes": {
                "get": {
                    "summary": "Newest snapshot of each dossier changed after a cursor",
                    "parameters": [
                        {"name": "after", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "a page of changes in commit order",
                            "content": {"application/json": {"schema": _ref("FeedPage")}},
                        },
                        **_errors(400, 401, 403),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process is alive",
                    "security": [],
                    "responses": {"200": {"description": "alive"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Broker and store reachable",
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
        },
    }
