"""The dashboard page of the ministry systems: each system's polling (cursor, last round and
its error), the dossiers handed off, the results and replies held back (tạm giữ) with the
reason, and each system's state and outages."""

from __future__ import annotations

from typing import Any

from connectors.ministry.store import SqliteMinistries
from hub.dashboard.flows import WINDOW, Column, fact, plain, table
from hub.plugins import Flow
from schemas.canonical import DossierStatus


def _status(code: int) -> str:
    try:
        return DossierStatus(code).name
    except ValueError:
        return str(code)


def ministries_flow(store: SqliteMinistries, systems: dict[str, Any]) -> Flow:
    async def read() -> dict[str, Any]:
        rows = []
        handoffs: list[dict[str, Any]] = []
        for name, system in systems.items():
            last = system.last_poll()
            rows.append(
                {
                    "system": f"ministry.{name}",
                    "kind": system.config.kind,
                    "cursor": await store.cursor(name),
                    "last_poll": last.at if last else None,
                    "poll_error": last.error if last else None,
                }
            )
            for h in await store.handoffs(name, WINDOW):
                row = plain(h)
                handoffs.append({**row, "system": f"ministry.{name}", "status": _status(h.status)})
        handoffs.sort(key=lambda h: str(h["submitted_at"]), reverse=True)
        held = [
            {**plain(q), "system": f"ministry.{q.system}"}
            for q in await store.quarantined(None, WINDOW)
        ]
        return {
            "facts": [
                fact("quarantined_results", len(held), "number"),
                fact("poll_errors", sum(1 for r in rows if r["poll_error"]), "number"),
            ],
            "tables": [
                table(
                    "systems",
                    [
                        Column("system", "connector"),
                        Column("kind", "value"),
                        Column("last_poll", "time"),
                        Column("poll_error", "detail"),  # the state above says it in words
                        Column("cursor", "id"),
                    ],
                    rows,
                ),
                table(
                    "handoffs",
                    [
                        Column("submitted_at", "time"),
                        Column("system", "connector", filter=True),
                        Column("dossier_code", "dossier"),
                        Column("procedure_code", "id"),
                        Column("status", "value", filter=True),
                        Column("reference", "id"),
                    ],
                    handoffs[:WINDOW],
                ),
                table(
                    "held_results",
                    [
                        Column("last_at", "time"),
                        Column("system", "connector", filter=True),
                        Column("via", "value", filter=True),
                        Column("code", "value", filter=True),  # the reason in words
                        Column("reason", "detail"),  # the hub's own text, folded away
                        Column("dossier_code", "dossier"),
                        Column("seen", "number"),
                    ],
                    held,
                ),
            ],
            "connectors": [f"ministry.{n}" for n in systems],
        }

    return read
