"""The OpenAPI document of the hub's REST API, served at `/api/v1/openapi.json`.

Schemas come from the pydantic models in `schemas/api.py`, so the document cannot drift from
what the handlers validate. This module must never describe an endpoint the hub does not serve.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from schemas.api import DossierEventIn, ErrorOut, EventsRequest, EventsResponse, FeedPage
from schemas.payment import PaymentRecord
from schemas.procedure import Procedure


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "bad request",
        401: "no or wrong token",
        403: "not permitted",
        404: "no such procedure, version, ministry system, or the day was never reconciled",
        409: "a catalogue sync is already running, the sync is disabled, or the system is "
        "not polled",
        422: "the results are not where the system's mapping file says",
        502: "the payment platform or the ministry system failed or could not be trusted",
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
            *(
                (m, "validation")
                for m in (DossierEventIn, EventsRequest, EventsResponse, FeedPage, ErrorOut)
            ),
            (Procedure, "serialization"),
            (PaymentRecord, "serialization"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Public-service integration hub",
            "version": "1",
            "description": "Canonical dossier events in; the portal's change feed out. "
            "The DVCQG-compatible facade is described in connectors/national_portal/PROTOCOL.md. "
            "Procedure master data: see README, 'How a procedure change travels'. "
            "The payment platform's callback is described in "
            "connectors/payment_platform/PROTOCOL.md.",
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
            **_procedure_paths(),
            **_payment_paths(),
            **_ministry_paths(),
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


def _get(summary: str, description: str, params: list[dict[str, Any]], *errors: int) -> Any:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": description, "content": {"application/json": {}}},
                **_errors(*errors),
            },
        }
    }


def _param(name: str, where: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": kind, **extra},
    }


def _procedure_paths() -> dict[str, Any]:
    code = _param("code", "path", "string", pattern=r"^[0-9]{1,2}\.[0-9]{6}$")
    procedure = {"$ref": "#/components/schemas/Procedure"}
    return {
        "/api/v1/procedures": _get(
            "Procedures changed after a time and/or a cursor (procedures.read)",
            "items (code, version, revision, state, changed_at, cursor, procedure: "
            "a Procedure) and next_cursor",
            [
                _param("changed_after", "query", "string", format="date-time"),
                _param("cursor", "query", "integer", minimum=0),
                _param("limit", "query", "integer", minimum=1, maximum=1000),
            ],
            400, 401, 403,
        ),
        "/api/v1/procedures/{code}": _get(
            "One procedure: current record, versions, change history with diffs",
            "the procedure",
            [code],
            400, 401, 403, 404,
        ),
        "/api/v1/procedures/{code}/versions/{version}": {
            "get": {
                "summary": "One version of a procedure",
                "parameters": [code, _param("version", "path", "integer", minimum=1)],
                "responses": {
                    "200": {
                        "description": "the version, its record under `procedure`",
                        "content": {"application/json": {"schema": {
                            "type": "object", "properties": {"procedure": procedure}}}},
                    },
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/api/v1/procedure-quarantine": _get(
            "Catalogue records refused by validation, with field, reason and excerpt",
            "items",
            [_param("include_resolved", "query", "boolean")],
            401, 403,
        ),
        "/api/v1/procedure-sync-runs": {
            **_get("Recent catalogue sync runs", "items", [], 401, 403),
            "post": {
                "summary": "Start a catalogue sync: {} for all, {codes: [...]} for some",
                "responses": {"202": {"description": "started"}, **_errors(400, 401, 403, 409)},
            },
        },
        "/api/v1/catalogue-lists/{kind}": _get(
            "The catalogue's reference lists (fields, agencies)",
            "items (code, name, extra)",
            [_param("kind", "path", "string", enum=["fields", "agencies"])],
            401, 403, 404,
        ),
    }  # fmt: skip


def _payment_paths() -> dict[str, Any]:
    day = _param("date", "query", "string", format="date")
    report = (
        "the report: day, generated_at, summary (platform_confirmed, platform_total_vnd, "
        "hub_paid, hub_total_vnd, acknowledged_by_one_stop, findings per kind) and findings "
        "(kind, dossier_code, reference, transaction_id, hub_outcome, platform_outcome, "
        "hub_amount_vnd, platform_amount_vnd, expected_vnd, currency, detail); "
        "text/csv with format=csv"
    )
    fmt = _param("format", "query", "string", enum=["json", "csv"])
    return {
        "/api/v1/payments": _get(
            "Payment transactions of a dossier or a local day (payments.read)",
            "payments: PaymentRecord items, payer information masked",
            [_param("dossier_code", "query", "string"), day],
            400, 401, 403,
        ),
        "/api/v1/payments/callbacks": _get(
            "The payment platform's callbacks, newest first: accepted, duplicate, refused",
            "callbacks (id, at, verdict, code, reason, transaction_id, reference, body masked)",
            [
                _param("verdict", "query", "string", enum=["accepted", "duplicate", "refused"]),
                _param("limit", "query", "integer", minimum=1, maximum=1000),
            ],
            400, 401, 403,
        ),
        "/api/v1/payments/reconciliation": {
            **_get("The stored reconciliation report of a day", report, [day, fmt],
                   400, 401, 403, 404),
            "post": {
                "summary": "Reconcile a day now (payments.reconcile)",
                "parameters": [day, fmt],
                "responses": {
                    "200": {"description": report, "content": {"application/json": {}}},
                    **_errors(400, 401, 403, 409, 502),
                },
            },
        },
        "/api/v1/payments/status-checks": {
            "post": {
                "summary": "Check pending transactions with the platform now (payments.reconcile)",
                "responses": {
                    "200": {
                        "description": "checked, paid, failed, pending, errors, stopped, problems",
                        "content": {"application/json": {}},
                    },
                    **_errors(401, 403, 409),
                },
            }
        },
    }  # fmt: skip


def _ministry_paths() -> dict[str, Any]:
    system = _param("system", "path", "string")
    limit = _param("limit", "query", "integer", minimum=1, maximum=1000)
    outcomes = (
        "accepted, duplicate, quarantined (counts) and items: one per result in order, with "
        "index, verdict (accepted | duplicate | quarantined), result_id, dossier_code, and for "
        "a quarantined one its code (unknown_dossier, missing, unknown_code, wrong_type, "
        "not_an_object, ...) and reason"
    )
    return {
        "/api/v1/ministries": _get(
            "Configured ministry systems (ministries.read)",
            "systems: system, name, kind, procedures, handoff, poll, push, cursor, circuit",
            [],
            401, 403,
        ),
        "/api/v1/ministries/quarantine": _get(
            "Results the hub refused to forward, newest first (ministries.read)",
            "quarantine: id, system, via, code, reason, dossier_code, item (masked), first_at, "
            "last_at, seen",
            [_param("system", "query", "string"), limit],
            400, 401, 403, 404,
        ),
        "/api/v1/ministries/{system}/handoffs": _get(
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
                    **_errors(401, 403, 404, 409, 502),
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
                    **_errors(400, 401, 404, 413, 422, 503),
                },
            }
        },
    }  # fmt: skip
