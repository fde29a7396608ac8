"""The dashboard page of the document axis: documents both ways and the intake log."""

from __future__ import annotations

from typing import Any

from connectors.vdxp.store import SqliteVdxp
from hub.dashboard.flows import ROWS, table
from hub.plugins import Flow


def vdxp_flow(store: SqliteVdxp, intake: Any, guard: Any) -> Flow:
    async def read() -> dict[str, Any]:
        return {
            "facts": {
                "circuit": await guard.breaker_state(),
                "last_round": intake.last_round.isoformat() if intake.last_round else None,
                "last_error": intake.last_error,
            },
            "tables": [
                table(
                    "documents",
                    ["document_id", "direction", "dossier_code", "from_organ", "subject", "state"],
                    await store.documents(None, None, ROWS),
                ),
                table(
                    "intake",
                    [
                        "transport_id",
                        "messagetype",
                        "from_organ",
                        "verdict",
                        "code",
                        "reason",
                        "taken_at",
                    ],
                    await store.intake_log(None, ROWS),
                ),
            ],
        }

    return read
