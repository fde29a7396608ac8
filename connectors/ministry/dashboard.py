"""The dashboard page of the ministry systems: their circuits, cursors, last poll round (and
its error), hand-offs, quarantine (results and replies the hub set aside, with the reason)."""

from __future__ import annotations

from typing import Any

from connectors.ministry.store import SqliteMinistries
from hub.dashboard.flows import ROWS, table
from hub.plugins import Flow


def ministries_flow(store: SqliteMinistries, systems: dict[str, Any]) -> Flow:
    async def read() -> dict[str, Any]:
        rows = []
        handoffs: list[Any] = []
        for name, system in systems.items():
            last = system.last_poll()
            rows.append(
                {
                    "system": name,
                    "kind": system.config.kind,
                    "circuit": await system.client.guard.breaker_state(),
                    "cursor": await store.cursor(name),
                    "last_poll": last.at if last else None,
                    "poll_error": last.error if last else None,
                }
            )
            handoffs += await store.handoffs(name, 20)
        return {
            "facts": {},
            "tables": [
                table(
                    "systems",
                    ["system", "kind", "circuit", "cursor", "last_poll", "poll_error"],
                    rows,
                ),
                table(
                    "handoffs",
                    [
                        "system",
                        "dossier_code",
                        "procedure_code",
                        "status",
                        "reference",
                        "submitted_at",
                    ],
                    handoffs,
                ),
                table(
                    "quarantine",
                    ["system", "via", "code", "reason", "dossier_code", "last_at", "seen"],
                    await store.quarantined(None, ROWS),
                ),
            ],
        }

    return read
