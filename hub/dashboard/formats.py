"""How the dashboard writes values: moments in the province's time (UTC+7) to the second,
numbers, durations, percentages and amounts as the page's language writes them, connectors by
their display names, and one flow table cell as a person reads it (page, CSV alike).
`static/app.js` writes the same for what it updates live. Pure logic.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hub.dashboard import i18n
from hub.dashboard.flows import TIMEZONE, local_moment


def when(value: str | float | None) -> str:
    """A moment in the province's time (UTC+7), to the second."""
    if value is None or value == "":
        return "-"
    at = local_moment(value)
    return str(value) if at is None else at.strftime("%Y-%m-%d %H:%M:%S")


def clock(value: str | None, now: datetime | None = None) -> str:
    """A moment as a state's "since": the time alone when it is today (UTC+7), else the date
    too. `static/app.js` writes the same."""
    full = when(value)
    if len(full) != 19:
        return full
    today = (now or datetime.now(TIMEZONE)).astimezone(TIMEZONE).strftime("%Y-%m-%d")
    return full[11:] if full.startswith(today) else full


def grouped(value: float, decimals: int, lang: str) -> str:
    """A number with its thousands grouped and its decimals, as the language writes them:
    1.382,49 in Vietnamese, 1,382.49 in English. `static/app.js` writes the same."""
    text = f"{value:,.{decimals}f}"
    if lang == "vi":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def duration(seconds: float | None, lang: str = i18n.DEFAULT) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{grouped(seconds * 1000, 0, lang)} ms"
    if seconds < 120:
        return f"{grouped(seconds, 1, lang)} s"
    if seconds < 7200:
        return f"{grouped(seconds / 60, 1, lang)} min"
    return f"{grouped(seconds / 3600, 1, lang)} h"


def percent(ratio: float | None, lang: str = i18n.DEFAULT) -> str:
    return "-" if ratio is None else f"{grouped(ratio * 100, 1, lang)} %"


def number(value: float | None, lang: str = i18n.DEFAULT) -> str:
    if value is None:
        return "-"
    return grouped(value, 0 if float(value).is_integer() else 2, lang)


def money(value: float | None, lang: str = i18n.DEFAULT) -> str:
    """An amount in đồng: 150.000 đ in Vietnamese, 150,000 VND in English."""
    if value is None:
        return "-"
    return f"{number(value, lang)} {'đ' if lang == 'vi' else 'VND'}"


def connector_name(name: str, lang: str, names: Mapping[str, str] | None = None) -> str:
    """A connector as operators call it: the province's own name for it (`dashboard.names`),
    else its words (`connector.<name>`, e.g. Cổng DVCQG), else its family's with the rest of
    its name (`connector.ministry.named`: the ministry system «tax»), else the name itself."""
    if names and name in names:
        return names[name]
    words = i18n.catalogue(lang)
    if f"connector.{name}" in words:
        return words[f"connector.{name}"]
    head, _, rest = name.partition(".")
    if rest and f"connector.{head}.named" in words:
        return words[f"connector.{head}.named"].format(name=rest)
    return name


def value_word(lang: str, column: str, value: Any) -> str:
    """A code as its words (`value.<column>.<code>`, or `<column>.<code>` as the dossier
    statuses are), or the code itself when it has none."""
    text = str(value)
    words = i18n.catalogue(lang)
    return words.get(f"value.{column}.{text}") or words.get(f"{column}.{text}") or text


def cell(
    lang: str, column: Mapping[str, Any], value: Any, names: Mapping[str, str] | None = None
) -> str:
    """One flow table value as the page and its CSV show it."""
    if value is None or value == "":
        return "-"
    kind = column.get("kind", "text")
    key = str(column.get("key", ""))
    if kind == "time":
        return when(value)
    if kind == "value":
        return value_word(lang, str(column.get("words") or key), value)
    if kind == "connector":
        return connector_name(str(value), lang, names)
    if kind == "money" and isinstance(value, int | float):
        return money(value, lang)
    if kind == "number" and isinstance(value, int | float):
        return number(value, lang)
    if isinstance(value, Mapping):
        return ", ".join(
            f"{value_word(lang, key, k)}: {number(v, lang) if isinstance(v, int | float) else v}"
            for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
