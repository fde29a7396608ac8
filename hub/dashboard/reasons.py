"""Reasons and outage causes in words an operator reads, the hub's own text kept beside them.

A reason reaches a page as the hub wrote it (English, for logs and the technical reader: "DVCQG
refused DongBoHoSoMC for …: 04 …", "cannot reach DVCQG: ConnectionRefusedError …") and, where
known, as a code: an outage's `hub.outage.Cause`, a connector state's reason code
(`hub.health.Condition`), the destination's own refusal code (`x-hub-error-code`), or one of
the hub's own parking reasons recognised here. The words are looked up in the catalogues:

* `reason.<connector>.<code>`: a connector's refusal codes (its own locale/), and
  `reason.<connector>.other` ("DVCQG refused it, code {code}") for a code it has no words for;
* `cause.<code>`: an outage's kind; `reason.<code>`: the core's other reasons.

With no words, the text is shown as it is. Pure logic; it must never drop the raw reason: the
page keeps it in a details element (or a title) for whoever needs the exact reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.dashboard import i18n
from hub.dlq import own_code
from hub.outage import Cause

# The core's codes that have words (the unit test holds both catalogues to them).
STATE_REASONS = ("paused", "paused_note", "not_consuming", "error_rate", "stale")
PARKING_REASONS = ("delivery_limit", "retry_budget")
# Codes of replies the hub refuses unread (`hub.errors.UnreadableReply`), wherever raised.
UNREADABLE_REPLIES = (
    "invalid_xml",
    "entities",
    "oversized",
    "too_large",
    "wsdl_mismatch",
    "invalid_json",
    "invalid_reply",
)
CORE_REASONS = (*STATE_REASONS, *PARKING_REASONS, *UNREADABLE_REPLIES)
CAUSES = tuple(c.value for c in Cause)


@dataclass(frozen=True)
class Worded:
    words: str  # what the page shows; the raw text itself when no words are known
    raw: str  # the hub's own text, for the technical reader
    code: str | None  # the code the words were found by

    @property
    def has_words(self) -> bool:
        return self.code is not None


def code_of(raw: str) -> str | None:
    """One of the hub's own parking reasons, recognised in its text (`hub.dlq.own_code`)."""
    return own_code(raw)


def word(
    lang: str,
    raw: str | None,
    *,
    connector: str | None = None,
    code: str | None = None,
    cause: str | None = None,
    args: Mapping[str, Any] | None = None,
) -> Worded:
    """`raw` in the words of `lang`: by the destination's `code` (with `connector`), an
    outage's `cause`, a state reason's code, or the hub's own parking reasons."""
    text = raw or ""
    values = {"code": code or "", **(args or {})}
    if code == "paused" and values.get("note"):
        code = "paused_note"
    if not code and not cause:
        code = code_of(text)
    words = i18n.catalogue(lang)
    for key in _keys(connector, code, cause):
        if key in words:
            found = code or cause
            return Worded(_format(words[key], values), text, found)
    return Worded(text, text, None)


def _keys(connector: str | None, code: str | None, cause: str | None) -> list[str]:
    """Where the words may be, the most particular first; a destination's code it has no
    words for reads as "refused, code …" (its connector's, else the core's)."""
    family = (connector or "").split(".", 1)[0]
    keys = [f"cause.{cause}"] if cause else []
    if code:
        if family:
            keys.append(f"reason.{family}.{code}")
        keys.append(f"reason.{code}")
        if family:
            keys.append(f"reason.{family}.other")
        keys.append("reason.other")
    return keys


def _format(template: str, values: Mapping[str, Any]) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template
