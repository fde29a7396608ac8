"""What a flow page is made of: each connector's page (`hub.plugins.ConnectorContext.add_flow`)
is a function returning `{"facts": {name: value}, "tables": [{"key", "columns", "rows"}]}`
read through the store's read-only connection; the board masks it. A flow the configuration
leaves off is simply absent. This module must never write.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

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


def table(key: str, columns: list[str], rows: list[Any]) -> dict[str, Any]:
    data = [plain(r) for r in rows]
    return {
        "key": key,
        "columns": columns,
        "rows": [{c: row.get(c) for c in columns} for row in data if isinstance(row, dict)],
    }
