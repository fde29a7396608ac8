"""What a text value may hold: printable characters only.

A NUL or another control character (tabs and line breaks aside), or a character that
reorders how text is shown (bidirectional overrides and isolates, U+202A–U+202E and
U+2066–U+2069: a name that reads one way and sorts another), is refused where it enters, by
its field, and never forwarded to DVCQG or shown on the dashboard. Pure logic.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def printable(value: str) -> str:
    found = _FORBIDDEN.search(value)
    if found:
        raise ValueError(
            f"holds a control character (U+{ord(found.group()):04X}) at position {found.start()}"
        )
    return value


Printable = Annotated[str, AfterValidator(printable)]
