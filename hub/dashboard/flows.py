"""The data of the pages per flow: procedure changes and quarantine, payments and the
reconciliation report, ministry systems, the document axis.

Each flow is a function returning `{"facts": {name: value}, "tables": [{"key", "columns",
"rows"}]}` read through the store's read-only connection; the board masks it. A flow the
configuration leaves off is simply absent. This module must never write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hub.store.sqlite import SqliteStore

Flow = Callable[[], Awaitable[dict[str, Any]]]
ROWS = 50


def recent_days(today: date, n: int) -> list[str]:
    return [(today - timedelta(days=i)).isoformat() for i in range(n)]


def plain(value: Any) -> Any:
    """A store row (dataclass, pydantic model, or one with `as_json`) as JSON-ready data."""
    if hasattr(value, "as_json"):
        return value.as_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def _table(key: str, columns: list[str], rows: list[Any]) -> dict[str, Any]:
    data = [plain(r) for r in rows]
    return {
        "key": key,
        "columns": columns,
        "rows": [{c: row.get(c) for c in columns} for row in data if isinstance(row, dict)],
    }


def procedures(reader: SqliteStore) -> Flow:
    async def read() -> dict[str, Any]:
        store = reader.procedures
        runs = await store.runs(20)
        return {
            "facts": {"active_procedures": await store.active_count()},
            "tables": [
                _table(
                    "runs",
                    ["id", "kind", "trigger", "state", "started_at", "finished_at", "counts"],
                    runs,
                ),
                _table(
                    "quarantine",
                    ["id", "code", "field", "reason", "at"],
                    await store.quarantined(ROWS),
                ),
            ],
        }

    return read


def payments(reader: SqliteStore) -> Flow:
    async def read() -> dict[str, Any]:
        store = reader.payments
        report: dict[str, Any] | None = None
        for day in recent_days(datetime.now(UTC).date(), 3):
            report = await store.report(day)
            if report:
                break
        callbacks = [asdict(c) for c in await store.callbacks(None, ROWS)]
        summary = {k: v for k, v in (report or {}).items() if not isinstance(v, list | dict)}
        findings = (report or {}).get("findings") or []
        return {
            "facts": {"report": summary or None},
            "tables": [
                _table(
                    "callbacks",
                    ["at", "verdict", "code", "reason", "transaction_id", "reference"],
                    callbacks,
                ),
                _table(
                    "findings",
                    sorted({k for f in findings if isinstance(f, dict) for k in f}),
                    findings if isinstance(findings, list) else [],
                ),
            ],
        }

    return read


def ministries(reader: SqliteStore, systems: dict[str, Any]) -> Flow:
    async def read() -> dict[str, Any]:
        store = reader.ministries
        rows = []
        handoffs: list[Any] = []
        for name, system in systems.items():
            rows.append(
                {
                    "system": name,
                    "kind": system.config.kind,
                    "circuit": await system.client.guard.breaker_state(),
                    "cursor": await store.cursor(name),
                }
            )
            handoffs += await store.handoffs(name, 20)
        return {
            "facts": {},
            "tables": [
                _table("systems", ["system", "kind", "circuit", "cursor"], rows),
                _table(
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
                _table(
                    "quarantine",
                    ["system", "via", "code", "reason", "dossier_code", "last_at", "seen"],
                    await store.quarantined(None, ROWS),
                ),
            ],
        }

    return read


def vdxp(reader: SqliteStore, intake: Any, guard: Any) -> Flow:
    async def read() -> dict[str, Any]:
        store = reader.vdxp
        return {
            "facts": {
                "circuit": await guard.breaker_state(),
                "last_round": intake.last_round.isoformat() if intake.last_round else None,
                "last_error": intake.last_error,
            },
            "tables": [
                _table(
                    "documents",
                    ["document_id", "direction", "dossier_code", "from_organ", "subject", "state"],
                    await store.documents(None, None, ROWS),
                ),
                _table(
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
