"""The ministry systems' paths in the OpenAPI document, with the models they reply through
(`connectors.ministry.models`)."""

from __future__ import annotations

from typing import Any

from connectors.ministry.models import Handoffs, MinistrySystems, PollReport, PushReply, Quarantine
from hub.openapi import content, operation, param


def paths() -> dict[str, Any]:
    system = param("system", "path", "string", "the system's key under ministries:")
    limit = param("limit", "query", "integer", minimum=1, maximum=1000)
    unknown = (404, "no such ministry system")
    return {
        "/api/v1/ministries": {"get": operation(
            "Configured ministry systems (ministries.read)", MinistrySystems, 401, 403
        )},
        "/api/v1/ministries/quarantine": {"get": operation(
            "Results the hub refused to forward, newest first (ministries.read)",
            Quarantine,
            400, 401, 403, unknown,
            params=[param("system", "query", "string"), limit],
        )},
        "/api/v1/ministries/{system}/handoffs": {"get": operation(
            "Dossiers handed off to a system, newest first (ministries.read)",
            Handoffs,
            400, 401, 403, unknown,
            params=[system, limit],
        )},
        "/api/v1/ministries/{system}/poll": {"post": operation(
            "Poll a system for results now (ministries.poll)",
            PollReport,
            401, 403, unknown,
            (409, "the system is not polled"),
            params=[system],
            replies={"502": {
                "description": "the round failed part-way: what it did, and why (error)",
                "content": content(PollReport),
            }},
        )},
        "/api/v1/ministries/{system}/results": {"post": operation(
            "A ministry system pushes its results, in its own JSON",
            PushReply,
            (400, "the body is not JSON"),
            (401, "not the system's credential"),
            (404, "no such system pushes here"),
            (413, "the body is too large, or holds more than 1000 results"),
            (422, "the results are not where the system's mapping file says"),
            503,
            description="Authenticated with the system's own credential "
            "(ministries.<system>.push): a bearer token, or HMAC-SHA256 signed headers. "
            "The body's shape is the system's mapping file's (results.push_items says where "
            "the list is).",
            params=[system],
            body=content(None),
        )},
    }  # fmt: skip
