"""The dashboard page of the catalogue: its sync runs and the records it held back
(tạm giữ) with the reason, and the state and outages of the catalogue's calls to DVCQG."""

from __future__ import annotations

from typing import Any

from connectors.national_portal.procedures.store import SqliteProcedures
from hub.dashboard.flows import WINDOW, Column, fact, table
from hub.plugins import Flow

CATALOGUE = "national_portal.catalogue"


def procedures_flow(store: SqliteProcedures) -> Flow:
    async def read() -> dict[str, Any]:
        runs = await store.runs(WINDOW)
        held = await store.quarantined(WINDOW)
        return {
            "facts": [
                fact("active_procedures", await store.active_count(), "number"),
                fact("failed_runs", sum(1 for r in runs if r.state == "failed"), "number"),
                fact("quarantined_records", len(held), "number"),
            ],
            "tables": [
                table(
                    "runs",
                    [
                        Column("started_at", "time"),
                        Column("finished_at", "time"),
                        Column("kind", "value", filter=True),
                        Column("trigger", "value", filter=True),
                        Column("state", "value", filter=True),
                        Column("counts", "counts"),
                        Column("detail"),
                    ],
                    runs,
                ),
                table(
                    "held_records",
                    [
                        Column("at", "time"),
                        Column("code", "id"),
                        Column("field", "id"),
                        # The reason in words by its code; the hub's own text folded away.
                        Column("reason_code", "value", filter=True, words="code"),
                        Column("reason", "detail"),
                    ],
                    held,
                ),
            ],
            "connectors": [CATALOGUE],
        }

    return read
