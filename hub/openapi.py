"""The OpenAPI document of the hub's HTTP API, served at `/api/v1/openapi.json`, from the code.

Every JSON body is a pydantic model: the core's in `schemas/` (`schemas.api`, `schemas.admin`),
each connector's beside its handlers. Paths are written with `operation`, which names the models
themselves (`body=`, `reply=`); `openapi_document` gathers the core's paths and each connector's
fragment (`Connector.openapi`), collects every model they name, with the models those use, into
`components/schemas` (a model named in a request body as the request validates it, in a reply as
it serialises), and puts a `$ref` where the model was. Two different models with one name are
refused (`DuplicateModel`), so no fragment can shadow another's schema.

Handlers build their replies through the same models (`hub.httputil.model_response`), so the
document cannot drift from what is served: `tests/integration/test_openapi_served.py` checks
every served route is documented and every documented one served, and validates real replies
against their schemas. This module must never describe an endpoint the hub does not serve.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hub.plugins import Connector
from schemas.admin import (
    ActRequest,
    ActResult,
    AuditPage,
    BulkJob,
    BulkRequest,
    ConnectorDetail,
    DeadLetter,
    DeadLetterPage,
    DeadLetterSummary,
    DossierDetail,
    DossierHits,
    FlowPage,
    LoginReply,
    LoginRequest,
    Overview,
    PauseRequest,
    PauseResult,
    SessionsRevoked,
    StuckPage,
    Unlocked,
    UserList,
)
from schemas.api import ErrorOut, EventsRequest, EventsResponse, FeedPage, Health, Readiness

Security = list[dict[str, list[str]]]
Code = int | tuple[int, str]  # an error reply: its status, and words of its own if it needs
READ: Security = [{"session": []}]  # the admin API's reads: the session cookie
ACT: Security = [{"session": [], "csrf": []}]  # its acts: the cookie and the CSRF token
OPEN: Security = []  # no credential

_WORDS = {
    400: "bad request",
    401: "no or wrong credential",
    403: "not permitted",
    404: "not found",
    409: "conflict",
    410: "gone",
    413: "body or batch too large",
    415: "unsupported media type",
    422: "understood, but refused",
    429: "too many failed log-ins: the user is locked for a while (Retry-After)",
    502: "the system behind the hub failed or could not be trusted",
    503: "the hub cannot store or read now; retry",
}


class DuplicateModel(ValueError):
    """Two different models would share one name in `components/schemas`."""


def errors(*codes: Code) -> dict[str, Any]:
    """Error replies in the APIs' one shape (`ErrorOut`), each with its words: a code alone
    takes the general words, `(code, "words")` says what it means on this path."""
    out: dict[str, Any] = {}
    for entry in codes:
        code, words = entry if isinstance(entry, tuple) else (entry, _WORDS[entry])
        out[str(code)] = {
            "description": words,
            "content": {"application/json": {"schema": ErrorOut}},
        }
    return out


def param(name: str, where: str, kind: str, description: str = "", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": kind, **extra},
    }
    if description:
        out["description"] = description
    return out


def content(model: type[BaseModel] | None, media: str = "application/json") -> dict[str, Any]:
    """A body of `media`: with the model's schema, or any (`None`: a file, text)."""
    return {media: {"schema": model} if model is not None else {}}


