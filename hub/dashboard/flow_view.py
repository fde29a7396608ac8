"""One request's view of a flow page: each table filtered, counted and paged by the request's
parameters (`flows.select`), the same for the page, its CSV export and the admin API.
Words and numbers come from `formats` in the page's language. This module must never write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.dashboard import flows, formats, i18n


def labeller(lang: str, names: Mapping[str, str]) -> flows.Label:
    def label(column: dict[str, Any], value: Any) -> str:
        return formats.cell(lang, column, value, names)

    return label


def view(
    data: dict[str, Any],
    params: Mapping[str, str],
    lang: str,
    names: Mapping[str, str],
    per_page: int | None = flows.PER_PAGE,
) -> dict[str, Any]:
    """`data` (a `Board.flow`) with each table cut to what `params` ask of it; raises
    `flows.BadFilter` for a filter it cannot read."""
    if not data.get("enabled"):
        return data
    label = labeller(lang, names)
    tables = [
        flows.select(tab, flows.query_of(tab["key"], tab["columns"], params), label, per_page)
        for tab in data["tables"]
    ]
    return {**data, "tables": tables}


def csv_of(
    data: dict[str, Any], key: str, params: Mapping[str, str], lang: str, names: Mapping[str, str]
) -> str | None:
    """Every row of table `key` that `params` ask for, as CSV in the page's language; None when
    the flow has no such table."""
    tab = next((t for t in data.get("tables", []) if t["key"] == key), None)
    if tab is None:
        return None
    label = labeller(lang, names)
    selected = flows.select(tab, flows.query_of(key, tab["columns"], params), label, None)
    return flows.to_csv(selected, lambda c: i18n.translate(lang, f"col.{key}.{c}"), label)


def as_json(viewed: dict[str, Any]) -> dict[str, Any]:
    """The view without what only the page needs (each table's parsed query)."""
    return {
        **viewed,
        "tables": [{k: v for k, v in t.items() if k != "query"} for t in viewed.get("tables", [])],
    }
