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
        404: "no such procedure, version, ministry system, transfer, document or attachment, "
        "or the day was never reconciled",
        410: "the attachment's file is no longer in the spool",
        415: "send application/json or multipart/form-data",
        409: "a catalogue sync is already running, the sync is disabled, the system is "
        "not polled, or the same transfer is being accepted by another request",
        422: "the results are not where the system's mapping file says; or a transfer names a "
        "dossier the hub does not hold (unknown_dossier) or an agency not on the axis "
        "(unknown_organ)",
        502: "the payment platform, the ministry system or the axis failed or could not be trusted",
        413: "body or batch too large",
        503: "store unavailable, or the axis's agency list cannot be read yet; retry",
        429: "too many failed log-ins: the user is locked for a while (Retry-After)",
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
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "hub_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
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
            **_vdxp_paths(),
            **_admin_paths(),
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


VERDICTS = ("accepted", "duplicate", "refused")


def _vdxp_paths() -> dict[str, Any]:
    limit = _param("limit", "query", "integer", minimum=1, maximum=1000)
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
        "/api/v1/vdxp": _get(
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
                    **_errors(400, 401, 403, 409, 413, 415, 422, 503),
                },
            }
        },
        "/api/v1/vdxp/transfers/{transfer_id}": _get(
            "One transfer and its statuses (vdxp.read)",
            with_statuses,
            [_param("transfer_id", "path", "string")],
            401, 403, 404,
        ),
        "/api/v1/vdxp/document": _get(
            "One document, sent or received, and its statuses (vdxp.read)",
            with_statuses,
            [_param("document_id", "query", "string")],
            401, 403, 404,
        ),
        "/api/v1/vdxp/documents": _get(
            "Documents, newest first (vdxp.read)",
            "documents: " + document,
            [
                _param("direction", "query", "string", enum=["in", "out"]),
                _param("dossier_code", "query", "string"),
                limit,
            ],
            400, 401, 403,
        ),
        "/api/v1/vdxp/attachment": {
            "get": {
                "summary": "One attachment's file, streamed (vdxp.read)",
                "parameters": [
                    _param("document_id", "query", "string"),
                    _param("attachment_id", "query", "string"),
                ],
                "responses": {
                    "200": {"description": "the file, in its content type"},
                    **_errors(401, 403, 404, 410),
                },
            }
        },
        "/api/v1/vdxp/intake": _get(
            "Items taken from the axis, newest first (vdxp.read)",
            "items: transport_id, messagetype (edoc | status), from_organ, verdict "
            "(accepted | duplicate | refused), code and reason of a refusal (malformed, "
            "entities, wrong_namespace, too_large, attachment_too_large, unknown_status, "
            "missing_field, unknown_organ, not_addressed, unknown_document), document_id, "
            "taken_at, acked_at",
            [_param("verdict", "query", "string", enum=list(VERDICTS)), limit],
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
                    **_errors(401, 403, 502),
                },
            }
        },
    }  # fmt: skip


