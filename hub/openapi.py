"""The OpenAPI document of the hub's REST API, served at `/api/v1/openapi.json`.

Schemas come from the pydantic models in `schemas/api.py`, so the document cannot drift from
what the handlers validate. Each connector adds its own paths (`Connector.openapi`), built with
the helpers here (`get_op`, `param`, `errors`, `ref`). This module must never describe an
endpoint the hub does not serve.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from hub.plugins import Connector
from schemas.api import DossierEventIn, ErrorOut, EventsRequest, EventsResponse, FeedPage
from schemas.payment import PaymentRecord
from schemas.procedure import Procedure


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def errors(*codes: int) -> dict[str, Any]:
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
            "content": {"application/json": {"schema": ref("ErrorOut")}},
        }
        for c in codes
    }


def openapi_document(connectors: tuple[Connector, ...]) -> dict[str, Any]:
    """The core's paths and each connector's fragment (`Connector.openapi`)."""
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
                        "content": {"application/json": {"schema": ref("EventsRequest")}},
                    },
                    "responses": {
                        "200": {
                            "description": "per-item outcome; accepted items are durable",
                            "content": {"application/json": {"schema": ref("EventsResponse")}},
                        },
                        **errors(400, 401, 403, 413, 503),
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
                            "content": {"application/json": {"schema": ref("FeedPage")}},
                        },
                        **errors(400, 401, 403),
                    },
                }
            },
            **_admin_paths([c.page for c in connectors if c.page]),
            **{path: spec for c in connectors for path, spec in c.openapi().items()},
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


def get_op(summary: str, description: str, params: list[dict[str, Any]], *codes: int) -> Any:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": description, "content": {"application/json": {}}},
                **errors(*codes),
            },
        }
    }


def param(name: str, where: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": kind, **extra},
    }


def _admin_paths(pages: list[str]) -> dict[str, Any]:
    """The operators' admin API: a session cookie from `POST /api/v1/admin/session`; every
    POST and DELETE also sends the session's CSRF token in `X-CSRF-Token`. Roles: viewer
    (read), operator (also dead-letter actions, pausing connectors and the audit log), admin
    (also users)."""
    read: list[dict[str, list[str]]] = [{"session": []}]
    act: list[dict[str, list[str]]] = [{"session": [], "csrf": []}]

    def get(summary: str, description: str, params: list[dict[str, Any]], *codes: int) -> Any:
        item = get_op(summary, description, params, 401, *codes)
        item["get"]["security"] = read
        return item

    def post(
        summary: str, body: str, params: list[dict[str, Any]], *codes: int, answer: str = "done"
    ) -> Any:
        return {
            "summary": summary,
            "security": act,
            "parameters": params,
            "requestBody": {"description": body, "content": {"application/json": {}}},
            "responses": {
                "200": {"description": answer, "content": {"application/json": {}}},
                **errors(401, 403, *codes),
            },
        }

    connector = param("connector", "path", "string")
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
        for flow in pages
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
                    **errors(400, 401, 429),
                },
            },
            "delete": {
                "summary": "Log out",
                "security": act,
                "responses": {"204": {"description": "logged out"}, **errors(401, 403)},
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
                param("name", "path", "string"),
                param("hours", "query", "number", minimum=0.1, maximum=336),
            ],
            400,
            404,
        ),
        "/api/v1/admin/connectors/{name}/pause": {
            "post": post(
                "Pause a connector: its messages wait, nothing is sent (operator); audited",
                paused,
                [param("name", "path", "string")],
                400,
                404,
                answer=changed,
            )
        },
        "/api/v1/admin/connectors/{name}/resume": {
            "post": post(
                "Resume a paused connector (operator); audited",
                paused,
                [param("name", "path", "string")],
                400,
                404,
                answer=changed,
            )
        },
        "/api/v1/admin/dossiers": get(
            "Dossiers whose code starts with q (viewer)",
            "items [code, status, updated_at], at most 50",
            [param("q", "query", "string", minLength=1, maxLength=64)],
            400,
        ),
        "/api/v1/admin/dossiers/{code}": get(
            "A dossier's state and timeline of every hop, personal data masked (viewer)",
            "code, status, status_at, version, portal_version, portal_confirmed, record, "
            "timeline [at, kind, actor, label, detail, payload] (one page: 300 hops, page 0 the "
            "newest), timeline_total, timeline_first, timeline_page, timeline_pages",
            [param("code", "path", "string"), param("page", "query", "integer", minimum=0)],
            400,
            404,
        ),
        "/api/v1/admin/dead-letters": get(
            "Parked messages, newest first, filtered (viewer)",
            f"items [{parked}]",
            [
                param("connector", "query", "string"),
                param("reason", "query", "string", maxLength=200),
                param("since", "query", "string", format="date-time"),
                param("until", "query", "string", format="date-time"),
                param("limit", "query", "integer", minimum=1, maximum=1000),
            ],
            400,
            404,
        ),
        "/api/v1/admin/dead-letters/{connector}/{message_id}": get(
            "One parked message, body and headers masked (viewer)",
            f"{parked}, body, headers",
            [connector, param("message_id", "path", "string")],
            404,
        ),
        "/api/v1/admin/dead-letters/{connector}/{action}": {
            "post": post(
                "Replay or discard parked messages (operator); audited",
                ids,
                [connector, param("action", "path", "string", enum=["replay", "discard"])],
                400,
                404,
            )
        },
        "/api/v1/admin/audit": get(
            "The audit log, newest first (operator)",
            "items [id, at, actor, action, target, detail]",
            [
                param("limit", "query", "integer", minimum=1, maximum=500),
                param("before", "query", "integer", minimum=1),
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
                [param("name", "path", "string")],
                404,
            )
        },
        **flows,
    }
