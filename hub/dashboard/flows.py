"""What a flow page is made of, and how its tables are filtered, paged, totalled and exported.

Each connector's page (`hub.plugins.ConnectorContext.add_flow`) is a function returning
`{"facts": {name: value}, "tables": [table(...)], "connectors": [watched names]}` read through
the store's read-only connection; the board masks it and adds the outage log and state of the
connectors it names (a flow's outages show on its own page). A flow the configuration leaves
off is simply absent.

A table is read as the newest `WINDOW` rows of its store table; `select` then filters, counts,
sums and pages those rows for one request (decision 0067: the hub's flow tables are logs of
recent activity, and a count over the window says so when the window is full). Its columns say
how each value reads (`Column.kind`): a moment in the province's time, a code translated
through the locale (`value.<column>.<code>`), a connector's display name, a dossier code
linked to its page, an amount in đồng. Pages, CSV and the JSON API all go through `select`,
so they agree row for row. This module must never write, and holds no words of its own.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

WINDOW = 2000  # rows read per table: the newest ones
PER_PAGE = 25
TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")

Kind = Literal[
    "text", "id", "time", "value", "connector", "dossier", "money", "number", "counts", "detail"
]  # detail: technical text the page folds away (the CSV writes it whole)
# A column's kinds that have a short list of values, filtered with a list to pick from.
CHOICE_KINDS = ("value", "connector")


@dataclass(frozen=True)
class Column:
    """One column of a flow table: its key in the rows, how its values read, and whether the
    page offers a list to filter it by (a `value` or `connector` column). A `value` column's
    words are `value.<key>.<value>`, or `value.<words>.<value>` when it names `words`: the
    refusal codes of every flow table share `value.code.*` whatever their column is called."""

    key: str
    kind: Kind = "text"
    filter: bool = False
    words: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "kind": self.kind, "filter": self.filter}
        if self.words:
            out["words"] = self.words
        return out


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


def table(
    key: str, columns: list[Column] | list[str], rows: list[Any], window: int = WINDOW
) -> dict[str, Any]:
    """A flow table: `rows` (newest first, at most `window` of them) cut to `columns` (a plain
    name is a text column, as plug-ins written before column kinds give them)."""
    data = [plain(r) for r in rows]
    specs = [c if isinstance(c, Column) else Column(str(c)) for c in columns]
    keys = [c.key for c in specs]
    return {
        "key": key,
        "columns": [c.as_json() for c in specs],
        "rows": [{k: row.get(k) for k in keys} for row in data if isinstance(row, dict)],
        "window": window,
    }


# -- one request's view of a table -------------------------------------------------------------


class BadFilter(ValueError):
    """A filter value the page cannot use (a date that is no date)."""


@dataclass(frozen=True)
class Query:
    """What one request asks of one table: free text, exact values of its choice columns,
    a range of local days over its first time column, and a page (0 is the newest)."""

    text: str = ""
    equals: tuple[tuple[str, str], ...] = ()
    since: date | None = None
    until: date | None = None
    page: int = 0

    def params(self, key: str) -> dict[str, str]:
        """The query string that asks for it again (paging and export links keep filters)."""
        out = {f"{key}-q": self.text} if self.text else {}
        out.update({f"{key}-{c}": v for c, v in self.equals})
        if self.since:
            out[f"{key}-since"] = self.since.isoformat()
        if self.until:
            out[f"{key}-until"] = self.until.isoformat()
        return out


def query_of(key: str, columns: list[dict[str, Any]], params: Mapping[str, str]) -> Query:
    """Table `key`'s query from a request's parameters (`<key>-q`, `<key>-<column>`,
    `<key>-since`, `<key>-until`, `<key>-page`); raises `BadFilter` for a date that is none."""
    choices = [c["key"] for c in columns if c.get("filter")]
    equals = tuple(
        (c, params[f"{key}-{c}"][:200]) for c in choices if params.get(f"{key}-{c}", "") != ""
    )
    try:
        page = max(0, min(10**6, int(params.get(f"{key}-page") or 0)))
    except ValueError:
        page = 0
    return Query(
        text=" ".join(params.get(f"{key}-q", "").split())[:200],
        equals=equals,
        since=_day(params.get(f"{key}-since")),
        until=_day(params.get(f"{key}-until")),
        page=page,
    )


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise BadFilter(text[:40]) from None


def local_moment(value: Any) -> datetime | None:
    """A stored moment (ISO text, naive meaning UTC, or epoch seconds) in the province's time."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, TIMEZONE)
        at = datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo("UTC"))
    return at.astimezone(TIMEZONE)