def operation(
    summary: str,
    reply: type[BaseModel] | dict[str, Any] | None,
    *codes: Code,
    answer: str = "",
    status: int = 200,
    params: Sequence[dict[str, Any]] = (),
    body: type[BaseModel] | dict[str, Any] | None = None,
    body_required: bool = True,
    description: str = "",
    security: Security | None = None,
    replies: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One operation. `reply` is the success body's model (or a `content` map, or None for no
    body); `answer` its words (by default the model's first docstring line); `codes` the error
    replies (`errors`); `body` the request body's model or `content` map; `replies` more
    success replies (another status, another media type)."""
    if isinstance(reply, type):
        ok: dict[str, Any] = {
            "description": answer or _first_line(reply),
            "content": content(reply),
        }
    else:
        ok = {"description": answer or "done"}
        if reply is not None:
            ok["content"] = reply
    out: dict[str, Any] = {"summary": summary}
    if description:
        out["description"] = description
    if security is not None:
        out["security"] = security
    if params:
        out["parameters"] = list(params)
    if body is not None:
        out["requestBody"] = {
            "required": body_required,
            "content": content(body) if isinstance(body, type) else body,
        }
    out["responses"] = {str(status): ok, **(replies or {}), **errors(*codes)}
    return out


def _first_line(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else model.__name__


def openapi_document(connectors: tuple[Connector, ...]) -> dict[str, Any]:
    """The core's paths and each connector's fragment (`Connector.openapi`), with the schemas
    of every model they name."""
    pages = [c.page for c in connectors if c.page]
    paths: dict[str, Any] = {**_core_paths(), **_admin_paths(pages), **_probe_paths()}
    for connector in connectors:
        for path, item in connector.openapi().items():
            if path in paths:
                raise ValueError(f"{connector.name} documents {path}, which is already documented")
            paths[path] = item
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    _collect(paths, "serialization", found)
    refs, defs = models_json_schema(list(found), ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    _refuse_duplicates(schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Public-service integration hub",
            "version": "1",
            "description": DESCRIPTION,
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a source's API token (sources.<name>.api_token_sha256); "
                    "each path says which permission it needs",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": "hub_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
        },
        "security": [{"bearer": []}],
        "paths": _resolve(paths, "serialization", refs),
    }


DESCRIPTION = (
    "Canonical dossier events in, the portal's change feed out, and each connector's API: "
    "procedures (DVCQG catalogue), ministry systems, the document axis (VDXP), payments; the "
    "operators' admin API under /api/v1/admin. Every body is described by the pydantic model "
    "the hub builds or validates it with. With a connector off, the document axis serves "
    "none of its paths, the payments API and the catalogue sync answer 409 where they would "
    "act, and the ministries API knows no system (404). Two doors speak another system's own "
    "protocol and are described there, not here: the DVCQG-compatible facade (POST /dvcqg, "
    "`facade.path`) in connectors/national_portal/PROTOCOL.md, and the payment platform's "
    "signed callback (POST /payment-platform/callback, "
    "`connectors.payment_platform.callback_path`) in connectors/payment_platform/PROTOCOL.md."
)


def _collect(
    node: Any, mode: JsonSchemaMode, found: dict[tuple[type[BaseModel], JsonSchemaMode], None]
) -> None:
    if isinstance(node, type) and issubclass(node, BaseModel):
        found[(node, mode)] = None
    elif isinstance(node, dict):
        for key, value in node.items():
            _collect(value, _mode(key, mode), found)
    elif isinstance(node, list | tuple):
        for value in node:
            _collect(value, mode, found)


def _resolve(node: Any, mode: JsonSchemaMode, refs: dict[Any, Any]) -> Any:
    """A copy of `node` with each model replaced by the `$ref` to its schema."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        return refs[(node, mode)]
    if isinstance(node, dict):
        return {key: _resolve(value, _mode(key, mode), refs) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_resolve(value, mode, refs) for value in node]
    return node


def _mode(key: str, mode: JsonSchemaMode) -> JsonSchemaMode:
    if key == "requestBody":
        return "validation"
    if key == "responses":
        return "serialization"
    return mode


# pydantic names a schema after its model, with -Input / -Output when a model reads and writes
# differently; it qualifies the name with the module only when two models share it.
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(-Input|-Output)?$")


def _refuse_duplicates(schemas: dict[str, Any]) -> None:
    clashing = sorted(n for n in schemas if not _PLAIN.match(n) or "__" in n)
    if clashing:
        titles = sorted({str(schemas[n].get("title", n)) for n in clashing})
        raise DuplicateModel(
            f"models with one name in more than one module: {', '.join(titles)} "
            f"({', '.join(clashing)}); rename one of each"
        )


def _core_paths() -> dict[str, Any]:
    return {
        "/api/v1/dossier-events": {
            "post": operation(
                "Submit a batch of dossier events (events.write); per-item results",
                EventsResponse,
                400,
                401,
                403,
                413,
                503,
                answer="per-item outcome; accepted items are durable",
                body=EventsRequest,
            )
        },
        "/api/v1/portal/dossier-changes": {
            "get": operation(
                "Newest snapshot of each dossier changed after a cursor (portal.feed)",
                FeedPage,
                400,
                401,
                403,
                503,
                answer="a page of changes in commit order",
                params=[
                    param("after", "query", "string", "the cursor (next_cursor of a page)"),
                    param("limit", "query", "integer", minimum=1, maximum=1000),
                ],
            )
        },
        "/api/v1/openapi.json": {
            "get": operation(
                "This document",
                {"application/json": {"schema": {"type": "object"}}},
                answer="the OpenAPI 3.1 document",
                security=OPEN,
            )
        },
    }


def _probe_paths() -> dict[str, Any]:
    return {
        "/healthz": {"get": operation("The process is alive", Health, security=OPEN)},
        "/readyz": {
            "get": operation(
                "Store, broker and every consumer ready; each connector's state",
                Readiness,
                answer="ready",
                security=OPEN,
                params=[
                    param(
                        "counts",
                        "query",
                        "string",
                        "any value: add each connector's waiting and parked counts",
                    )
                ],
                replies={
                    "503": {
                        "description": "not ready (the body says which check fails)",
                        "content": content(Readiness),
                    }
                },
            )
        },
        "/metrics": {
            "get": operation(
                "Prometheus metrics",
                content(None, "text/plain"),
                answer="text exposition (docs/reference/metrics.md)",
                security=OPEN,
            )
        },
    }


def _admin_paths(pages: list[str]) -> dict[str, Any]:
    """The operators' admin API: a session cookie from `POST /api/v1/admin/session`; every
    POST and DELETE also sends the session's CSRF token in `X-CSRF-Token`. Roles: viewer
    (read), operator (also dead-letter actions, pausing connectors and the audit log), admin
    (also users)."""

    def get(summary: str, reply: type[BaseModel], *codes: Code, **kw: Any) -> dict[str, Any]:
        return {"get": operation(summary, reply, 401, *codes, security=READ, **kw)}

    def post(summary: str, reply: type[BaseModel], *codes: Code, **kw: Any) -> dict[str, Any]:
        return {"post": operation(summary, reply, 401, 403, *codes, security=ACT, **kw)}

    name = param("name", "path", "string", "a connector's name, as /readyz lists them")
    connector = param("connector", "path", "string")
    not_paused = (503, "this hub cannot pause connectors")
    unknown = (404, "no connector has this name")
    flows = {
        f"/api/v1/admin/{flow}": get(f"The {flow} page's data (viewer)", FlowPage) for flow in pages
    }
    return {
        "/api/v1/admin/session": {
            "post": operation(
                "Log in: sets the session cookie, returns the CSRF token",
                LoginReply,
                400,
                (401, "wrong user name or password"),
                429,
                body=LoginRequest,
                security=OPEN,
            ),
            "delete": operation(
                "Log out",
                None,
                401,
                403,
                status=204,
                answer="logged out",
                security=ACT,
            ),
        },
        "/api/v1/admin/overview": get(
            "Sync completeness, sync lag and one card per connector (viewer)", Overview
        ),
        "/api/v1/admin/connectors/{name}": get(
            "One connector: its card, samples over time, recent failures (viewer)",
            ConnectorDetail,
            400,
            404,
            params=[name, param("hours", "query", "number", minimum=0.1, maximum=336)],
        ),
        "/api/v1/admin/connectors/{name}/pause": post(
            "Pause a connector: its messages wait, nothing is sent (operator); audited",
            PauseResult,
            400,
            unknown,
            not_paused,
            params=[name],
            body=PauseRequest,
            body_required=False,
        ),
        "/api/v1/admin/connectors/{name}/resume": post(
            "Resume a paused connector (operator); audited",
            PauseResult,
            400,
            unknown,
            not_paused,
            params=[name],
            body=PauseRequest,
            body_required=False,
        ),
        "/api/v1/admin/dossiers": get(
            "Dossiers whose code holds q (any case), whose procedure code starts with q, or "
            "whose owner's whole name is q; 50 a page, with the total; names masked (viewer)",
            DossierHits,
            400,
            params=[
                param("q", "query", "string", minLength=1, maxLength=64),
                param("page", "query", "integer", "0 is the first page", minimum=0),
            ],
        ),
        "/api/v1/admin/stuck": get(
            "Dossiers whose newest state a destination has not confirmed, oldest first, with "
            "the last reason; 100 a page, with the total (viewer)",
            StuckPage,
            400,
            params=[
                param("destination", "query", "string", "a connector's name"),
                param("agency", "query", "string", "the agency code before a dossier code's '-'"),
                param("procedure", "query", "string", "a procedure code (and its local forms)"),
                param("status", "query", "string", "a canonical status name"),
                param("older_than_min", "query", "number", "waiting at least so long", minimum=0),
                param("page", "query", "integer", minimum=0),
            ],
        ),
        "/api/v1/admin/dead-letters/summary": get(
            "Every parked message a filter selects, counted and grouped by connector, dossier "
            "and reason: the preview of a bulk action (viewer)",
            DeadLetterSummary,
            400,
            unknown,
            params=_dead_letter_filter_params(),
        ),
        "/api/v1/admin/dead-letter-actions": {
            "post": operation(
                "Replay or discard every parked message a filter selects, as a job on the hub "
                "(operator); one audit entry. A discard must send confirm: true",
                BulkJob,
                400,
                401,
                403,
                unknown,
                status=202,
                answer="the job, started; its progress at dead-letter-actions/{job}",
                security=ACT,
                body=BulkRequest,
            )
        },
        "/api/v1/admin/dead-letter-actions/{job}": get(
            "A bulk action's progress (viewer)",
            BulkJob,
            (404, "no such job (the hub restarted?)"),
            params=[param("job", "path", "string")],
        ),
        "/api/v1/admin/dossiers/{code}": get(
            "A dossier's state and timeline of every hop, personal data masked (viewer)",
            DossierDetail,
            400,
            (404, "the hub holds no dossier with this code"),
            params=[
                param("code", "path", "string"),
                param("page", "query", "integer", "0 is the newest page", minimum=0),
            ],
        ),
        "/api/v1/admin/dead-letters": get(
            "Parked messages, newest first, filtered (viewer)",
            DeadLetterPage,
            400,
            unknown,
            params=[
                param("connector", "query", "string"),
                param("reason", "query", "string", "in the reason or code", maxLength=200),
                param("since", "query", "string", format="date-time"),
                param("until", "query", "string", format="date-time"),
                param("limit", "query", "integer", minimum=1, maximum=1000),
            ],
        ),
        "/api/v1/admin/dead-letters/{connector}/{message_id}": get(
            "One parked message, body and headers masked (viewer)",
            DeadLetter,
            (404, "no such connector, or no such message is parked"),
            params=[connector, param("message_id", "path", "string")],
        ),
        "/api/v1/admin/dead-letters/{connector}/{action}": post(
            "Replay or discard parked messages (operator); audited",
            ActResult,
            400,
            (404, "no such connector or action, or none of the messages is parked any more"),
            params=[connector, param("action", "path", "string", enum=["replay", "discard"])],
            body=ActRequest,
        ),
        "/api/v1/admin/audit": get(
            "The audit log, newest first (operator)",
            AuditPage,
            400,
            403,
            params=[
                param("limit", "query", "integer", minimum=1, maximum=500),
                param("before", "query", "integer", "an entry's id: older ones", minimum=1),
            ],
        ),
        "/api/v1/admin/users": get(
            "Dashboard users, their roles and lock-outs (admin)", UserList, 403
        ),
        "/api/v1/admin/users/{name}/unlock": post(
            "Unlock a user locked out by failed log-ins (admin); audited",
            Unlocked,
            (404, "no such dashboard user"),
            params=[param("name", "path", "string")],
        ),
        "/api/v1/admin/users/{name}/revoke-sessions": post(
            "End every session of a user at once (admin); audited",
            SessionsRevoked,
            (404, "no such dashboard user"),
            params=[param("name", "path", "string")],
        ),
        **flows,
    }


def _dead_letter_filter_params() -> list[dict[str, Any]]:
    return [
        param("connector", "query", "string"),
        param("reason", "query", "string", "in the reason or code, any case", maxLength=200),
        param("since", "query", "string", "parked at or after; UTC if naive", format="date-time"),
        param("until", "query", "string", "parked at or before", format="date-time"),
        param("dossier_prefix", "query", "string", maxLength=100),
        param("dossier", "query", "string", "one dossier's code, exactly", maxLength=100),
    ]
