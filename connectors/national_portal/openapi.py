"""The procedure API's paths in the OpenAPI document, with the models it replies through
(`procedures.models`). The DVCQG-compatible facade is the one-stop systems' own protocol,
described in PROTOCOL.md beside this file, not here."""

from __future__ import annotations

from typing import Any

from connectors.national_portal.procedures.models import (
    CatalogueList,
    ProcedureDetail,
    ProcedurePage,
    ProcedureVersion,
    QuarantinePage,
    SyncRequest,
    SyncRuns,
    SyncStarted,
)
from hub.openapi import operation, param


def paths() -> dict[str, Any]:
    code = param("code", "path", "string", pattern=r"^[0-9]{1,2}\.[0-9]{6}$")
    no_procedure = (404, "the hub holds no such procedure or version")
    return {
        "/api/v1/procedures": {"get": operation(
            "Procedures changed after a time and/or a cursor (procedures.read)",
            ProcedurePage,
            400, 401, 403,
            params=[
                param("changed_after", "query", "string", "with its offset", format="date-time"),
                param("cursor", "query", "integer", minimum=0),
                param("limit", "query", "integer", minimum=1, maximum=1000),
            ],
        )},
        "/api/v1/procedures/{code}": {"get": operation(
            "One procedure: current record, versions, change history with diffs "
            "(procedures.read)",
            ProcedureDetail,
            400, 401, 403, no_procedure,
            params=[code],
        )},
        "/api/v1/procedures/{code}/versions/{version}": {"get": operation(
            "One version of a procedure (procedures.read)",
            ProcedureVersion,
            400, 401, 403, no_procedure,
            params=[code, param("version", "path", "integer", minimum=1)],
        )},
        "/api/v1/procedure-quarantine": {"get": operation(
            "Catalogue records refused by validation, with field, reason and excerpt "
            "(procedures.read)",
            QuarantinePage,
            401, 403,
            params=[param("include_resolved", "query", "boolean")],
        )},
        "/api/v1/procedure-sync-runs": {
            "get": operation("Recent catalogue sync runs (procedures.read)", SyncRuns, 401, 403),
            "post": operation(
                "Start a catalogue sync (procedures.sync): {} for all, {codes: [...]} for some",
                SyncStarted,
                400, 401, 403,
                (409, "a sync is already running, or the catalogue sync is not enabled"),
                413,
                status=202,
                body=SyncRequest,
            ),
        },
        "/api/v1/catalogue-lists/{kind}": {"get": operation(
            "The catalogue's reference lists (procedures.read)",
            CatalogueList,
            401, 403, (404, "no such list"),
            params=[param("kind", "path", "string", enum=["fields", "agencies"])],
        )},
    }  # fmt: skip