Label = Callable[[dict[str, Any], Any], str]  # (column, value) -> the text a person reads


def select(
    tab: dict[str, Any], query: Query, label: Label, per_page: int | None = PER_PAGE
) -> dict[str, Any]:
    """The rows of `tab` that `query` asks for, newest first, with their count, the sums of
    its money columns, each choice column's values (to pick from), and one page of them
    (`per_page` None: every matching row, for an export)."""
    columns: list[dict[str, Any]] = tab["columns"]
    rows: list[dict[str, Any]] = tab["rows"]
    first_time = next((c["key"] for c in columns if c["kind"] == "time"), None)
    needle = query.text.casefold()
    wanted = dict(query.equals)

    def keep(row: dict[str, Any]) -> bool:
        for k, v in wanted.items():
            if _text(row.get(k)) != v:
                return False
        if first_time and (query.since or query.until):
            at = local_moment(row.get(first_time))
            if at is None:
                return False
            if query.since and at < datetime.combine(query.since, time(), TIMEZONE):
                return False
            if query.until and at >= datetime.combine(query.until, time(), TIMEZONE) + timedelta(
                days=1
            ):
                return False
        if needle:
            seen = " ".join(
                f"{_text(row.get(c['key']))} {label(c, row.get(c['key']))}" for c in columns
            )
            if needle not in seen.casefold():
                return False
        return True

    matching = [r for r in rows if keep(r)]
    total = len(matching)
    size = per_page or max(1, total)
    pages = max(1, math.ceil(total / size))
    page = min(query.page, pages - 1)
    sums = {
        c["key"]: sum(
            v for r in matching if isinstance(v := r.get(c["key"]), int | float) and v == v
        )
        for c in columns
        if c["kind"] == "money"
    }
    options = {
        c["key"]: sorted({_text(r.get(c["key"])) for r in rows if r.get(c["key"]) is not None})
        for c in columns
        if c.get("filter")
    }
    return {
        "key": tab["key"],
        "columns": columns,
        "rows": matching[page * size : (page + 1) * size],
        "total": total,
        "read": len(rows),
        "capped": len(rows) >= tab.get("window", WINDOW),
        "page": page,
        "pages": pages,
        "per_page": size,
        "sums": sums,
        "options": options,
        "query": query,
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_csv(selected: dict[str, Any], header: Callable[[str], str], label: Label) -> str:
    """Every row of a selection as CSV, as the page reads it: the page's headers, values and
    local times. A byte-order mark first, so that a spreadsheet reads Vietnamese as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    columns = selected["columns"]
    writer.writerow([header(c["key"]) for c in columns])
    for row in selected["rows"]:
        writer.writerow([_cell_safe(label(c, row.get(c["key"]))) for c in columns])
    return out.getvalue()


def _cell_safe(text: str) -> str:
    """A value a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and text != "-" else text


def fact(key: str, value: Any, kind: Kind = "text") -> dict[str, Any]:
    """One fact above a flow's tables (`fact.<key>` names it), read as `kind` says."""
    return {"key": key, "kind": kind, "value": value}


def facts_of(given: Any) -> list[dict[str, Any]]:
    """A flow's facts as a list of `fact`s (a plug-in may still give `{name: value}`)."""
    if isinstance(given, dict):
        return [fact(str(k), v) for k, v in given.items()]
    return [f for f in given or [] if isinstance(f, dict) and "key" in f]
