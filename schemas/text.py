"""What a text value may hold: printable characters only; what a free-form object may hold.

A NUL or another control character (tabs and line breaks aside), or a character that
reorders how text is shown (bidirectional overrides and isolates, U+202A–U+202E and
U+2066–U+2069: a name that reads one way and sorts another), is refused where it enters, by
its field, and never forwarded to DVCQG or shown on the dashboard. So is a lone surrogate
(U+D800–U+DFFF): JSON may escape one (`"\\ud800"`), but it is no character, and no UTF-8 store,
queue or log can hold it.

Free-form objects the hub passes on as they came (a dossier's other attachments and
supplements) are checked for what nothing downstream can carry: a lone surrogate in a key or a
string, a number that is not finite (`NaN`, `Infinity`), nesting deeper than
`MAX_FREE_FORM_DEPTH` levels. Pure logic.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BREAK = re.compile("[\t\n\r]")
MAX_FREE_FORM_DEPTH = 16
"""Levels of objects and lists inside one free-form object (an attachment's description is
two or three deep); deeper is refused, so no encoder down the line runs out of stack."""


def printable(value: str) -> str:
    found = _FORBIDDEN.search(value)
    if found:
        what = "lone surrogate" if _SURROGATE.match(found.group()) else "control character"
        raise ValueError(f"holds a {what} (U+{ord(found.group()):04X}) at position {found.start()}")
    return value


def one_line(value: str) -> str:
    """A printable value without tabs or line breaks either: an id, which travels in HTTP
    headers (a subscriber's `X-Hub-Event-Id`) and log lines, where those cannot stand."""
    printable(value)
    found = _BREAK.search(value)
    if found:
        raise ValueError(f"holds a tab or a line break at position {found.start()}")
    return value


def plain_json(value: Any) -> Any:
    """`value` if every level of it can travel as JSON text (see the module's docstring)."""
    _check_plain(value, 1)
    return value


def _check_plain(value: Any, depth: int) -> None:
    if depth > MAX_FREE_FORM_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_FREE_FORM_DEPTH} levels")
    if isinstance(value, str):
        if found := _SURROGATE.search(value):
            raise ValueError(f"holds a lone surrogate (U+{ord(found.group()):04X})")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("holds a number that is not finite (NaN or Infinity)")
    elif isinstance(value, dict):
        for key, inner in value.items():
            _check_plain(key, depth)
            _check_plain(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            _check_plain(inner, depth + 1)


Printable = Annotated[str, AfterValidator(printable)]
OneLine = Annotated[str, AfterValidator(one_line)]
"""An id: printable, on one line."""
PlainObject = Annotated[dict[str, Any], AfterValidator(plain_json)]
"""A free-form JSON object that can travel as it came."""
