"""The dashboard page of the document axis: documents both ways with their state, the intake
log (documents and status messages taken from the axis, refused ones with their reason), the
last polling round, and the state and outages of the hub's calls to the axis."""

from __future__ import annotations

from typing import Any

from connectors.vdxp.store import SqliteVdxp
from hub.dashboard.flows import WINDOW, Column, fact, table
from hub.plugins import Flow

NAME = "vdxp"


def vdxp_flow(store: SqliteVdxp, intake: Any, guard: Any) -> Flow:
    async def read() -> dict[str, Any]:
        log = await store.intake_log(None, WINDOW)
        return {
            "facts": [
                fact(
                    "last_round",
                    intake.last_round.isoformat() if intake.last_round else None,
                    "time",
                ),
                fact("last_error", intake.last_error),
                fact("refused_intake", sum(1 for e in log if e.verdict == "refused"), "number"),
            ],
            "tables": [
                table(
                    "documents",
                    [
                        Column("updated_at", "time"),
                        Column("direction", "value", filter=True),
                        Column("state", "value", filter=True),
                        Column("code", "id"),
                        Column("subject"),
                        Column("dossier_code", "dossier"),
                        Column("from_organ", "id"),
                        Column("document_id", "id"),
                        Column("detail", "detail"),  # the axis's reply, folded away
                    ],
                    [d.as_dict() for d in await store.documents(None, None, WINDOW)],
                ),
                table(
                    "intake",
                    [
                        Column("taken_at", "time"),
                        Column("messagetype", "value", filter=True),
                        Column("verdict", "value", filter=True),
                        Column("from_organ", "id"),
                        Column("code", "value", filter=True),  # the refusal in words
                        Column("reason", "detail"),  # the hub's own text, folded away
                        Column("document_id", "id"),
                        Column("transport_id", "id"),
                    ],
                    log,
                ),
            ],
            "connectors": [NAME],
        }

    return read
