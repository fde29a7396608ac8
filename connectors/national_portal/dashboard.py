"""The dashboard page of the catalogue: its sync runs and quarantined records."""

from __future__ import annotations

from typing import Any

from connectors.national_portal.procedures.store import SqliteProcedures
from hub.dashboard.flows import ROWS, table
from hub.plugins import Flow


def procedures_flow(store: SqliteProcedures) -> Flow:
    async def read() -> dict[str, Any]:
        runs = await store.runs(20)
        return {
            "facts": {"active_procedures": await store.active_count()},
            "tables": [
                table(
                    "runs",
                    ["id", "kind", "trigger", "state", "started_at", "finished_at", "counts"],
                    runs,
                ),
                table(
                    "quarantine",
                    ["id", "code", "field", "reason", "at"],
                    await store.quarantined(ROWS),
                ),
            ],
        }

    return read