def _admin_paths() -> dict[str, Any]:
    """The operators' admin API: a session cookie from `POST /api/v1/admin/session`; every
    POST and DELETE also sends the session's CSRF token in `X-CSRF-Token`. Roles: viewer
    (read), operator (also dead-letter actions, pausing connectors and the audit log), admin
    (also users)."""
    read: list[dict[str, list[str]]] = [{"session": []}]
    act: list[dict[str, list[str]]] = [{"session": [], "csrf": []}]

    def get(summary: str, description: str, params: list[dict[str, Any]], *errors: int) -> Any:
        item = _get(summary, description, params, 401, *errors)
        item["get"]["security"] = read
        return item

    def post(
        summary: str, body: str, params: list[dict[str, Any]], *errors: int, answer: str = "done"
    ) -> Any:
        return {
            "summary": summary,
            "security": act,
            "parameters": params,
            "requestBody": {"description": body, "content": {"application/json": {}}},
            "responses": {
                "200": {"description": answer, "content": {"application/json": {}}},
                **_errors(401, 403, *errors),
            },
        }

    connector = _param("connector", "path", "string")
    card = (
        "name, kind (queue | calls), state (up | degraded | down | credentials_refused | "
        "paused), since (when the state began), reason (masked), outage (the current one, or "
        "null), circuit, last_success_at, throughput_per_min, error_rate, queue_depth, "
        "oldest_waiting_s, dead_letters, retried, parked"
    )
    outage = "started_at, ended_at, duration_s, cause, last_error, probes, refused_calls, held_max"
    paused = 'JSON {"reason": "..."}, optional (at most 200 printable characters)'
    changed = "connector, state (after), changed (false: it already was so; nothing written)"
    parked = "connector, message_id, reason, code, parked_at, attempts, dossier_code"
    ids = 'JSON {"message_ids": [...]} (1 to 1000 ids)'
    flows = {
        f"/api/v1/admin/{flow}": get(
            f"The {flow} page's data (viewer)",
            "enabled, facts {name: value}, tables [{key, columns, rows}], personal data masked",
            [],
        )
        for flow in ("procedures", "payments", "ministries", "vdxp")
    }
    return {
        "/api/v1/admin/session": {
            "post": {
                "summary": "Log in: sets the session cookie, returns the CSRF token",
                "security": [],
                "requestBody": {
                    "description": 'JSON {"username", "password"}',
                    "content": {"application/json": {}},
                },
                "responses": {
                    "200": {
                        "description": "user, role, csrf_token, expires_at (unix time)",
                        "content": {"application/json": {}},
                    },
                    **_errors(400, 401, 429),
                },
            },
            "delete": {
                "summary": "Log out",
                "security": act,
                "responses": {"204": {"description": "logged out"}, **_errors(401, 403)},
            },
        },
        "/api/v1/admin/overview": get(
            "Sync completeness, sync lag and one card per connector (viewer)",
            "generated_at, completeness {dossiers, confirmed, unconfirmed, ratio}, lag "
            f"{{window_h, samples, p50_s, p95_s}}, connectors [{card}]",
            [],
        ),
        "/api/v1/admin/connectors/{name}": get(
            "One connector: its card, samples over time, recent failures (viewer)",
            "card, hours, series [at, throughput_per_min, errors_per_min, error_rate, "
            "queue_depth, dead_letters], lag_series [at, p50_s, p95_s, samples] (DVCQG), "
            "recent_failures [at, outcome, reason, message_id, dossier_code], outages "
            f"[{outage}] (newest first)",
            [
                _param("name", "path", "string"),
                _param("hours", "query", "number", minimum=0.1, maximum=336),
            ],
            400,
            404,
        ),
        "/api/v1/admin/connectors/{name}/pause": {
            "post": post(
                "Pause a connector: its messages wait, nothing is sent (operator); audited",
                paused,
                [_param("name", "path", "string")],
                400,
                404,
                answer=changed,
            )
        },
        "/api/v1/admin/connectors/{name}/resume": {
            "post": post(
                "Resume a paused connector (operator); audited",
                paused,
                [_param("name", "path", "string")],
                400,
                404,
                answer=changed,
            )
        },
        "/api/v1/admin/dossiers": get(
            "Dossiers whose code starts with q (viewer)",
            "items [code, status, updated_at], at most 50",
            [_param("q", "query", "string", minLength=1, maxLength=64)],
            400,
        ),
        "/api/v1/admin/dossiers/{code}": get(
            "A dossier's state and timeline of every hop, personal data masked (viewer)",
            "code, status, status_at, version, portal_version, portal_confirmed, record, "
            "timeline [at, kind, actor, label, detail, payload] (one page: 300 hops, page 0 the "
            "newest), timeline_total, timeline_first, timeline_page, timeline_pages",
            [_param("code", "path", "string"), _param("page", "query", "integer", minimum=0)],
            400,
            404,
        ),
        "/api/v1/admin/dead-letters": get(
            "Parked messages, newest first, filtered (viewer)",
            f"items [{parked}]",
            [
                _param("connector", "query", "string"),
                _param("reason", "query", "string", maxLength=200),
                _param("since", "query", "string", format="date-time"),
                _param("until", "query", "string", format="date-time"),
                _param("limit", "query", "integer", minimum=1, maximum=1000),
            ],
            400,
            404,
        ),
        "/api/v1/admin/dead-letters/{connector}/{message_id}": get(
            "One parked message, body and headers masked (viewer)",
            f"{parked}, body, headers",
            [connector, _param("message_id", "path", "string")],
            404,
        ),
        "/api/v1/admin/dead-letters/{connector}/{action}": {
            "post": post(
                "Replay or discard parked messages (operator); audited",
                ids,
                [connector, _param("action", "path", "string", enum=["replay", "discard"])],
                400,
                404,
            )
        },
        "/api/v1/admin/audit": get(
            "The audit log, newest first (operator)",
            "items [id, at, actor, action, target, detail]",
            [
                _param("limit", "query", "integer", minimum=1, maximum=500),
                _param("before", "query", "integer", minimum=1),
            ],
            400,
            403,
        ),
        "/api/v1/admin/users": get(
            "Dashboard users, their roles and lock-outs (admin)",
            "items [name, role, locked, failures]",
            [],
            403,
        ),
        "/api/v1/admin/users/{name}/unlock": {
            "post": post(
                "Unlock a user locked out by failed log-ins (admin); audited",
                "none",
                [_param("name", "path", "string")],
                404,
            )
        },
        **flows,
    }
